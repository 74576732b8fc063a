"""Work claimed through a shared folder: whoever creates ``NAME.claim`` first (an atomic ``O_CREAT | O_EXCL``) owns
the work ``NAME``. Processes need no other channel, so any number of them, on any number of machines that see the
folder, share the work and a fast one simply takes more.

A claim records its owner (host, process id, rank) and its time; the owner renews it (its modification time) as it
works. A claim is stale, and the next process to look takes the work over, when its owner was on this host and its
process is gone (a killed or interrupted run), or when it has not been renewed for ``lease_s`` seconds (an owner on
another machine that died). Two processes taking over the same stale claim at once may both do the work: the
results are written atomically and are the same, so that costs time, never correctness.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    """The claims in ``folder`` as seen by this process."""

    folder: Path
    lease_s: float = DEFAULT_LEASE_S
    rank: int = 0
    owner: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(), "rank": self.rank}
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.claim"

    def take(self, name: str) -> bool:
        """Claim ``name``: True when this process now owns it (a new claim, or a stale one taken over)."""
        if self._create(name):
            return True
        if not self.stale(name):
            return False
        moved = self.path(name).with_name(f"{name}.stale.{os.getpid()}")
        try:
            os.rename(self.path(name), moved)  # one of several processes taking over wins the rename
        except FileNotFoundError:
            return False
        moved.unlink(missing_ok=True)
        return self._create(name)

    def _create(self, name: str) -> bool:
        try:
            fd = os.open(self.path(name), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except (FileExistsError, FileNotFoundError):  # claimed already, or the folder is gone (the run is finished)
            return False
        with os.fdopen(fd, "w") as f:
            json.dump({**self.owner, "time": time.time()}, f)
        return True

    def renew(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):  # taken over as stale: still done, and written atomically
            os.utime(self.path(name))

    def release(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def stale(self, name: str) -> bool:
        """Whether the claim ``name`` is held by a process that is gone, or was not renewed for ``lease_s``."""
        path = self.path(name)
        try:
            age = time.time() - path.stat().st_mtime
            owner = json.loads(path.read_text() or "{}")
        except FileNotFoundError:
            return True
        except ValueError:  # being written right now
            return False
        pid = owner.get("pid")
        local = owner.get("host") == self.owner["host"] and isinstance(pid, int)
        if local and pid != os.getpid() and not _alive(pid):
            return True
        return age > self.lease_s

    def holder(self, name: str) -> dict[str, Any] | None:
        try:
            holder: dict[str, Any] = json.loads(self.path(name).read_text() or "{}")
        except (FileNotFoundError, ValueError):
            return None
        return holder
