"""Batched feature extraction and prediction: images decoded in parallel workers, overlapped with the forward.

``extract_features`` and ``predict`` are the Python API. Both, and the embed job (``vitzoo.embed``), run through
``run_batches``: the one loop that turns inputs into model outputs batch by batch.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from huggingface_hub.utils.tqdm import tqdm  # a progress bar, not Hub I/O: it shares huggingface_hub's on/off switch
from PIL import Image

from ..errors import ConfigError, ImageError, VitzooError
from ..models.archs import ARCHS, family_of
from ..models.vit import FEATURE_POOLS, VisionTransformer, pool_tokens, take_indices
from .inputs import iter_names, open_source
from .transforms import create_transform, load_image, to_rgb

logger = logging.getLogger("vitzoo")

ON_ERROR = ("raise", "skip")
DTYPES = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}


# --------------------------------------------------------------------------------------------------- inputs
class ImageList(list[Any]):
    """Inputs already expanded by ``expand_inputs``; expanding them again returns them unchanged."""


def expand_inputs(inputs: Any) -> ImageList:
    """Paths, folders (recursively, sorted), list files (``.txt``/``.lst``, ``.csv``/``.parquet`` with a ``path``
    column), WebDataset ``.tar`` shards, glob patterns (see ``vitzoo.inputs.iter_names``), PIL images, tensors.

    A 4-D tensor is split into its images. The result is an ``ImageList``, which this function returns as it is, so
    a caller that expanded the inputs (to print them next to the results) can pass them on without a second pass.
    """
    if isinstance(inputs, ImageList):
        return inputs
    out = ImageList()
    single = isinstance(inputs, (str, Path, Image.Image, torch.Tensor))
    items: Iterable[Any] = [inputs] if single else inputs
    for item in items:
        if isinstance(item, torch.Tensor) and item.ndim == 4:
            out.extend(item.unbind(0))
        elif isinstance(item, (str, Path)):
            out.extend(iter_names(item))
        else:
            out.append(item)
    return out


def require_inputs(inputs: Any) -> ImageList:
    """``expand_inputs``, refusing inputs that hold no image at all."""
    items = expand_inputs(inputs)
    if not items:
        raise VitzooError(
            "no images in the inputs: pass image files, folders with images, .txt lists of paths, "
            "PIL images or preprocessed tensors"
        )
    return items


# ------------------------------------------------------------------------------------------- the batch loop
@dataclass
class Batch:
    """One decoded batch: ``x`` holds the readable inputs ``rows``; ``failed`` the others with their error."""

    positions: list[int]  # every input of the batch, readable or not, in order
    rows: list[int]
    x: torch.Tensor | None
    failed: list[tuple[int, str]]


class _Images(torch.utils.data.Dataset[tuple[int, torch.Tensor | None, str]]):
    """Item i -> (i, tensor or None, error message). Decoding failures are returned, never raised."""

    def __init__(self, items: Sequence[Any], transform: Any, exact_decode: bool = True) -> None:
        self.items, self.transform = items, transform
        self.draft = None if exact_decode else transform.draft_size  # fast decode: JPEG draft mode

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str]:
        item = self.items[i]
        try:
            if isinstance(item, torch.Tensor):
                return i, item, ""
            if isinstance(item, Image.Image):
                img = to_rgb(item)
            else:
                img = load_image(open_source(str(item)), name=str(item), draft=self.draft)
            return i, self.transform(img), ""
        except (ImageError, OSError, ValueError) as err:
            return i, None, str(err)


def _collate(samples: list[tuple[int, torch.Tensor | None, str]]) -> Batch:
    ok = [(i, x) for i, x, _ in samples if x is not None]
    return Batch(
        positions=[i for i, _, _ in samples],
        rows=[i for i, _ in ok],
        x=torch.stack([x for _, x in ok]) if ok else None,
        failed=[(i, err) for i, x, err in samples if x is None],
    )


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decoding workers must not compete with the forward's threads


def default_workers() -> int:
    """Decoding processes when ``num_workers`` is None: one per core but one, at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def batched(positions: Sequence[int], batch_size: int) -> list[list[int]]:
    """``positions`` cut into consecutive batches of ``batch_size`` (the last one shorter)."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    return [list(positions[i : i + batch_size]) for i in range(0, len(positions), batch_size)]


def check_on_error(on_error: str) -> None:
    """Refuse anything but ``"raise"`` and ``"skip"``."""
    if on_error not in ON_ERROR:
        raise ConfigError(
            f"on_error must be 'raise' (stop at an unreadable image) or 'skip' (leave it out), got {on_error!r}"
        )


def progress_bar(total: int | None, enabled: bool, desc: str | None = None) -> Any:
    """A tqdm bar on stderr counting images; off when ``enabled`` is False, when ``HF_HUB_DISABLE_PROGRESS_BARS``
    is set, or after ``huggingface_hub.utils.disable_progress_bars("vitzoo")``."""
    return tqdm(total=total, disable=not enabled, desc=desc, unit="img", dynamic_ncols=True, name="vitzoo")


def run_batches(
    model: VisionTransformer,
    items: Sequence[Any],
    fn: Callable[[torch.Tensor], Any],
    batches: Iterable[list[int]],
    *,
    num_workers: int | None = None,
    on_error: str = "raise",
    progress: bool = True,
    desc: str | None = None,
    total: int | None = None,
    exact_decode: bool = True,
) -> Generator[tuple[Batch, Any], None, None]:
    """The one batch loop: decode ``items`` in the order of ``batches`` (lists of positions), run ``fn`` on each.

    ``batches`` may be a lazy iterable (the embed job claims shards as the loader asks for batches); ``total`` is
    the number of images for the progress bar (default: counted from ``batches`` when it is a sequence).

    One DataLoader (one pool of ``num_workers`` decoding processes, default ``default_workers()``) serves every
    batch; images get the model's checkpoint transform, tensors pass through (``exact_decode=False``: large JPEGs
    are decoded at a reduced scale first, ``load_image(draft=...)``). Each batch is moved to the model's device
    and dtype and ``fn`` runs under ``torch.inference_mode``. Yields ``(batch, fn(batch.x))``, with ``None``
    for a batch without readable images. Unreadable images raise ``ImageError`` unless ``on_error="skip"``; the
    skipped ones are in ``batch.failed``.
    """
    check_on_error(on_error)
    param = next(model.parameters())
    workers = default_workers() if num_workers is None else num_workers
    loader = torch.utils.data.DataLoader(
        _Images(items, create_transform(model), exact_decode),
        batch_sampler=batches,
        num_workers=workers,
        collate_fn=_collate,
        worker_init_fn=_worker_init if workers else None,
        prefetch_factor=4 if workers else None,
    )
    if total is None and isinstance(batches, Sequence):
        total = sum(len(b) for b in batches)
    with progress_bar(total, progress, desc) as bar:
        for batch in start_loader(loader):
            if batch.failed and on_error == "raise":
                raise ImageError("; ".join(err for _, err in batch.failed))
            out = None
            if batch.x is not None:
                with torch.inference_mode():
                    out = fn(batch.x.to(device=param.device, dtype=param.dtype))
            bar.update(len(batch.positions))
            yield batch, out


def start_loader(loader: torch.utils.data.DataLoader[Any]) -> Iterator[Any]:
    """``iter(loader)``, with Ctrl-C held back until its decoding workers are all started and raised right after.

    A KeyboardInterrupt in the middle of torch's worker start-up leaves a half-built iterator whose finaliser fails
    (a traceback printed after vitzoo's one-line message); held back, the interrupt stops a whole loader, which
    shuts its workers down. Only the main thread receives signals, so elsewhere this is ``iter(loader)``.
    """
    previous = signal.getsignal(signal.SIGINT)
    if not loader.num_workers or previous is None or threading.current_thread() is not threading.main_thread():
        return iter(loader)  # (None: a handler installed outside Python, which could not be put back)
    held: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _: held.append(signum))
    try:
        batches = iter(loader)
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:  # to the handler there was before (Python's raises KeyboardInterrupt; the whole loader shuts down)
        signal.raise_signal(signal.SIGINT)
    return batches


# ------------------------------------------------------------------------------------------------- features
def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """``"fp32"``/``"bf16"``/``"fp16"`` (or ``float32``/``bfloat16``/``float16``) to a torch dtype; None stays."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ConfigError(f"dtype must be one of {', '.join(DTYPES)} or a torch.dtype, got {dtype!r}")


def resolve_device(device: str | torch.device | None) -> torch.device | None:
    """``device`` as a ``torch.device`` PyTorch can use here; ``ConfigError`` for a name it does not know or a
    device this machine does not have (``cuda`` without a GPU, ``cuda:3`` with two). None stays None."""
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"device {device!r} is not a device PyTorch knows (cpu, cuda, cuda:1, mps, ...)") from err
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            raise ConfigError(f"device {device!r}: PyTorch sees no CUDA GPU on this machine; use the cpu device")
        if dev.index is not None and dev.index >= count:
            raise ConfigError(f"device {device!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {device!r}: MPS (Apple GPU) is not available here; use the cpu device")
    return dev


def prepare_model(model: VisionTransformer, dtype: torch.dtype | str | None, device: Any) -> VisionTransformer:
    """Eval mode, moved to ``dtype`` / ``device`` when given (the model itself is moved, as ``model.to`` does)."""
    dtype = resolve_dtype(dtype)
    device = resolve_device(device)
    if dtype is not None or device is not None:
        model.to(device=device, dtype=dtype)
    return model.eval()


def resolve_pool(model: VisionTransformer, pool: str | None, layers: Sequence[int] | None = None) -> str:
    """``pool`` checked against ``model``. None is the model's own pooling: ``config.global_pool`` (the class token,
    the patch mean, or SigLIP's attention pool), for distilled DeiT ``"pre_logits"`` (the mean of the class and
    distillation tokens, as its head sees them); with ``layers``, whose blocks have no head, the class token (the
    patch mean without one)."""
    if pool is None and layers:
        pool = "token" if model.cls_token is not None else "avg"
    elif pool is None:
        pool = "pre_logits" if model.config.distilled else model.config.global_pool
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
            assert model.attn_pool is not None
            feats = model.attn_pool(model.forward_features(x)[:, prefix:])
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
    exact_decode: bool = True,
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
    """
    check_on_error(on_error)
    fn = feature_fn(model, pool, layers)
    items = require_inputs(inputs)
    prepare_model(model, dtype, device)
    chunks: dict[str, list[torch.Tensor]] = {}
    for batch, out in run_batches(
        model,
        items,
        fn,
        batched(range(len(items)), batch_size),
        num_workers=num_workers,
        on_error=on_error,
        progress=progress,
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
) -> list[list[Prediction]]:
    """Top-k classes per input, with names from the checkpoint (ImageNet-1k/21k names are shipped).

    Inputs are those of ``extract_features``; an unreadable image raises ``ImageError``. With ``on_error="skip"``
    it gets an empty list (the results stay one per input) and a logged warning; ``on_error`` may also be a
    function, called with the input and the reason instead of the warning. None readable raises ``ImageError``.
    ``dtype`` and ``device`` move the model. A model without a classifier head (headless, or CLIP's projection
    head) raises ``ConfigError``.
    """
    report = on_error if callable(on_error) else None
    mode = "skip" if callable(on_error) else on_error
    check_on_error(mode)
    names = class_names(model)
    items = require_inputs(inputs)
    prepare_model(model, dtype, device)
    k = min(topk, model.config.num_classes)

    def top(x: torch.Tensor) -> tuple[list[list[float]], list[list[int]]]:
        probs = model(x).float().softmax(dim=-1).topk(k, dim=-1)
        return probs.values.tolist(), probs.indices.tolist()

    results: list[list[Prediction]] = [[] for _ in items]
    failed: list[str] = []
    for batch, out in run_batches(
        model,
        items,
        top,
        batched(range(len(items)), batch_size),
        num_workers=num_workers,
        on_error=mode,
        progress=progress,
    ):
        for i, err in batch.failed:
            failed.append(err)
            if report is not None:
                report(items[i], err)
            else:
                logger.warning("skipped an unreadable image: %s", err)
        if out is not None:
            values, indices = out
            for row, ps, ix in zip(batch.rows, values, indices, strict=True):
                results[row] = [Prediction(names[i], i, p) for p, i in zip(ps, ix, strict=True)]
    if len(failed) == len(items):
        raise ImageError(f"none of the {len(items)} inputs could be read, e.g. {failed[0]}; check the paths")
    return results
