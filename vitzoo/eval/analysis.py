"""The ViT paper's analysis toolkit (Section 4.5, Figures 6-7, Appendix D.7-D.8), for any vitzoo model.

* ``capture_attention``: attention probabilities of chosen blocks, with fused SDPA left on everywhere else.
* ``attention_rollout`` (Abnar & Zuidema 2020) and ``cls_attention``: where the class token looks.
* ``mean_attention_distance``: how far each head attends, in pixels (Figure 7 right).
* ``patch_embed_components``: principal components of the patch-embedding filters (Figure 7 left).
* ``pos_embed_similarity``: cosine similarity of position embeddings (Figure 7 center).
* ``fewshot_eval``: closed-form regularised least-squares few-shot accuracy on frozen features (Section 4.1).
* ``patch_pca``: the first principal components of patch features as RGB, foreground-masked (DINOv2, Figure 1).
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F

from ..errors import ConfigError, InputError, VitzooError
from ..features.extract import ImageList, expand_inputs, extract_features
from ..features.inputs import open_source
from ..features.transforms import create_transform, load_image, to_rgb
from ..models.layers import Block
from ..models.vit import VisionTransformer, take_indices
from .probes import index_classes, require_classes


@dataclass
class AttentionRecord:
    """What ``capture_attention`` saw: one (B, heads, N, N) tensor per captured block, in block order."""

    layers: list[int]
    num_prefix_tokens: int
    attentions: list[torch.Tensor] = field(default_factory=list)
    grid: tuple[int, int] | None = None  # (h, w) patch grid of the last input

    @property
    def token_layout(self) -> str:
        h, w = self.grid or (0, 0)
        return f"{self.num_prefix_tokens} prefix token(s), then a {h}x{w} patch grid in raster order"


@contextlib.contextmanager
def capture_attention(model: VisionTransformer, layers: Sequence[int] | None = None) -> Iterator[AttentionRecord]:
    """Record attention probabilities of ``layers`` (block indices, negatives allowed; None = all) inside the block.

    Only the captured blocks compute attention explicitly (softmax(q k^T / sqrt(d)) v), only inside the context;
    the outputs are the same as with fused SDPA. Each call of the model appends its attentions.
    """
    chosen = take_indices(len(model.blocks), None if layers is None else list(layers))
    record = AttentionRecord(chosen, model.num_prefix_tokens)

    def sink(probs: torch.Tensor) -> None:
        record.attentions.append(probs.detach())

    def on_patches(_module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        record.grid = (int(output.shape[-2]), int(output.shape[-1]))

    hook = model.patch_embed.register_forward_hook(on_patches)
    for i in chosen:
        cast(Block, model.blocks[i]).attn.record = sink
    try:
        yield record
    finally:
        hook.remove()
        for i in chosen:
            cast(Block, model.blocks[i]).attn.record = None


def attention_rollout(
    attentions: Sequence[torch.Tensor], num_prefix_tokens: int, grid: tuple[int, int]
) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020, §3) of the class token over the patch grid: (B, h, w).

    Per layer: average the heads, add the residual as ``0.5 * A + 0.5 * I``, renormalise rows; multiply the layers
    (first layer rightmost); take the class token's row over the patch tokens. The attention flowing through the
    other prefix tokens (DeiT's distillation token, registers) stays in the product; token 0 is the class token.
    """
    _need_class_token(num_prefix_tokens, "attention rollout")
    joint = None
    for attn in attentions:
        a = attn.float().mean(dim=1)  # (B, N, N): heads averaged
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        a = 0.5 * a + 0.5 * eye
        a = a / a.sum(dim=-1, keepdim=True)
        joint = a if joint is None else a @ joint
    assert joint is not None, "no attention captured"
    return joint[:, 0, num_prefix_tokens:].reshape(-1, *grid)


def _need_class_token(num_prefix_tokens: int, what: str) -> None:
    if not num_prefix_tokens:
        raise ConfigError(
            f"{what} follows the class token; this model has no class token (SigLIP pools its patch tokens): use "
            "mean_attention_distance, or the captured attention maps themselves"
        )


def cls_attention(attention: torch.Tensor, num_prefix_tokens: int, grid: tuple[int, int]) -> torch.Tensor:
    """Raw attention of the class token (token 0) to every patch, per head, in one layer: (B, heads, h, w)."""
    _need_class_token(num_prefix_tokens, "class-token attention")
    return attention[:, :, 0, num_prefix_tokens:].float().reshape(*attention.shape[:2], *grid)


def mean_attention_distance(
    attentions: Sequence[torch.Tensor], num_prefix_tokens: int, grid: tuple[int, int], patch_size: tuple[int, int]
) -> torch.Tensor:
    """Attention-weighted distance in pixels between query and key patches: (layers, heads).

    The paper's "attention distance" (Figure 7 right, App. D.7). Only patch tokens take part: the class token is
    dropped as a query and as a key, each query's attention over the patches is renormalised to sum to 1, and the
    distance between patches is the Euclidean distance of their centres in pixels (grid step = patch size). The
    result is averaged over query patches and images.
    """
    h, w = grid
    ys, xs = torch.meshgrid(torch.arange(h) * patch_size[0], torch.arange(w) * patch_size[1], indexing="ij")
    centres = torch.stack([ys.flatten(), xs.flatten()], dim=-1).double()  # (N, 2)
    dist = torch.cdist(centres, centres)  # (N, N) pixels
    out = []
    p = num_prefix_tokens
    for attn in attentions:
        a = attn[:, :, p:, p:].double()  # (B, heads, N, N) patch -> patch
        a = a / a.sum(dim=-1, keepdim=True)
        out.append((a * dist).sum(dim=-1).mean(dim=(0, 2)))  # (heads,)
    return torch.stack(out).float()


def patch_embed_components(model: VisionTransformer, n: int = 28) -> torch.Tensor:
    """The top ``n`` principal components of the patch-embedding filters, as (n, C, ph, pw) images in [0, 1].

    Recipe (Figure 7 left): flatten the D filters of ``patch_embed.proj`` to vectors of C*ph*pw, subtract their
    mean, take the right singular vectors of that (D, C*ph*pw) matrix in order of singular value, and min-max scale
    each component to [0, 1] for display (a component's sign is arbitrary).
    """
    if model.config.hybrid_layers:
        raise VitzooError("a hybrid embeds CNN features with 1x1 convolutions: it has no pixel filters to show")
    weight = model.patch_embed.proj.weight.detach().float().cpu()  # (D, C, ph, pw)
    flat = weight.flatten(1)
    flat = flat - flat.mean(dim=0, keepdim=True)
    _, _, vh = torch.linalg.svd(flat, full_matrices=False)
    comps = vh[: min(n, vh.shape[0])]
    lo, hi = comps.min(dim=1, keepdim=True).values, comps.max(dim=1, keepdim=True).values
    return ((comps - lo) / (hi - lo).clamp_min(1e-12)).reshape(-1, *weight.shape[1:])


def pos_embed_similarity(model: VisionTransformer) -> torch.Tensor:
    """Cosine similarity of each patch's position embedding with every other: (h, w, h, w) (Figure 7 center)."""
    if model.pos_embed is None:
        raise ConfigError("this model has no learned position table (rope=True, DINOv3): nothing to compare")
    h, w = model.grid_size
    pe = model.pos_embed.detach().float().cpu()[0, model.config.pos_embed_prefix_tokens :]  # (h*w, D)
    pe = torch.nn.functional.normalize(pe, dim=-1)
    return (pe @ pe.T).reshape(h, w, h, w)


# ----------------------------------------------------------------------------------------------- few-shot
def _sample_shots(labels: torch.Tensor, shots: int, seed: int) -> torch.Tensor:
    rng = random.Random(seed)
    picked = []
    for c in sorted(set(labels.tolist())):
        idx = [i for i, y in enumerate(labels.tolist()) if y == c]
        if len(idx) < shots:
            raise VitzooError(f"class {c} has {len(idx)} training images, fewer than {shots} shots: ask for fewer")
        picked += rng.sample(idx, shots)
    return torch.tensor(sorted(picked))


def fewshot_linear(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, l2_reg: float = 1.0
) -> float:
    """Accuracy of the closed-form ridge regression from features to {-1, 1}^K targets (the paper's few-shot probe).

    Features are centred with the training mean (which plays the role of the bias); the weights solve
    ``(X^T X + l2_reg I) W = X^T Y``; the prediction is the arg-max of ``X_test W``.
    """
    classes = sorted(set(train_y.tolist()))
    index = {c: i for i, c in enumerate(classes)}
    x = train_x.double()
    mean = x.mean(dim=0, keepdim=True)
    x = x - mean
    y = -torch.ones(len(train_y), len(classes), dtype=torch.float64)
    y[torch.arange(len(train_y)), torch.tensor([index[int(v)] for v in train_y])] = 1.0
    gram = x.T @ x + l2_reg * torch.eye(x.shape[1], dtype=x.dtype)
    weights = torch.linalg.solve(gram, x.T @ y)
    pred = ((test_x.double() - mean) @ weights).argmax(dim=1)
    truth = torch.tensor([index.get(int(v), -1) for v in test_y])
    return (pred == truth).double().mean().item()


def image_folder(root: str | Path) -> tuple[list[str], torch.Tensor, list[str]]:
    """An ImageFolder layout (one sub-folder per class) to (absolute paths, labels, class names).

    The classes are the sorted sub-folder names, an empty one included (it has no images); a missing folder, one
    without sub-folders, or sub-folders without images raise ``InputError``."""
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise InputError(f"{root}: no such folder; expected an ImageFolder (one sub-folder of images per class)")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise InputError(f"{root}: no class sub-folders; expected an ImageFolder (one sub-folder of images per class)")
    paths, labels = ImageList(), []  # expanded here, once: extract_features takes them as they are
    for c, name in enumerate(classes):
        found = expand_inputs(root / name)  # the images of the folder, recursively, sorted
        paths += found
        labels += [c] * len(found)
    if not paths:
        raise InputError(f"{root}: its class sub-folders ({', '.join(classes[:5])}, ...) hold no images")
    return paths, torch.tensor(labels), classes


def fewshot_eval(
    model: VisionTransformer,
    train: Any,
    test: Any,
    shots: Sequence[int] = (1, 5, 10, 25),
    *,
    l2_reg: float = 1.0,
    seed: int = 0,
    pool: str | None = None,
    **extract_kwargs: Any,
) -> dict[int, float]:
    """Few-shot linear accuracy for each number of ``shots`` per class (paper §4.1).

    ``train`` / ``test``: ImageFolder-style folders, or ``(features, labels)`` pairs already computed. Features come
    from ``extract_features`` (frozen model, checkpoint transform, ``pool``: None is the model's own pooling);
    ``shots`` images per class are drawn from ``train`` with ``seed``. Two folders are matched by class name (a
    test class the training folder lacks is an error); both are listed before any image is embedded.
    """

    def listed(split: Any) -> tuple[list[str], torch.Tensor, list[str]] | None:
        is_features = isinstance(split, (tuple, list)) and len(split) == 2 and torch.is_tensor(split[0])
        return None if is_features else image_folder(split)

    def features(split: Any, listing: tuple[list[str], torch.Tensor, list[str]] | None) -> torch.Tensor:
        if listing is None:
            return cast(torch.Tensor, split[0])
        feats = extract_features(model, listing[0], pool=pool, **extract_kwargs)
        assert isinstance(feats, torch.Tensor)  # no layers: one tensor
        return feats

    train_list, test_list = listed(train), listed(test)  # both listed (and checked) before any image is embedded
    if train_list is not None and test_list is not None:  # two folders: their classes matched by name
        _, train_y, test_y = index_classes(
            [train_list[2][i] for i in train_list[1].tolist()],
            [test_list[2][i] for i in test_list[1].tolist()],
            f"the training folder {train}",
            f"the test folder {test}",
        )
    else:  # labels given with the features: a folder on the other side is indexed by its sorted class names
        train_y = torch.as_tensor(train[1]) if train_list is None else train_list[1]
        test_y = torch.as_tensor(test[1]) if test_list is None else test_list[1]
    train_x, test_x = features(train, train_list), features(test, test_list)
    return fewshot_from_features(train_x, train_y, test_x, test_y, shots, l2_reg, seed)


def fewshot_from_features(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    shots: Sequence[int] = (1, 5, 10, 25),
    l2_reg: float = 1.0,
    seed: int = 0,
) -> dict[int, float]:
    """``fewshot_eval`` on features already computed: ``shots`` rows per class drawn with ``seed``, then
    ``fewshot_linear``. At least two training classes are needed, and every test label must be a training one."""
    known = set(train_y.tolist())
    require_classes(sorted(known))
    unknown = sorted(set(test_y.tolist()) - known)
    if unknown:
        raise InputError(f"the test labels {unknown[:5]} are not among the training labels; leave those rows out")
    results = {}
    for k in shots:
        idx = _sample_shots(train_y, k, seed)
        results[k] = fewshot_linear(train_x[idx], train_y[idx], test_x, test_y, l2_reg)
    return results


# ----------------------------------------------------------------------------------------------- patch PCA
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
) -> PatchPCA:
    """Patch features as RGB, the picture of DINOv2's Figure 1 (Oquab et al. 2023, §7.4).

    ``images``: paths, PIL images or preprocessed (C, H, W) tensors (as for ``extract_features``); images get the
    checkpoint transform. The patch tokens of block ``layer`` (final-normed; class, distillation and register tokens
    excluded) of every input are pooled into one PCA. Its first component separates foreground from background:
    its sign is chosen so that the patches on the image border score below zero on average, and the patches above
    ``threshold`` are the foreground. A second PCA over the foreground patches gives three components, each min-max
    scaled to [0, 1] over those patches and shown as red, green and blue; background patches stay black.
    ``mask=False`` (or fewer than three foreground patches) runs the second PCA on every patch.
    """
    items = expand_inputs(images)
    if not items:
        raise VitzooError("patch_pca needs at least one image")
    transform = create_transform(model)
    x = torch.stack(
        [
            item
            if isinstance(item, torch.Tensor)
            else transform(
                load_image(open_source(str(item)), name=str(item)) if isinstance(item, (str, Path)) else to_rgb(item)
            )
            for item in items
        ]
    )
    param = next(model.parameters())
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            out = model.forward_intermediates(
                x[start : start + batch_size].to(device=param.device, dtype=param.dtype),
                indices=[layer],
                norm=True,
                output_fmt="NCHW",
                intermediates_only=True,
            )
            chunks.append(out[0].float().cpu())
    feats = torch.cat(chunks)  # (B, D, h, w)
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
    up = F.interpolate(rgb.permute(0, 3, 1, 2), size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)
    return PatchPCA(
        rgb=rgb,
        upsampled=up.clamp(0, 1).permute(0, 2, 3, 1),
        foreground=keep,
        first=first.float(),
        explained=explained.float(),
    )
