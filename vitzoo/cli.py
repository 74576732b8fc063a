"""The ``vitzoo`` command: argument parsing and printing only; every command calls the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import VitzooError
from .factory import describe
from .registry import ALIASES, get_pretrained_cfg, list_models, list_pretrained

_COLUMNS = ("name", "aliases", "params", "params_no_head", "layers", "width", "mlp", "heads", "patch", "img_size", "tokens")
_HEADERS = ("model", "aliases", "params (1k head)", "params (no head)", "layers", "D", "MLP", "heads", "patch", "img", "tokens")


def _rows(pattern: str | None) -> list[list[str]]:
    rows = []
    for name in list_models(pattern):
        info = describe(name)
        info["aliases"] = ", ".join(a for a, n in ALIASES.items() if n == name)
        info["params"] = f"{info['params']:,}"
        info["params_no_head"] = f"{info['params_no_head']:,}"
        rows.append([str(info[c]) for c in _COLUMNS])
    return rows


def models_markdown() -> str:
    """The models table of docs/models.md (regenerate with ``vitzoo list --format markdown > docs/models.md``)."""
    lines = [
        "# Models",
        "",
        "Generated from the registry by `vitzoo list --format markdown > docs/models.md`; do not edit by hand.",
        "Sizes are Table 1 of the ViT paper (Ti and S: the official repo's configs). Parameter counts equal timm's.",
        "",
        "| " + " | ".join(_HEADERS) + " |",
        "|" + "|".join("---" for _ in _HEADERS) + "|",
    ]
    lines += ["| " + " | ".join(f"`{r[0]}`" if i == 0 else r[i] for i in range(len(r))) + " |" for r in _rows(None)]
    return "\n".join(lines) + "\n"


_PRETRAINED_HEADERS = ("checkpoint", "classes", "img", "top-1", "mean/std", "crop", "interp", "license", "description")


def _pretrained_rows(pattern: str | None) -> list[list[str]]:
    rows = []
    for name in list_pretrained(pattern):
        c = get_pretrained_cfg(name)
        norm = "0.5" if c.mean == (0.5, 0.5, 0.5) else "imagenet" if c.mean[0] == 0.485 else "clip"
        rows.append([
            name, str(c.num_classes), str(c.img_size[0]), f"{c.top1:.2f}" if c.top1 else "-", norm,
            f"{c.crop_pct:g} {c.crop_mode}", c.interpolation, c.license or "-", c.description,
        ])  # fmt: skip
    return rows


def _print_table(headers: Sequence[str], rows: list[list[str]]) -> None:
    table = [list(headers)] + rows
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def pretrained_markdown() -> str:
    """The checkpoint table of docs/pretrained.md (``vitzoo list --pretrained --format markdown``)."""
    lines = ["| " + " | ".join(_PRETRAINED_HEADERS) + " |", "|" + "|".join("---" for _ in _PRETRAINED_HEADERS) + "|"]
    lines += ["| " + " | ".join(f"`{r[0]}`" if i == 0 else r[i] for i in range(len(r))) + " |" for r in _pretrained_rows(None)]
    return "\n".join(lines) + "\n"


def _cmd_list(args: argparse.Namespace) -> int:
    if args.pretrained:
        if args.format == "markdown":
            sys.stdout.write(pretrained_markdown())
            return 0
        names = list_pretrained(args.pattern)
        if not names:
            print(f"no pretrained checkpoint matches {args.pattern!r}", file=sys.stderr)
            return 1
        if args.format == "names":
            print("\n".join(names))
        else:
            _print_table(_PRETRAINED_HEADERS, _pretrained_rows(args.pattern))
        return 0
    if args.format == "markdown":
        sys.stdout.write(models_markdown())
        return 0
    names = list_models(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}", file=sys.stderr)
        return 1
    if args.format == "names":
        print("\n".join(names))
        return 0
    _print_table(_HEADERS, _rows(args.pattern))
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from . import hub
    from .loading import WEIGHT_FILES

    if args.name.startswith("hf-hub:"):
        repo, files = args.name.removeprefix("hf-hub:"), WEIGHT_FILES
    else:
        cfg = get_pretrained_cfg(args.name)
        repo, files = cfg.hf_hub_id, cfg.filenames
    config = hub.download(repo, ["config.json"], revision=args.revision, local_dir=args.to)
    weights = hub.download(repo, files, revision=args.revision, local_dir=args.to)
    print(weights)
    print(f"{repo}: {weights.name} and {config.name} ready in {weights.parent}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitzoo",
        description="Vision Transformers (Dosovitskiy et al., ICLR 2021) for PyTorch: list models and checkpoints, "
        "download weights.",
    )
    parser.add_argument("--version", action="version", version=f"vitzoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_list = sub.add_parser("list", help="list the model architectures", description="List model architectures.")
    p_list.add_argument("pattern", nargs="?", help="shell-style filter, e.g. '*base*' or 'ViT-L*'")
    p_list.add_argument(
        "--format", choices=("table", "names", "markdown"), default="table",
        help="table (default), one name per line, or the markdown table of docs/models.md",
    )  # fmt: skip
    p_list.add_argument("--pretrained", action="store_true", help="list pretrained checkpoints (arch.tag) instead")
    p_list.set_defaults(func=_cmd_list)
    p_dl = sub.add_parser(
        "download", help="prefetch a checkpoint into the Hugging Face cache (or a folder)",
        description="Download a checkpoint's weights and config.json; prints the weights path.",
    )  # fmt: skip
    p_dl.add_argument("name", help="arch, arch.tag or hf-hub:org/repo")
    p_dl.add_argument("--to", metavar="DIR", help="copy into DIR instead of only the HF cache")
    p_dl.add_argument("--revision", help="branch, tag or commit to pin")
    p_dl.set_defaults(func=_cmd_download)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.func(args)
    except VitzooError as err:
        print(f"vitzoo: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
