"""``vitzoo list``: the model architectures or the pretrained checkpoints, as a table, names or markdown."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .options import command
from .output import print_table


def add_parser(subparsers: Any) -> None:
    p = command(subparsers, "list", help="list the model architectures", description="List model architectures.")
    p.add_argument("pattern", nargs="?", help="shell-style filter, e.g. '*base*' or 'ViT-L*'")
    p.add_argument(
        "--format",
        choices=("table", "names", "markdown"),
        default="table",
        help="a table, one name per line, or the markdown table of docs/models.md (docs/pretrained.md)",
    )
    p.add_argument("--pretrained", action="store_true", help="list pretrained checkpoints (arch.tag) instead")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import catalog
    from ..models.archs import list_models
    from ..weights.pretrained import list_pretrained

    if args.format == "markdown":
        sys.stdout.write(catalog.pretrained_markdown() if args.pretrained else catalog.models_markdown())
        return 0
    what = "pretrained checkpoint" if args.pretrained else "model"
    names = list_pretrained(args.pattern) if args.pretrained else list_models(args.pattern)
    if not names:
        print(f"no {what} matches {args.pattern!r}", file=sys.stderr)
        return 1
    if args.format == "names":
        print("\n".join(names))
    elif args.pretrained:
        print_table(catalog.PRETRAINED_HEADERS, catalog.pretrained_rows(args.pattern))
    else:
        print_table(catalog.MODEL_HEADERS, catalog.model_rows(args.pattern))
    return 0
