"""The ``vitzoo`` command: argument parsing and printing only; every command calls the library."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch.distributed as dist

from . import catalog
from ._version import __version__
from .errors import ConfigError, VitzooError
from .eval import analysis, plots
from .eval import probe_job as probe_run
from .eval.analyze import attention_figures, pca_figures
from .export import DTYPES as EXPORT_DTYPES
from .export import FORMATS as EXPORT_FORMATS
from .export import export
from .factory import create_model
from .features.embed_job import embed_to_file
from .features.extract import expand_inputs, predict, require_inputs, resolve_device
from .features.transforms import resolve_data_config
from .models.archs import list_models
from .models.flops import flops
from .models.vit import FEATURE_POOLS, VisionTransformer
from .train.finetune import RECIPES, FinetuneArgs, finetune
from .weights.pretrained import list_pretrained
from .weights.source import default_checkpoint, resolve

PERMISSIVE = ("apache-2.0", "mit")  # licenses `vitzoo info` does not flag


def _print_table(headers: Sequence[str], rows: list[list[str]]) -> None:
    table = [list(headers), *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _cmd_list(args: argparse.Namespace) -> int:
    if args.pretrained:
        if args.format == "markdown":
            sys.stdout.write(catalog.pretrained_markdown())
            return 0
        names = list_pretrained(args.pattern)
        if not names:
            print(f"no pretrained checkpoint matches {args.pattern!r}", file=sys.stderr)
            return 1
        if args.format == "names":
            print("\n".join(names))
        else:
            _print_table(catalog.PRETRAINED_HEADERS, catalog.pretrained_rows(args.pattern))
        return 0
    if args.format == "markdown":
        sys.stdout.write(catalog.models_markdown())
        return 0
    names = list_models(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}", file=sys.stderr)
        return 1
    if args.format == "names":
        print("\n".join(names))
        return 0
    _print_table(catalog.MODEL_HEADERS, catalog.model_rows(args.pattern))
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    src = default_checkpoint(resolve(args.name, revision=args.revision), args.revision)
    if src.location is None or src.location.repo_id is None:
        raise ConfigError(f"{args.name} is not on the Hub: there is nothing to download")
    *others, weights = src.location.download(local_dir=args.to)
    print(weights)
    names = " and ".join(p.name for p in [weights, *others])
    print(f"{src.location.repo_id}: {names} ready in {weights.parent}", file=sys.stderr)
    return 0


def _load(name: str, args: argparse.Namespace, **kw: Any) -> VisionTransformer:
    pretrained = not getattr(args, "random_weights", False)
    img = getattr(args, "img_size", None)
    if img:
        kw["img_size"] = tuple(img) if len(img) == 2 else img[0]
    return create_model(name, pretrained=pretrained, revision=getattr(args, "revision", None), **kw)


def _cmd_info(args: argparse.Namespace) -> int:
    src = resolve(args.name)
    model = create_model(src, device="meta")
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    facts = default_checkpoint(src).facts
    info = {
        "name": args.name,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()},
        "params": params,
        "gflops": round(flops(model) / 1e9, 2),
        "data_config": {
            k: list(v) if isinstance(v, tuple) else v for k, v in resolve_data_config(src).to_dict().items()
        },
        "checkpoint": None
        if facts is None
        else {
            "tag": facts.name,
            "hf_hub_id": facts.hf_hub_id,
            "files": list(facts.filenames),
            "num_classes": facts.num_classes,
            "labels": facts.labels,
            "license": facts.license,
            "top1": facts.top1,
            "top5": facts.top5,
            "description": facts.description,
        },
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{args.name}: {params:,} parameters, {info['gflops']} GFLOPs at {cfg.img_size[0]}x{cfg.img_size[1]}")
    print(
        f"  layers {cfg.depth}, width {cfg.embed_dim}, MLP {cfg.mlp_dim}, heads {cfg.num_heads}, "
        f"patch {cfg.patch_size[0]}, tokens {cfg.num_tokens}, "
        f"classes {cfg.num_classes}, pool {cfg.global_pool}"
    )
    d = info["data_config"]
    print(
        f"  eval transform: {d['input_size']}, {d['interpolation']}, crop_pct {d['crop_pct']} {d['crop_mode']}, "
        f"mean {d['mean']}, std {d['std']}"
    )
    if facts is not None:
        top = f", ImageNet top-1 {facts.top1} / top-5 {facts.top5}" if facts.top1 else ""
        print(f"  checkpoint {facts.name}: {facts.hf_hub_id} {list(facts.filenames)}, license {facts.license}{top}")
        if facts.license and facts.license not in PERMISSIVE:
            print(
                f"  note: license {facts.license} is not Apache-2.0 or MIT; read its terms before you use the weights"
            )
        print(f"  {facts.description}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    model = _load(args.name, args)
    items = expand_inputs(args.images)  # expanded once: predict takes the list as it is
    results = predict(
        model,
        items,
        topk=args.topk,
        dtype=args.dtype,
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.workers,
    )
    if args.json:
        rows = [
            {"input": str(i), "top": [{"label": p.label, "index": p.index, "prob": round(p.prob, 6)} for p in r]}
            for i, r in zip(items, results, strict=True)
        ]
        print(json.dumps(rows, indent=1))
        return 0
    for item, top in zip(items, results, strict=True):
        print(item)
        for p in top:
            print(f"  {p.prob:7.2%}  {p.label}  ({p.index})")
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    distributed = args.distributed or int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if (args.device or "cpu").startswith("cuda") else "gloo")
        if args.device and args.device.startswith("cuda"):
            args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    try:
        model = _load(args.name, args)
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
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()
    if summary is not None:  # the process that finalised the output
        print(args.out)
        msg = f"{summary.rows} images embedded into {args.out}"
        if summary.failed:
            msg += f"; {summary.failed} unreadable, listed in {summary.failed_file}"
        print(msg, file=sys.stderr)
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    plots._plt()  # before the model loads: fail early, with the install hint, if matplotlib is missing
    items = require_inputs(args.images)  # folders, lists and globs, as predict takes them
    model = _load(args.name, args)
    if args.pca:
        written = pca_figures(model, items, args.out, name=args.name, layer=args.layer, threshold=args.threshold)
    else:
        written = attention_figures(
            model, items, args.out, name=args.name, components=args.components, progress=False, log=_note
        )
    for path in written:
        print(path)
    return 0


def _note(message: str) -> None:
    print(f"vitzoo: {message}", file=sys.stderr)


def _cmd_probe(args: argparse.Namespace) -> int:
    settings = probe_run.ProbeSettings(
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

    files = [probe_run.is_embeddings_file(t) for t in (*args.train, *args.test)]
    if all(files):
        if args.models or len(args.train) != len(args.test):
            raise ConfigError(
                "with vitzoo embed outputs, give no model names and one --test file per --train file (same order)"
            )
        labels = probe_run.label_lookup(args.labels) if args.labels else None
        rows = probe_run.probe_files(
            list(zip(args.train, args.test, strict=True)), labels=labels, settings=settings, log=log
        )
    else:
        if any(files) or len(args.train) != 1 or len(args.test) != 1:
            raise ConfigError("--train and --test take one ImageFolder or .csv each, or vitzoo embed output files")
        if not args.models:
            raise ConfigError("name the models to probe (arch.tag, hf-hub:org/repo or local-dir:PATH)")
        options = probe_run.EmbedOptions(
            layers=args.layers,
            revision=args.revision,
            dtype=args.dtype,
            device=args.device,
            batch_size=args.batch_size,
            num_workers=args.workers,
            progress=not args.quiet,
            model_options={"img_size": args.img_size, "random_weights": args.random_weights},
        )
        rows = probe_run.probe_models(
            args.models,
            probe_run.labelled_images(args.train[0]),
            probe_run.labelled_images(args.test[0]),
            load=lambda name: _load(name, args),
            cache_dir=args.cache or Path(args.out) / "embeddings",
            pools=args.pool or [None],
            options=options,
            settings=settings,
            log=log,
        )
    json_path, csv_path = probe_run.write_results(rows, args.out, settings)
    _print_table(*_probe_table(rows, settings))
    print(f"probe: results in {json_path} and {csv_path}", file=sys.stderr)
    return 0


def _probe_table(
    rows: Sequence[probe_run.ProbeRow], settings: probe_run.ProbeSettings
) -> tuple[list[str], list[list[str]]]:
    """Accuracies in percent: k-NN top-1 for each k, the linear probe (and its C), few-shot for each number of shots."""
    columns = [f"knn{k}_top1" for k in settings.k] + ["linear_top1", "linear_C"] + [f"{s}shot" for s in settings.shots]
    headers = ["model", "layer", "pool", "train", "test"]
    headers += [f"k-NN@{k}" for k in settings.k] + ["linear", "C"] + [f"{s}-shot" for s in settings.shots]

    def cell(name: str, value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:.3g}" if name == "linear_C" else f"{100 * value:.1f}"

    table = [
        [r.model, r.layer, r.pool, str(r.train), str(r.test), *(cell(c, r.metrics.get(c)) for c in columns)]
        for r in rows
    ]
    return headers, table


def _cmd_fewshot(args: argparse.Namespace) -> int:
    model = _load(args.name, args)
    results = analysis.fewshot_eval(
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
        progress=False,
    )
    if args.json:
        print(json.dumps({str(k): v for k, v in results.items()}))
    else:
        for k, acc in results.items():
            print(f"{k}-shot\t{acc:.4f}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    model = _load(args.name, args)
    start = time.perf_counter()
    path = export(model, args.out, args.format, dynamic_size=args.dynamic_size, dtype=args.dtype)
    size = "any size (multiples of the patch)" if args.dynamic_size else "x".join(map(str, model.config.img_size))
    print(f"{path}\t{args.format}\t{args.dtype}\t{size}\t{time.perf_counter() - start:.1f} s")
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    img = args.img_size
    size = None if not img else (img[0] if len(img) == 1 else (img[0], img[1]))
    fields = {f.name for f in dataclasses.fields(FinetuneArgs)}
    given = {k: v for k, v in vars(args).items() if k in fields and k not in ("img_size", "progress")}
    out = finetune(FinetuneArgs(**given, img_size=size, progress=not args.quiet))
    print(out)
    return 0


_OS_HINTS = {
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EDQUOT: "free some space or write elsewhere",
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "choose a path on a writable file system",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a file is in the way of a folder that path needs",
}


def os_error_message(err: OSError) -> str:
    """One line for a file-system error: the path, what the system said and, for the common causes, what to do."""
    what = err.strerror or str(err)
    where = f"{err.filename}: " if err.filename else ""
    hint = _OS_HINTS.get(err.errno or 0)
    return f"{where}{what}" + (f"; {hint}" if hint else "")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitzoo",
        description="Vision Transformers (Dosovitskiy et al., ICLR 2021) for PyTorch: list models and checkpoints, "
        "download weights, classify and embed images. Results go to stdout, progress and errors to stderr.",
    )
    parser.add_argument("--version", action="version", version=f"vitzoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_list = sub.add_parser("list", help="list the model architectures", description="List model architectures.")
    p_list.add_argument("pattern", nargs="?", help="shell-style filter, e.g. '*base*' or 'ViT-L*'")
    p_list.add_argument(
        "--format",
        choices=("table", "names", "markdown"),
        default="table",
        help="table (default), one name per line, or the markdown table of docs/models.md",
    )
    p_list.add_argument("--pretrained", action="store_true", help="list pretrained checkpoints (arch.tag) instead")
    p_list.set_defaults(func=_cmd_list)
    p_dl = sub.add_parser(
        "download",
        help="prefetch a checkpoint into the Hugging Face cache (or a folder)",
        description="Download a checkpoint's weights and config.json; prints the weights path.",
    )
    p_dl.add_argument("name", help="arch, arch.tag or hf-hub:org/repo")
    p_dl.add_argument("--to", metavar="DIR", help="copy into DIR instead of only the HF cache")
    p_dl.add_argument("--revision", help="branch, tag or commit to pin")
    p_dl.set_defaults(func=_cmd_download)

    p_info = sub.add_parser(
        "info",
        help="show a model's config, size, eval transform and checkpoint facts",
        description="Show config, parameters, GFLOPs, data config and checkpoint facts.",
    )
    p_info.add_argument("name", help="arch, arch.tag, alias, hf-hub:org/repo or local-dir:PATH")
    p_info.add_argument("--json", action="store_true", help="print JSON")
    p_info.set_defaults(func=_cmd_info)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--img-size", type=int, nargs="+", metavar="N", help="input size: N or H W")
        p.add_argument("--batch-size", type=int, default=32)
        p.add_argument("--workers", type=int, default=None, help="decoding processes (default: cores - 1)")
        p.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default=None, help="model dtype")
        p.add_argument("--device", default=None, help="cpu (default), cuda, cuda:1, ...")
        p.add_argument("--revision", help="Hub branch, tag or commit")
        p.add_argument("--random-weights", action="store_true", help=argparse.SUPPRESS)

    p_pred = sub.add_parser("predict", help="top-k classes of images", description="Classify images (stdout).")
    p_pred.add_argument("name", help="a checkpoint with a classifier head (arch.tag, hf-hub:..., local-dir:...)")
    p_pred.add_argument("images", nargs="+", help="image files, folders or a .txt list of paths")
    p_pred.add_argument("--topk", type=int, default=5)
    p_pred.add_argument("--json", action="store_true", help="print JSON instead of a table")
    common(p_pred)
    p_pred.set_defaults(func=_cmd_predict)

    p_emb = sub.add_parser(
        "embed",
        help="embed images into a dataset directory, a .safetensors or a .npy file (resumable, torchrun-ready)",
        description="Embed images with a checkpoint's own preprocessing. Work is written in shards, claimed through "
        "the output by any number of processes (torchrun ranks, or separate launches on machines sharing the "
        "filesystem); re-running the same command resumes. The output is the same as from one process. Unreadable "
        "images are skipped and listed.",
    )
    p_emb.add_argument("name", help="arch.tag, hf-hub:org/repo or local-dir:PATH")
    p_emb.add_argument(
        "inputs", nargs="+", help="image files, folders (recursive), .txt/.csv/.parquet lists, .tar shards or globs"
    )
    p_emb.add_argument(
        "--out",
        required=True,
        help="a directory (no suffix: shards + index.json, any size), or one .safetensors (features + metadata) "
        "or .npy file for small runs",
    )
    p_emb.add_argument(
        "--pool", choices=FEATURE_POOLS, default=None, help="default: the model's own pooling (config.global_pool)"
    )
    p_emb.add_argument("--layers", type=int, nargs="+", help="block indices (negative from the end)")
    p_emb.add_argument("--shard-size", type=int, default=1024, help="images per resumable shard")
    p_emb.add_argument(
        "--exact-decode",
        action="store_true",
        help="decode every pixel of large JPEGs (timm's preprocessing bit for bit); by default JPEGs over twice the "
        "resize target are decoded at 1/2-1/8 scale first (libjpeg draft mode): several times faster on photos",
    )
    p_emb.add_argument("--distributed", action="store_true", help="init torch.distributed from env (torchrun sets it)")
    p_emb.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p_emb.add_argument(
        "--lease", type=float, default=600.0, help="seconds after which an unrenewed shard claim is taken over"
    )
    common(p_emb)
    p_emb.set_defaults(func=_cmd_embed)

    p_an = sub.add_parser(
        "analyze",
        help="the paper's figures for a model and images (PNG + JSON)",
        description="Attention rollout and class-token attention per image, mean attention distance per head, "
        "patch-embedding filter components and position-embedding similarity (ViT paper, Figures 6-7). "
        "Needs matplotlib: pip install 'vitzoo[plot]'.",
    )
    p_an.add_argument("name", help="arch.tag, hf-hub:org/repo or local-dir:PATH")
    p_an.add_argument("images", nargs="+", help="image files, folders, .txt lists of paths or globs")
    p_an.add_argument("--out", required=True, help="folder for the PNGs and analysis.json")
    p_an.add_argument("--components", type=int, default=28, help="filter principal components to draw")
    p_an.add_argument(
        "--pca",
        action="store_true",
        help="instead: the first three principal components of the patch features as RGB, foreground-masked "
        "(DINOv2 Figure 1), one PCA over all the images",
    )
    p_an.add_argument("--layer", type=int, default=-1, help="--pca: the block whose patch features are used")
    p_an.add_argument(
        "--threshold", type=float, default=0.0, help="--pca: first-component score above which a patch is foreground"
    )
    common(p_an)
    p_an.set_defaults(func=_cmd_analyze)

    p_fs = sub.add_parser(
        "fewshot",
        help="few-shot linear accuracy on frozen features (ImageFolder train/test folders)",
        description="Closed-form ridge regression to {-1,1}^K targets on k images per class (paper §4.1).",
    )
    p_fs.add_argument("name", help="arch.tag, hf-hub:org/repo or local-dir:PATH")
    p_fs.add_argument("train_dir", help="one sub-folder of images per class")
    p_fs.add_argument("test_dir", help="same class sub-folders")
    p_fs.add_argument("--shots", type=int, nargs="+", default=[1, 5, 10, 25])
    p_fs.add_argument("--l2-reg", type=float, default=1.0)
    p_fs.add_argument("--seed", type=int, default=0)
    p_fs.add_argument(
        "--pool", choices=("token", "avg", "map", "pre_logits"), default=None, help="default: the model's own pooling"
    )
    p_fs.add_argument("--json", action="store_true")
    common(p_fs)
    p_fs.set_defaults(func=_cmd_fewshot)

    p_pr = sub.add_parser(
        "probe",
        help="which model, layer and pooling fit your data: k-NN, linear probe and few-shot on frozen features",
        description="Embed a labelled train and test set with each model (cached: a second run reuses the "
        "features), then score every (model, layer, pool) with DINOv2's weighted k-NN, CLIP's linear probe "
        "(L2 chosen on a validation split) and the ViT paper's few-shot regression. Prints a table (accuracies "
        "in percent); writes results.json and results.csv to --out. See docs/probe.md.",
    )
    p_pr.add_argument("models", nargs="*", help="arch.tag, hf-hub:org/repo or local-dir:PATH (none with embed files)")
    p_pr.add_argument(
        "--train",
        nargs="+",
        required=True,
        help="an ImageFolder (one sub-folder per class), a .csv of path,label, or vitzoo embed output files",
    )
    p_pr.add_argument("--test", nargs="+", required=True, help="the same for the test images")
    p_pr.add_argument("--out", default="vitzoo-probe", help="folder for results.json and results.csv")
    p_pr.add_argument("--cache", help="folder of cached embeddings (default: OUT/embeddings)")
    p_pr.add_argument(
        "--pool",
        nargs="+",
        choices=[p for p in FEATURE_POOLS if p != "tokens"],
        help="one or more pools (default: each model's own)",
    )
    p_pr.add_argument("--layers", type=int, nargs="+", help="block indices (negative from the end); default: final")
    p_pr.add_argument("--k", type=int, nargs="+", default=list(probe_run.ProbeSettings.k), help="k-NN neighbours")
    p_pr.add_argument("--temperature", type=float, default=0.07, help="k-NN vote temperature")
    p_pr.add_argument("--C", type=float, default=None, help="linear probe inverse L2 strength (default: swept)")
    p_pr.add_argument("--shots", type=int, nargs="+", default=list(probe_run.ProbeSettings.shots))
    p_pr.add_argument("--l2-reg", type=float, default=1.0, help="few-shot ridge strength")
    p_pr.add_argument("--seed", type=int, default=0, help="validation split and few-shot draws")
    p_pr.add_argument("--labels", help="with embed files: a .csv of path,label (default: parent folder names)")
    p_pr.add_argument("--quiet", action="store_true", help="no progress on stderr")
    common(p_pr)
    p_pr.set_defaults(func=_cmd_probe)
    p_ex = sub.add_parser(
        "export",
        help="export a model to ONNX or a torch.export program (.pt2)",
        description="Write the model's forward (images -> output) as an ONNX file or a torch.export program. A fixed "
        "size bakes the position table in; --dynamic-size accepts any multiple of the patch size (docs/export.md). "
        "ONNX needs onnx and onnxscript: pip install 'vitzoo[export]'.",
    )
    p_ex.add_argument("name", help="arch, arch.tag, hf-hub:org/repo or local-dir:PATH")
    p_ex.add_argument("--out", required=True, help="output file (model.onnx, model.pt2)")
    p_ex.add_argument("--format", choices=EXPORT_FORMATS, default="onnx")
    p_ex.add_argument("--img-size", type=int, nargs="+", metavar="N", help="input size N or H W (default: the model's)")
    p_ex.add_argument("--dynamic-size", action="store_true", help="any image height and width (multiples of the patch)")
    p_ex.add_argument("--dtype", choices=tuple(EXPORT_DTYPES), default="fp32")
    p_ex.add_argument("--revision", help="Hub branch, tag or commit")
    p_ex.add_argument("--random-weights", action="store_true", help=argparse.SUPPRESS)
    p_ex.set_defaults(func=_cmd_export)

    p_ft = sub.add_parser(
        "finetune",
        help="fine-tune a checkpoint on an image folder (paper recipe or AdamW with layer decay; torchrun-ready)",
        description="Fine-tune on an ImageFolder (or a CSV of path,label) and write a save_pretrained folder with "
        "the new class names, log.json and a checkpoint per epoch. Re-running the same command resumes; a command "
        "that would change the result (model, weights, data, recipe, hyper-parameters, seed) is refused. "
        "Recipes: 'paper' (SGD momentum 0.9, no weight decay, cosine with warmup, grad clip 1, zero head) and "
        "'adamw' (layer-wise lr decay 0.65, weight decay 0.05). docs/finetune.md.",
    )
    p_ft.add_argument("model", help="arch.tag, hf-hub:org/repo or local-dir:PATH")
    p_ft.add_argument("train", help="ImageFolder (one sub-folder per class) or CSV of path,label")
    p_ft.add_argument("--val", help="validation ImageFolder or CSV (the training classes)")
    p_ft.add_argument(
        "--out", required=True, help="output folder (save_pretrained layout): new, empty, or an earlier run's to resume"
    )
    p_ft.add_argument("--recipe", choices=tuple(RECIPES), default="paper")
    p_ft.add_argument("--img-size", type=int, nargs="+", metavar="N", help="N or H W (default: the checkpoint's)")
    p_ft.add_argument("--epochs", type=int, default=10)
    p_ft.add_argument("--batch-size", type=int, default=64, help="global batch, split across torchrun processes")
    p_ft.add_argument("--lr", type=float, help="peak learning rate (paper: 0.01, adamw: 5e-4)")
    p_ft.add_argument("--weight-decay", type=float)
    p_ft.add_argument("--layer-decay", type=float)
    p_ft.add_argument("--clip-grad", type=float)
    p_ft.add_argument("--warmup", type=float, help="fraction of the steps in linear warmup (default 0.05)")
    p_ft.add_argument("--bf16", action="store_true", help="bf16 autocast")
    p_ft.add_argument("--grad-checkpointing", action="store_true", help="recompute blocks in backward (less memory)")
    p_ft.add_argument("--workers", type=int, default=0, help="data loading processes")
    p_ft.add_argument("--seed", type=int, default=0)
    p_ft.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    p_ft.add_argument("--quiet", action="store_true", help="no progress bars")
    p_ft.add_argument("--random-weights", dest="pretrained", action="store_false", help=argparse.SUPPRESS)
    p_ft.set_defaults(func=_cmd_finetune)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        resolve_device(getattr(args, "device", None))  # a device this machine lacks, before any work
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe surfaces here, not in the interpreter's flush at exit
        return status
    except VitzooError as err:
        print(f"vitzoo: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader left (`vitzoo list | head -1`): stop quietly with SIGPIPE's status, as Unix tools do. stdout goes
        # to devnull first, or the interpreter's final flush of the buffered rest raises again on the way out.
        with contextlib.suppress(OSError, ValueError):  # stdout replaced in-process: no file descriptor to redirect
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # 141, the status of a writer killed by SIGPIPE (13; Windows has no signal.SIGPIPE)
    except OSError as err:  # the file system: a folder that cannot be written, a full disk, a vanished file
        print(f"vitzoo: error: {os_error_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = ""
        if args.command == "embed":
            parts = args.out if not Path(args.out).suffix else f"{args.out}.parts/"
            hint = f"; finished shards are kept in {parts} and re-running the same command resumes"
        print(f"vitzoo: interrupted{hint}", file=sys.stderr)
        return 130  # 128 + SIGINT, what a shell reports for Ctrl-C


if __name__ == "__main__":
    sys.exit(main())
