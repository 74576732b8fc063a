"""Time to first output and peak memory when loading a checkpoint from disk: vitzoo, timm and transformers.

    python benchmarks/load.py                 # B/16 and H/14 (writes ~7 GB of checkpoints to --workdir once)
    python benchmarks/load.py --models b16    # quicker

Each measurement runs in a fresh process (so peak RSS is that library's alone): create the model from the local
file, load the weights, run one forward on a 1x3xHxW batch. Checkpoints hold random weights with the real shapes:
a timm-layout model.safetensors (read by vitzoo and by timm via pretrained_cfg_overlay=dict(file=...)) and a
transformers save_pretrained folder. The page cache is warmed first, as for a checkpoint already in the HF cache.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

MODELS = {  # key: (timm/vitzoo arch, transformers config)
    "b16": (
        "vit_base_patch16_224",
        dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, patch_size=16),
    ),
    "h14": (
        "vit_huge_patch14_224",
        dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16, intermediate_size=5120, patch_size=14),
    ),
}


def prepare(key: str, workdir: Path) -> None:
    import torch
    import transformers
    from safetensors.torch import save_file

    import vitzoo

    arch, hf_cfg = MODELS[key]
    timm_file = workdir / key / "model.safetensors"
    if not timm_file.exists():
        timm_file.parent.mkdir(parents=True, exist_ok=True)
        model = vitzoo.create_model(arch)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(timm_file))
        del model
    hf_dir = workdir / f"{key}-hf"
    if not (hf_dir / "config.json").exists():
        config = transformers.ViTConfig(image_size=224, num_labels=1000, layer_norm_eps=1e-6, **hf_cfg)
        with torch.device("meta"):
            model = transformers.ViTForImageClassification(config)
        model = model.to_empty(device="cpu")
        model.save_pretrained(hf_dir)
        del model
    for f in [timm_file, *hf_dir.glob("*.safetensors")]:  # warm the page cache
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


def child(lib: str, key: str, workdir: Path) -> dict:
    import torch

    arch, _ = MODELS[key]
    x = torch.randn(1, 3, 224, 224)
    start = time.perf_counter()
    if lib == "vitzoo":
        import vitzoo

        model = vitzoo.create_model(arch, pretrained=str(workdir / key / "model.safetensors")).eval()
    elif lib == "timm":
        import timm

        model = timm.create_model(
            arch,
            pretrained=True,
            num_classes=1000,
            pretrained_cfg_overlay=dict(file=str(workdir / key / "model.safetensors")),
        ).eval()
    else:
        import transformers

        model = transformers.ViTForImageClassification.from_pretrained(workdir / f"{key}-hf").eval()
    loaded = time.perf_counter()
    with torch.inference_mode():
        model(pixel_values=x) if lib == "transformers" else model(x)
    done = time.perf_counter()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "load_s": loaded - start,
        "forward_s": done - loaded,
        "first_output_s": done - start,
        "peak_rss_mb": peak_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["b16", "h14"], choices=sorted(MODELS))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vitzoo-load-bench"))
    parser.add_argument("--child", nargs=2, metavar=("LIB", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.workdir)))
        return
    rows = []
    for key in args.models:
        prepare(key, args.workdir)
        for lib in ("vitzoo", "timm", "transformers"):
            out = subprocess.run(
                [sys.executable, __file__, "--workdir", str(args.workdir), "--child", lib, key],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append((key, lib, json.loads(out.stdout.strip().splitlines()[-1])))
            print(rows[-1], flush=True)
    print(
        "\n| model | library | load s | first forward s | time to first output s | peak RSS MB | "
        "vs timm (time) | vs transformers (time) | vs transformers (RSS) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for key, lib, r in rows:
        ref = {lb: rr for k, lb, rr in rows if k == key}
        print(
            f"| {MODELS[key][0]} | {lib} | {r['load_s']:.2f} | {r['forward_s']:.2f} | {r['first_output_s']:.2f} | "
            f"{r['peak_rss_mb']:.0f} | {r['first_output_s'] / ref['timm']['first_output_s']:.2f}x | "
            f"{r['first_output_s'] / ref['transformers']['first_output_s']:.2f}x | "
            f"{r['peak_rss_mb'] / ref['transformers']['peak_rss_mb']:.2f}x |"
        )


if __name__ == "__main__":
    main()
