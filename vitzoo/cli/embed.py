"""``vitzoo embed``: the resumable, distributed embed job (``embed_to_file``) from the command line."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import choices
from . import options
from .options import command


def add_parser(subparsers: Any) -> None:
    p = command(
        subparsers,
        "embed",
        help="embed images into a dataset directory, a .safetensors or a .npy file (resumable, torchrun-ready)",
        description="Embed images with a checkpoint's own preprocessing. Work is written in shards, claimed through "
        "the output by any number of processes (torchrun ranks, or separate launches on machines sharing the "
        "filesystem); re-running the same command resumes. The output is the same as from one process. Unreadable "
        "images are skipped and listed.",
    )
    p.add_argument("name", help="arch.tag, hf-hub:org/repo or local-dir:PATH")
    p.add_argument(
        "inputs", nargs="+", help="image files, folders (recursive), .txt/.csv/.parquet lists, .tar shards or globs"
    )
    p.add_argument(
        "--out",
        required=True,
        help="a directory (no suffix: shards + index.json, any size), or one .safetensors (features + metadata) "
        "or .npy file for small runs",
    )
    options.pool(p, choices.FEATURE_POOLS)
    options.layers(p)
    p.add_argument("--shard-size", type=int, default=1024, help="images per resumable shard")
    p.add_argument("--distributed", action="store_true", help="init torch.distributed from env (torchrun sets it)")
    options.quiet(p)
    p.add_argument(
        "--lease", type=float, default=600.0, help="seconds after which an unrenewed shard claim is taken over"
    )
    options.model(p)
    options.inference(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..features.distributed import local_device, process_group
    from ..features.embed_job import embed_to_file

    args.device = local_device(args.device)
    with process_group(args.device, required=args.distributed):
        model = options.load_model(args.name, args)
        summary = embed_to_file(
            model,
            args.inputs,  # listed once, by the first process to claim the listing
            args.out,
            name=args.name,
            revision=args.revision,
            pool=args.pool,
            layers=args.layers,
            batch_size=args.batch_size,
            shard_size=args.shard_size,
            num_workers=args.workers,
            dtype=args.dtype,
            device=args.device,
            progress=not args.quiet,
            lease_s=args.lease,
            exact_decode=args.exact_decode,
        )
    if summary is not None:  # the process that finalised the output
        print(args.out)
        msg = f"{summary.rows} images embedded into {args.out}"
        if summary.failed:
            msg += f"; {summary.failed} unreadable, listed in {summary.failed_file}"
        print(msg, file=sys.stderr)
    return 0
