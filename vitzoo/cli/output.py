"""How the commands print: plain-text tables, and accuracies (fewshot and probe print them alike)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell, two spaces apart, on stdout."""
    table = [list(headers), *map(list, rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def percent(value: float | None) -> str:
    """An accuracy in [0, 1] as a table cell: percent with one decimal, ``-`` where there is none."""
    return "-" if value is None else f"{100 * value:.1f}"


def shot_column(shots: int) -> str:
    """The column of few-shot accuracy with ``shots`` images per class."""
    return f"{shots}-shot"


def note(message: str) -> None:
    """A line for the user on stderr (what was skipped, and why)."""
    print(f"vitzoo: {message}", file=sys.stderr)
