"""``create_model``: a name plus overrides in, a ready ``VisionTransformer`` out."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from .config import to_pair
from .errors import ConfigError, NotAvailableError
from .model import VisionTransformer
from .registry import get_config, resolve_name


def create_model(
    name: str,
    pretrained: bool = False,
    *,
    img_size: int | tuple[int, int] | None = None,
    patch_size: int | tuple[int, int] | None = None,
    num_classes: int | None = None,
    global_pool: str | None = None,
    dynamic_img_size: bool = False,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    **overrides: Any,
) -> VisionTransformer:
    """Build a registered ViT by timm name (``"vit_base_patch16_224"``) or paper alias (``"ViT-B/16"``).

    ``img_size`` (int or (h, w)) and ``patch_size`` change the input geometry; ``num_classes=0`` removes the head;
    ``global_pool`` is ``"token"`` or ``"avg"``; ``dynamic_img_size=True`` accepts any input size divisible by the
    patch. Any other ``ViTConfig`` field can be overridden by keyword (``drop_path_rate=0.1``,
    ``layer_norm_eps=1e-12``, ...). Parameters are created directly on ``device`` and cast to ``dtype``.
    """
    arch, tag = resolve_name(name)
    if pretrained or tag:
        raise NotAvailableError(
            f"pretrained weights for {name!r} are not available in this version of vitzoo (the Hub loader is not "
            "wired up yet); create the model with pretrained=False and load a state dict with "
            "model.load_state_dict(...)"
        )
    named = {
        "img_size": img_size,
        "patch_size": patch_size,
        "num_classes": num_classes,
        "global_pool": global_pool,
        "dynamic_img_size": dynamic_img_size or None,
    }
    clash = sorted(set(named) & set(overrides))
    if clash:
        raise ConfigError(f"{clash} given twice")
    changes = {k: v for k, v in named.items() if v is not None}
    changes.update(overrides)
    for key in ("img_size", "patch_size"):
        if key in changes:
            changes[key] = to_pair(changes[key], key)
    config = get_config(arch).replace(**changes)  # validates; unknown fields raise with close-match hints
    with torch.device(device) if device is not None else contextlib.nullcontext():
        model = VisionTransformer(config)
    if dtype is not None:
        model = model.to(dtype=dtype)
    return model



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
        "tokens": cfg.num_prefix_tokens + cfg.grid_size[0] * cfg.grid_size[1],
        "params": sum(p.numel() for p in model.parameters()),
        "params_no_head": sum(p.numel() for p in model.parameters()) - n_head,
    }
