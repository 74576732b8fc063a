"""``vitzoo embed``: the resumable, distributed embed job (``embed_to_file``) from the command line."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import choices
from ..errors import ConfigError
from . import options
from .options import command


def add_parser(subparsers: Any) -> None:
    p = command(
        subparsers,
        "embed",
        help="embed images or texts into a dataset directory, a .safetensors or a .npy file (resumable, "
        "torchrun-ready)",
        description="Embed images with a checkpoint's own preprocessing. Work is written in shards, claimed through "
        "the output by any number of processes (torchrun ranks, or separate launches on machines sharing the "
        "filesystem); re-running the same command resumes. The output is the same as from one process. Unreadable "
        "images are skipped and listed. With --text-file, the texts of a file are embedded by an image-text model's "
        "text tower instead (CLIP, SigLIP), into the same outputs: each row's path is its text.",
    )
    p.add_argument("name", help="arch.tag, hf-hub:org/repo or local-dir:PATH")
    p.add_argument(
        "inputs",
        nargs="*",
        help="image files, folders (recursive), .txt/.csv/.parquet lists, .tar shards or globs (none with --text-file)",
    )
    p.add_argument(
        "--text-file",
        metavar="FILE",
        help="embed texts instead of images, with the model's text tower (an image-text model: CLIP, SigLIP): one "
        "per line of a UTF-8 file (lines end at \\n or \\r\\n only), blank lines (empty or only whitespace) skipped, "
        "each row's path its text, pool 'text' recorded (vitzoo search takes it with the same --model). One process; "
        "re-running the same command resumes. Not with --pool, --layers, --img-size, --workers, --exact-decode or "
        "--distributed",
    )
    p.add_argument(
        "--out",
        required=True,
        help="a directory (no suffix: shards + index.json, any size), or one .safetensors (features + metadata) "
        "or .npy file for small runs",
    )
    options.pool(p, choices.FEATURE_POOLS)
    options.layers(p)
    p.add_argument("--shard-size", type=int, default=1024, help="images (or texts) per resumable shard")
    p.add_argument("--distributed", action="store_true", help="init torch.distributed from env (torchrun sets it)")
    options.quiet(p)
    p.add_argument(
        "--lease",
        type=float,
        default=None,
        help="seconds after which an unrenewed shard claim is taken over (default: 600)",
    )
    options.model(p)
    options.inference(p)
    options.runtime(p)
    p.set_defaults(func=run, trailing_inputs="inputs")  # NAME --out OUT IMAGES...: cli.parse_args


def run(args: argparse.Namespace) -> int:
    if args.text_file is not None:
        return _run_texts(args)
    if not args.inputs:
        raise ConfigError("no inputs: pass image files, folders, list files, .tar shards or globs, or --text-file FILE")
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
            lease_s=600.0 if args.lease is None else args.lease,
            exact_decode=args.exact_decode,
            runtime=args.runtime,
        )
    if summary is not None:  # the process that finalised the output
        print(args.out)
        msg = f"{summary.rows} images embedded into {args.out}"
        if summary.failed:
            msg += f"; {summary.failed} unreadable, listed in {summary.failed_file}"
        print(msg, file=sys.stderr)
    return 0


def _run_texts(args: argparse.Namespace) -> int:
    """``--text-file``: the texts of the file embedded by the model's text tower into ``--out``."""
    if args.inputs:
        raise ConfigError(
            f"embed images or the texts of --text-file, not both: drop {args.inputs[0]!r} (and the other inputs), or "
            "--text-file"
        )
    image_only = {
        "--pool": args.pool is not None,
        "--layers": bool(args.layers),
        "--img-size": bool(args.img_size),
        "--workers": args.workers is not None,
        "--exact-decode": args.exact_decode,
        "--distributed": args.distributed,
        "--lease": args.lease is not None,
        "--runtime": args.runtime != "torch",
        "--dtype int8": args.dtype == "int8",
    }
    given = [flag for flag, on in image_only.items() if on]
    if given:
        raise ConfigError(f"{', '.join(given)} applies to images, not to the texts of --text-file: drop it")
    from ..factory import create_image_text_model
    from ..features.texts import embed_texts_to_file, read_texts

    texts = read_texts(args.text_file)  # a file that cannot be read is refused before the model loads
    pretrained = not args.random_weights
    model = create_image_text_model(args.name, pretrained, dtype=args.dtype, revision=args.revision, device=args.device)
    summary = embed_texts_to_file(
        model,
        texts,
        args.out,
        name=args.name,
        revision=args.revision,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        progress=not args.quiet,
    )
    print(args.out)
    print(f"{summary.rows} texts embedded into {args.out}", file=sys.stderr)
    return 0
