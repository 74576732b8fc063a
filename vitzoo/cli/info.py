"""``vitzoo info``: a model's config, size, GFLOPs, eval transform and checkpoint facts."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from . import options
from .options import command

PERMISSIVE = ("apache-2.0", "mit")  # licenses `vitzoo info` does not flag


def add_parser(subparsers: Any) -> None:
    p = command(
        subparsers,
        "info",
        help="show a model's config, size, eval transform and checkpoint facts",
        description="Show config, parameters, GFLOPs, data config and checkpoint facts.",
    )
    p.add_argument("name", help="arch, arch.tag, alias, hf-hub:org/repo or local-dir:PATH")
    options.json_output(p)
    p.set_defaults(func=run)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def run(args: argparse.Namespace) -> int:
    from ..factory import create_model
    from ..features.transforms import resolve_data_config
    from ..models.flops import flops
    from ..weights.source import default_checkpoint, resolve

    src = resolve(args.name)
    model = create_model(src, device="meta")
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    facts = default_checkpoint(src).facts
    info = {
        "name": args.name,
        "config": _plain(dataclasses.asdict(cfg)),
        "params": params,
        "gflops": round(flops(model) / 1e9, 2),
        "data_config": _plain(resolve_data_config(src).to_dict()),
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
