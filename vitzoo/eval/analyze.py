"""The job behind ``vitzoo analyze``: a model and images in, the paper's figures (PNG) and their numbers (JSON) out.

``attention_figures`` draws, per image, the attention rollout and the last layer's class-token attention, then the
model's mean attention distance per head, patch-embedding filter components and position-embedding similarity
(ViT paper, Figures 6-7). ``pca_figures`` draws DINOv2's patch PCA (Figure 1), one PCA over all the images. Both
return the files they wrote, the JSON last. Figures need matplotlib: ``pip install 'vitzoo[plot]'``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..atomic import atomic_write_text
from ..features.batches import EXACT_DECODE, prepare_model, progress_bar, require_inputs
from ..features.inputs import open_source
from ..features.transforms import create_transform, load_image
from ..models.vit import VisionTransformer
from . import attention, learned_embeddings, plots
from .pca import patch_pca


def figure_stems(items: Sequence[Any]) -> list[str]:
    """A distinct file-name stem per image: its own, or with its folder's name (``cat/1.png``: ``cat_1``) where
    two images share one, numbered where even that is shared."""
    paths = [Path(str(item)) for item in items]
    stems = Counter(p.stem for p in paths)
    named = [f"{p.parent.name}_{p.stem}" if stems[p.stem] > 1 else p.stem for p in paths]
    shared, seen = Counter(named), Counter[str]()
    out = []
    for name in named:
        seen[name] += 1
        out.append(f"{name}_{seen[name]}" if shared[name] > 1 else name)
    return out


def _open(item: Any) -> Image.Image:
    """An image of the inputs as a PIL image (a tar shard's member is read in place)."""
    return load_image(open_source(str(item)), name=str(item))


def attention_figures(
    model: VisionTransformer,
    images: Any,
    out: str | Path,
    *,
    name: str | None = None,
    components: int = 28,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> list[Path]:
    """The ViT paper's figures for ``model`` and ``images`` (files, folders, lists or globs of image paths) in the
    folder ``out`` (made if needed): ``rollout_<image>.png`` and ``cls_attention_<image>.png`` per image (models
    with a class token), ``attention_distance.png``, ``embedding_filters.png`` (the first ``components`` principal
    components; not for a hybrid), ``position_similarity.png`` (a learned position table only) and
    ``analysis.json`` (``name``, the rollout of each image, the mean attention distances). What is skipped, and
    why, goes to ``log``; ``progress`` shows a bar over the images on stderr. ``dtype`` and ``device`` move the model
    (``extract_features``'s). Returns the files written."""
    plots._plt()  # fail early, with the install hint, if matplotlib is missing
    items = require_inputs(images)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    prepare_model(model, dtype, device)
    param = next(model.parameters())
    transform = create_transform(model)
    numbers: dict[str, Any] = {"model": name, "images": {}, "token_layout": ""}
    distances = []
    written = []
    if model.cls_token is None:
        log("no class token: attention rollout and class-token maps are skipped")
    with progress_bar(len(items), progress, "analyze") as bar:
        for path, stem in zip(items, figure_stems(items), strict=True):
            img = _open(path)
            x = transform(img).unsqueeze(0).to(device=param.device, dtype=param.dtype)
            with torch.inference_mode(), attention.capture_attention(model) as rec:
                model.forward_features(x)
            assert rec.grid is not None  # set by the forward
            distances.append(
                attention.mean_attention_distance(rec.attentions, rec.num_prefix_tokens, rec.grid, model.patch_size)
            )
            numbers["token_layout"] = rec.token_layout
            numbers["images"][str(path)] = {"rollout": None}
            if model.cls_token is not None:
                mask = attention.attention_rollout(rec.attentions, rec.num_prefix_tokens, rec.grid)[0]
                view = img.resize((x.shape[-1], x.shape[-2]))
                written.append(plots.rollout_overlay(view, mask, folder / f"rollout_{stem}.png"))
                heads = attention.cls_attention(rec.attentions[-1], rec.num_prefix_tokens, rec.grid)[0]
                title = "last layer: class-token attention"
                written.append(plots.head_maps(heads, folder / f"cls_attention_{stem}.png", title))
                numbers["images"][str(path)] = {"rollout": mask.tolist()}
            bar.update(1)
    distance = torch.stack(distances).mean(0)
    numbers["mean_attention_distance"] = distance.tolist()
    written.append(plots.attention_distance(distance, folder / "attention_distance.png"))
    if not model.config.is_hybrid:  # a hybrid's embedding reads CNN features, not pixels
        filters = learned_embeddings.patch_embed_components(model, components)
        written.append(plots.filter_tiles(filters, folder / "embedding_filters.png"))
    if model.pos_embed is not None:  # DINOv3's RoPE has no learned table
        similarity = learned_embeddings.pos_embed_similarity(model)
        written.append(plots.similarity_grid(similarity, folder / "position_similarity.png"))
    else:
        log("no learned position table (RoPE): position similarity is skipped")
    atomic_write_text(folder / "analysis.json", json.dumps(numbers))
    return [*written, folder / "analysis.json"]


def pca_figures(
    model: VisionTransformer,
    images: Any,
    out: str | Path,
    *,
    name: str | None = None,
    layer: int = -1,
    threshold: float = 0.0,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 16,
    num_workers: int | None = 0,
    exact_decode: bool = EXACT_DECODE,
) -> list[Path]:
    """DINOv2's patch PCA (``patch_pca``: one PCA over the patches of every image, block ``layer``,
    foreground above ``threshold``) in the folder ``out``: ``pca_<image>.png`` per image and ``pca.json`` (``name``,
    the explained variance, each image's foreground fraction and RGB grid). ``dtype``, ``device``, ``batch_size``,
    ``num_workers`` and ``exact_decode`` are ``extract_features``'s. Returns the files written."""
    plots._plt()
    items = require_inputs(images)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    prepare_model(model, dtype, device)
    pca = patch_pca(
        model,
        items,
        layer=layer,
        threshold=threshold,
        batch_size=batch_size,
        num_workers=num_workers,
        exact_decode=exact_decode,
    )
    height, width = pca.upsampled.shape[1:3]
    written = []
    numbers: dict[str, Any] = {"model": name, "explained_variance": pca.explained.tolist(), "images": {}}
    for i, (path, stem) in enumerate(zip(items, figure_stems(items), strict=True)):
        view = _open(path).resize((width, height))
        written.append(plots.pca_panels(view, pca.rgb[i], pca.upsampled[i], folder / f"pca_{stem}.png"))
        numbers["images"][str(path)] = {
            "foreground_fraction": pca.foreground[i].float().mean().item(),
            "rgb": pca.rgb[i].tolist(),
        }
    atomic_write_text(folder / "pca.json", json.dumps(numbers))
    return [*written, folder / "pca.json"]
