"""``vitzoo finetune``: fine-tune a checkpoint on an image folder; prints the output folder."""

from __future__ import annotations

import argparse
from typing import Any

from .. import choices
from . import options
from .options import command


def add_parser(subparsers: Any) -> None:
    p = command(
        subparsers,
        "finetune",
        help="fine-tune a checkpoint on an image folder (paper recipe or AdamW with layer decay; torchrun-ready)",
        description="Fine-tune on an ImageFolder (or a CSV of path,label) and write a save_pretrained folder with "
        "the new class names, log.json and a checkpoint per epoch. Re-running the same command resumes; a command "
        "that would change the result (model, weights, data, recipe, hyper-parameters, seed) is refused. "
        "Recipes: 'paper' (SGD momentum 0.9, no weight decay, cosine with warmup, grad clip 1, zero head) and "
        "'adamw' (layer-wise lr decay 0.65, weight decay 0.05). docs/finetune.md.",
    )
    p.add_argument("model", help="arch.tag, hf-hub:org/repo or local-dir:PATH")
    p.add_argument("train", help="ImageFolder (one sub-folder per class) or CSV of path,label")
    p.add_argument("--val", help="validation ImageFolder or CSV (the training classes)")
    p.add_argument(
        "--out", required=True, help="output folder (save_pretrained layout): new, empty, or an earlier run's to resume"
    )
    p.add_argument("--recipe", choices=choices.RECIPES, default="paper", help="optimiser, schedule and head init")
    options.img_size(p)
    p.add_argument("--epochs", type=int, default=10, help="passes over the training set")
    options.batch_size(p, default=64, help="global batch, split across torchrun processes")
    p.add_argument("--lr", type=float, help="peak learning rate (paper: 0.01, adamw: 5e-4)")
    p.add_argument("--weight-decay", type=float, help="weight decay (default: the recipe's)")
    p.add_argument("--layer-decay", type=float, help="layer-wise lr decay (default: the recipe's)")
    p.add_argument("--clip-grad", type=float, help="max gradient norm (default: the recipe's)")
    p.add_argument("--warmup", type=float, help="fraction of the steps in linear warmup (default 0.05)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast")
    p.add_argument("--grad-checkpointing", action="store_true", help="recompute blocks in backward (less memory)")
    options.workers(p, default=0, help="data loading processes")
    p.add_argument("--seed", type=int, default=0, help="initialisation, data order and augmentation")
    options.device(p, help="cpu, cuda, ... (default: cuda when available)")
    options.quiet(p)
    options.random_weights(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train.finetune import FinetuneArgs, finetune

    out = finetune(
        FinetuneArgs(
            model=args.model,
            train=args.train,
            out=args.out,
            val=args.val,
            recipe=args.recipe,
            img_size=options.size_of(args.img_size),
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            weight_decay=args.weight_decay,
            layer_decay=args.layer_decay,
            clip_grad=args.clip_grad,
            warmup=args.warmup,
            bf16=args.bf16,
            grad_checkpointing=args.grad_checkpointing,
            workers=args.workers,
            seed=args.seed,
            device=args.device,
            pretrained=not args.random_weights,
            progress=not args.quiet,
        )
    )
    print(out)
    return 0
