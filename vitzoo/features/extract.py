"""Features and predictions of images: ``extract_features`` (what to pool, which blocks: ``resolve_pool``,
``feature_fn``) and ``predict`` (top-k classes with their names), both through the one batch loop
(``vitzoo.features.batches.run_batches``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..choices import FEATURE_POOLS
from ..errors import ConfigError, ImageError
from ..models.archs import ARCHS, family_of
from ..models.vit import VisionTransformer, pool_tokens, take_indices
from .batches import EXACT_DECODE, batched, check_on_error, prepare_model, require_inputs, run_batches
from .runtimes import check_runtime, model_dtype, runner_for

logger = logging.getLogger("vitzoo")


# --------------------------------------------------------------------------------------------------- inputs


# ------------------------------------------------------------------------------------------- the batch loop


# ------------------------------------------------------------------------------------------------- features


def resolve_pool(model: VisionTransformer, pool: str | None, layers: Sequence[int] | None = None) -> str:
    """``pool`` checked against ``model``. None is the model's own pooling: ``config.global_pool`` (the class token,
    the patch mean, or SigLIP's attention pool; every token for timm's ``""``), for distilled DeiT ``"pre_logits"``
    (the mean of the class and distillation tokens, as its head sees them); with ``layers``, whose blocks have no
    head, the class token (the patch mean without one)."""
    if pool is None and layers:
        pool = "token" if model.cls_token is not None else "avg"
    elif pool is None:
        pool = "pre_logits" if model.config.distilled else model.config.global_pool or "tokens"  # "": no pooling
    if pool not in FEATURE_POOLS:
        raise ConfigError(f"pool must be one of {FEATURE_POOLS}, got {pool!r}")
    if pool == "token" and model.cls_token is None:
        raise ConfigError("pool='token' needs a class token; this model has none, use pool='avg' (or 'map')")
    if pool == "map" and model.attn_pool is None:
        raise ConfigError("pool='map' needs an attention-pool head (SigLIP); this model has none, use token or avg")
    return pool


def feature_fn(
    model: VisionTransformer, pool: str | None = None, layers: Sequence[int] | None = None
) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """Check ``pool``/``layers`` for ``model`` and return the per-batch function of ``extract_features``.

    It maps a batch (B, C, H, W) to float32 CPU features: ``{"features": ...}``, or ``{"layer_<i>": ...}`` for each
    requested block (absolute index, final-normed) when ``layers`` is given.
    """
    pool = resolve_pool(model, pool, layers)
    prefix = model.num_prefix_tokens
    if layers:
        if pool in ("pre_logits", "output", "map"):
            raise ConfigError(f"pool={pool!r} applies to the final output only; use token, avg or tokens")
        indices = take_indices(len(model.blocks), list(layers))

        def from_blocks(x: torch.Tensor) -> dict[str, torch.Tensor]:
            outs = model.forward_intermediates(
                x, indices=indices, norm=True, output_fmt="NLC", return_prefix_tokens=True, intermediates_only=True
            )
            return {
                f"layer_{i}": pool_tokens(torch.cat([prefix_tokens, patches], dim=1), pool, prefix).float().cpu()
                for i, (patches, prefix_tokens) in zip(indices, outs, strict=True)
            }

        return from_blocks

    def final(x: torch.Tensor) -> dict[str, torch.Tensor]:
        if pool == "token":
            feats = model.forward_cls(x)  # the last block for the class token's row only
        elif pool == "output":
            feats = model(x)
        elif pool == "pre_logits":
            feats = model.forward_head(model.forward_features(x), pre_logits=True)
        elif pool == "map":
            feats = model.attention_pool(model.forward_features(x))
        else:
            feats = pool_tokens(model.forward_features(x), pool, prefix)
        if pool in ("token", "avg", "map"):  # a pooled vector gets fc_norm where the model norms after pooling
            feats = model.fc_norm(feats)
        return {"features": feats.float().cpu()}

    return final


def extract_features(
    model: VisionTransformer,
    inputs: Any,
    *,
    pool: str | None = None,
    layers: Sequence[int] | None = None,
    batch_size: int = 64,
    num_workers: int | None = None,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    on_error: str = "raise",
    exact_decode: bool = EXACT_DECODE,
    runtime: str = "torch",
) -> torch.Tensor | dict[str, torch.Tensor]:
    """Features of ``inputs`` (paths, a folder, a text file of paths, PIL images or preprocessed tensors).

    Images get the model's checkpoint transform (``create_transform(model)``). ``pool``: None (default: the model's
    own pooling, see ``resolve_pool``), ``"token"`` (normed class token), ``"avg"`` (mean of the normed patch
    tokens; class, distillation and register tokens are never averaged; a model with ``fc_norm`` norms these
    pooled vectors instead of the tokens, as timm does), ``"map"`` (SigLIP's attention pool),
    ``"tokens"`` (all normed tokens), ``"pre_logits"`` (what the head sees), ``"output"`` (``model(x)``: logits, or
    CLIP's joint image-text embedding). ``layers`` (block indices, negatives allowed) returns
    ``{"layer_i": features}`` from those blocks (final-normed). ``dtype`` (a torch dtype or ``"fp32"``/``"bf16"``/
    ``"fp16"``) and ``device`` move the model. Unreadable images raise ``ImageError``; with ``on_error="skip"``
    they are left out (rows then follow the readable inputs) and logged. ``exact_decode=False`` lets libjpeg
    decode JPEGs much larger than the model input at 1/2-1/8 scale before the exact resize (about 4x faster
    on camera photos; features within a cosine similarity of 0.999 of the exact path, docs/performance.md).
    ``runtime``: where the forward runs, ``"torch"`` (eager, default), ``"compile"``, ``"onnxruntime"`` or
    ``"auto"`` (the fastest of them that gives eager's features); ``dtype="int8"`` quantises through onnxruntime
    (``vitzoo.features.runtimes``).
    """
    check_on_error(on_error)
    int8 = check_runtime(runtime, dtype)
    fn = feature_fn(model, pool, layers)
    items = require_inputs(inputs)
    prepare_model(model, model_dtype(dtype), device)
    what = {"pool": resolve_pool(model, pool, layers), "layers": list(layers or [])}
    runner = runner_for(model, fn, runtime, int8=int8, what=what, batch_size=min(batch_size, len(items)))
    chunks: dict[str, list[torch.Tensor]] = {}
    for batch, out in run_batches(
        model,
        items,
        runner,
        batched(range(len(items)), batch_size),
        num_workers=num_workers,
        on_error=on_error,
        progress=progress,
        desc=None if runtime == "torch" else runner.label,
        exact_decode=exact_decode,
    ):
        if batch.failed:
            logger.warning(
                "skipped %d unreadable image(s): %s", len(batch.failed), "; ".join(err for _, err in batch.failed)
            )
        for key, value in (out or {}).items():
            chunks.setdefault(key, []).append(value)
    if not chunks:
        raise ImageError(f"none of the {len(items)} inputs could be read (see the warnings above); check the paths")
    feats = {key: torch.cat(values) for key, values in chunks.items()}
    return feats if layers else feats["features"]


@dataclass
class Prediction:
    """One of the top-k classes of an input: its name, index in the head and probability."""

    label: str
    index: int
    prob: float


def class_names(model: VisionTransformer) -> list[str]:
    """Names of the classes of ``model``'s head: its checkpoint's when the head is the checkpoint's, else class_<i>.

    Refuses a model whose output is an embedding rather than class scores: no head (``num_classes=0``: DINOv2,
    SigLIP, ...) or the projection into CLIP's joint image-text space (a CLIP checkpoint's head without labels).
    """
    n = model.config.num_classes
    facts = getattr(model, "pretrained_cfg", None)
    if not n:
        raise ConfigError(
            "this model has no classifier head (num_classes=0): its output is features; use extract_features "
            "(vitzoo embed), or create it with num_classes=N and fine-tune a head"
        )
    if facts is None or facts.num_classes != n:  # no checkpoint facts, or a new head (num_classes changed)
        return [f"class_{i}" for i in range(n)]
    unlabelled = facts.labels is None and facts.label_names is None
    if unlabelled and facts.arch in ARCHS and family_of(facts.arch).startswith("clip"):
        raise ConfigError(
            f"{facts.name}: the head projects into CLIP's joint image-text space ({n} dims), it has no classes; use "
            "extract_features(model, images, pool='output') (vitzoo embed --pool output) for the image embedding "
            "and compare it with text embeddings for zero-shot labels"
        )
    return facts.class_names()


def predict(
    model: VisionTransformer,
    inputs: Any,
    topk: int = 5,
    *,
    batch_size: int = 32,
    num_workers: int | None = None,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    on_error: str | Callable[[Any, str], None] = "raise",
    exact_decode: bool = EXACT_DECODE,
    runtime: str = "torch",
) -> list[list[Prediction]]:
    """Top-k classes per input, with names from the checkpoint (ImageNet-1k/21k names are shipped).

    Inputs are those of ``extract_features``; an unreadable image raises ``ImageError``. With ``on_error="skip"``
    it gets an empty list (the results stay one per input) and a logged warning; ``on_error`` may also be a
    function, called with the input and the reason instead of the warning. None readable raises ``ImageError``.
    ``dtype`` and ``device`` move the model; ``exact_decode`` as for ``extract_features``. A model without a classifier
    head (headless, or CLIP's projection head) raises ``ConfigError``. ``runtime`` as for ``extract_features``.
    """
    names = class_names(model)
    int8 = check_runtime(runtime, dtype)
    items = require_inputs(inputs)
    prepare_model(model, model_dtype(dtype), device)
    k = min(topk, model.config.num_classes)

    def logits(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": model(x).float()}

    what = {"pool": "output", "layers": []}
    runner = runner_for(model, logits, runtime, int8=int8, what=what, batch_size=min(batch_size, len(items)))

    def top(x: torch.Tensor) -> torch.Tensor:
        return runner(x)["logits"].softmax(dim=-1)

    rows = top_k_rows(model, items, top, k, batch_size, num_workers, on_error, progress, exact_decode)
    return [[Prediction(names[i], i, p) for p, i in row] for row in rows]


def top_k_rows(
    model: VisionTransformer,
    items: list[Any],
    probs: Callable[[torch.Tensor], torch.Tensor],
    k: int,
    batch_size: int,
    num_workers: int | None,
    on_error: str | Callable[[Any, str], None],
    progress: bool,
    exact_decode: bool,
) -> list[list[tuple[float, int]]]:
    """The ``k`` largest of ``probs(pixels)`` (B, C) for each item, as (probability, class index) pairs, best
    first: the batch loop of ``predict`` and ``zero_shot_predict``; ``model`` (an image tower) decides the transform.
    An unreadable item gets an empty list when ``on_error`` is "skip" (a logged warning) or a function (called with
    the item and the reason); "raise" raises ``ImageError``, and so does no readable item at all."""
    report = on_error if callable(on_error) else None
    mode = "skip" if callable(on_error) else on_error
    check_on_error(mode)

    def top(x: torch.Tensor) -> tuple[list[list[float]], list[list[int]]]:
        found = probs(x).topk(k, dim=-1)
        return found.values.tolist(), found.indices.tolist()

    results: list[list[tuple[float, int]]] = [[] for _ in items]
    failed: list[str] = []
    for batch, out in run_batches(
        model,
        items,
        top,
        batched(range(len(items)), batch_size),
        num_workers=num_workers,
        on_error=mode,
        progress=progress,
        exact_decode=exact_decode,
    ):
        for i, err in batch.failed:
            failed.append(err)
            if report is not None:
                report(items[i], err)
            else:
                logger.warning("skipped an unreadable image: %s", err)
        if out is not None:
            for row, values, indices in zip(batch.rows, *out, strict=True):
                results[row] = list(zip(values, indices, strict=True))
    if len(failed) == len(items):
        raise ImageError(f"none of the {len(items)} inputs could be read, e.g. {failed[0]}; check the paths")
    return results
