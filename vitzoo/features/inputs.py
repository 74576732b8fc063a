"""Image inputs that scale: folders, globs, list files and WebDataset ``.tar`` shards, listed as a stream of names.

A name is a path, or ``SHARD.tar/MEMBER`` for an image inside a tar shard (read in place, never extracted).
``iter_names`` expands inputs lazily; ``write_manifest`` streams them to a newline-delimited file with an offset
table, and ``Manifest`` reads any name back by position without loading the others, so a listing of millions of
files is made once and every process reads only its part.

Names in vitzoo's text files (the listing, the shards' paths, the failed lists) are exact: one per line, UTF-8,
with ``\\``, newline, carriage return and tab written as ``\\\\``, ``\\n``, ``\\r`` and ``\\t`` (``escape``), and the
bytes of a name that is not UTF-8 kept as they are (Python's ``surrogateescape``). Only ``"\\n"`` ends a line.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import os
import re
import tarfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from ..atomic import atomic_path
from ..errors import ConfigError, FormatError, ImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
TEXT_LISTS = (".txt", ".lst")
PATH_COLUMN = "path"
_GLOB_CHARS = ("*", "?", "[")
ENCODING, ERRORS = "utf-8", "surrogateescape"  # every text file of names; a name that is not UTF-8 keeps its bytes


# ----------------------------------------------------------------------------------------- names in text files
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)
_UNESCAPED = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def escape(text: str) -> str:
    """``text`` on one line: backslash, newline, carriage return, tab written ``\\\\``, ``\\n``, ``\\r``, ``\\t``."""
    if "\\" in text or "\n" in text or "\r" in text or "\t" in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return text


def unescape(line: str) -> str:
    """The text ``escape`` wrote as ``line``."""
    if "\\" not in line:
        return line
    return _UNESCAPE.sub(lambda m: _UNESCAPED.get(m.group(1), m.group(0)), line)


def format_names(names: Sequence[str]) -> bytes:
    """``names`` one per line (each ``escape``d, a newline after each), as the bytes of a names file."""
    text = "\n".join(names)
    plain = "\\" not in text and "\r" not in text and "\t" not in text and text.count("\n") == len(names) - 1
    if not plain:  # the fast path above covers every name without a special character
        text = "\n".join(map(escape, names))
    return (text + "\n" if names else "").encode(ENCODING, ERRORS)


def parse_lines(data: bytes) -> list[str]:
    """The lines of a names file as written (still escaped): split on ``"\\n"`` only."""
    lines = data.decode(ENCODING, ERRORS).split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def parse_names(data: bytes) -> list[str]:
    """The names ``format_names`` wrote as ``data``."""
    lines = parse_lines(data)
    return [unescape(line) for line in lines] if b"\\" in data else lines


def format_failed(failed: Iterable[tuple[str, str]]) -> bytes:
    """``path<TAB>error`` per line, both ``escape``d: the bytes of a failed list."""
    return "".join(f"{escape(path)}\t{escape(err)}\n" for path, err in failed).encode(ENCODING, ERRORS)


def parse_failed(data: bytes) -> list[tuple[str, str]]:
    """The ``(path, error)`` pairs ``format_failed`` wrote as ``data``."""
    pairs = (line.partition("\t") for line in parse_lines(data))
    return [(unescape(path), unescape(err)) for path, _, err in pairs]


# ---------------------------------------------------------------------------------------------------- listing
def iter_names(inputs: str | Path | Iterable[str | Path], *, check: bool = False) -> Iterator[str]:
    """The image names of ``inputs``, in order, expanded lazily.

    Each input is a folder (every image below it, in ``sorted(rglob)`` order, walked one directory at a time), a
    list file (``.txt``/``.lst``: one path per line, UTF-8 or the bytes of the names; ``.csv``/``.parquet``: the
    ``path`` column), a WebDataset ``.tar`` shard (one image per key, as ``SHARD.tar/MEMBER``), a glob pattern
    (``'shards/*.tar'``, each match expanded as above) or an image path, kept as given.

    ``check`` (the embed job): an input that does not exist (and is neither a glob nor ``SHARD.tar/MEMBER``), or
    that yields no image (an empty folder, a glob matching nothing, an empty list), raises ``ConfigError`` naming
    it. The names inside a list are not checked: an unreadable one is skipped and listed when it is decoded.
    """
    for item in [inputs] if isinstance(inputs, (str, Path)) else inputs:
        if not check:
            yield from _expand(str(item))
            continue
        _check_exists(str(item))
        count = 0
        for name in _expand(str(item)):
            count += 1
            yield name
        if not count:
            raise ConfigError(f"{item}: {_nothing_in(str(item))}; pass images, folders, lists or .tar shards of them")


def _check_exists(item: str) -> None:
    if os.path.exists(item) or any(c in item for c in _GLOB_CHARS) or tar_member(item) is not None:
        return
    raise ConfigError(f"{item}: no such file or folder; check the path (an input is an image, a folder, a list file, "
                      "a .tar shard or a glob)")  # fmt: skip


def _nothing_in(item: str) -> str:
    """Why ``item`` (which exists, or is a glob) gave no image name."""
    path = Path(item)
    if path.is_dir():
        return f"no images in this folder (files ending in {', '.join(sorted(IMAGE_SUFFIXES))}, at any depth)"
    if path.suffix.lower() == ".tar" and path.is_file():
        return "no image members in this tar shard"
    if path.exists():
        return "this list names no image"
    return "this pattern matches no file"


def _expand(item: str) -> Iterator[str]:
    path = Path(item)
    suffix = path.suffix.lower()
    if path.is_dir():
        yield from _walk(path)
    elif suffix in TEXT_LISTS:
        with open(path, encoding=ENCODING, errors=ERRORS) as f:  # names that are not UTF-8 keep their bytes
            yield from (line.strip() for line in f if line.strip())
    elif suffix == ".csv":
        yield from _csv_paths(path)
    elif suffix == ".parquet":
        yield from _parquet_paths(path)
    elif suffix == ".tar" and path.is_file():
        yield from tar_images(path)
    elif any(c in item for c in _GLOB_CHARS) and not path.exists():
        for match in sorted(glob.glob(item, recursive=True)):
            yield from _expand(match)
    else:
        yield item


def _walk(folder: Path) -> Iterator[str]:
    """Images below ``folder`` in the order of ``sorted(folder.rglob('*'))``, one directory in memory at a time."""
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            yield from _walk(entry)
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            yield str(entry)


def _csv_paths(path: Path) -> Iterator[str]:
    with open(path, newline="", encoding=ENCODING, errors=ERRORS) as f:
        reader = csv.DictReader(f)
        try:
            if PATH_COLUMN not in (reader.fieldnames or []):
                raise ConfigError(
                    f"{path}: a CSV list needs a '{PATH_COLUMN}' column; its columns are {reader.fieldnames}"
                )
            yield from (row[PATH_COLUMN] for row in reader if row[PATH_COLUMN])
        except csv.Error as err:
            raise FormatError(f"{path}: not a readable CSV list (line {reader.line_num}: {err})") from err


def _parquet_paths(path: Path) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]  # an optional extra: vitzoo[parquet]
    except ImportError as err:
        raise ConfigError(f"{path}: reading parquet lists needs pyarrow: pip install 'vitzoo[parquet]'") from err
    try:  # pyarrow's errors are ValueError (ArrowInvalid) and OSError (ArrowIOError)
        table = pq.ParquetFile(path)
        columns = table.schema_arrow.names
    except (ValueError, OSError) as err:
        raise FormatError(f"{path}: not a readable parquet file ({err})") from err
    if PATH_COLUMN not in columns:
        raise ConfigError(f"{path}: a parquet list needs a '{PATH_COLUMN}' column; it has {columns}")
    try:
        batches = table.iter_batches(columns=[PATH_COLUMN], batch_size=65536)
        for batch in batches:
            for p in batch.column(0).to_pylist():
                if p and not isinstance(p, str):
                    raise FormatError(f"{path}: its '{PATH_COLUMN}' column holds {type(p).__name__} values, not paths")
                if p:
                    yield p
    except (ValueError, OSError) as err:
        if isinstance(err, FormatError):
            raise
        raise FormatError(f"{path}: not a readable parquet file ({err})") from err


def tar_images(shard: str | Path) -> Iterator[str]:
    """``SHARD.tar/MEMBER`` for the first image member of each WebDataset key (``dir/key.ext``: the name up to
    the first dot of its last part), read sequentially in stream mode."""
    seen: str | None = None
    try:
        with tarfile.open(shard, "r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                head, _, base = member.name.rpartition("/")
                key = f"{head}/{base.split('.', 1)[0]}"
                if key != seen and Path(base).suffix.lower() in IMAGE_SUFFIXES:
                    seen = key
                    yield f"{shard}/{member.name}"
    except (tarfile.TarError, EOFError) as err:
        raise FormatError(_not_a_tar(shard, err)) from err


def _not_a_tar(shard: str | Path, err: Exception) -> str:
    with open(shard, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return (
            f"{shard}: a gzip-compressed tar; vitzoo reads the members of a .tar in place, which needs it "
            "uncompressed: decompress it first (gzip -dc FILE > plain.tar)"
        )
    return f"{shard}: not a readable tar archive ({err}); check the file, or leave it out of the inputs"


# --------------------------------------------------------------------------------------------------- manifest
def write_manifest(names: Iterable[str], folder: Path) -> tuple[int, str]:
    """Stream ``names`` to ``folder/inputs.txt`` (one per line, ``escape``d) and ``folder/inputs.offsets`` (int64
    byte offsets, one more than the names), both atomically. Returns the count and the SHA-256 of the listing."""
    digest, count, pos, chunk = hashlib.sha256(), 0, 0, [0]
    with (
        atomic_path(folder / "inputs.offsets") as tmp_offsets,  # renamed in this order: the text last
        atomic_path(folder / "inputs.txt") as tmp_text,
        open(tmp_text, "wb") as ft,
        open(tmp_offsets, "wb") as fo,
    ):
        for name in names:
            try:
                line = escape(name).encode(ENCODING, ERRORS) + b"\n"
            except UnicodeEncodeError as err:  # a lone surrogate that no file system name decodes to
                raise ConfigError(f"an input path is not a file name this system can hold: {name!r}") from err
            ft.write(line)
            digest.update(line)
            pos += len(line)
            count += 1
            chunk.append(pos)
            if len(chunk) >= 65536:
                fo.write(np.asarray(chunk, dtype="<i8").tobytes())
                chunk = []
        fo.write(np.asarray(chunk, dtype="<i8").tobytes())
    return count, digest.hexdigest()


class Manifest(Sequence[str]):
    """The names of a ``write_manifest`` listing, read by position (memory-mapped offsets); picklable.

    Reads are positional (``os.pread``): a forked DataLoader worker shares the open file with its parent, and a
    seek in one would move the other's reads.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._offsets: np.ndarray[Any, Any] | None = None
        self._fd: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"folder": self.folder, "_offsets": None, "_fd": None}

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def _open(self) -> tuple[np.ndarray[Any, Any], int]:
        if self._offsets is None or self._fd is None:
            self._offsets = np.fromfile(self.folder / "inputs.offsets", dtype="<i8")
            self._fd = os.open(self.folder / "inputs.txt", os.O_RDONLY)
        return self._offsets, self._fd

    def _read(self, start: int, stop: int) -> str:
        offsets, fd = self._open()
        begin, end = int(offsets[start]), int(offsets[stop])
        return os.pread(fd, end - begin, begin).decode(ENCODING, ERRORS)

    def __len__(self) -> int:
        return len(self._open()[0]) - 1

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        n = len(self)
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step != 1 or stop <= start:
                return [self[j] for j in range(start, stop, step)]
            return [unescape(line) for line in self._read(start, stop).split("\n")[:-1]]
        if not -n <= i < n:
            raise IndexError(i)
        i %= n
        return unescape(self._read(i, i + 1)[:-1])


# ---------------------------------------------------------------------------------------------------- reading
def tar_member(name: str) -> tuple[str, str] | None:
    """``(shard, member)`` when ``name`` is ``SHARD.tar/MEMBER`` of an existing shard, else None."""
    at = name.find(".tar/")
    while at >= 0:
        shard = name[: at + 4]
        if os.path.isfile(shard):
            return shard, name[at + 5 :]
        at = name.find(".tar/", at + 1)
    return None


class _TarIndex:
    """Member offsets of the tar shards read by this process (a few kept open), so a member is one seek and read."""

    def __init__(self, keep: int = 8) -> None:
        self.keep = keep
        self.open: OrderedDict[str, tuple[int, dict[str, tuple[int, int]]]] = OrderedDict()

    def read(self, shard: str, member: str) -> bytes:
        """The member's bytes, by a positional read (safe in forked workers that share the descriptor)."""
        if shard not in self.open:
            try:
                with tarfile.open(shard, "r:") as tar:
                    index = {m.name: (m.offset_data, m.size) for m in tar if m.isfile()}
            except (tarfile.TarError, EOFError) as err:  # changed since it was listed
                raise ImageError(f"{shard}/{member}: {_not_a_tar(shard, err)}") from err
            self.open[shard] = (os.open(shard, os.O_RDONLY), index)
            if len(self.open) > self.keep:
                os.close(self.open.popitem(last=False)[1][0])
        self.open.move_to_end(shard)
        fd, index = self.open[shard]
        if member not in index:
            raise ImageError(f"{shard}/{member}: no such member in the tar shard")
        offset, size = index[member]
        return os.pread(fd, size, offset)


_TARS = _TarIndex()


def open_source(name: str) -> str | io.BytesIO:
    """What ``PIL.Image.open`` should read for ``name``: the path itself, or the bytes of a tar member."""
    found = tar_member(name)
    if found is None:
        return name
    return io.BytesIO(_TARS.read(*found))
