"""Fine-tuning recipes: the optimizer, schedule and head of the paper's transfer recipe and of AdamW with layer-wise
learning-rate decay, and the learning-rate schedule they share (linear warmup, then cosine to zero)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..models.vit import VisionTransformer
from .param_groups import param_groups


@dataclass(frozen=True)
class Recipe:
    """Optimizer, schedule and head of a fine-tuning recipe (every field can be overridden per run)."""

    optimizer: str  # "sgd" (momentum 0.9) or "adamw"
    lr: float  # peak learning rate, after linear warmup, then cosine decay to 0
    weight_decay: float
    layer_decay: float | None  # lr of layer i: lr * layer_decay ** (num_layers - 1 - i) (vitzoo.param_groups)
    clip_grad: float | None  # max global gradient norm
    warmup: float  # fraction of the steps spent in linear warmup
    zero_head: bool  # the new head starts at zero (paper App. B.1.1)


RECIPES: dict[str, Recipe] = {
    # Paper §3.2, App. B.1.1, Table 4: SGD momentum 0.9, no weight decay, cosine, grad clip 1, zero-init head,
    # lr 0.01 (VTAB; swept over {0.001, 0.003, 0.01, 0.03}), warmup 500 of 10k-20k steps
    "paper": Recipe("sgd", lr=0.01, weight_decay=0.0, layer_decay=None, clip_grad=1.0, warmup=0.05, zero_head=True),
    # DeiT / BEiT style: AdamW, weight decay 0.05, layer-wise lr decay 0.65
    "adamw": Recipe(
        "adamw", lr=5e-4, weight_decay=0.05, layer_decay=0.65, clip_grad=None, warmup=0.05, zero_head=False
    ),
}


def warmup_cosine(total: int, warmup: int) -> Callable[[int], float]:
    """lr factor at step s: linear from 1/warmup to 1 over ``warmup`` steps, then cosine to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def make_optimizer(model: VisionTransformer, recipe: Recipe) -> torch.optim.Optimizer:
    """SGD (momentum 0.9) or AdamW over ``vitzoo.param_groups`` with the recipe's lr, decay and layer decay."""
    groups = param_groups(model, recipe.lr, recipe.weight_decay, recipe.layer_decay)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=0.9)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr)
    raise ConfigError(f"optimizer must be 'sgd' or 'adamw', got {recipe.optimizer!r}")
