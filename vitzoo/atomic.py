"""Atomic writes: a file is written under a temporary name beside its destination and renamed over it, so a reader
(or a resumed run) sees the old file or the new one, never half of one. The one implementation every writer uses."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def tmp_path(path: Path, suffix: str = "") -> Path:
    """A name beside ``path`` no other writer uses (process id and a random part), ending in ``suffix``."""
    return path.with_name(f"{path.name}.tmp{os.getpid()}-{secrets.token_hex(4)}{suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path to write ``path``'s content to: renamed over ``path`` when the block ends, removed when it
    raises. ``suffix`` keeps writers that add their own (``np.save`` adds ``.npy``) on the same name."""
    path = Path(path)
    tmp = tmp_path(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8", errors: str = "strict") -> None:
    atomic_write_bytes(path, text.encode(encoding, errors))
