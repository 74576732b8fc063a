"""Optimizer parameter groups with layer-wise learning-rate decay, and freezing, for any training loop.

Layer ids are timm's (``group_matcher`` + ``param_groups_layer_decay``): the embeddings (patch embedding, class,
distillation and register tokens, position table, ``norm_pre``) are layer 0, ``blocks.i`` is layer ``i + 1``, the
final ``norm`` goes with the last block, and everything after it (``fc_norm``, the attention pool, the heads) is
the last layer. With ``layer_decay`` d, layer ``i`` of ``n`` trains at ``lr * d ** (n - 1 - i)`` (BEiT, DeiT-III).
"""

from __future__ import annotations

import fnmatch
from typing import Any

from torch import nn

from ..errors import ConfigError
from ..models.vit import VisionTransformer

STEM = ("cls_token", "dist_token", "reg_token", "pos_embed", "patch_embed", "norm_pre")


def layer_id(name: str, depth: int) -> int:
    """timm's layer id of parameter ``name`` in a model of ``depth`` blocks (0 .. depth + 1)."""
    if name.startswith(STEM):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    if name.startswith("norm"):  # the final norm, grouped with the last block (timm's MATCH_PREV_GROUP)
        return depth
    return depth + 1  # fc_norm, attn_pool, pre_logits, head, head_dist


def _layer_ids(model: VisionTransformer) -> dict[str, int]:
    return {name: layer_id(name, len(model.blocks)) for name, _ in model.named_parameters()}


def param_groups(
    model: VisionTransformer, lr: float, weight_decay: float = 0.0, layer_decay: float | None = None
) -> list[dict[str, Any]]:
    """Optimizer parameter groups with an absolute ``lr`` and ``weight_decay`` each, for any optimizer.

    No weight decay for 1-D parameters (biases, norms, layer scales) and for ``model.no_weight_decay()`` (tokens,
    position table); frozen parameters (``requires_grad=False``) are left out. With ``layer_decay`` the lr of
    layer ``i`` is ``lr * layer_decay ** (num_layers - 1 - i)``; each group also carries that factor as
    ``lr_scale`` (what timm's schedulers read). Equal to timm's ``param_groups_layer_decay`` with
    ``lr = lr * lr_scale``.

        optimizer = torch.optim.AdamW(vitzoo.param_groups(model, lr=1e-3, weight_decay=0.05, layer_decay=0.65))
    """
    if layer_decay is not None and not 0.0 < layer_decay <= 1.0:
        raise ConfigError(f"layer_decay must be in (0, 1], got {layer_decay!r}")
    ids = _layer_ids(model)
    num_layers = max(ids.values()) + 1  # over every parameter, frozen or not (as timm)
    skip = model.no_weight_decay()
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = param.ndim <= 1 or any(fnmatch.fnmatch(name, pattern) for pattern in skip)
        scale = 1.0 if layer_decay is None else layer_decay ** (num_layers - 1 - ids[name])
        key = (ids[name] if layer_decay is not None else 0, no_decay)
        group = groups.setdefault(
            key, {"params": [], "lr": lr * scale, "weight_decay": 0.0 if no_decay else weight_decay, "lr_scale": scale}
        )
        group["params"].append(param)
    return list(groups.values())


def freeze(model: VisionTransformer, up_to: int | None = None) -> VisionTransformer:
    """Stop gradients for the embeddings and the first ``up_to`` blocks; ``None``: everything but the head.

    ``up_to=0`` freezes the embeddings only; ``up_to=depth`` also the final norm. With ``None`` only the last layer
    (pooling and heads: ``fc_norm``, the attention pool, ``head``) trains: a linear probe.
    """
    depth = len(model.blocks)
    if up_to is not None and not 0 <= up_to <= depth:
        raise ConfigError(f"up_to must be a block count in 0..{depth} (or None for all but the head), got {up_to!r}")
    last = depth if up_to is None else up_to
    for name, param in model.named_parameters():
        if layer_id(name, depth) <= last:
            param.requires_grad_(False)
    return model


def unfreeze(model: nn.Module) -> nn.Module:
    """Let every parameter train again."""
    model.requires_grad_(True)
    return model
