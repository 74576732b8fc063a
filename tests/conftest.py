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


@pytest.fixture(scope="session")
def hub_server():
    """One loopback Hub for the session; tests add repos to it."""
    from hub_server import HubServer

    server = HubServer().start()
    yield server
    server.stop()


@pytest.fixture
def hub(hub_server, tmp_path, monkeypatch):
    """The loopback Hub as HF_ENDPOINT, with an empty HF cache for this test; HF_HUB_OFFLINE unset."""
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return hub_server


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file of a folder written by a peer library's save function, as a Hub commit's tree."""
    return {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()}


def timm_repo(name: str, tmp_path: Path, num_classes: int, safe: bool | str = "both", seed: int = 0, **kw):
    """A timm model with random weights saved by timm's own ``save_for_hf`` (config.json + weights)."""
    import timm
    from timm.models._hub import save_for_hf

    torch.manual_seed(seed)
    model = randomize_(timm.create_model(name, num_classes=num_classes, **kw), seed=seed).eval()
    folder = tmp_path / f"timm-{name}-{seed}"
    save_for_hf(model, str(folder), safe_serialization=safe)
    return model, folder_files(folder)
