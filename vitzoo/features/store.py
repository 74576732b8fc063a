"""Reading what ``vitzoo embed`` wrote: ``open_embeddings`` opens a dataset directory (its shards and index,
``vitzoo.features.shards``) or a single ``.safetensors`` / ``.npy`` file as one ``Embeddings``, memory-mapped;
``read_embeddings`` reads one into memory.

The reader refuses what it cannot trust with ``FormatError``: a file that is not an embed output, and an output whose
paths do not match its rows (checked when a layout is opened; a dataset directory's shards when each is first read).
"""

from __future__ import annotations

import json
import math
import mmap
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
import torch

from ..errors import FormatError
from .inputs import parse_names
from .shards import (
    FORMAT,
    INDEX,
    checked_array,
    checked_paths,
    load_npy,
    mismatch_error,
    read_failed,
    read_index,
)

_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


# ------------------------------------------------------------------------------------------------ the shards


# ---------------------------------------------------------------------------------------------- the reader
class ConcatArray:
    """Arrays of the same trailing shape seen as one ``(N, ...)`` array; indexing reads only the rows it needs.

    ``a[i]``, ``a[start:stop:step]``, ``a[index_array]`` and ``a[rows, ...]`` return numpy arrays;
    ``np.asarray(a)`` reads everything.
    """

    def __init__(self, parts: Sequence[Any], tail: Sequence[int], dtype: Any) -> None:
        self.parts = list(parts)  # arrays, or callables opening them (so that 10k shards are not all opened at once)
        self.lengths = np.asarray([len(p) if not callable(p) else p.rows for p in self.parts], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)])
        self.shape = (int(self.starts[-1]), *tail)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def part(self, j: int) -> np.ndarray[Any, Any]:
        if callable(self.parts[j]):
            self.parts[j] = self.parts[j]()
        array: np.ndarray[Any, Any] = self.parts[j]
        return array

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray[Any, Any]:
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, idx: Any) -> np.ndarray[Any, Any]:
        rest: tuple[Any, ...] = ()
        if isinstance(idx, tuple):
            idx, rest = idx[0], idx[1:]
        if isinstance(idx, (int, np.integer)):
            n = len(self)
            if not -n <= idx < n:
                raise IndexError(f"index {idx} is out of bounds for {n} rows")
            i = int(idx) % n
            j = int(np.searchsorted(self.starts, i, side="right")) - 1
            where = (i - int(self.starts[j]), *rest)
            return self.part(j)[where]
        if isinstance(idx, slice):
            start, stop, step = idx.indices(len(self))
            if step == 1:
                every = (slice(None), *rest)
                return self._range(start, max(start, stop))[every]
            idx = np.arange(start, stop, step)
        rows = np.asarray(idx)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = np.where(rows < 0, rows + len(self), rows).astype(np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"row indices out of bounds for {len(self)} rows")
        which = np.searchsorted(self.starts, rows, side="right") - 1
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        for j in np.unique(which):
            sel = which == j
            out[sel] = self.part(int(j))[rows[sel] - self.starts[j]]
        every = (slice(None), *rest)
        return out[every]

    def _range(self, start: int, stop: int) -> np.ndarray[Any, Any]:
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        chunks = []
        j = max(first, 0)
        while j < len(self.parts) and self.starts[j] < stop:
            lo, hi = max(start, int(self.starts[j])), min(stop, int(self.starts[j + 1]))
            if hi > lo:
                chunks.append(self.part(j)[lo - int(self.starts[j]) : hi - int(self.starts[j])])
            j += 1
        if not chunks:
            return np.empty((0, *self.shape[1:]), dtype=self.dtype)
        return np.concatenate(chunks) if len(chunks) > 1 else np.asarray(chunks[0])


def row_blocks(array: Any, block_rows: int, dtype: Any = None) -> Iterator[np.ndarray[Any, Any]]:
    """The rows of ``array`` (an ``Embeddings`` array: a ``ConcatArray``, a memmap or an array), in order,
    ``block_rows`` at a time (the last block shorter), as ``dtype`` (default: the array's).

    Every block is the same buffer, overwritten by the next: copy what you keep. Rows of a memory-mapped file are
    read through a mapping of their own, let go once copied (``ConcatArray``'s indexing keeps every shard it opened
    mapped, and a single file is one mapping), so a pass holds one block and the pages of one read in memory,
    however many rows the output has."""
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    if isinstance(array, ConcatArray):
        parts: Iterator[Any] = (p for p, n in zip(array.parts, array.lengths, strict=True) if n)
    else:
        parts = iter([array])
    dtype = np.dtype(dtype if dtype is not None else array.dtype)
    block = np.empty((min(block_rows, len(array)), *array.shape[1:]), dtype)
    filled = 0
    for part in parts:
        rows = part() if callable(part) else part
        start = 0
        while start < len(rows):
            take = min(len(block) - filled, len(rows) - start)
            block[filled : filled + take] = read_rows(rows, start, start + take)
            filled, start = filled + take, start + take
            if filled == len(block):
                yield block
                filled = 0
    if filled:
        yield block[:filled]


def read_rows(array: np.ndarray[Any, Any], start: int, stop: int) -> np.ndarray[Any, Any]:
    """``array[start:stop]``; for a whole memory-mapped file, through a new mapping of those rows only, which goes
    with the returned array (the pages read through ``array``'s own mapping would stay until it is closed)."""
    if isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap) and array.flags.c_contiguous:
        offset = array.offset + start * array.strides[0]
        return np.memmap(array.filename, array.dtype, "r", offset=offset, shape=(stop - start, *array.shape[1:]))
    return array[start:stop]


class _Lazy:
    """Opens shard ``k``'s array on first use; ``rows`` is known from the index."""

    def __init__(self, folder: Path, k: int, key: str, rows: int) -> None:
        self.folder, self.k, self.key, self.rows = folder, k, key, rows

    def __call__(self) -> np.ndarray[Any, Any]:
        return checked_array(self.folder, self.k, self.key, self.rows)


class ShardedPaths(Sequence[str]):
    """The row paths of a dataset directory, read one shard file at a time (the last one read is kept)."""

    def __init__(self, folder: Path, rows: Sequence[int]) -> None:
        self.folder, self.rows = folder, list(rows)
        self.starts = np.concatenate([[0], np.cumsum(np.asarray(rows, dtype=np.int64))])
        self._cache: tuple[int, list[str]] = (-1, [])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def shard(self, k: int) -> list[str]:
        if self._cache[0] != k:
            self._cache = (k, checked_paths(self.folder, k, self.rows[k]))
        return self._cache[1]

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(i)
        i %= n
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        return self.shard(k)[i - int(self.starts[k])]

    def __iter__(self) -> Iterator[str]:
        for k in range(len(self.starts) - 1):
            yield from checked_paths(self.folder, k, self.rows[k])


@dataclass
class EmbeddingShard:
    """One shard of an output: its paths and, per key, its rows (memory-mapped)."""

    paths: list[str]
    arrays: dict[str, np.ndarray[Any, Any]]

    def __getitem__(self, key: str) -> np.ndarray[Any, Any]:
        return self.arrays[key]

    def __len__(self) -> int:
        return len(self.paths)


class Embeddings:
    """An embed output opened by ``open_embeddings``: ``E[key]`` is an ``(N, ...)`` array read on demand,
    ``E.paths`` the path of each row, ``E.failed`` the unreadable inputs ``(path, error)``, ``E.meta`` the model's
    facts (``EmbedMeta`` fields), ``E.command`` the fingerprint of the command that wrote it (None for an output
    of an older version), ``len(E)`` the rows, and ``for shard in E`` walks it shard by shard."""

    def __init__(
        self,
        arrays: dict[str, Any],
        paths: Sequence[str],
        failed_fn: Any,
        meta: dict[str, Any],
        shards: Any,
    ) -> None:
        self._arrays, self.paths, self._failed_fn, self._shards = arrays, paths, failed_fn, shards
        self.meta = dict(meta)
        command = self.meta.pop("command", None)
        self.command: dict[str, Any] | None = command if isinstance(command, dict) else None

    @property
    def failed(self) -> list[tuple[str, str]]:
        """The unreadable inputs as ``(path, error)``, in input order (read from the output on each access)."""
        failed: list[tuple[str, str]] = self._failed_fn()
        return failed

    def keys(self) -> list[str]:
        """The arrays: ``["features"]``, or ``["layer_<i>", ...]`` for an embed run with ``--layers``."""
        return list(self._arrays)

    def __getitem__(self, key: str) -> Any:
        if key not in self._arrays:
            raise KeyError(f"{key!r}: this output holds {', '.join(self._arrays) or 'no arrays'}")
        return self._arrays[key]

    def __contains__(self, key: object) -> bool:
        return key in self._arrays

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[EmbeddingShard]:
        yield from self._shards()

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {tuple(v.shape)}" for k, v in self._arrays.items())
        return f"Embeddings({len(self)} rows; {shapes}; model={self.meta.get('model')!r})"


def open_embeddings(path: str | Path) -> Embeddings:
    """Open what ``vitzoo embed`` wrote: a dataset directory, a ``.safetensors`` or a ``.npy`` file.

    Nothing is read up front but the index (directory) or the header and paths (file): arrays are memory-mapped and
    slicing ``E["features"][a:b]`` reads those rows only. Anything else, or an output whose paths do not match its
    rows, raises ``FormatError``.
    """
    path = Path(path)
    if path.is_dir():
        return _open_dir(path)
    if not path.exists():
        raise FormatError(f"{path}: no such embeddings output")
    if path.suffix == ".npy":
        return _open_npy(path)
    if path.suffix == ".safetensors":
        return _open_safetensors(path)
    raise FormatError(f"{path}: not an embed output (a dataset directory, .safetensors or .npy)")


def _open_dir(folder: Path) -> Embeddings:
    if not (folder / INDEX).exists():
        raise FormatError(f"{folder}: no {INDEX}: not an embed output, or its run is not finished (re-run it)")
    index = read_index(folder)
    rows = [int(s["rows"]) for s in index["shards"]]
    arrays = {
        key: ConcatArray([_Lazy(folder, k, key, n) for k, n in enumerate(rows)], spec["shape"], spec["dtype"])
        for key, spec in index["arrays"].items()
    }

    def failed() -> list[tuple[str, str]]:
        return read_failed(folder / "failed.txt")

    def shards() -> Iterator[EmbeddingShard]:
        for k, n in enumerate(rows):
            if n:
                keys = {key: checked_array(folder, k, key, n) for key in arrays}
                yield EmbeddingShard(checked_paths(folder, k, n), keys)
            else:
                empty = {key: np.empty((0, *a.shape[1:]), a.dtype) for key, a in arrays.items()}
                yield EmbeddingShard(checked_paths(folder, k, n), empty)

    meta = {**index["meta"], "command": index["command"]}
    return Embeddings(arrays, ShardedPaths(folder, rows), failed, meta, shards)


def _open_npy(path: Path) -> Embeddings:
    features = load_npy(path)
    listing = path.with_name(path.name + ".paths.txt")
    if not listing.is_file():
        raise FormatError(f"{path}: its row paths ({listing.name}, written next to it by vitzoo embed) are missing")
    paths = parse_names(listing.read_bytes())
    if len(paths) != len(features):
        raise mismatch_error(listing, "paths", len(paths), len(features))
    arrays = {"features": features}
    return Embeddings(
        arrays,
        paths,
        lambda: read_failed(path.with_name(path.name + ".failed.txt")),
        _npy_meta(path),
        lambda: iter([EmbeddingShard(paths, arrays)]),
    )


def _npy_meta(path: Path) -> dict[str, Any]:
    """The metadata vitzoo embed writes beside a ``.npy`` (``X.npy.json``: ``EmbedMeta``'s fields and the command);
    empty when there is none (a ``.npy`` from an older version, or made by hand with its paths file)."""
    sidecar = path.with_name(path.name + ".json")
    if not sidecar.is_file():
        return {}
    try:
        meta = json.loads(sidecar.read_bytes())
    except ValueError as err:
        raise FormatError(f"{sidecar}: not JSON ({err}): not vitzoo's metadata of {path.name}") from err
    if not isinstance(meta, dict) or meta.pop("format", None) != FORMAT:
        raise FormatError(f"{sidecar}: not vitzoo's metadata of {path.name}")
    return meta


def _open_safetensors(path: Path) -> Embeddings:
    """The header parsed here, each tensor memory-mapped at its offset (safetensors is a JSON header + raw data)."""
    size, header = _safetensors_header(path)
    raw_meta = header.pop("__metadata__", None) or {}
    if not isinstance(raw_meta, dict) or "paths" not in raw_meta:
        raise FormatError(f"{path}: a safetensors file without vitzoo's row paths in its header: not an embed output")
    try:
        meta = {key: json.loads(value) for key, value in raw_meta.items()}
    except (TypeError, ValueError) as err:
        raise FormatError(f"{path}: its metadata is not vitzoo's (every value JSON): not an embed output") from err
    paths = meta.pop("paths")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise FormatError(f"{path}: its 'paths' metadata is not a list of paths: not an embed output")
    data_size = path.stat().st_size - 8 - size
    arrays = {}
    for key, spec in header.items():
        dtype, shape, (start, stop) = _tensor_spec(path, key, spec, data_size)
        if stop == start:
            arrays[key] = np.empty(shape, dtype=dtype)
        else:
            arrays[key] = np.memmap(path, dtype, "r", offset=8 + size + start, shape=shape)
        if not shape or shape[0] != len(paths):
            raise mismatch_error(path, "paths", len(paths), shape[0] if shape else 0)
    return Embeddings(
        arrays,
        paths,
        lambda: read_failed(path.with_name(path.name + ".failed.txt")),
        meta,
        lambda: iter([EmbeddingShard(paths, arrays)]),
    )


def _safetensors_header(path: Path) -> tuple[int, dict[str, Any]]:
    """The header's length and the header of a safetensors file; ``FormatError`` for anything else."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise FormatError(f"{path}: not a safetensors file (shorter than the 8 bytes of its header length)")
        (size,) = struct.unpack("<Q", head)
        if size > path.stat().st_size - 8:
            raise FormatError(f"{path}: not a safetensors file (its header length, {size:,} bytes, exceeds the file)")
        try:
            header = json.loads(f.read(size))
        except ValueError as err:
            raise FormatError(f"{path}: not a safetensors file (its header is not JSON: {err})") from err
    if not isinstance(header, dict):
        raise FormatError(f"{path}: not a safetensors file (its header is not a JSON object)")
    return size, header


def _tensor_spec(path: Path, key: str, spec: Any, data_size: int) -> tuple[Any, tuple[int, ...], tuple[int, int]]:
    """A header entry checked against the file: numpy dtype, shape and byte range."""
    try:
        dtype = spec["dtype"]
        shape = tuple(int(n) for n in spec["shape"])
        start, stop = (int(n) for n in spec["data_offsets"])
    except (KeyError, TypeError, ValueError) as err:
        raise FormatError(f"{path}: the header entry of {key!r} is not a tensor's: not a safetensors file") from err
    if dtype not in _ST_DTYPES:
        raise FormatError(f"{path}: {key} is {dtype}, which numpy cannot map")
    nbytes = math.prod(shape) * np.dtype(_ST_DTYPES[dtype]).itemsize
    if min(shape, default=0) < 0 or not 0 <= start <= stop <= data_size or stop - start != nbytes:
        raise FormatError(f"{path}: {key}'s shape and byte range do not fit the file: it is damaged or not safetensors")
    return _ST_DTYPES[dtype], shape, (start, stop)


@dataclass
class LoadedEmbeddings:
    """An embed output read into memory (for ``vitzoo probe``): its arrays (``features`` or ``layer_<i>``), the input
    path of each row, and the metadata (``EmbedMeta``'s keys decoded; empty for a ``.npy`` file, which has none)."""

    tensors: dict[str, torch.Tensor]
    paths: list[str]
    meta: dict[str, Any]


def read_embeddings(path: str | Path) -> LoadedEmbeddings:
    """Read everything ``embed_to_file`` / ``vitzoo embed`` wrote (any layout ``open_embeddings`` opens) into
    memory."""
    opened = open_embeddings(path)
    tensors = {key: torch.from_numpy(np.array(opened[key][:])) for key in opened.keys()}  # noqa: SIM118
    return LoadedEmbeddings(tensors, list(opened.paths), dict(opened.meta))
