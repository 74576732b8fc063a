"""PNG figures of the analysis toolkit (matplotlib, an optional extra: ``pip install 'vitzoo[plot]'``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import VitzooError


def _plt() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise VitzooError("drawing figures needs matplotlib: pip install 'vitzoo[plot]'") from err
    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def rollout_overlay(image: Image.Image, mask: torch.Tensor, path: Path, title: str = "attention rollout") -> Path:
    """The image and the rollout map (upsampled to the image, bilinear) laid over it."""
    plt = _plt()
    heat = F.interpolate(mask[None, None].float(), size=(image.height, image.width), mode="bilinear")[0, 0]
    heat = (heat - heat.min()) / (heat.max() - heat.min()).clamp_min(1e-12)
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    axes[0].imshow(image)
    axes[0].set_title("input")
    axes[1].imshow(image)
    axes[1].imshow(heat.numpy(), cmap="jet", alpha=0.5)
    axes[1].set_title(title)
    for ax in axes:
        ax.axis("off")
    return _save(fig, path)


def head_maps(maps: torch.Tensor, path: Path, title: str) -> Path:
    """One panel per head of (heads, h, w) maps."""
    plt = _plt()
    heads = maps.shape[0]
    cols = min(heads, 8)
    rows = -(-heads // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < heads:
            ax.imshow(maps[i].numpy(), cmap="viridis")
            ax.set_title(f"head {i}", fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)


def attention_distance(distance: torch.Tensor, path: Path, title: str = "mean attention distance") -> Path:
    """Figure 7 (right): one dot per head, network depth (layer) on x, distance in pixels on y."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    layers, heads = distance.shape
    for h in range(heads):
        ax.scatter(np.arange(layers), distance[:, h].numpy(), s=12, label=f"head {h}")
    ax.set_xlabel("network depth (layer)")
    ax.set_ylabel("mean attention distance (pixels)")
    ax.set_title(title)
    ax.set_xticks(np.arange(layers))
    return _save(fig, path)


def filter_tiles(components: torch.Tensor, path: Path, cols: int = 7) -> Path:
    """Figure 7 (left): principal components of the patch-embedding filters as RGB tiles."""
    plt = _plt()
    n = components.shape[0]
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            tile = components[i]
            ax.imshow(tile.permute(1, 2, 0).numpy() if tile.shape[0] == 3 else tile[0].numpy(), interpolation="nearest")
    fig.suptitle("RGB embedding filters (first principal components)")
    return _save(fig, path)


def similarity_grid(sim: torch.Tensor, path: Path) -> Path:
    """Figure 7 (center): for each patch (row, column), its position embedding's cosine similarity with all others."""
    plt = _plt()
    h, w = sim.shape[:2]
    tile_h, tile_w = sim.shape[2:]
    mosaic = np.full((h * (tile_h + 1), w * (tile_w + 1)), np.nan)
    for i in range(h):
        for j in range(w):
            mosaic[i * (tile_h + 1) : i * (tile_h + 1) + tile_h, j * (tile_w + 1) : j * (tile_w + 1) + tile_w] = sim[
                i, j
            ]
    fig, ax = plt.subplots(figsize=(6, 6 * h / w))
    im = ax.imshow(mosaic, cmap="viridis", vmin=-1, vmax=1)
    ax.set_xlabel("input patch column")
    ax.set_ylabel("input patch row")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, fraction=0.046, label="cosine similarity")
    ax.set_title("position embedding similarity")
    return _save(fig, path)


def pca_panels(image: Image.Image, grid: torch.Tensor, upsampled: torch.Tensor, path: Path) -> Path:
    """DINOv2's Figure 1 for one image: the input, the patch-feature PCA as RGB at the patch grid, and upsampled."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    axes[0].imshow(image)
    axes[0].set_title("input")
    axes[1].imshow(grid.numpy(), interpolation="nearest")
    axes[1].set_title(f"patch PCA ({grid.shape[0]}x{grid.shape[1]} grid)")
    axes[2].imshow(upsampled.numpy())
    axes[2].set_title("upsampled")
    for ax in axes:
        ax.axis("off")
    return _save(fig, path)
