"""The forward FLOP count of a model, as ``vitzoo info`` reports it."""

from __future__ import annotations

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from .vit import VisionTransformer


def flops(model: VisionTransformer) -> float:
    """Forward FLOPs (2 x multiply-adds) of one image at the model's size: matmuls, convolutions (the hybrid's CNN
    too) and attention, as torch's FlopCounterMode counts a full ``forward_head(forward_features(x))``.

    Run on the meta device it costs no compute and no memory. Attention runs as PyTorch's math kernel here: the
    counter has no formula for the CPU's fused kernel and would leave attention out on a CPU model.
    """
    cfg = model.config
    param = next(model.parameters())
    x = torch.empty(1, cfg.in_chans, *cfg.img_size, device=param.device, dtype=param.dtype)
    with FlopCounterMode(display=False) as counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        model.forward_head(model.forward_features(x))
    return float(counter.get_total_flops())
