"""``vitzoo probe``: k-NN, linear probe and few-shot accuracy for each (model, layer, pool), as one table."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import choices
from ..errors import ConfigError
from . import options
from .options import command
from .output import percent, print_table, shot_column

if TYPE_CHECKING:
    from ..eval.probe_job import ProbeRow, ProbeSettings


def add_parser(subparsers: Any) -> None:
    p = command(
        subparsers,
        "probe",
        help="which model, layer and pooling fit your data: k-NN, linear probe and few-shot on frozen features",
        description="Embed a labelled train and test set with each model (cached: a second run reuses the "
        "features), then score every (model, layer, pool) with DINOv2's weighted k-NN, CLIP's linear probe "
        "(L2 chosen on a validation split) and the ViT paper's few-shot regression. Prints a table (accuracies "
        "in percent); writes results.json and results.csv to --out. See docs/probe.md.",
    )
    p.add_argument("models", nargs="*", help="arch.tag, hf-hub:org/repo or local-dir:PATH (none with embed files)")
    p.add_argument(
        "--train",
        nargs="+",
        required=True,
        help="an ImageFolder (one sub-folder per class), a .csv of path,label, or vitzoo embed output files",
    )
    p.add_argument("--test", nargs="+", required=True, help="the same for the test images")
    p.add_argument("--out", default="vitzoo-probe", help="folder for results.json and results.csv")
    p.add_argument("--cache", help="folder of cached embeddings (default: OUT/embeddings)")
    options.pool(p, choices.VECTOR_POOLS, several=True)
    options.layers(p)
    p.add_argument("--k", type=int, nargs="+", default=choices.KNN_K, help="k-NN neighbours")
    p.add_argument("--temperature", type=float, default=0.07, help="k-NN vote temperature")
    p.add_argument("--C", type=float, default=None, help="linear probe inverse L2 strength (default: swept)")
    options.fewshot(p)
    p.add_argument("--labels", help="with embed files: a .csv of path,label (default: parent folder names)")
    options.quiet(p)
    options.model(p)
    options.inference(p)
    options.runtime(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..eval import probe_job
    from ..features.labelled import label_lookup, read_labelled

    settings = probe_job.ProbeSettings(
        k=tuple(args.k),
        temperature=args.temperature,
        C=args.C,
        shots=tuple(args.shots),
        l2_reg=args.l2_reg,
        seed=args.seed,
        device=args.device,
    )

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"probe: {msg}", file=sys.stderr, flush=True)

    files = [probe_job.is_embeddings_file(t) for t in (*args.train, *args.test)]
    if all(files):
        if args.models or len(args.train) != len(args.test):
            raise ConfigError(
                "with vitzoo embed outputs, give no model names and one --test file per --train file (same order)"
            )
        labels = label_lookup(args.labels) if args.labels else None
        rows = probe_job.probe_files(
            list(zip(args.train, args.test, strict=True)), labels=labels, settings=settings, log=log
        )
    else:
        if any(files) or len(args.train) != 1 or len(args.test) != 1:
            raise ConfigError("--train and --test take one ImageFolder or .csv each, or vitzoo embed output files")
        if not args.models:
            raise ConfigError("name the models to probe (arch.tag, hf-hub:org/repo or local-dir:PATH)")
        embedding = probe_job.EmbedOptions(
            layers=args.layers,
            revision=args.revision,
            dtype=args.dtype,
            device=args.device,
            batch_size=args.batch_size,
            num_workers=args.workers,
            progress=not args.quiet,
            img_size=options.size_of(args.img_size),
            random_weights=args.random_weights,
            exact_decode=args.exact_decode,
            runtime=args.runtime,
        )
        rows = probe_job.probe_models(
            args.models,
            read_labelled(args.train[0]),
            read_labelled(args.test[0]),
            cache_dir=args.cache or Path(args.out) / "embeddings",
            pools=args.pool or [None],
            options=embedding,
            settings=settings,
            log=log,
        )
    json_path, csv_path = probe_job.write_results(rows, args.out, settings)
    print_table(*table(rows, settings))
    print(f"probe: results in {json_path} and {csv_path}", file=sys.stderr)
    return 0


def table(rows: Sequence[ProbeRow], settings: ProbeSettings) -> tuple[list[str], list[list[str]]]:
    """Accuracies in percent: k-NN top-1 for each k, the linear probe (and its C), few-shot for each number of shots."""
    headers = ["model", "layer", "pool", "train", "test"]
    headers += [f"k-NN@{k}" for k in settings.k] + ["linear", "C"] + [shot_column(s) for s in settings.shots]
    out = []
    for r in rows:
        m = r.metrics
        C = m.get("linear_C")
        cells = [percent(m.get(f"knn{k}_top1")) for k in settings.k]
        cells += [percent(m.get("linear_top1")), "-" if C is None else f"{C:.3g}"]
        cells += [percent(m.get(f"{s}shot")) for s in settings.shots]
        out.append([r.model, r.layer, r.pool, str(r.train), str(r.test), *cells])
    return headers, out
