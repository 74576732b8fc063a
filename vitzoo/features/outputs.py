"""Where an embed run writes (``Places``) and how it finishes there (``finish_dir``, ``merge_shards``): the output
(a dataset directory, or one ``.safetensors`` / ``.npy`` file), vitzoo's own work folder beside or inside it, and
the rules that keep a user's files safe.

A dataset directory ``OUT/`` holds the shards, ``index.json`` and ``failed.txt``, and vitzoo's working files in
``OUT/.vitzoo-embed/``; a single file has its shards and working files in ``OUT.parts/`` next to it. A work folder is
made whole (marked ``vitzoo-embed.json``) by one rename; one without the mark is never used nor removed, and a
non-empty ``OUT/`` that is not a vitzoo output is refused before anything is written. vitzoo deletes only what it
wrote. A single file is written only where there is none, or over the output of the same command.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from ..atomic import atomic_path, atomic_write_bytes, atomic_write_text, tmp_path
from ..errors import ConfigError, FormatError
from .fingerprint import EmbedMeta, check_fingerprint, encode
from .inputs import format_failed, format_names
from .shards import FORMAT, INDEX, shard_array, shard_failed, shard_info, shard_paths, write_index
from .store import open_embeddings

OUTPUT_SUFFIXES = (".safetensors", ".npy")


WORK_DIR = ".vitzoo-embed"  # the work folder inside a dataset directory


MARK = "vitzoo-embed.json"  # in every work folder: vitzoo made it


_MARK_TEXT = json.dumps({"format": "vitzoo.embed-work", "version": 1})


SHARD_INFO = re.compile(r"shard-(\d{6,})\.json")


def output_layout(out: Path) -> str:
    """``"safetensors"`` or ``"npy"`` for a single file, ``"dir"`` for a dataset directory (no suffix)."""
    if out.suffix in OUTPUT_SUFFIXES:
        return out.suffix[1:]
    if not out.suffix or out.is_dir():
        return "dir"
    raise ConfigError(
        f"the output must end in .safetensors or .npy, or name a directory (no suffix) for large runs; got {out.name}"
    )


@dataclass(frozen=True)
class Places:
    """Where an embed run writes: ``out``, its work folder (vitzoo's own) and the folder of its shards."""

    out: Path
    layout: str

    @property
    def work(self) -> Path:
        """``OUT/.vitzoo-embed/`` for a dataset directory, ``OUT.parts/`` next to a single file."""
        return self.out / WORK_DIR if self.layout == "dir" else self.out.with_name(self.out.name + ".parts")

    @property
    def shards(self) -> Path:
        return self.out if self.layout == "dir" else self.work

    def refuse_foreign(self) -> None:
        """Refuse, before anything is written, an output whose folders are not vitzoo's to write in."""
        out, work = self.out, self.work
        if self.layout == "dir":
            if out.exists() and not out.is_dir():
                raise ConfigError(f"--out {out} is a file; a dataset directory is a folder: choose another --out")
            if out.is_dir() and any(out.iterdir()) and not is_output_dir(out):
                raise ConfigError(
                    f"{out} is a folder of files that vitzoo embed did not write; it writes a dataset directory only "
                    "into a new or empty folder or one of its own outputs: choose another --out"
                )
        elif out.is_dir():
            raise ConfigError(f"{out} is a folder; a .{self.layout} output names a file: choose another --out")
        if (work.exists() or work.is_symlink()) and not (work / MARK).is_file():
            raise ConfigError(
                f"{work} exists and was not made by vitzoo embed, which keeps its working files there: move it "
                "away or choose another --out"
            )

    def make(self) -> tuple[list[Path], bool]:
        """Create the folders of the run: those this process created, and whether it created the work folder."""
        folder = self.out if self.layout == "dir" else self.out.parent
        try:
            made = make_dirs(folder)
        except OSError as err:
            raise ConfigError(f"cannot create the folder {err.filename or folder} ({err.strerror}): choose an --out "
                              "in a folder you can write") from err  # fmt: skip
        try:
            return made, make_work(self.work)
        except OSError as err:
            remove_dirs(made)
            raise ConfigError(f"cannot write into {folder} ({err.strerror}): choose an --out in a folder you can "
                              "write") from err  # fmt: skip

    def finished(self) -> bool:
        return (self.out / INDEX).exists() if self.layout == "dir" else self.out.is_file()


def is_output_dir(folder: Path) -> bool:
    """Whether ``folder`` holds a vitzoo embed output (finished or not): its index, work folder or shards. A work
    folder another process is making right now (``.vitzoo-embed.tmp...``, renamed into place once whole) counts.

    Another process may move the folder on between the checks, so they look in the order a run makes these files
    (temporary work folder, work folder, shards, index; the work folder goes last): a file gone since its check was
    replaced by one that a later check sees."""
    if any(e.name.startswith(f"{WORK_DIR}.tmp") for e in os.scandir(folder)):
        return True
    if (folder / WORK_DIR / MARK).is_file():
        return True
    info = next((e.path for e in os.scandir(folder) if SHARD_INFO.fullmatch(e.name)), None)
    if info is not None and {"rows", "failed", "arrays"} <= read_json(Path(info)).keys():
        return True
    return read_json(folder / INDEX).get("format") == FORMAT


def make_dirs(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns those this process created, outermost first."""
    missing = []
    at = folder
    while not at.exists() and at != at.parent:
        missing.append(at)
        at = at.parent
    made: list[Path] = []
    try:
        for path in reversed(missing):
            try:
                os.mkdir(path)
            except FileExistsError:  # another process made it meanwhile
                continue
            made.append(path)
        if not folder.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(folder))
    except OSError:
        remove_dirs(made)
        raise
    return made


def remove_dirs(made: Sequence[Path]) -> None:
    """Remove the folders ``make_dirs`` made, innermost first, while they are empty."""
    for path in reversed(made):
        try:
            os.rmdir(path)
        except OSError:
            return


def make_work(work: Path) -> bool:
    """Create the work folder with its mark and ``claims/`` in one rename; False when it exists already (made by
    another process or an earlier run)."""
    if (work / MARK).is_file():
        return False
    tmp = tmp_path(work)
    os.mkdir(tmp)
    try:
        (tmp / "claims").mkdir()
        (tmp / MARK).write_text(_MARK_TEXT)
        os.rename(tmp, work)
    except OSError:
        if (work / MARK).is_file():  # made meanwhile by another process
            return False
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after the rename
    return True


def remove_work(work: Path) -> None:
    """Remove a work folder: renamed away first (so no process can write into it halfway), then deleted; nothing
    happens when another process removed it already."""
    trash = work.with_name(f"{work.name}.removed{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.rename(work, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; empty when there is none or it is not one."""
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def finished_file(out: Path, fingerprint: Mapping[str, str]) -> EmbedSummary:
    """The summary of the single-file output ``out`` when the same command wrote it (nothing to do); refused when
    another command or another program wrote it (vitzoo overwrites only its own output of the same command)."""
    try:
        opened = open_embeddings(out)
    except FormatError as err:
        raise ConfigError(f"{out} exists and is not an output of vitzoo embed ({err}): choose another --out") from err
    command = opened.command
    if command is None:
        raise ConfigError(
            f"{out} was written by vitzoo embed without a record of its command (an older version, or a .npy without "
            f"its {out.name}.json): delete it to embed again, or choose another --out"
        )
    check_fingerprint(out, command, fingerprint)
    failed = len(opened.failed)
    failed_file = out.with_name(out.name + ".failed.txt")
    return EmbedSummary(len(opened), failed, failed_file if failed else None)


def finish_dir(out: Path, num_shards: int, meta: dict[str, Any], fingerprint: dict[str, str]) -> EmbedSummary:
    """Write the index and the list of failures of a finished dataset directory (the same files however often it
    runs)."""
    index = write_index(out, num_shards, meta, fingerprint)
    failed_file = out / "failed.txt"
    if index["failed"]:
        atomic_write_bytes(failed_file, b"".join(format_failed(shard_failed(out, k)) for k in range(num_shards)))
    return EmbedSummary(index["rows"], index["failed"], failed_file if index["failed"] else None)


def merge_shards(work: Path, num_shards: int, out: Path, meta: EmbedMeta, fingerprint: dict[str, str]) -> EmbedSummary:
    """Concatenate the shards in order into the single file ``out`` (with ``meta`` and the command's
    ``fingerprint``: ``X.npy.json`` beside a ``.npy``) and list the failures; without readable rows, only the
    failures. This holds every row in memory: the single file is for small runs."""
    infos = [shard_info(work, k) for k in range(num_shards)]
    keys: dict[str, Any] = next((info["arrays"] for info in infos if info["rows"]), {})
    full = [k for k in range(num_shards) if infos[k]["rows"]]
    arrays = {key: np.concatenate([shard_array(work, k, key) for k in full]) for key in keys}
    paths = [p for k in range(num_shards) for p in shard_paths(work, k)]
    failed = [f for k in range(num_shards) for f in shard_failed(work, k)]
    command = {"command": fingerprint}
    if paths and out.suffix == ".npy":
        atomic_write_bytes(out.with_name(out.name + ".paths.txt"), format_names(paths))
        sidecar = {"format": FORMAT, **dataclasses.asdict(meta), "num_failed": len(failed), **command}
        atomic_write_text(out.with_name(out.name + ".json"), json.dumps(sidecar, indent=1))
        with atomic_path(out, ".npy") as tmp:
            np.save(tmp, arrays["features"])
    elif paths:
        tensors = {key: torch.from_numpy(value) for key, value in arrays.items()}
        metadata = {**meta.encode(), **encode({"paths": paths, "num_failed": len(failed), **command})}
        save_safetensors(tensors, out, metadata)
    failed_file = out.with_name(out.name + ".failed.txt")
    if failed:
        atomic_write_bytes(failed_file, format_failed(failed))
    elif failed_file.exists():
        failed_file.unlink()
    return EmbedSummary(rows=len(paths), failed=len(failed), failed_file=failed_file if failed else None)


def save_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


@dataclass
class EmbedSummary:
    """What the finalising process wrote: the embedded rows and the unreadable inputs (listed in ``failed_file``)."""

    rows: int
    failed: int
    failed_file: Path | None
