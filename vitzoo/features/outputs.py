"""Where an embed run writes (``Places``): the output (a dataset directory, or one ``.safetensors`` / ``.npy``
file), vitzoo's own work folder beside or inside it, and the rules that keep a user's files safe.

A dataset directory ``OUT/`` holds the shards, ``index.json`` and ``failed.txt``, and vitzoo's working files in
``OUT/.vitzoo-embed/``; a single file has its shards and working files in ``OUT.parts/`` next to it. A work folder is
made whole (marked ``vitzoo-embed.json``) by one rename; one without the mark is never used nor removed, and a
non-empty ``OUT/`` that is not a vitzoo output is refused before anything is written. vitzoo deletes only what it
wrote.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import tmp_path
from ..errors import ConfigError
from .shards import FORMAT, INDEX

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
    """Whether ``folder`` holds a vitzoo embed output (finished or not): its index, work folder or shards."""
    if (folder / WORK_DIR / MARK).is_file() or read_json(folder / INDEX).get("format") == FORMAT:
        return True
    info = next((e.path for e in os.scandir(folder) if SHARD_INFO.fullmatch(e.name)), None)
    return info is not None and {"rows", "failed", "arrays"} <= read_json(Path(info)).keys()


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
