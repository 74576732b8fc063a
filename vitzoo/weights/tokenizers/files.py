"""The files a tokenizer is read from, in a Hub repo or a local folder, each fetched only when asked for."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import CheckpointError
from .. import hub


@dataclass(frozen=True)
class RepoFiles:
    """A Hub repo (``repo_id`` at ``revision``) or a local ``folder``; ``label`` names it in messages."""

    label: str
    repo_id: str | None = None
    revision: str | None = None
    folder: Path | None = None

    def get(self, filename: str) -> Path | None:
        """The file on disk (downloaded into the HF cache from a repo), None when there is no such file."""
        if self.repo_id is not None:
            return hub.download_if_present(self.repo_id, filename, revision=self.revision)
        assert self.folder is not None
        path = self.folder / filename
        return path if path.is_file() else None

    def json(self, filename: str) -> dict[str, Any] | None:
        """A JSON object file, None when there is no such file."""
        path = self.get(filename)
        if path is None:
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise CheckpointError(f"{self.label}: {filename} is not valid JSON ({err})") from err
        if not isinstance(data, dict):
            raise CheckpointError(f"{self.label}: {filename} is not a JSON object")
        return data

    def where(self, filename: str) -> str:
        """How messages and ``Tokenizer.name`` name one of its files."""
        return f"{self.label}: {filename}"
