"""Fast JPEG decode (libjpeg draft mode, `vitzoo embed`'s default) against the exact path on camera-sized photos.

    python benchmarks/decode.py                  # 16 photos per family for the features, 256 for the speed
    python benchmarks/decode.py --photos 4 --speed-photos 16 --families vit clip   # quicker

The photos: 4000x3000 JPEGs (every third one 3000x4000) at quality 92 with 4:2:0 chroma, as cameras write them.
Each is a random crop of one of scikit-learn's two sample photos (real scenes, 640x427), upscaled, with camera-like
detail put back that an upscale lacks: a 1/f ("pink") texture, the power spectrum of natural images, and sensor
grain. Without scikit-learn the texture alone is used.

Part 1, the features: for one checkpoint of each family (its own preprocessing, the architecture at its real size
and input, random weights: no trained weights are reachable offline), the cosine similarity between the features of
the fast and the exact decode of the same photo (the model's own pooled features, fp32), its minimum and mean over
the photos; the distance between the two as a share of the mean distance between the features of different photos
(how far the fast path moves a photo, against how far apart photos are); and the pixel difference of the model
inputs in 8-bit levels (RMS and max).

Part 2, the speed: ViT-B/16 (augreg2's preprocessing, bf16, batch 32) through the real `vitzoo embed` command in a
subprocess with the default decode and with `--exact-decode` (wall time including interpreter start and model
load), next to the pure forward on preprocessed tensors; and decode + transform alone in one process (one core).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from embed import run_pure, run_vitzoo
from PIL import Image

import vitzoo
from vitzoo.features.transforms import DataConfig, EvalTransform, load_image, resolve_data_config
from vitzoo.weights.configs.processors import processor_facts

SPEED_TAG = "vit_base_patch16_224.augreg2_in21k_ft_in1k"
# one checkpoint per family (its preprocessing, its architecture); two transformers processors (tensor resizes)
FAMILIES: dict[str, tuple[str, str | None]] = {
    "vit": ("vit_base_patch16_224.augreg2_in21k_ft_in1k", None),
    "vit, transformers ViTImageProcessor": ("vit_base_patch16_224.augreg2_in21k_ft_in1k", "ViTImageProcessor"),
    "hybrid R50+ViT-B/16 (384)": ("vit_base_r50_s16_384.orig_in21k_ft_in1k", None),
    "deit (distilled)": ("deit_base_distilled_patch16_224.fb_in1k", None),
    "deit3": ("deit3_base_patch16_224.fb_in22k_ft_in1k", None),
    "dinov2 (518)": ("vit_base_patch14_dinov2.lvd142m", None),
    "dinov2 + registers (518)": ("vit_base_patch14_reg4_dinov2.lvd142m", None),
    "clip": ("vit_base_patch16_clip_224.openai", None),
    "clip quickgelu": ("vit_base_patch16_clip_quickgelu_224.metaclip_400m", None),
    "siglip (map)": ("vit_base_patch16_siglip_224.v2_webli", None),
    "siglip (gap)": ("vit_base_patch16_siglip_gap_224.v2_webli", None),
    "dinov3": ("vit_base_patch16_dinov3.lvd1689m", None),
    "dinov3, transformers DINOv3ViTImageProcessor": ("vit_base_patch16_dinov3.lvd1689m", "DINOv3ViTImageProcessor"),
}


# ------------------------------------------------------------------------------------------------- photos
def _pink(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A (h, w, 3) field with a 1/f amplitude spectrum, unit std per channel."""
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None]
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0
    out = []
    for _ in range(3):
        spec = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f
        spec[0, 0] = 0
        x = np.fft.irfft2(spec, s=(h, w))
        out.append((x / x.std()).astype(np.float32))
    return np.stack(out, -1)


def _scenes() -> list[Image.Image]:
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        return []
    return [Image.fromarray(img) for img in load_sample_images().images]


def make_photos(folder: Path, n: int) -> list[Path]:
    """``n`` camera-sized JPEGs (see the module docstring), made once and kept in ``folder``."""
    paths = [folder / f"photo{i:03d}.jpg" for i in range(n)]
    if all(p.exists() for p in paths):
        return paths
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    texture = _pink(rng, 3000, 4000)  # one field, shifted and flipped per photo
    scenes = _scenes()
    for i, path in enumerate(paths):
        tex = np.roll(texture, (int(rng.integers(3000)), int(rng.integers(4000))), axis=(0, 1))
        tex = tex[::-1] if i % 2 else tex
        if scenes:
            scene = scenes[i % len(scenes)]
            zoom = rng.uniform(0.4, 1.0)
            cw, ch = int(scene.width * zoom), int(scene.width * zoom * 0.75)
            ch = min(ch, scene.height)
            x0, y0 = int(rng.integers(scene.width - cw + 1)), int(rng.integers(scene.height - ch + 1))
            base = scene.resize((4000, 3000), Image.Resampling.LANCZOS, box=(x0, y0, x0 + cw, y0 + ch))
            arr = np.asarray(base, dtype=np.float32) + 12.0 * tex
        else:
            arr = 128.0 + 40.0 * tex
        arr += rng.normal(0.0, 3.0, arr.shape).astype(np.float32)  # sensor grain
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        (img.transpose(Image.Transpose.ROTATE_90) if i % 3 == 2 else img).save(path, quality=92, subsampling=2)
    return paths


# ----------------------------------------------------------------------------------------------- features
def data_config(tag: str, processor: str | None, img_size: tuple[int, int]) -> DataConfig:
    if processor is None:
        return resolve_data_config(tag)
    facts = processor_facts({"image_processor_type": processor}, tag)
    return DataConfig(**{**facts, "input_size": (3, *img_size)})


def _other_library(config: DataConfig) -> DataConfig:
    """The same recipe prepared by the other library: timm's PIL resize <-> transformers' tensor resize."""
    return replace(config, processor="timm" if config.processor != "timm" else "transformers")


@torch.inference_mode()
def feature_rows(photos: list[Path], families: list[str]) -> list[tuple[Any, ...]]:
    exact_images = [load_image(p) for p in photos]  # decoded once for every family
    rows = []
    for label in families:
        tag, processor = FAMILIES[label]
        torch.manual_seed(0)
        model = vitzoo.create_model(tag.split(".")[0]).eval()
        config = data_config(tag, processor, model.config.img_size)
        if processor is not None:  # the model at the size the processor config names
            model = vitzoo.create_model(tag.split(".")[0], img_size=config.input_size[1:]).eval()
        tf, other = EvalTransform(config), EvalTransform(_other_library(config))
        x_exact = torch.stack([tf(img) for img in exact_images])
        x_fast = torch.stack([tf(load_image(p, draft=tf.draft_size)) for p in photos])
        x_other = torch.stack([other(img) for img in exact_images])
        f_exact, f_fast, f_other = (
            vitzoo.extract_features(model, x, progress=False, num_workers=0) for x in (x_exact, x_fast, x_other)
        )
        cos = torch.nn.functional.cosine_similarity(f_fast, f_exact, dim=1)
        cos_other = torch.nn.functional.cosine_similarity(f_other, f_exact, dim=1)
        apart = torch.cdist(f_exact, f_exact)[~torch.eye(len(photos), dtype=torch.bool)].mean()
        std = torch.tensor(config.std).view(1, 3, 1, 1) * 255  # back to 8-bit levels
        pixels_fast, pixels_other = (((x - x_exact) * std).pow(2).mean().sqrt().item() for x in (x_fast, x_other))
        moved, moved_other = ((f - f_exact).norm(dim=1).mean() / apart for f in (f_fast, f_other))
        row = (label, config.input_size[1], cos.min().item(), cos.mean().item(), moved.item())
        rows.append((*row, pixels_fast, cos_other.min().item(), moved_other.item(), pixels_other))
        print(rows[-1], flush=True)
    return rows


# -------------------------------------------------------------------------------------------------- speed
def decode_rate(photos: list[Path], tf: EvalTransform, fast: bool) -> float:
    start = time.perf_counter()
    for p in photos:
        tf(load_image(p, draft=tf.draft_size if fast else None))
    return len(photos) / (time.perf_counter() - start)


def speed_rows(workdir: Path, photos: list[Path], batch: int) -> list[tuple[str, float]]:
    torch.set_num_threads(1)
    tf = EvalTransform(resolve_data_config(SPEED_TAG))
    rows = [("decode + transform, exact, 1 core", decode_rate(photos[:16], tf, fast=False))]
    rows.append(("decode + transform, fast, 1 core", decode_rate(photos[:16], tf, fast=True)))
    torch.set_num_threads(os.cpu_count() or 1)
    model_dir = workdir / "model"
    if not (model_dir / "config.json").exists():
        vitzoo.save_pretrained(vitzoo.create_model(SPEED_TAG), model_dir)  # the tag's facts, random weights
    listing = workdir / "speed-photos.txt"  # exactly these photos, whatever else the folder holds
    listing.write_text("".join(f"{p}\n" for p in photos))
    for label, extra in (("vitzoo embed (fast decode)", ()), ("vitzoo embed --exact-decode", ("--exact-decode",))):
        out = workdir / "emb.safetensors"
        out.unlink(missing_ok=True)
        rows.append((label, len(photos) / run_vitzoo(model_dir, listing, out, "bf16", batch, extra)))
        print(rows[-1], flush=True)
    n = len(photos) // batch * batch
    rows.append(("pure forward (preprocessed tensors)", n / run_pure(model_dir, n, "bf16", batch)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=16, help="photos per family for the features")
    parser.add_argument("--speed-photos", type=int, default=256, help="photos for the speed rows (0: skip them)")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), help="labels, or their first word")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vitzoo-decode-bench"))
    args = parser.parse_args()
    families = [label for label in FAMILIES if label in args.families or label.split()[0] in args.families]
    photos = make_photos(args.workdir / "photos", max(args.photos, args.speed_photos))
    rows = feature_rows(photos[: args.photos], families) if families else []
    print(f"\n{args.photos} photos of 4000x3000, random weights, fp32, {os.cpu_count()} cores\n")
    print("| family (checkpoint's preprocessing) | input | fast: cosine min | cosine mean | moved / apart "
          "| pixels RMS | other library: cosine min | moved / apart | pixels RMS |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for label, size, cmin, cmean, moved, rms, omin, omoved, orms in rows:
        print(f"| {label} | {size} | {cmin:.6f} | {cmean:.6f} | {moved:.4f} | {rms:.2f} | {omin:.6f} | {omoved:.4f} "
              f"| {orms:.2f} |")  # fmt: skip
    if args.speed_photos:
        speed = speed_rows(args.workdir, photos[: args.speed_photos], args.batch_size)
        pure = speed[-1][1]
        print(f"\n{args.speed_photos} photos of 4000x3000, ViT-B/16 at 224, bf16, batch {args.batch_size}\n")
        print("| path | img/s | of pure forward |")
        print("|---|---|---|")
        for label, rate in speed:
            print(f"| {label} | {rate:.2f} | {rate / pure:.2f}x |")


if __name__ == "__main__":
    main()
