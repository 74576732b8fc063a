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
        description="Download a checkpoint's weights and config.json; prints the weights path. With --text, an "
        "image-text checkpoint's (CLIP, SigLIP) two towers and its tokenizer's files, so that "
        "create_image_text_model(NAME) and its tokenizer (vitzoo zeroshot, search --text) then work offline.",
    )
    p.add_argument("name", help="arch, arch.tag or hf-hub:org/repo")
    p.add_argument("--to", metavar="DIR", help="copy into DIR instead of only the HF cache")
    p.add_argument(
        "--text",
        action="store_true",
        help="also the text tower and the tokenizer of an image-text checkpoint, into the HF cache (not with --to)",
    )
    options.revision(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..weights.source import default_checkpoint, resolve

    if args.text and args.to is not None:
        raise ConfigError(
            "--text fills the Hugging Face cache, which create_image_text_model reads offline; leave out --to (set "
            "HF_HUB_CACHE to choose where the cache is)"
        )
    src = default_checkpoint(resolve(args.name, revision=args.revision), args.revision)
    if src.location is None or src.location.repo_id is None:
        raise ConfigError(f"{args.name} is not on the Hub: there is nothing to download")
    if args.text:
        return _text(args)
    *others, weights = src.location.download(local_dir=args.to)
    print(weights)
    names = " and ".join(p.name for p in [weights, *others])
    print(f"{src.location.repo_id}: {names} ready in {weights.parent}", file=sys.stderr)
    return 0


def _text(args: argparse.Namespace) -> int:
    """Both towers and the tokenizer, by the reads that load them, into the HF cache."""
    from ..weights.two_tower import prefetch

    towers, weights = prefetch(args.name, args.revision)
    print(weights)
    print(
        f"{towers.source.label}: both towers ({weights.name}), their config and the tokenizer's files ready in the "
        "Hugging Face cache",
        file=sys.stderr,
    )
    return 0
