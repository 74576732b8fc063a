"""``vitzoo export``: a model to an ONNX file or a ``torch.export`` program; prints the path, format and size."""

from __future__ import annotations

import argparse
import time
from typing import Any

from .. import choices
from . import options
from .options import command


def add_parser(subparsers: Any) -> None:
    p = command(
        subparsers,
        "export",
        help="export a model to ONNX or a torch.export program (.pt2)",
        description="Write the model's forward (images -> output) as an ONNX file or a torch.export program. A fixed "
        "size bakes the position table in; --dynamic-size accepts any multiple of the patch size (docs/export.md). "
        "ONNX needs onnx and onnxscript: pip install 'vitzoo[export]'.",
    )
    p.add_argument("name", help="arch, arch.tag, hf-hub:org/repo or local-dir:PATH")
    p.add_argument("--out", required=True, help="output file (model.onnx, model.pt2)")
    p.add_argument("--format", choices=choices.EXPORT_FORMATS, default="onnx", help="ONNX or a torch.export program")
    p.add_argument("--dynamic-size", action="store_true", help="any image height and width (multiples of the patch)")
    options.dtype(p, default="fp32", help="the graph's dtype")
    options.model(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export import export

    model = options.load_model(args.name, args)
    start = time.perf_counter()
    path = export(model, args.out, args.format, dynamic_size=args.dynamic_size, dtype=args.dtype)
    size = "any size (multiples of the patch)" if args.dynamic_size else "x".join(map(str, model.config.img_size))
    print(f"{path}\t{args.format}\t{args.dtype}\t{size}\t{time.perf_counter() - start:.1f} s")
    return 0
