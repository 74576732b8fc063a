"""``create_model``: a name plus overrides in, a ready ``VisionTransformer`` out."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ._version import __version__
from .config import to_pair
from . import loading, repo_config
from .errors import ConfigError
from .formats import convert
from .model import VisionTransformer
from .pretrained_cfg import PretrainedCfg
from .registry import get_config, get_pretrained_cfg, resolve_name


def create_model(
    name: str,
    pretrained: bool | str | Path | Mapping[str, Any] = False,
    *,
    img_size: int | tuple[int, int] | None = None,
    patch_size: int | tuple[int, int] | None = None,
    num_classes: int | None = None,
    global_pool: str | None = None,
    dynamic_img_size: bool = False,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    revision: str | None = None,
    strict: bool = True,
    **overrides: Any,
) -> VisionTransformer:
    """Build a ViT by timm name (``"vit_base_patch16_224"``), paper alias (``"ViT-B/16"``), pretrained tag
    (``"vit_base_patch16_224.augreg_in21k"``), Hub repo (``"hf-hub:google/vit-base-patch16-224"``) or saved folder
    (``"local-dir:path"``).

    ``pretrained``: ``True`` loads the tag's weights (an arch's default tag if none is given) or the repo's/folder's;
    it also takes a file, folder, ``hf-hub:`` id or state dict to load into the named architecture. Loading builds
    the model on the meta device and assigns the checkpoint's tensors (cast to ``dtype``, on ``device``): no random
    init, no second copy. ``num_classes`` defaults to the checkpoint's; another value re-initialises the head with
    zeros, 0 drops it. ``img_size`` other than the checkpoint's resamples the position embeddings. Any other
    ``ViTConfig`` field can be overridden by keyword. ``model.load_report`` says what loading did.
    """
    named = {
        "img_size": img_size,
        "patch_size": patch_size,
        "num_classes": num_classes,
        "global_pool": global_pool,
        "dynamic_img_size": dynamic_img_size or None,
    }
    changes = {k: v for k, v in named.items() if v is not None}
    changes.update(overrides)
    for key in ("img_size", "patch_size"):
        if key in changes:
            changes[key] = to_pair(changes[key], key)

    src: loading.Source | None = None
    facts: PretrainedCfg | None = None
    if name.startswith(("hf-hub:", "local-dir:")):
        if pretrained not in (True, False):
            raise ConfigError(f"{name!r} names its own weights: pass pretrained=True or False, not a source")
        if pretrained:
            src = loading.fetch(name, revision=revision)
            config_json, keys = src.config, set(src.tensors)
        else:
            config_json, keys = loading.read_repo_config(name, revision), set()
        if config_json is None:
            raise loading.CheckpointError(f"{name}: no config.json; pass the architecture name and pretrained=PATH")
        base, facts = repo_config.parse(config_json, name, keys)
    else:
        arch, tag = resolve_name(name)
        base = get_config(arch)
        if tag or pretrained is True:
            facts = get_pretrained_cfg(name)
            base = base.replace(num_classes=facts.num_classes, img_size=facts.img_size)
            if pretrained is True:
                src = loading.fetch(facts.name, revision=revision)
        elif pretrained is not False:
            src = loading.fetch(pretrained, revision=revision)
            if src.config is not None:
                facts = repo_config.parse(src.config, src.label, set(src.tensors))[1]

    converted = convert(src.tensors) if src is not None else None
    if converted is not None and "num_classes" not in changes and facts is None:
        head = converted.state_dict.get("head.weight")  # a bare checkpoint: keep its head size if it has one
        changes["num_classes"] = int(head.shape[0]) if head is not None and torch.count_nonzero(head) else 0
    config = base.replace(**changes)  # validates; unknown fields raise with close-match hints

    if converted is None:
        with torch.device(device) if device is not None else contextlib.nullcontext():
            model = VisionTransformer(config)
        model = model.to(dtype=dtype) if dtype is not None else model
    else:
        with torch.device("meta"):
            model = VisionTransformer(config)
        if dtype is not None:
            model = model.to(dtype=dtype)
        grid = loading.checkpoint_grid(converted, facts, base.patch_size, config.num_prefix_tokens)
        report = loading.LoadReport(source=src.label, files=src.files)
        loading.load_into(model, converted, report, strict=strict, ckpt_grid=grid, device=device)
        model.load_report = report
    model.pretrained_cfg = facts
    return model


def save_pretrained(model: VisionTransformer, folder: str | Path) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (timm's layout plus vitzoo's config) into ``folder``.

    ``create_model("local-dir:FOLDER", pretrained=True)`` and ``load_pretrained`` read it back; timm reads the
    config too.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt", "vitzoo": __version__})
    config = repo_config.to_json(model.config, getattr(model, "pretrained_cfg", None))
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder


def describe(name: str) -> dict[str, Any]:
    """Facts of a registered arch without allocating weights (built on the meta device): sizes, tokens, params."""
    arch, _ = resolve_name(name)
    model = create_model(arch, device="meta")
    cfg = model.config
    n_head = sum(p.numel() for p in model.head.parameters())
    return {
        "name": arch,
        "layers": cfg.depth,
        "width": cfg.embed_dim,
        "mlp": cfg.mlp_dim,
        "heads": cfg.num_heads,
        "patch": cfg.patch_size[0],
        "img_size": cfg.img_size[0],
        "tokens": cfg.num_tokens,
        "params": sum(p.numel() for p in model.parameters()),
        "params_no_head": sum(p.numel() for p in model.parameters()) - n_head,
    }
