"""Resampling of learned position embeddings and patch-embedding kernels to another grid or patch size.

Paper §3.2: when the resolution changes but the patch size does not, "we perform 2D interpolation of the pre-trained
position embeddings, according to their location in the original image". Two conventions exist:

* ``"bicubic"`` with ``antialias=True`` (default): timm's ``resample_abs_pos_embed``, same numbers.
* ``"jax"``: the official code's ``scipy.ndimage.zoom(order=1)``, which is bilinear with ``align_corners=True``
  and no antialiasing (no scipy needed).

``"bicubic"`` with ``antialias=False`` is what transformers' ``interpolate_pos_encoding`` computes; ``"torchvision"``
(bicubic, ``align_corners=True``) is torchvision's ``interpolate_embeddings``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.fx.experimental.symbolic_shapes import statically_known_true

from ..errors import ConfigError
from .config import INTERPOLATIONS

Size = Sequence[int]


def _size(s: int) -> int:
    """``int(s)``, except that a size traced by torch.export (a ``SymInt``, int-like) stays symbolic: ``int()``
    would fix the exported program to the example input's size."""
    return s if isinstance(s, torch.SymInt) else int(s)


def _interpolate(grid: torch.Tensor, size: tuple[int, int], interpolation: str, antialias: bool) -> torch.Tensor:
    """Resize an NCHW float tensor with one of ``INTERPOLATIONS``."""
    if interpolation == "jax":
        return F.interpolate(grid, size=size, mode="bilinear", align_corners=True)
    if interpolation == "torchvision":  # torchvision.models.vision_transformer.interpolate_embeddings
        return F.interpolate(grid, size=size, mode="bicubic", align_corners=True)
    if interpolation in ("bilinear", "bicubic"):
        return F.interpolate(grid, size=size, mode=interpolation, align_corners=False, antialias=antialias)
    if interpolation in ("nearest", "area"):
        return F.interpolate(grid, size=size, mode=interpolation)
    raise ConfigError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")


def resample_pos_embed(
    pos_embed: torch.Tensor,
    new_size: Size,
    old_size: Size | None = None,
    num_prefix_tokens: int = 1,
    interpolation: str = "bicubic",
    antialias: bool = True,
) -> torch.Tensor:
    """Resample a ``(1, prefix + old_h * old_w, D)`` table to ``(1, prefix + new_h * new_w, D)``.

    The first ``num_prefix_tokens`` rows (class token) are kept as they are; the grid rows are reshaped to
    ``old_size`` (square if None), interpolated in float32 and cast back to the input dtype. Equal sizes return
    the input unchanged.
    """
    if pos_embed.ndim != 3 or pos_embed.shape[0] != 1:
        raise ConfigError(f"pos_embed must have shape (1, tokens, dim), got {tuple(pos_embed.shape)}")
    new_h, new_w = (_size(s) for s in new_size)
    num_grid = pos_embed.shape[1] - num_prefix_tokens
    if old_size is None:
        side = math.isqrt(max(num_grid, 0))
        if side * side != num_grid:
            raise ConfigError(
                f"pos_embed has {num_grid} grid tokens after {num_prefix_tokens} prefix token(s), not a square "
                "grid: pass old_size=(h, w)"
            )
        old_size = (side, side)
    old_h, old_w = (int(s) for s in old_size)
    if old_h * old_w != num_grid:
        raise ConfigError(
            f"old_size {(old_h, old_w)} has {old_h * old_w} positions but pos_embed has {num_grid} grid tokens "
            f"(shape {tuple(pos_embed.shape)}, num_prefix_tokens={num_prefix_tokens})"
        )
    if statically_known_true(old_h == new_h) and statically_known_true(old_w == new_w):  # no guard on a traced size
        return pos_embed

    dim = pos_embed.shape[-1]
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    grid = grid.float().reshape(1, old_h, old_w, dim).permute(0, 3, 1, 2)  # (1, D, old_h, old_w)
    grid = _interpolate(grid, (new_h, new_w), interpolation, antialias)  # (1, D, new_h, new_w)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_h * new_w, dim).to(pos_embed.dtype)
    return torch.cat([prefix, grid], dim=1)


def resample_patch_embed(
    weight: torch.Tensor,
    new_size: Size,
    interpolation: str = "bicubic",
    antialias: bool = True,
) -> torch.Tensor:
    """Resize a ``(D, C, ph, pw)`` patch-embedding kernel to ``new_size`` with FlexiViT's pseudo-inverse resize.

    If ``resize`` maps a ph x pw patch to new_size, the new kernel ``w'`` satisfies ``<resize(x), w'> = <x, w>``
    in the least-squares sense (Beyer et al., "FlexiViT", 2023), so a model whose patch size and image size
    change by the same factor computes (nearly) the same tokens. Same numbers as timm's ``resample_patch_embed``.
    """
    if weight.ndim != 4:
        raise ConfigError(f"patch-embedding weight must be 4-D (D, C, ph, pw), got {tuple(weight.shape)}")
    old_h, old_w = weight.shape[-2:]
    new_h, new_w = (int(s) for s in new_size)
    if (old_h, old_w) == (new_h, new_w):
        return weight
    # Column i of `resize` is the resized i-th one-hot patch: (new_h * new_w, old_h * old_w).
    basis = torch.eye(old_h * old_w, device=weight.device, dtype=torch.float32).reshape(-1, 1, old_h, old_w)
    resize = _interpolate(basis, (new_h, new_w), interpolation, antialias).reshape(old_h * old_w, -1).T
    pinv = torch.linalg.pinv(resize)  # (old_h * old_w, new_h * new_w)
    out, chans = weight.shape[:2]
    flat = weight.float().reshape(out, chans, old_h * old_w)
    return (flat @ pinv).reshape(out, chans, new_h, new_w).to(weight.dtype)


def rope_embed(
    grid: Size, head_dim: int, temperature: float = 100.0, device: torch.device | str | None = None
) -> torch.Tensor:
    """DINOv3's 2-D rotary embedding for an (h, w) patch grid: ``cat(sin, cos)`` of shape (h * w, 2 * head_dim).

    Patch centres are normalised per axis to [-1, 1] (``(i + 0.5) / h * 2 - 1``); a quarter of the head width
    rotates with y, a quarter with x, at periods ``temperature ** (2 j / (head_dim / 2))``; sin and cos are laid
    out in halves (``rotate_half``). Computed in float32 for any grid, as timm's ``RotaryEmbeddingDinoV3`` and
    transformers' ``DINOv3ViTRopePositionEmbedding`` do.
    """
    h, w = (_size(s) for s in grid)
    n = head_dim // 4
    periods = temperature ** (2.0 * torch.arange(n, dtype=torch.float32, device=device) / (head_dim // 2))
    ys = torch.arange(0.5, h, dtype=torch.float32, device=device) / h
    xs = torch.arange(0.5, w, dtype=torch.float32, device=device) / w
    coords = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).flatten(0, 1) * 2.0 - 1.0  # (h*w, 2)
    angles = (2 * math.pi * coords[:, :, None] / periods).flatten(1)  # (h*w, 2n): y frequencies, then x
    angles = torch.cat([angles, angles], dim=-1)  # (h*w, head_dim), half layout
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def rope_embed_eva(
    grid: Size,
    head_dim: int,
    temperature: float = 10000.0,
    ref_grid: tuple[int, int] | None = None,
    offset: float = 0.0,
    xy: bool = False,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """EVA-02's 2-D rotary embedding for an (h, w) patch grid: ``cat(sin, cos)`` of shape (h * w, 2 * head_dim).

    The patch indices ``0 .. h-1`` and ``0 .. w-1`` plus ``offset``, scaled by ``ref / h`` and ``ref / w`` when a
    reference grid is given (EVA-02 fine-tunes at 448 px keep the positions of their 224 px pretraining, 16 x 16),
    rotate a quarter of the head width each (y first; x first with ``xy``, as the Perception Encoder and RoPE-ViT)
    at frequencies ``temperature ** (-j / (head_dim / 4))``; every angle is repeated for a pair of channels (the
    interleaved layout). As timm's ``RotaryEmbeddingCat`` with ``in_pixels=False``.
    """
    h, w = (_size(s) for s in grid)
    n = head_dim // 4
    bands = 1.0 / temperature ** (torch.arange(n, device=device).to(torch.float32) / n)
    ys = torch.arange(h, device=device).to(torch.float32) + offset
    xs = torch.arange(w, device=device).to(torch.float32) + offset
    if ref_grid is not None:
        ys, xs = ys / h * ref_grid[0], xs / w * ref_grid[1]
    y, x = torch.meshgrid(ys, xs, indexing="ij")  # each (h, w)
    coords = torch.stack([x, y] if xy else [y, x], dim=-1)  # (h, w, 2)
    angles = (coords[..., None] * bands).flatten(-2).flatten(0, 1)  # (h*w, 2n): first axis' frequencies, then 2nd
    angles = angles.repeat_interleave(2, dim=-1)  # (h*w, head_dim), interleaved layout
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def rel_pos_log_coords(grid: Size, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs of a relative-position MLP for an (h, w) patch grid (timm's ``RelPosMlp``, mode ``cr``).

    Returns the log-spaced offsets ``sign(d) * log(1 + |d|)`` of every (dy, dx) in ``-(h-1) .. h-1`` x
    ``-(w-1) .. w-1`` as (2h - 1, 2w - 1, 2) float32, and the (N * N,) index of each query-key pair's offset in them.
    """
    h, w = (_size(s) for s in grid)
    dy = torch.arange(-(h - 1), h, device=device).to(torch.float32)
    dx = torch.arange(-(w - 1), w, device=device).to(torch.float32)
    offsets = torch.stack(torch.meshgrid(dy, dx, indexing="ij"), dim=-1)  # (2h-1, 2w-1, 2)
    coords = torch.sign(offsets) * torch.log1p(offsets.abs())
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()])  # (2, N)
    rel = pos[:, :, None] - pos[:, None, :]  # (2, N, N): query minus key
    index = (rel[0] + h - 1) * (2 * w - 1) + (rel[1] + w - 1)
    return coords, index.flatten()


def rope_freqs_mixed(head_dim: int, depth: int, num_heads: int, temperature: float = 10.0) -> torch.Tensor:
    """RoPE-Mixed's initial frequencies (Heo et al. 2024): (2, depth, heads, head_dim / 2), the x and y components
    of ``head_dim / 4`` magnitudes ``temperature ** (-4j / head_dim)`` at a random angle per block and head, and
    the same at that angle plus 90 degrees. They are learned; a checkpoint brings its own."""
    mag = 1.0 / temperature ** (torch.arange(0, head_dim, 4, dtype=torch.float32) / head_dim)  # (head_dim / 4,)
    angles = torch.rand(depth, num_heads, 1) * 2 * math.pi
    fx = torch.cat([mag * torch.cos(angles), mag * torch.cos(angles + math.pi / 2)], dim=-1)
    fy = torch.cat([mag * torch.sin(angles), mag * torch.sin(angles + math.pi / 2)], dim=-1)
    return torch.stack([fx, fy])


def rope_embed_mixed(grid: Size, freqs: torch.Tensor, xy: bool = True) -> torch.Tensor:
    """RoPE-Mixed's rotary embedding of an (h, w) grid for every block: (depth, heads, h * w, 2 * head_dim).

    Each patch's angle per channel pair is ``x * fx + y * fy`` with learned ``freqs`` = (fx, fy) of shape (2, depth,
    heads, head_dim / 2) and x, y its column and row index (``xy``; else row and column); interleaved layout, fp32.
    """
    h, w = (_size(s) for s in grid)
    ys, xs = torch.meshgrid(
        torch.arange(h, device=freqs.device).to(torch.float32),
        torch.arange(w, device=freqs.device).to(torch.float32),
        indexing="ij",
    )
    first, second = (xs, ys) if xy else (ys, xs)
    f = freqs.float()
    angles = first.reshape(-1, 1) * f[0].unsqueeze(-2) + second.reshape(-1, 1) * f[1].unsqueeze(-2)  # (d, H, N, hd/2)
    angles = angles.repeat_interleave(2, dim=-1)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)
