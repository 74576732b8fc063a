"""The one batch loop (``run_batches``): inputs decoded in parallel workers with the checkpoint's transform, overlapped
with the forward, batch by batch. ``extract_features``, ``predict``, the embed job and the patch PCA all run
through it, with one default for decoding (``EXACT_DECODE``).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from huggingface_hub.utils.tqdm import tqdm  # a progress bar, not Hub I/O: it shares huggingface_hub's on/off switch
from PIL import Image

from ..errors import ConfigError, ImageError, VitzooError
from ..models.dtypes import resolve_dtype
from ..models.vit import VisionTransformer
from .inputs import iter_names, open_source
from .transforms import create_transform, load_image, to_rgb

# Every function that decodes images takes exact_decode=EXACT_DECODE: JPEGs much larger than the model input are
# decoded by libjpeg at 1/2-1/8 scale first (draft mode), several times faster on photos, features within a cosine
# similarity of 0.999 of every pixel decoded (docs/performance.md). exact_decode=True gives timm's pixels bit for bit.
EXACT_DECODE = False


ON_ERROR = ("raise", "skip")


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


@dataclass
class Batch:
    """One decoded batch: ``x`` holds the readable inputs ``rows``; ``failed`` the others with their error."""

    positions: list[int]  # every input of the batch, readable or not, in order
    rows: list[int]
    x: torch.Tensor | None
    failed: list[tuple[int, str]]


class _Images(torch.utils.data.Dataset[tuple[int, torch.Tensor | None, str]]):
    """Item i -> (i, tensor or None, error message). Decoding failures are returned, never raised."""

    def __init__(self, items: Sequence[Any], transform: Any, exact_decode: bool = EXACT_DECODE) -> None:
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
    exact_decode: bool = EXACT_DECODE,
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


M = TypeVar("M", bound=torch.nn.Module)


def prepare_model(model: M, dtype: torch.dtype | str | None, device: Any) -> M:
    """Eval mode, moved to ``dtype`` / ``device`` when given (the model itself is moved, as ``model.to`` does)."""
    dtype = resolve_dtype(dtype)
    device = resolve_device(device)
    if dtype is not None or device is not None:
        model.to(device=device, dtype=dtype)
    return model.eval()
