"""Architecture names (timm's), paper aliases, their configs and the checkpoint table, as plain data.

Names are looked up here exactly; ``vitzoo.source`` is where a user's name (alias, ``arch.tag``, ...) is parsed.

Sizes are Table 1 of Dosovitskiy et al. (ICLR 2021): Layers, Hidden size D, MLP size, Heads. Tiny and Small are not
in the paper; they come from the official repo's ``vit_jax/configs/models.py`` (DeiT's sizes) and serve fast tests.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from .config import ViTConfig
from .pretrained_cfg import PretrainedCfg
from .pretrained_tags import TAGS

# size: (layers, hidden size D, MLP size, heads)       source
SIZES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (12, 192, 768, 3),  # official repo configs (ViT-Ti/16)
    "small": (12, 384, 1536, 6),  # official repo configs (ViT-S/16)
    "base": (12, 768, 3072, 12),  # paper Table 1, ViT-Base
    "large": (24, 1024, 4096, 16),  # paper Table 1, ViT-Large
    "huge": (32, 1280, 5120, 16),  # paper Table 1, ViT-Huge
}

# arch name (timm's): (size, patch, image size[, hybrid CNN stage depths])
ARCH_SPECS: dict[str, tuple[Any, ...]] = {
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
    return ViTConfig(
        embed_dim=dim,
        depth=depth,
        mlp_dim=mlp,
        num_heads=heads,
        patch_size=(patch, patch),
        img_size=(img, img),
        hybrid_layers=hybrid,
    )


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

# every published checkpoint, keyed "arch.tag", in table order (each arch's default tag first)
PRETRAINED: dict[str, PretrainedCfg] = {cfg.name: cfg for cfg in TAGS}


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted arch names, optionally filtered by a shell-style ``pattern`` (``"*base*"``); aliases match too."""
    names = sorted(ARCHS, key=lambda n: (list(SIZES).index(ARCH_SPECS[n][0]), len(ARCH_SPECS[n]), ARCH_SPECS[n][1:3]))
    if pattern is None:
        return names
    hits = {n for n in names if fnmatch.fnmatch(n, pattern)}
    hits |= {a for alias, a in ALIASES.items() if fnmatch.fnmatch(alias.lower(), pattern.lower())}
    return [n for n in names if n in hits]


def list_pretrained(pattern: str | None = None) -> list[str]:
    """``arch.tag`` names of every known checkpoint, in registry order (each arch's default tag first)."""
    return [n for n in PRETRAINED if pattern is None or fnmatch.fnmatch(n, pattern)]


def tags_of(arch: str) -> list[PretrainedCfg]:
    """The checkpoints of a registered arch, default first (empty when it has none)."""
    return [cfg for cfg in PRETRAINED.values() if cfg.arch == arch]
