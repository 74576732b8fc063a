"""What each runtime does to each family's features, and how fast it runs them: vitzoo's own runtimes (``runtime=``)
against eager fp32, one checkpoint per family at its real size, on camera-sized photos.

    python benchmarks/int8.py                      # 16 photos, every family (about 15 minutes on 2 cores)
    python benchmarks/int8.py --photos 8 --families vit dinov2

For each family (its checkpoint's preprocessing and architecture, random weights: no trained weights are reachable
offline), the photos of benchmarks/decode.py are preprocessed once, then ``extract_features`` runs them with
``runtime="torch"`` (eager fp32, the reference), ``"onnxruntime"`` (fp32) and ``"onnxruntime"`` with ``dtype="int8"``.
Each row: the cosine of the runtime's features to eager's (min and mean over the photos), how far it moves a photo's
features as a share of the mean distance between different photos' features ("moved / apart", as in the fast decode
table), the largest difference relative to the largest value, and the forward's images/s at batch 8 (the runner
``extract_features`` builds, after a warm-up batch) for eager and as a ratio for the runtime.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import torch
from decode import make_photos
from runtimes import scratch_cache

import vitzoo
from vitzoo.features import runtimes
from vitzoo.features.extract import feature_fn, resolve_pool
from vitzoo.features.transforms import EvalTransform, load_image, resolve_data_config

FAMILIES = {  # one checkpoint per family, its own preprocessing and architecture
    "vit": "vit_base_patch16_224.augreg2_in21k_ft_in1k",
    "hybrid R50+ViT-B/16 (384)": "vit_base_r50_s16_384.orig_in21k_ft_in1k",
    "deit (distilled)": "deit_base_distilled_patch16_224.fb_in1k",
    "deit3": "deit3_base_patch16_224.fb_in22k_ft_in1k",
    "dinov2 + registers (518)": "vit_base_patch14_reg4_dinov2.lvd142m",
    "clip": "vit_base_patch16_clip_224.openai",
    "siglip (map)": "vit_base_patch16_siglip_224.v2_webli",
    "dinov3": "vit_base_patch16_dinov3.lvd1689m",
    "eva02": "eva02_base_patch14_224.mim_in22k",
    "pe core": "vit_pe_core_base_patch16_224.fb",
    "aimv2": "aimv2_large_patch14_224.apple_pt",
    "c-radio v3": "vit_base_patch16_radio_v3.c_radio",
    "relpos": "vit_relpos_base_patch16_224.sw_in1k",
}
RUNS = [("onnxruntime", None), ("onnxruntime", "int8")]


def seconds(model: torch.nn.Module, x: torch.Tensor, runtime: str, dtype: str | None) -> float:
    """Seconds per image of the forward alone: the runner ``extract_features`` builds, timed on batches of 8 after a
    warm-up batch (building it, the export and the check against eager are not timed)."""
    what = {"pool": resolve_pool(model, None), "layers": []}
    runner = runtimes.runner_for(model, feature_fn(model), runtime, int8=dtype == "int8", what=what, batch_size=8)
    with torch.inference_mode():
        runner(x[:8])
        start = time.perf_counter()
        for part in torch.split(x, 8):
            runner(part)
    return (time.perf_counter() - start) / len(x)


@torch.inference_mode()
def family_rows(photos: list[Path], families: list[str]) -> list[tuple[Any, ...]]:
    images = [load_image(p) for p in photos]
    rows = []
    for label in families:
        tag = FAMILIES[label]
        torch.manual_seed(0)
        model = vitzoo.create_model(tag.split(".")[0]).eval()
        x = torch.stack([EvalTransform(resolve_data_config(tag))(img) for img in images])
        eager = vitzoo.extract_features(model, x, batch_size=8, progress=False, num_workers=0)
        apart = torch.cdist(eager, eager)[~torch.eye(len(x), dtype=torch.bool)].mean()
        t_eager = seconds(model, x, "torch", None)
        for runtime, dtype in RUNS:
            out = vitzoo.extract_features(
                model, x, batch_size=8, progress=False, num_workers=0, runtime=runtime, dtype=dtype
            )
            cos = torch.nn.functional.cosine_similarity(out, eager, dim=1)
            _, relative = runtimes.agreement({"f": out}, {"f": eager})
            moved = ((out - eager).norm(dim=1).mean() / apart).item()
            speed = t_eager / seconds(model, x, runtime, dtype)
            name = f"{runtime} {dtype or 'fp32'}"
            rows.append((label, name, cos.min().item(), cos.mean().item(), moved, relative, 1 / t_eager, speed))
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=16)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vitzoo-decode-bench"))
    args = parser.parse_args()
    scratch_cache("vitzoo-int8-cache-")
    photos = make_photos(args.workdir / "photos", args.photos)
    rows = family_rows(photos, args.families)
    print(
        f"\n{args.photos} photos, random weights, batch 8, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}\n"
    )
    print("| family | runtime | cosine min | cosine mean | moved / apart | max diff / max | eager img/s | vs eager |")
    print("|---|---|---|---|---|---|---|---|")
    for label, name, cmin, cmean, moved, relative, ips, speed in rows:
        print(
            f"| {label} | {name} | {cmin:.6f} | {cmean:.6f} | {moved:.4f} | {relative:.1e} | {ips:.2f} | {speed:.2f}x |"
        )


if __name__ == "__main__":
    main()
