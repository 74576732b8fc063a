"""resample_pos_embed / resample_patch_embed against timm's functions, scipy's zoom, and their own invariants."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed as timm_resample
from timm.layers import resample_patch_embed as timm_resample_patch

from vitzoo import ConfigError, resample_patch_embed, resample_pos_embed


def _table(prefix: int, h: int, w: int, dim: int = 8, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(1, prefix + h * w, dim, generator=torch.Generator().manual_seed(h * 100 + w)).to(dtype)


def test_identity_when_sizes_match():
    pe = _table(1, 7, 9)
    assert resample_pos_embed(pe, (7, 9), (7, 9)) is pe
    square = _table(1, 14, 14)
    assert resample_pos_embed(square, (14, 14)) is square  # old size inferred as square


@pytest.mark.parametrize("prefix", [0, 1, 3])
@pytest.mark.parametrize(
    ("old", "new"), [((14, 14), (24, 24)), ((24, 24), (14, 14)), ((7, 9), (12, 5)), ((14, 14), (20, 28))]
)
@pytest.mark.parametrize(("interpolation", "antialias"), [("bicubic", True), ("bicubic", False), ("bilinear", True)])
def test_matches_timm(prefix, old, new, interpolation, antialias):
    pe = _table(prefix, *old)
    ours = resample_pos_embed(pe, new, old, prefix, interpolation, antialias)
    ref = timm_resample(pe, list(new), list(old), prefix, interpolation, antialias)
    assert ours.shape == (1, prefix + new[0] * new[1], 8)
    assert (ours - ref).abs().max().item() <= 1e-6
    assert torch.equal(ours[:, :prefix], pe[:, :prefix])  # prefix tokens untouched


@pytest.mark.parametrize(
    ("old", "new"), [((14, 14), (24, 24)), ((24, 24), (14, 14)), ((16, 16), (37, 37)), ((7, 9), (12, 5))]
)
def test_jax_mode_equals_scipy_zoom_order1(old, new):
    """The official code: scipy.ndimage.zoom(grid, (new/old, new/old, 1), order=1), per axis for non-square."""
    pe = _table(1, *old, dim=6)
    grid = pe[0, 1:].reshape(*old, 6).double().numpy()
    zoomed = scipy.ndimage.zoom(grid, (new[0] / old[0], new[1] / old[1], 1), order=1)
    assert zoomed.shape[:2] == new
    ours = resample_pos_embed(pe, new, old, 1, interpolation="jax")
    assert np.abs(ours[0, 1:].reshape(*new, 6).double().numpy() - zoomed).max() <= 1e-5
    # and it is not what bicubic gives: the option changes numbers
    assert (ours - resample_pos_embed(pe, new, old, 1)).abs().max() > 1e-2


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_dtype_round_trip_computes_in_float32(dtype):
    pe = _table(1, 14, 14, dtype=dtype)
    out = resample_pos_embed(pe, (20, 16), (14, 14))
    assert out.dtype == dtype
    ref = resample_pos_embed(pe.float(), (20, 16), (14, 14)).to(dtype)
    assert torch.equal(out, ref)


def test_errors_name_the_problem():
    with pytest.raises(ConfigError, match="not a square"):
        resample_pos_embed(_table(1, 7, 9), (4, 4))
    with pytest.raises(ConfigError, match="has 63 grid tokens"):
        resample_pos_embed(_table(1, 7, 9), (4, 4), (8, 8))
    with pytest.raises(ConfigError, match=r"shape \(1, tokens, dim\)"):
        resample_pos_embed(torch.zeros(5, 8), (4, 4))
    with pytest.raises(ConfigError, match="interpolation"):
        resample_pos_embed(_table(1, 4, 4), (5, 5), interpolation="lanczos")


@pytest.mark.parametrize("new", [(8, 8), (12, 20), (32, 32)])
def test_patch_embed_matches_timm(new):
    w = torch.randn(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert (resample_patch_embed(w, new) - timm_resample_patch(w, list(new))).abs().max().item() <= 1e-5


def test_patch_embed_pseudo_inverse_property():
    """Upsampling patch and kernel together keeps the token: <resize(x), w'> == <x, w> (FlexiViT, Eq. 3)."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(4, 3, 8, 8, generator=gen, dtype=torch.float64).float()
    x = torch.randn(2, 3, 8, 8, generator=gen)
    w_new = resample_patch_embed(w, (16, 16))
    x_new = F.interpolate(x, size=(16, 16), mode="bicubic", antialias=True)
    tokens = F.conv2d(x, w, stride=8).flatten()
    tokens_new = F.conv2d(x_new, w_new, stride=16).flatten()
    assert (tokens - tokens_new).abs().max().item() <= 1e-3 * tokens.abs().max().item()
    assert resample_patch_embed(w, (8, 8)) is w
