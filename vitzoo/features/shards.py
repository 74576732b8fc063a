"""The files of an embed output on disk: one shard's arrays, paths, failures and marker, and a dataset directory's
index. Written by the embed job, read by ``vitzoo.features.store``.

A dataset directory holds, per shard ``k`` (``shard-00000k``): one ``.npy`` per array (``features`` or
``layer_<i>``, rows in input order), ``.paths.txt`` (the path of each row, one per line), ``.failed.txt`` (the
unreadable inputs, ``path<TAB>error``, only when there are some) and ``.json`` (row and failure counts, and what the
embed job stamps on it: the command that made it), written last so that its presence means the shard is whole.
``index.json`` lists the shards with their counts, the arrays' shapes and dtype, and the model's facts
(``EmbedMeta``); it is written once every shard is done. Nothing in it grows with the number of rows but the list of
shards. Paths files are exact (``vitzoo.features.inputs.format_names``: one per line, escaped).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path, atomic_write_bytes, atomic_write_text
from ..errors import FormatError
from .inputs import format_failed, format_names, parse_failed, parse_names

INDEX = "index.json"


FORMAT = "vitzoo.embeddings"


VERSION = 1


def shard_name(k: int) -> str:
    return f"shard-{k:06d}"


def write_shard(
    folder: Path,
    k: int,
    arrays: dict[str, np.ndarray[Any, Any]],
    paths: Sequence[str],
    failed: Sequence[tuple[str, str]],
    stamp: Mapping[str, Any] | None = None,
) -> None:
    """Write shard ``k`` of ``folder``: every file atomically, the ``.json`` marker (with ``stamp``'s keys) last."""
    base = folder / shard_name(k)
    for key, value in arrays.items():
        with atomic_path(folder / f"{base.name}.{key}.npy", ".npy") as tmp:
            np.save(tmp, np.ascontiguousarray(value))
    atomic_write_bytes(folder / f"{base.name}.paths.txt", format_names(paths))
    if failed:
        atomic_write_bytes(folder / f"{base.name}.failed.txt", format_failed(failed))
    info = {"rows": len(paths), "failed": len(failed), "arrays": {k: _spec(v) for k, v in arrays.items()}}
    atomic_write_text(folder / f"{base.name}.json", json.dumps({**info, **(stamp or {})}))


def shard_done(folder: Path, k: int) -> bool:
    return (folder / f"{shard_name(k)}.json").exists()


def shard_info(folder: Path, k: int) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((folder / f"{shard_name(k)}.json").read_text())
    return info


def shard_paths(folder: Path, k: int) -> list[str]:
    return parse_names((folder / f"{shard_name(k)}.paths.txt").read_bytes())


def shard_failed(folder: Path, k: int) -> list[tuple[str, str]]:
    return read_failed(folder / f"{shard_name(k)}.failed.txt")


def read_failed(path: Path) -> list[tuple[str, str]]:
    """The ``(path, error)`` pairs of a failed list; none when there is no such file."""
    if not path.exists():
        return []
    return parse_failed(path.read_bytes())


def shard_array(folder: Path, k: int, key: str) -> np.ndarray[Any, Any]:
    """Shard ``k``'s ``key`` rows, memory-mapped."""
    return load_npy(folder / f"{shard_name(k)}.{key}.npy")


def load_npy(path: Path) -> np.ndarray[Any, Any]:
    """A ``.npy`` file memory-mapped; ``FormatError`` when it is not one (truncated, pickled, another format)."""
    try:
        array: np.ndarray[Any, Any] = np.load(path, mmap_mode="r")
    except (ValueError, EOFError, pickle.UnpicklingError) as err:
        raise FormatError(f"{path}: not a readable .npy array ({err})") from err
    if not isinstance(array, np.ndarray) or array.ndim < 1:
        raise FormatError(f"{path}: not an array of rows")
    return array


def _spec(value: np.ndarray[Any, Any]) -> dict[str, Any]:
    return {"shape": list(value.shape[1:]), "dtype": str(value.dtype)}


def write_index(folder: Path, num_shards: int, meta: dict[str, Any], command: dict[str, Any]) -> dict[str, Any]:
    """Gather the shards' counts into ``folder/index.json`` (atomically); returns the index."""
    shards: list[dict[str, Any]] = []
    arrays: dict[str, Any] = {}
    for k in range(num_shards):
        info = shard_info(folder, k)
        shards.append({"name": shard_name(k), "rows": info["rows"], "failed": info["failed"]})
        if info["rows"] and not arrays:
            arrays = info["arrays"]
    index = {
        "format": FORMAT,
        "version": VERSION,
        "rows": sum(s["rows"] for s in shards),
        "failed": sum(s["failed"] for s in shards),
        "arrays": arrays,
        "shards": shards,
        "meta": meta,
        "command": command,
    }
    atomic_write_text(folder / INDEX, json.dumps(index, indent=1))
    return index


def mismatch_error(where: Path, what: str, count: int, rows: int) -> FormatError:
    return FormatError(
        f"{where}: {count} {what} for {rows} rows; the output is damaged or was changed: embed again into a new --out"
    )


def checked_paths(folder: Path, k: int, rows: int) -> list[str]:
    """Shard ``k``'s paths, refused unless there is one per row."""
    paths = shard_paths(folder, k)
    if len(paths) != rows:
        raise mismatch_error(folder / f"{shard_name(k)}.paths.txt", "paths", len(paths), rows)
    return paths


def checked_array(folder: Path, k: int, key: str, rows: int) -> np.ndarray[Any, Any]:
    """Shard ``k``'s ``key`` array, refused unless it has ``rows`` rows."""
    array = shard_array(folder, k, key)
    if len(array) != rows:
        raise mismatch_error(folder / f"{shard_name(k)}.{key}.npy", "rows of an array", len(array), rows)
    return array


def read_index(folder: Path) -> dict[str, Any]:
    """``folder/index.json``, refused (``FormatError``) unless it is an index this version of vitzoo reads."""
    try:
        index = json.loads((folder / INDEX).read_bytes())
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise FormatError(f"{folder}: {INDEX} is not JSON ({err}): not an embed output") from err
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise FormatError(f"{folder}: {INDEX} is not a {FORMAT} index: not an embed output (another program's file?)")
    if index.get("version") != VERSION:
        raise FormatError(f"{folder}: {INDEX} has version {index.get('version')!r}; this vitzoo reads {VERSION}")
    try:
        shards = [(str(s["name"]), int(s["rows"]), int(s["failed"])) for s in index["shards"]]
        specs = {str(key): (list(spec["shape"]), np.dtype(spec["dtype"])) for key, spec in index["arrays"].items()}
        ok = all(name == shard_name(k) for k, (name, _, _) in enumerate(shards)) and isinstance(index["meta"], dict)
        ok = ok and int(index["rows"]) == sum(rows for _, rows, _ in shards) and isinstance(index["command"], dict)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise FormatError(f"{folder}: {INDEX} is damaged ({type(err).__name__}: {err}); embed again") from err
    if not ok or not all(isinstance(shape, list) for shape, _ in specs.values()):
        raise FormatError(f"{folder}: {INDEX} is damaged (its shards, rows or arrays do not add up); embed again")
    return index
