"""``vitzoo analyze``: the paper's figures (or DINOv2's patch PCA) for a model and images; prints the files."""

from __future__ import annotations

import argparse
from typing import Any

from . import options
from .options import command
from .output import note


def add_parser(subparsers: Any) -> None:
    p = command(
        subparsers,
        "analyze",
        help="the paper's figures for a model and images (PNG + JSON)",
        description="Attention rollout and class-token attention per image, mean attention distance per head, "
        "patch-embedding filter components and position-embedding similarity (ViT paper, Figures 6-7). "
        "Needs matplotlib: pip install 'vitzoo[plot]'.",
    )
    p.add_argument("name", help="arch.tag, hf-hub:org/repo or local-dir:PATH")
    p.add_argument("images", nargs="+", help="image files, folders, .txt lists of paths or globs")
    p.add_argument("--out", required=True, help="folder for the PNGs and analysis.json")
    p.add_argument("--components", type=int, default=28, help="filter principal components to draw")
    p.add_argument(
        "--pca",
        action="store_true",
        help="instead: the first three principal components of the patch features as RGB, foreground-masked "
        "(DINOv2 Figure 1), one PCA over all the images",
    )
    p.add_argument("--layer", type=int, default=-1, help="--pca: the block whose patch features are used")
    p.add_argument(
        "--threshold", type=float, default=0.0, help="--pca: first-component score above which a patch is foreground"
    )
    options.quiet(p)
    options.model(p)
    options.inference(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..eval import plots
    from ..eval.analyze import attention_figures, pca_figures
    from ..features.batches import require_inputs

    plots._plt()  # before the model loads: fail early, with the install hint, if matplotlib is missing
    items = require_inputs(args.images)  # folders, lists and globs, as predict takes them
    model = options.load_model(args.name, args)
    if args.pca:
        written = pca_figures(
            model,
            items,
            args.out,
            name=args.name,
            layer=args.layer,
            threshold=args.threshold,
            dtype=args.dtype,
            device=args.device,
            batch_size=args.batch_size,
            num_workers=args.workers,
            exact_decode=args.exact_decode,
        )
    else:
        written = attention_figures(
            model,
            items,
            args.out,
            name=args.name,
            components=args.components,
            dtype=args.dtype,
            device=args.device,
            progress=not args.quiet,
            log=note,
        )
    for path in written:
        print(path)
    return 0
