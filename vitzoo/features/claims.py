"""Work claimed through a shared folder: whoever creates ``NAME.claim`` first owns the work ``NAME``. Processes need
no other channel, so any number of them, on any number of machines that see the folder, share the work and a fast
one simply takes more.

A claim is created whole: its owner (host, process id, rank, a random id, time) is written to a file of this
process's own, then hard-linked to ``NAME.claim``, which fails when the name exists (create-if-absent, with content,
on NFS too). So a claim that cannot be parsed was never written by a live owner, and is stale at once. The owner
renews a claim (its modification time) as it works. A claim is stale, and the next process to look takes the work
over, when its owner was on this host and its process is gone (a killed or interrupted run), or when it has not been
renewed for ``lease_s`` seconds (an owner on another machine that died). A take-over moves the stale claim aside
first and checks that what it moved is the claim it judged stale, so of several processes taking over at once one
wins (and should two still do the same work, the embed job writes the same files either way).

The folder is made by the embed job with its work folder, never here: a folder another process removed (the run is
finished) stays removed, and every claim in it is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import tmp_path

DEFAULT_LEASE_S = 600.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


@dataclass
class Claims:
    """The claims in ``folder`` as seen by this process; ``held``: the names it holds."""

    folder: Path
    lease_s: float = DEFAULT_LEASE_S
    rank: int = 0
    owner: dict[str, Any] = field(init=False)
    held: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(), "rank": self.rank, "id": secrets.token_hex(8)}

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.claim"

    def take(self, name: str) -> bool:
        """Claim ``name``: True when this process now owns it (a new claim, or a stale one taken over)."""
        if self._create(name):
            return True
        stale, judged = self._judge(name)
        if not stale:
            return False
        if judged is None:  # released meanwhile
            return self._create(name)
        moved = self.path(name).with_name(f"{name}.stale.{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.rename(self.path(name), moved)  # of several processes taking over, one moves it
        except FileNotFoundError:
            return False
        try:
            if moved.read_bytes() != judged:  # a fresh claim made since it was judged: give it back
                with contextlib.suppress(FileExistsError):
                    os.link(moved, self.path(name))
                return False
        finally:
            moved.unlink(missing_ok=True)
        return self._create(name)

    def _create(self, name: str) -> bool:
        fresh = name not in self.held
        self.held.add(name)  # before the link: an interruption right after it still releases the claim
        tmp = tmp_path(self.path(name))
        try:
            tmp.write_text(json.dumps({**self.owner, "time": time.time()}))
            os.link(tmp, self.path(name))
        except (FileExistsError, FileNotFoundError):  # claimed already, or the folder is gone (the run is finished)
            if fresh:
                self.held.discard(name)
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def renew(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):  # taken over as stale: still done, and written atomically
            os.utime(self.path(name))

    def release(self, name: str) -> None:
        """Give ``name`` back: its claim is removed if it is still this one's (not taken over meanwhile)."""
        self.held.discard(name)
        holder = self.holder(name)
        if holder is not None and holder.get("id") == self.owner["id"]:
            self.path(name).unlink(missing_ok=True)

    def release_all(self) -> None:
        """Give back every claim this process holds (an interrupted or failed run)."""
        for name in sorted(self.held):
            self.release(name)

    def stale(self, name: str) -> bool:
        """Whether the claim ``name`` is absent, held by a process that is gone, was not renewed for ``lease_s``, or
        cannot be parsed (claims are written whole: no live owner wrote it)."""
        return self._judge(name)[0]

    def _judge(self, name: str) -> tuple[bool, bytes | None]:
        """Whether the claim ``name`` is stale, and the bytes judged (None when there is no claim)."""
        path = self.path(name)
        try:
            age = time.time() - path.stat().st_mtime
            data = path.read_bytes()
        except FileNotFoundError:
            return True, None
        try:
            owner = json.loads(data)
        except ValueError:  # UnicodeDecodeError too
            return True, data
        if not isinstance(owner, dict):
            return True, data
        pid = owner.get("pid")
        local = owner.get("host") == self.owner["host"]
        if local and isinstance(pid, int) and pid != os.getpid() and not _alive(pid):
            return True, data
        return age > self.lease_s, data

    def holder(self, name: str) -> dict[str, Any] | None:
        try:
            holder = json.loads(self.path(name).read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None
