"""The ``vitzoo`` command: argument parsing and printing only; every command calls the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import VitzooError
from .factory import describe
from .registry import ALIASES, list_models

_COLUMNS = ("name", "aliases", "params", "params_no_head", "layers", "width", "mlp", "heads", "patch", "img_size", "tokens")
_HEADERS = ("model", "aliases", "params (1k head)", "params (no head)", "layers", "D", "MLP", "heads", "patch", "img", "tokens")


def _rows(pattern: str | None) -> list[list[str]]:
    rows = []
    for name in list_models(pattern):
        info = describe(name)
        info["aliases"] = ", ".join(a for a, n in ALIASES.items() if n == name)
        info["params"] = f"{info['params']:,}"
        info["params_no_head"] = f"{info['params_no_head']:,}"
        rows.append([str(info[c]) for c in _COLUMNS])
    return rows


def models_markdown() -> str:
    """The models table of docs/models.md (regenerate with ``vitzoo list --format markdown > docs/models.md``)."""
    lines = [
        "# Models",
        "",
        "Generated from the registry by `vitzoo list --format markdown > docs/models.md`; do not edit by hand.",
        "Sizes are Table 1 of the ViT paper (Ti and S: the official repo's configs). Parameter counts equal timm's.",
        "",
        "| " + " | ".join(_HEADERS) + " |",
        "|" + "|".join("---" for _ in _HEADERS) + "|",
    ]
    lines += ["| " + " | ".join(f"`{r[0]}`" if i == 0 else r[i] for i in range(len(r))) + " |" for r in _rows(None)]
    return "\n".join(lines) + "\n"


def _cmd_list(args: argparse.Namespace) -> int:
    if args.format == "markdown":
        sys.stdout.write(models_markdown())
        return 0
    names = list_models(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}", file=sys.stderr)
        return 1
    if args.format == "names":
        print("\n".join(names))
        return 0
    rows = [list(_HEADERS)] + _rows(args.pattern)
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADERS))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitzoo",
        description="Vision Transformers (Dosovitskiy et al., ICLR 2021) for PyTorch: list and inspect models.",
    )
    parser.add_argument("--version", action="version", version=f"vitzoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_list = sub.add_parser("list", help="list the model architectures", description="List model architectures.")
    p_list.add_argument("pattern", nargs="?", help="shell-style filter, e.g. '*base*' or 'ViT-L*'")
    p_list.add_argument(
        "--format", choices=("table", "names", "markdown"), default="table",
        help="table (default), one name per line, or the markdown table of docs/models.md",
    )  # fmt: skip
    p_list.set_defaults(func=_cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.func(args)
    except VitzooError as err:
        print(f"vitzoo: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
