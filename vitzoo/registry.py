"""Architecture names (timm's), paper aliases and their configs, as plain data.

Sizes are Table 1 of Dosovitskiy et al. (ICLR 2021): Layers, Hidden size D, MLP size, Heads. Tiny and Small are not
in the paper; they come from the official repo's ``vit_jax/configs/models.py`` (DeiT's sizes) and serve fast tests.
"""

from __future__ import annotations

import difflib
import fnmatch

from .config import ViTConfig
from .pretrained_cfg import PretrainedCfg
from .errors import UnknownModelError

# size: (layers, hidden size D, MLP size, heads)       source
SIZES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (12, 192, 768, 3),  # official repo configs (ViT-Ti/16)
    "small": (12, 384, 1536, 6),  # official repo configs (ViT-S/16)
    "base": (12, 768, 3072, 12),  # paper Table 1, ViT-Base
    "large": (24, 1024, 4096, 16),  # paper Table 1, ViT-Large
    "huge": (32, 1280, 5120, 16),  # paper Table 1, ViT-Huge
}

# arch name (timm's): (size, patch, image size[, hybrid CNN stage depths])
ARCH_SPECS: dict[str, tuple] = {
    "vit_tiny_patch16_224": ("tiny", 16, 224),
    "vit_tiny_patch16_384": ("tiny", 16, 384),
    "vit_small_patch16_224": ("small", 16, 224),
    "vit_small_patch16_384": ("small", 16, 384),
    "vit_base_patch16_224": ("base", 16, 224),
    "vit_base_patch16_384": ("base", 16, 384),
    "vit_base_patch32_224": ("base", 32, 224),
    "vit_base_patch32_384": ("base", 32, 384),
    "vit_large_patch16_224": ("large", 16, 224),
    "vit_large_patch16_384": ("large", 16, 384),
    "vit_large_patch32_224": ("large", 32, 224),
    "vit_large_patch32_384": ("large", 32, 384),
    "vit_huge_patch14_224": ("huge", 14, 224),
    # R50x1+ViT-B/16 (paper §4.1 option (ii)): ResNet50 with stage 4's blocks in stage 3, stride 16, 1x1 patches
    "vit_base_r50_s16_224": ("base", 16, 224, (3, 4, 9)),
    "vit_base_r50_s16_384": ("base", 16, 384, (3, 4, 9)),
}

_LETTER = {"tiny": "Ti", "small": "S", "base": "B", "large": "L", "huge": "H"}


def _config(size: str, patch: int, img: int, hybrid: tuple[int, ...] = ()) -> ViTConfig:
    depth, dim, mlp, heads = SIZES[size]
    return ViTConfig(embed_dim=dim, depth=depth, mlp_dim=mlp, num_heads=heads, patch_size=patch, img_size=img,
                     hybrid_layers=hybrid)  # fmt: skip


ARCHS: dict[str, ViTConfig] = {name: _config(*spec) for name, spec in ARCH_SPECS.items()}


def _aliases() -> dict[str, str]:
    """Paper names ("ViT-B/16") and the official JAX config names ("ViT-B_16") for the 224 px archs."""
    out: dict[str, str] = {}
    for name, (size, patch, img, *hybrid) in ARCH_SPECS.items():
        if img == 224:
            prefix = "R50+" if hybrid else ""
            out[f"{prefix}ViT-{_LETTER[size]}/{patch}"] = name
            out[f"{prefix}ViT-{_LETTER[size]}_{patch}"] = name
    return out


ALIASES: dict[str, str] = _aliases()
_ALIAS_LOOKUP = {alias.lower(): name for alias, name in ALIASES.items()}


def resolve_name(name: str) -> tuple[str, str | None]:
    """Split ``"arch.tag"`` and map aliases (case-insensitive) to the arch name; unknown names raise with hints."""
    if not isinstance(name, str) or not name:
        raise UnknownModelError(f"model name must be a non-empty string, got {name!r}")
    arch, _, tag = name.partition(".") if name.lower() not in _ALIAS_LOOKUP else (name, "", "")
    arch = _ALIAS_LOOKUP.get(arch.lower(), arch)
    if arch not in ARCHS:
        known = list(ARCHS) + list(ALIASES)
        close = difflib.get_close_matches(arch, known, n=5, cutoff=0.5)
        hint = f"closest known names: {', '.join(close)}" if close else "see vitzoo.list_models()"
        raise UnknownModelError(f"unknown model {name!r}; {hint}")
    return arch, tag or None


def get_config(name: str) -> ViTConfig:
    """The registered config of an arch name or alias."""
    return ARCHS[resolve_name(name)[0]]


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted arch names, optionally filtered by a shell-style ``pattern`` (``"*base*"``); aliases match too."""
    names = sorted(ARCHS, key=lambda n: (list(SIZES).index(ARCH_SPECS[n][0]), len(ARCH_SPECS[n]), ARCH_SPECS[n][1:3]))
    if pattern is None:
        return names
    hits = {n for n in names if fnmatch.fnmatch(n, pattern)}
    hits |= {a for alias, a in ALIASES.items() if fnmatch.fnmatch(alias.lower(), pattern.lower())}
    return [n for n in names if n in hits]


def _pretrained_index() -> dict[str, PretrainedCfg]:
    from .pretrained_tags import TAGS

    return {cfg.name: cfg for cfg in TAGS}


def list_pretrained(pattern: str | None = None) -> list[str]:
    """``arch.tag`` names of every known checkpoint, in registry order (each arch's default tag first)."""
    names = list(_pretrained_index())
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def get_pretrained_cfg(name: str) -> PretrainedCfg:
    """The checkpoint facts for ``arch.tag``; a bare arch (or alias) gives its default (first) tag."""
    index = _pretrained_index()
    arch, tag = resolve_name(name)
    if tag is None:
        tags = [cfg for cfg in index.values() if cfg.arch == arch]
        if not tags:
            raise UnknownModelError(f"{arch} has no pretrained weights; create it with pretrained=False")
        return tags[0]
    full = f"{arch}.{tag}"
    if full not in index:
        tags = [cfg.tag for cfg in index.values() if cfg.arch == arch]
        close = difflib.get_close_matches(tag, tags, n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UnknownModelError(f"unknown pretrained tag {full!r}; {hint}{arch} has: {', '.join(tags) or 'none'}")
    return index[full]
