"""End-to-end images/s of `vitzoo embed` for ViT-B/16 on generated JPEGs, next to the pure forward and a timm pipeline.

    python benchmarks/embed.py              # 512 JPEGs of about 500x375, fp32 and bf16 (several minutes on 2 cores)
    python benchmarks/embed.py --images 128 # quicker
    python benchmarks/embed.py --scale      # peak RSS and img/s at 2k, 20k and 100k small images (ViT-Ti, 32 px)
    python benchmarks/embed.py --runtimes --images 256   # vitzoo embed per --runtime (and int8), cold and warm

--runtimes: the real command per runtime (torch, compile, onnxruntime, auto; onnxruntime int8), fp32, each run twice
with an empty cache first (cold: compiles, exports or measures) and then again (warm: the compiled code, the exported
graph and auto's choice come from the cache, as on every later run), the output deleted in between. Each row: img/s
cold and warm, warm against torch's, and the cosine of its features to torch's (the smallest over the images).

Rows (same batch size everywhere):
* vitzoo embed: the real command in a subprocess (decode + checkpoint transform in worker processes, forward,
  shards, final .safetensors), wall time including interpreter start and model load.
* pure forward: vitzoo's forward_cls on tensors that are already preprocessed (the upper bound).
* timm pipeline: torchvision ImageFolder with timm's create_transform(resolve_data_config(model)), a DataLoader with
  2 workers, timm's model with reset_classifier(0) (the usual recipe); bf16 via torch.autocast. Also run as a
  fresh process and timed the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import vitzoo

TAG = "vit_base_patch16_224.augreg2_in21k_ft_in1k"


def make_images(folder: Path, n: int) -> None:
    if folder.exists() and len(list(folder.glob("*/*.jpg"))) == n:
        return
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "class0").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        w, h = (500, 375) if i % 3 else (375, 500)
        yy, xx = np.mgrid[0:h, 0:w]
        arr = np.stack([(xx + i) % 256, (yy * 2 + i) % 256, rng.integers(0, 64, (h, w)) + 96], -1).astype(np.uint8)
        Image.fromarray(arr).save(folder / "class0" / f"{i:05d}.jpg", quality=90)


def run_vitzoo(
    model_dir: Path, images: Path, out: Path, dtype: str, batch: int, extra: Sequence[str] = (), env: dict | None = None
) -> float:
    cmd = [
        sys.executable,
        "-m",
        "vitzoo",
        "embed",
        f"local-dir:{model_dir}",
        str(images),
        "--out",
        str(out),
        "--batch-size",
        str(batch),
        "--dtype",
        dtype,
        "--quiet",
        "--shard-size",
        "4096",
        *extra,
    ]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


RUNS = ["torch:fp32", "compile:fp32", "onnxruntime:fp32", "auto:fp32", "onnxruntime:int8"]


def runtimes(workdir: Path, model_dir: Path, images: Path, n: int, batch: int, names: Sequence[str]) -> None:
    """``vitzoo embed --runtime R`` end to end, cold and warm; see the module docstring."""
    from safetensors import safe_open

    cache = workdir / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "VITZOO_CACHE": str(cache)}
    runs = [tuple(name.split(":")) for name in ["torch:fp32", *(r for r in names if r != "torch:fp32")]]
    rows, feats = [], {}
    for runtime, dtype in runs:
        seconds = []
        for _ in ("cold", "warm"):
            out = workdir / f"emb-{runtime}-{dtype}.safetensors"
            out.unlink(missing_ok=True)
            seconds.append(run_vitzoo(model_dir, images, out, dtype, batch, ["--runtime", runtime], env))
        with safe_open(str(out), "pt") as f:
            feats[runtime, dtype] = f.get_tensor("features").float()
        rows.append((runtime, dtype, n / seconds[0], n / seconds[1]))
        print(rows[-1], flush=True)
    base = feats["torch", "fp32"]
    print(f"\n{n} JPEGs (~500x375), B/16 at 224, batch {batch}, {os.cpu_count()} cores, torch {torch.__version__}\n")
    print("| runtime | dtype | img/s cold | img/s warm | warm vs torch | cosine to torch (min) |")
    print("|---|---|---|---|---|---|")
    torch_warm = rows[0][3]
    for runtime, dtype, cold, warm in rows:
        cosine = torch.nn.functional.cosine_similarity(feats[runtime, dtype], base, dim=-1).min().item()
        print(f"| {runtime} | {dtype} | {cold:.2f} | {warm:.2f} | {warm / torch_warm:.2f}x | {cosine:.6f} |")


@torch.inference_mode()
def run_pure(model_dir: Path, n: int, dtype: str, batch: int) -> float:
    model = vitzoo.create_model(
        f"local-dir:{model_dir}", pretrained=True, dtype=torch.bfloat16 if dtype == "bf16" else None
    ).eval()
    x = torch.randn(batch, 3, 224, 224, dtype=next(model.parameters()).dtype)
    model.forward_cls(x)  # warm-up
    start = time.perf_counter()
    for _ in range(n // batch):
        model.forward_cls(x)
    return time.perf_counter() - start


def run_timm(model_dir: Path, images: Path, dtype: str, batch: int) -> float:
    """The timm pipeline as a fresh process too, so both end-to-end numbers include interpreter start and load."""
    cmd = [sys.executable, __file__, "--timm-child", str(model_dir), str(images), dtype, str(batch)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def timm_child(model_dir: Path, images: Path, dtype: str, batch: int) -> None:
    import contextlib

    import timm
    import torchvision

    model = timm.create_model(f"local-dir:{model_dir}", pretrained=True).eval()
    model.reset_classifier(0)  # pooled features instead of logits
    transform = timm.data.create_transform(**timm.data.resolve_data_config(model=model))
    data = torchvision.datasets.ImageFolder(str(images), transform=transform)
    loader = torch.utils.data.DataLoader(data, batch_size=batch, num_workers=2)
    feats = []
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if dtype == "bf16" else contextlib.nullcontext
    with torch.inference_mode(), ctx():
        for x, _ in loader:
            feats.append(model(x).float())
    torch.cat(feats)


SCALE_CHILD = """
import json, resource, sys, time
from vitzoo.cli import main
start = time.perf_counter()
status = main(sys.argv[1:])
seconds = time.perf_counter() - start
print(json.dumps({"status": status, "seconds": seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_small_images(folder: Path, n: int) -> None:
    """``n`` 32x32 JPEGs, 1000 per sub-folder."""
    if folder.exists() and sum(1 for _ in folder.rglob("*.jpg")) == n:
        return
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = folder / f"{i // 1000:04d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(sub / f"{i:06d}.jpg", quality=90)


def scale(workdir: Path, sizes: list[int], batch: int, layouts: list[str]) -> None:
    """Peak RSS of the process that embeds and finalises (the only process with --workers 0 decoding inline is
    not what users run, so the default workers decode; their memory is not the finaliser's), per output layout."""
    model_dir = workdir / "model-ti"
    if not (model_dir / "config.json").exists():
        vitzoo.save_pretrained(vitzoo.create_model("vit_tiny_patch16_224.augreg_in21k_ft_in1k"), model_dir)
    rows = []
    for n in sizes:
        images = workdir / f"small-{n}"
        make_small_images(images, n)
        for layout in layouts:
            out = workdir / (f"scale-{n}" if layout == "dir" else f"scale-{n}.safetensors")
            shutil.rmtree(out, ignore_errors=True)
            out.unlink(missing_ok=True) if out.is_file() else None
            args = ["embed", f"local-dir:{model_dir}", str(images), "--out", str(out), "--img-size", "32",
                    "--batch-size", str(batch), "--quiet"]  # fmt: skip
            done = subprocess.run(
                [sys.executable, "-c", SCALE_CHILD, *args], check=True, capture_output=True, text=True
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append((n, layout, n / result["seconds"], result["peak_rss_mb"]))
            print(rows[-1], flush=True)
    print(f"\nViT-Ti at 32 px, batch {batch}, default decoding workers, {os.cpu_count()} cores\n")
    print("| images | output | img/s | peak RSS MB | RSS over the smallest run MB | per image KB |")
    print("|---|---|---|---|---|---|")
    for n, layout, speed, rss in rows:
        base_n, base = next((m, r) for m, lay, _, r in rows if lay == layout)
        per = (rss - base) * 1024 / (n - base_n) if n > base_n else float("nan")
        shown = "directory" if layout == "dir" else ".safetensors"
        print(f"| {n:,} | {shown} | {speed:.0f} | {rss:.0f} | {rss - base:+.0f} | {per:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vitzoo-embed-bench"))
    parser.add_argument("--timm-child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--scale", action="store_true", help="peak RSS at 2k/20k/100k small images instead")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 100000], help="with --scale")
    parser.add_argument("--layouts", nargs="+", default=["dir", "safetensors"], help="with --scale")
    parser.add_argument("--runtimes", action="store_true", help="vitzoo embed per --runtime, cold and warm")
    parser.add_argument("--runs", nargs="+", default=RUNS, help="with --runtimes: RUNTIME:DTYPE (torch:fp32 always)")
    args = parser.parse_args()
    if args.scale:
        scale(args.workdir, args.sizes, 256, args.layouts)
        return
    if args.timm_child:
        model_dir, images, dtype, batch = args.timm_child
        timm_child(Path(model_dir), Path(images), dtype, int(batch))
        return
    images, model_dir = args.workdir / "images", args.workdir / "model"
    make_images(images, args.images)
    if not (model_dir / "config.json").exists():
        vitzoo.save_pretrained(vitzoo.create_model(TAG), model_dir)  # the tag's facts, random weights
    if args.runtimes:
        runtimes(args.workdir, model_dir, images, args.images, args.batch_size, args.runs)
        return
    rows = []
    for dtype in ("fp32", "bf16"):
        out = args.workdir / f"emb-{dtype}.safetensors"
        out.unlink(missing_ok=True)
        t_vz = run_vitzoo(model_dir, images, out, dtype, args.batch_size)
        t_pure = run_pure(model_dir, args.images, dtype, args.batch_size)
        t_timm = run_timm(model_dir, images, dtype, args.batch_size)
        n = args.images
        rows.append((dtype, n / t_vz, (n // args.batch_size * args.batch_size) / t_pure, n / t_timm))
        print(rows[-1], flush=True)
    print(f"\n{args.images} JPEGs (~500x375), B/16 at 224, batch {args.batch_size}, {os.cpu_count()} cores\n")
    print("| dtype | vitzoo embed img/s | pure forward img/s | timm pipeline img/s | embed / pure | embed / timm |")
    print("|---|---|---|---|---|---|")
    for dtype, vz, pure, tm in rows:
        print(f"| {dtype} | {vz:.2f} | {pure:.2f} | {tm:.2f} | {vz / pure:.2f}x | {vz / tm:.2f}x |")


if __name__ == "__main__":
    main()
