"""``vitzoo download``: a checkpoint's files into the Hugging Face cache (or a folder); prints the weights path."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import ConfigError
from . import options
from .options import command


def add_parser(subparsers: Any) -> None:
    p = command(
        subparsers,
        "download",
        help="prefetch a checkpoint into the Hugging Face cache (or a folder)",
        description="Download a checkpoint's weights and config.json; prints the weights path.",
    )
    p.add_argument("name", help="arch, arch.tag or hf-hub:org/repo")
    p.add_argument("--to", metavar="DIR", help="copy into DIR instead of only the HF cache")
    options.revision(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..weights.source import default_checkpoint, resolve

    src = default_checkpoint(resolve(args.name, revision=args.revision), args.revision)
    if src.location is None or src.location.repo_id is None:
        raise ConfigError(f"{args.name} is not on the Hub: there is nothing to download")
    *others, weights = src.location.download(local_dir=args.to)
    print(weights)
    names = " and ".join(p.name for p in [weights, *others])
    print(f"{src.location.repo_id}: {names} ready in {weights.parent}", file=sys.stderr)
    return 0
