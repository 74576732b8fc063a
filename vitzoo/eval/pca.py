"""Patch features as colours (DINOv2, Oquab et al. 2023, Figure 1 and §7.4): one PCA over the patch tokens of every
input, the first component separating foreground from background, the next three shown as red, green and blue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..features.batches import EXACT_DECODE, batched, require_inputs, run_batches
from ..models.vit import VisionTransformer


@dataclass
class PatchPCA:
    """What ``patch_pca`` computed for B inputs at a (h, w) patch grid and (H, W) input size."""

    rgb: torch.Tensor  # (B, h, w, 3) in [0, 1]: the three components as red, green, blue; background black
    upsampled: torch.Tensor  # (B, H, W, 3): ``rgb`` resized bilinearly over the input
    foreground: torch.Tensor  # (B, h, w) bool: the patches whose first component is above the threshold
    first: torch.Tensor  # (B, h, w) the first component of every patch, signed so the image border is negative
    explained: torch.Tensor  # (3,) the share of the (foreground) variance each of the three components explains


def _principal(x: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows of ``x``, centred, projected on their top ``n`` principal axes, and each axis' share of variance."""
    x = x - x.mean(dim=0, keepdim=True)
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    var = s.pow(2)
    return x @ vh[:n].T, var[:n] / var.sum().clamp_min(1e-30)


def _border(h: int, w: int) -> torch.Tensor:
    inner = torch.zeros(h, w, dtype=torch.bool)
    inner[1:-1, 1:-1] = True
    return ~inner


def patch_pca(
    model: VisionTransformer,
    images: Any,
    *,
    layer: int = -1,
    threshold: float = 0.0,
    mask: bool = True,
    batch_size: int = 16,
    num_workers: int | None = 0,
    exact_decode: bool = EXACT_DECODE,
) -> PatchPCA:
    """Patch features as RGB, the picture of DINOv2's Figure 1 (Oquab et al. 2023, §7.4).

    ``images``: what ``extract_features`` takes (paths, folders, lists, ``.tar`` members, PIL images or preprocessed
    (C, H, W) tensors), through the same batch loop: images get the checkpoint transform (``num_workers`` decoding
    processes; ``exact_decode``). The patch tokens of block ``layer`` (final-normed; class, distillation and register
    tokens excluded) of every input are pooled into one PCA. Its first component separates foreground from
    background: its sign is chosen so that the patches on the image border score below zero on average, and the
    patches above ``threshold`` are the foreground. A second PCA over the foreground patches gives three
    components, each min-max scaled to [0, 1] over those patches and shown as red, green and blue; background
    patches stay black. ``mask=False`` (or fewer than three foreground patches) runs the second PCA on every patch.
    """
    items = require_inputs(images)

    def patches(x: torch.Tensor) -> torch.Tensor:
        out = model.forward_intermediates(x, indices=[layer], norm=True, output_fmt="NCHW", intermediates_only=True)
        return out[0].float().cpu()  # (b, D, h, w)

    batches = batched(range(len(items)), batch_size)
    chunks = [feats for _, feats in run_batches(model, items, patches, batches, num_workers=num_workers,
                                                progress=False, exact_decode=exact_decode)]  # fmt: skip
    feats = torch.cat(chunks)  # (B, D, h, w)
    size = (feats.shape[2] * model.patch_size[0], feats.shape[3] * model.patch_size[1])  # the input (H, W)
    b, d, h, w = feats.shape
    flat = feats.permute(0, 2, 3, 1).reshape(-1, d).double()
    first = _principal(flat, 1)[0][:, 0].reshape(b, h, w)
    if first[:, _border(h, w)].mean() > 0:
        first = -first
    keep = (first > threshold) if mask else torch.ones_like(first, dtype=torch.bool)
    if int(keep.sum()) < 3:
        keep = torch.ones_like(keep)
    comps, explained = _principal(flat[keep.flatten()], 3)
    lo, hi = comps.min(dim=0).values, comps.max(dim=0).values
    rgb = torch.zeros(b * h * w, comps.shape[1], dtype=torch.float64)
    rgb[keep.flatten()] = (comps - lo) / (hi - lo).clamp_min(1e-12)
    rgb = rgb.reshape(b, h, w, -1).float()
    up = F.interpolate(rgb.permute(0, 3, 1, 2), size=size, mode="bilinear", align_corners=False)
    return PatchPCA(
        rgb=rgb,
        upsampled=up.clamp(0, 1).permute(0, 2, 3, 1),
        foreground=keep,
        first=first.float(),
        explained=explained.float(),
    )
