"""Texts into an embed output (``vitzoo embed NAME --text-file FILE``): an image-text model's text tower
(``ImageTextModel.encode_text``) over a list of strings, written as the image embed job writes images.

``read_texts`` reads a text file: UTF-8 (a leading byte-order mark dropped), one text per line, lines split on
``"\\n"`` and ``"\\r\\n"`` only (not on the other separators ``str.splitlines`` knows: U+2028, form feed, ... stay in
their text), blank lines (empty or only whitespace) skipped; every other line is embedded exactly as written.

``embed_texts_to_file`` writes any of the embed job's outputs (a dataset directory, one ``.safetensors`` or ``.npy``
file; ``vitzoo.features.outputs``) with the same writers, read back by ``open_embeddings``: each row's path is its
text, and the metadata (``EmbedMeta.of_text``) records ``pool="text"`` and the model's name, so ``vitzoo search``
takes the output with the same model. One process writes it (no claims, no torchrun): the texts go in shards of
``shard_size``, each written once embedded, so an interrupted run resumes when the same command runs again, and
another command into the same output (another model, texts or batching) is refused, as for images.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from huggingface_hub.utils.tqdm import tqdm  # a progress bar, not Hub I/O: it shares huggingface_hub's on/off switch

from ..atomic import atomic_write_text
from ..errors import ConfigError
from ..models.dtypes import resolve_dtype
from ..models.image_text import ImageTextModel
from .batches import resolve_device
from .claims import DEFAULT_LEASE_S
from .distributed import env_world_size, rank_and_world
from .embed_job import MAX_SAFETENSORS_ROWS, check_arguments, check_shards, read_manifest
from .fingerprint import EmbedMeta, check_fingerprint, encode
from .inputs import format_names
from .outputs import (
    MARK,
    EmbedSummary,
    Places,
    finish_dir,
    finished_file,
    merge_shards,
    output_layout,
    remove_dirs,
    remove_work,
)
from .shards import INDEX, read_index, shard_done, write_shard


def read_lines(path: str | Path, option: str, what: str) -> list[str]:
    """The lines of a UTF-8 file given as ``option``: a leading byte-order mark dropped, split on ``"\n"`` and
    ``"\r\n"`` only, nothing else changed (a final newline leaves an empty last line). ``ConfigError`` for a file
    that is missing or not UTF-8; ``what`` names a line's content in the message."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError) as err:
        raise ConfigError(f"{option} {path}: {err.strerror}; pass a UTF-8 file with one {what} a line") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{option} {path} is not UTF-8 (at byte offset {err.start}: {err.reason}): save it as UTF-8"
        ) from None
    return [line.removesuffix("\r") for line in text.removeprefix("\ufeff").split("\n")]


def read_texts(path: str | Path) -> list[str]:
    """The texts of a UTF-8 file, one per line (``read_lines``), blank lines (empty or only whitespace) skipped."""
    return [line for line in read_lines(path, "--text-file", "text") if line and not line.isspace()]


@torch.inference_mode()
def embed_texts(model: ImageTextModel, texts: Sequence[str], *, batch_size: int = 64) -> torch.Tensor:
    """``texts`` embedded by ``model``'s text tower (``encode_text``, in eval mode), ``batch_size`` at a time:
    (len(texts), E) float32 on the CPU, not normalised, in the joint space of the model's image tower."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    model.eval()
    rows = [model.encode_text(list(texts[i : i + batch_size])).float().cpu() for i in range(0, len(texts), batch_size)]
    return torch.cat(rows) if rows else torch.empty(0, model.text.output_dim)


def texts_digest(texts: Sequence[str]) -> str:
    """SHA-256 of the texts, each exactly (escaped as a paths file writes them: a newline in a text is no boundary)."""
    return hashlib.sha256(format_names(texts)).hexdigest()


def embed_texts_to_file(
    model: ImageTextModel,
    texts: Sequence[str],
    out: str | Path,
    *,
    name: str | None = None,
    revision: str | None = None,
    batch_size: int = 64,
    shard_size: int = 1024,
    dtype: torch.dtype | str | None = None,
    device: Any = None,
    progress: bool = True,
) -> EmbedSummary:
    """Embed ``texts`` with ``model``'s text tower into ``out``: a dataset directory (no suffix) or one
    ``.safetensors`` / ``.npy`` file, as ``embed_to_file`` writes images; each row's path is its text.

    ``name``/``revision`` are recorded in the metadata (``name`` defaults to the checkpoint's tag); ``search``
    compares ``name`` with its ``--model``. One process, resumable: running the same call again finishes an
    interrupted run or, once finished, returns its summary; another command's output is refused (``VitzooError``),
    and nothing of the user's is overwritten or removed. Returns the summary (``failed`` is always 0)."""
    out = Path(out)
    layout = output_layout(out)
    check_arguments(batch_size, shard_size, None, DEFAULT_LEASE_S)
    texts = list(texts)
    if not texts:
        raise ConfigError("no texts to embed (a text file's blank lines are skipped)")
    if not all(isinstance(t, str) for t in texts):
        raise ConfigError("texts must be strings")
    if env_world_size() > 1 or rank_and_world()[1] > 1:
        raise ConfigError("texts are embedded by one process: run it without torchrun")
    if layout == "safetensors" and len(texts) > MAX_SAFETENSORS_ROWS:
        raise ConfigError(
            f"{len(texts):,} texts are too many for one .safetensors header; write a dataset directory (an --out "
            "without suffix) instead"
        )
    torch_dtype, torch_device = resolve_dtype(dtype), resolve_device(device)
    if torch_dtype is not None or torch_device is not None:
        model.to(device=torch_device, dtype=torch_dtype)
    meta = EmbedMeta.of_text(model, name=name, revision=revision)
    fingerprint = {
        **meta.encode(),
        **encode({"batch_size": batch_size, "shard_size": shard_size, "inputs": texts_digest(texts)}),
    }
    places = Places(out, layout)
    places.refuse_foreign()  # nothing is written before these checks
    if layout == "dir" and (out / INDEX).exists():  # finished before: nothing to do
        index = read_index(out)
        check_fingerprint(out, index["command"], fingerprint)
        return EmbedSummary(index["rows"], 0, None)
    if layout != "dir" and out.exists() and not (places.work / MARK).is_file():
        return finished_file(out, fingerprint)
    check_fingerprint(places.work, read_manifest(places.work), fingerprint)
    check_shards(places.shards, fingerprint)
    made, created = places.make()
    manifest = places.work / "manifest.json"
    if not manifest.exists():
        try:
            atomic_write_text(manifest, json.dumps(fingerprint, indent=1))
        except BaseException:
            if created:
                remove_work(places.work)
                remove_dirs(made)
            raise
    num_shards = -(-len(texts) // shard_size)
    todo = [k for k in range(num_shards) if not shard_done(places.shards, k)]
    if progress and len(todo) < num_shards:
        print(f"resuming: {num_shards - len(todo)} of {num_shards} shards already done", file=sys.stderr)
    total = sum(len(texts[k * shard_size : (k + 1) * shard_size]) for k in todo)
    with tqdm(total=total, disable=not progress, unit="text", dynamic_ncols=True, name="vitzoo") as bar:
        for k in todo:
            part = texts[k * shard_size : (k + 1) * shard_size]  # batches never cross a shard: the same on resuming
            features = embed_texts(model, part, batch_size=batch_size)
            write_shard(places.shards, k, {"features": features.numpy()}, part, [], {"command": fingerprint})
            bar.update(len(part))
    if layout == "dir":
        summary = finish_dir(out, num_shards, dataclasses.asdict(meta), fingerprint)
    else:
        summary = merge_shards(places.work, num_shards, out, meta, fingerprint)
    remove_work(places.work)
    return summary
