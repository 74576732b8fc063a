"""``vitzoo predict``: the top-k classes of images; unreadable images are skipped and named on stderr."""

from __future__ import annotations

import argparse
import json
from typing import Any

from . import options
from .options import command, positive_int
from .output import note


def add_parser(subparsers: Any) -> None:
    p = command(
        subparsers,
        "predict",
        help="top-k classes of images",
        description="Classify images (stdout). Unreadable images are skipped and named on stderr; none readable "
        "is an error.",
    )
    p.add_argument("name", help="a checkpoint with a classifier head (arch.tag, hf-hub:..., local-dir:...)")
    p.add_argument("images", nargs="+", help="image files, folders or a .txt list of paths")
    p.add_argument("--topk", type=positive_int, default=5, help="classes per image")
    options.json_output(p)
    options.quiet(p)
    options.model(p)
    options.inference(p)
    options.runtime(p)
    p.set_defaults(func=run)


def skipped_line(item: Any, reason: str) -> str:
    """What an unreadable input's line says: the reason, which names the input, or the input and the reason."""
    return f"skipped {reason}" if str(item) in reason else f"skipped {item}: {reason}"


def run(args: argparse.Namespace) -> int:
    from ..features.batches import require_inputs
    from ..features.extract import predict

    items = require_inputs(args.images)  # expanded once, before the model loads: predict takes the list as it is
    model = options.load_model(args.name, args)
    skipped: list[str] = []
    results = predict(
        model,
        items,
        topk=args.topk,
        dtype=args.dtype,
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.workers,
        progress=not args.quiet,
        exact_decode=args.exact_decode,
        runtime=args.runtime,
        on_error=lambda item, reason: skipped.append(skipped_line(item, reason)),
    )
    for line in skipped:
        note(line)
    read = [(item, top) for item, top in zip(items, results, strict=True) if top]
    if args.json:
        rows = [
            {"input": str(i), "top": [{"label": p.label, "index": p.index, "prob": round(p.prob, 6)} for p in top]}
            for i, top in read
        ]
        print(json.dumps(rows, indent=1))
        return 0
    for item, top in read:
        print(item)
        for p in top:
            print(f"  {p.prob:7.2%}  {p.label}  ({p.index})")
    return 0
