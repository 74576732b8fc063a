"""Shared helpers: seeded peer models with fully random weights, and a round trip through safetensors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

torch.set_num_threads(max(1, torch.get_num_threads()))


@torch.no_grad()
def randomize_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values (LayerNorm scales around 1), so no mapping can pass by accident.

    Freshly initialised models have unit LayerNorm scales and zero biases; a swapped norm or bias would not change
    any output. After this, every tensor matters.
    """
    gen = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
        if p.ndim == 1 and ("norm" in name or "layernorm" in name) and name.endswith("weight"):
            p.copy_(1.0 + 0.1 * noise)
        else:
            p.copy_(0.02 * noise if p.ndim > 1 or "token" in name or "pos" in name else 0.05 * noise)
    return module


def safetensors_round_trip(state_dict: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Write ``state_dict`` as a safetensors file and read it back (what a user holding a checkpoint has)."""
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path))
    return load_file(str(path))


@pytest.fixture
def images():
    """Seeded random image batches of any size: ``images(h, w, batch=2)``."""

    def make(h: int, w: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
        return torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(seed))

    return make
