"""``vitzoo fewshot``: few-shot linear accuracy on frozen features, in the table format of ``vitzoo probe``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .. import choices
from . import options
from .options import command
from .output import percent, print_table, shot_column


def add_parser(subparsers: Any) -> None:
    p = command(
        subparsers,
        "fewshot",
        help="few-shot linear accuracy on frozen features (ImageFolder train/test folders)",
        description="Closed-form ridge regression to {-1,1}^K targets on k images per class (paper §4.1). Prints "
        "the accuracy in percent for each number of shots; --json prints {shots: accuracy in [0, 1]}.",
    )
    p.add_argument("name", help="arch.tag, hf-hub:org/repo or local-dir:PATH")
    p.add_argument("train_dir", help="one sub-folder of images per class")
    p.add_argument("test_dir", help="same class sub-folders")
    options.fewshot(p)
    options.pool(p, choices.VECTOR_POOLS)
    options.json_output(p)
    options.quiet(p)
    options.model(p)
    options.inference(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..eval.fewshot import fewshot_eval
    from ..features.extract import resolve_pool

    model = options.load_model(args.name, args)
    results = fewshot_eval(
        model,
        args.train_dir,
        args.test_dir,
        shots=args.shots,
        l2_reg=args.l2_reg,
        seed=args.seed,
        pool=args.pool,
        batch_size=args.batch_size,
        num_workers=args.workers,
        dtype=args.dtype,
        device=args.device,
        progress=not args.quiet,
        exact_decode=args.exact_decode,
    )
    if args.json:
        print(json.dumps({str(k): v for k, v in results.items()}))
        return 0
    headers = ["model", "pool", *(shot_column(k) for k in results)]
    print_table(headers, [[args.name, resolve_pool(model, args.pool), *(percent(v) for v in results.values())]])
    return 0
