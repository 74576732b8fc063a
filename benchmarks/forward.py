"""Forward throughput of ViT-B/16 for vitzoo, timm and transformers, measured side by side in one run.

    python benchmarks/forward.py            # full table (a few minutes on 2 cores)
    python benchmarks/forward.py --quick    # fewer repetitions
    python benchmarks/forward.py --families # DINOv2, CLIP, SigLIP, DINOv3 rows
    python benchmarks/forward.py --new-families  # PE-Core, EVA-02, AIMv2, RADIO rows
    python benchmarks/forward.py --runtimes      # this CPU's GEMM rate and vitzoo's runtimes against it (runtimes.py)

Each row runs the three libraries in interleaved rounds (A, B, C, A, B, C, ...) on the same input, under
torch.inference_mode, and reports the median images/s and the ratio to timm. The dynamic-size rows compare a model
built at 384 with a 224 model run with dynamic_img_size=True on 384 inputs (both resample the table per call);
``--dynamic-batch1`` runs only the batch-1 dynamic-size rows. Paste the printed markdown into docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import time
from collections.abc import Callable

import timm
import torch
import transformers

import vitzoo


def _hf_b16(img: int) -> torch.nn.Module:
    cfg = transformers.ViTConfig(image_size=img, num_labels=1000, layer_norm_eps=1e-6)
    cfg._attn_implementation = "sdpa"  # transformers' fused-attention path, same kernel as vitzoo and timm
    return transformers.ViTForImageClassification(cfg).eval()


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(runners: dict[str, Callable[[], object]], batch: int, rounds: int) -> dict[str, float]:
    """Median images/s per runner over interleaved rounds (after one warm-up call each)."""
    for fn in runners.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            times[name].append(_time(fn))
    return {name: batch / statistics.median(ts) for name, ts in times.items()}


def dynamic_batch1(rounds: int) -> None:
    """One image at a time at a size the model was not built for (320 x 448 with 224 weights), fp32.

    Both libraries resample the position table on every call; at batch 1 that cost weighs most. (This row decided
    the removal of vitzoo's per-grid table cache: see docs/performance.md.)
    """
    x = torch.randn(1, 3, 320, 448)
    print("\n| 224 weights, 320x448 input, batch 1, fp32 | vitzoo img/s | timm img/s | vitzoo / timm |")
    print("|---|---|---|---|")
    for arch in ("vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224"):
        models = {
            "vitzoo": vitzoo.create_model(arch, dynamic_img_size=True).eval(),
            "timm": timm.create_model(arch, dynamic_img_size=True).eval(),
        }

        def run(model: torch.nn.Module) -> Callable[[], object]:
            def call() -> object:
                with torch.inference_mode():
                    return model(x)

            return call

        ips = bench({name: run(m) for name, m in models.items()}, 1, rounds)
        print(f"| {arch} | {ips['vitzoo']:.2f} | {ips['timm']:.2f} | {ips['vitzoo'] / ips['timm']:.3f}x |", flush=True)


def _hf_family(kind: str, img: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """transformers' model of a family at B size (random weights, SDPA attention) -> its pooled output."""
    if kind == "dinov2":
        model = transformers.Dinov2Model(transformers.Dinov2Config(image_size=img, attn_implementation="sdpa"))
    elif kind == "clip":
        cfg = transformers.CLIPVisionConfig(patch_size=16, projection_dim=512, hidden_act="gelu")
        cfg._attn_implementation = "sdpa"
        model = transformers.CLIPVisionModelWithProjection(cfg)
    elif kind == "aimv2":  # no attention-pooling head: the patch mean, what timm and vitzoo pool
        cfg = transformers.Aimv2VisionConfig(image_size=img, use_head=False)
        cfg._attn_implementation = "sdpa"
        model = transformers.Aimv2VisionModel(cfg)
    elif kind == "siglip":
        cfg = transformers.SiglipVisionConfig(image_size=img)
        cfg._attn_implementation = "sdpa"
        model = transformers.SiglipVisionModel(cfg)
    else:
        cfg = transformers.DINOv3ViTConfig(
            hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_register_tokens=4, image_size=img
        )
        cfg._attn_implementation = "sdpa"
        model = transformers.DINOv3ViTModel(cfg)
    model.eval()

    def pooled(x: torch.Tensor) -> torch.Tensor:
        out = model(pixel_values=x)
        if kind == "aimv2":
            return out.last_hidden_state.mean(dim=1)
        return out.image_embeds if kind == "clip" else out.pooler_output

    return pooled


FAMILY_ROWS = [  # (label, vitzoo and timm arch, transformers model, input size)
    ("DINOv2-B/14 224", "vit_base_patch14_dinov2", "dinov2", 224),
    ("DINOv2-B/14 518", "vit_base_patch14_dinov2", "dinov2", 518),
    ("CLIP-B/16 224", "vit_base_patch16_clip_224", "clip", 224),
    ("SigLIP-B/16 224", "vit_base_patch16_siglip_224", "siglip", 224),
    ("DINOv3-B/16 224", "vit_base_patch16_dinov3", "dinov3", 224),
]
NEW_FAMILY_ROWS = [  # timm's Eva (PE, EVA-02) and VisionTransformer (AIMv2, RADIO); transformers has AIMv2 only
    ("PE-Core-B/16 224", "vit_pe_core_base_patch16_224", None, 224),
    ("EVA-02-B/14 224", "eva02_base_patch14_224", None, 224),
    ("AIMv2-L/14 224", "aimv2_large_patch14_224", "aimv2", 224),
    ("C-RADIOv3-B/16 224", "vit_base_patch16_radio_v3", None, 224),
]


def families(rounds: int, rows: list[tuple[str, str, str | None, int]] = FAMILY_ROWS) -> None:
    """Batch 1, each library's pooled output (vitzoo and timm: ``model(x)``; transformers: ``pooler_output``, CLIP's
    ``image_embeds``), fp32 and bf16 autocast. DINOv3 runs with class-token pooling in timm too."""
    print("| model, batch 1 | dtype | vitzoo img/s | timm img/s | transformers img/s | vitzoo / timm | vitzoo / hf |")
    print("|---|---|---|---|---|---|---|")
    for label, arch, kind, img in rows:
        extra = {"global_pool": "token"} if kind == "dinov3" else {}
        ours = vitzoo.create_model(arch, img_size=img).eval()
        theirs = timm.create_model(arch, img_size=img, **extra).eval()
        hf = _hf_family(kind, img) if kind else None
        x = torch.randn(1, 3, img, img)
        for dtype in ("fp32", "bf16"):
            bf16 = dtype == "bf16"

            def run(fn: Callable[[torch.Tensor], torch.Tensor], x=x, bf16=bf16) -> Callable[[], object]:
                def call() -> object:
                    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                        return fn(x)

                return call

            runners = {"vitzoo": run(ours), "timm": run(theirs)} | ({"transformers": run(hf)} if hf else {})
            ips = bench(runners, 1, rounds)
            hf_ips, vs_hf = ("-", "-")
            if hf:
                hf_ips, vs_hf = f"{ips['transformers']:.2f}", f"{ips['vitzoo'] / ips['transformers']:.3f}x"
            print(
                f"| {label} | {dtype} | {ips['vitzoo']:.2f} | {ips['timm']:.2f} | {hf_ips} | "
                f"{ips['vitzoo'] / ips['timm']:.3f}x | {vs_hf} |",
                flush=True,
            )
        del ours, theirs, hf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--dynamic-batch1", action="store_true", help="only the batch-1 dynamic-size rows")
    parser.add_argument("--families", action="store_true", help="only the DINOv2/CLIP/SigLIP/DINOv3 rows")
    parser.add_argument("--new-families", action="store_true", help="only the PE-Core/EVA-02/AIMv2/RADIO rows")
    parser.add_argument("--runtimes", action="store_true", help="the GEMM rate and the runtimes (runtimes.py)")
    args = parser.parse_args()
    if args.runtimes:
        import runtimes  # benchmarks/runtimes.py, beside this script

        runtimes.run(quick=args.quick)
        return
    if args.new_families:
        families(rounds=5 if args.quick else 15, rows=NEW_FAMILY_ROWS)
        return
    if args.families:
        families(rounds=5 if args.quick else 15)
        return
    if args.dynamic_batch1:
        dynamic_batch1(rounds=15 if args.quick else 60)
        return
    torch.manual_seed(0)
    models = {
        "vitzoo": vitzoo.create_model("vit_base_patch16_224").eval(),
        "timm": timm.create_model("vit_base_patch16_224").eval(),
        "transformers": _hf_b16(224),
    }
    rows = []
    for dtype in ("fp32", "bf16"):
        for batch in (1, 8):
            x = torch.randn(batch, 3, 224, 224)
            rounds = (3 if args.quick else 7) if batch == 8 else (10 if args.quick else 30)
            autocast = (
                (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if dtype == "bf16" else contextlib.nullcontext
            )

            def runner(model: torch.nn.Module, hf: bool = False, x=x, autocast=autocast) -> Callable[[], object]:
                def run() -> object:
                    with torch.inference_mode(), autocast():
                        return model(pixel_values=x) if hf else model(x)

                return run

            ips = bench({n: runner(m, n == "transformers") for n, m in models.items()}, batch, rounds)
            rows.append((f"B/16 224, batch {batch}, {dtype}", ips))
            print(rows[-1], flush=True)

    # The hybrid R50x1+ViT-B/16 at 384 (transformers' ViTHybrid is deprecated and not compared).
    hybrids = {
        "vitzoo": vitzoo.create_model("vit_base_r50_s16_384").eval(),
        "timm": timm.create_model("vit_base_r50_s16_384", num_classes=1000).eval(),
    }
    hybrid_rows = []
    for dtype in ("fp32", "bf16"):
        x = torch.randn(1, 3, 384, 384)
        autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if dtype == "bf16" else contextlib.nullcontext

        def hybrid_runner(model: torch.nn.Module, x=x, autocast=autocast) -> Callable[[], object]:
            def run() -> object:
                with torch.inference_mode(), autocast():
                    return model(x)

            return run

        ips = bench({n: hybrid_runner(m) for n, m in hybrids.items()}, 1, 5 if args.quick else 15)
        hybrid_rows.append((f"R50+ViT-B/16 384, batch 1, {dtype}", ips))
        print(hybrid_rows[-1], flush=True)
    del hybrids

    # Dynamic size: a 224 model fed 384 images vs a model built at 384.
    x = torch.randn(8, 3, 384, 384)
    dyn = {
        "vitzoo static 384": vitzoo.create_model("vit_base_patch16_224", img_size=384).eval(),
        "vitzoo dynamic": vitzoo.create_model("vit_base_patch16_224", dynamic_img_size=True).eval(),
        "timm static 384": timm.create_model("vit_base_patch16_224", img_size=384).eval(),
        "timm dynamic": timm.create_model("vit_base_patch16_224", dynamic_img_size=True).eval(),
    }

    def dyn_runner(model: torch.nn.Module) -> Callable[[], object]:
        def run() -> object:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                return model(x)

        return run

    dyn_ips = bench({n: dyn_runner(m) for n, m in dyn.items()}, 8, 3 if args.quick else 5)
    print(dyn_ips, flush=True)

    print(
        f"\nMachine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, timm {timm.__version__}, transformers {transformers.__version__}\n"
    )
    print("| setting | vitzoo img/s | timm img/s | transformers img/s | vitzoo / timm | transformers / timm |")
    print("|---|---|---|---|---|---|")
    for label, ips in rows:
        print(
            f"| {label} | {ips['vitzoo']:.2f} | {ips['timm']:.2f} | {ips['transformers']:.2f} | "
            f"{ips['vitzoo'] / ips['timm']:.3f}x | {ips['transformers'] / ips['timm']:.3f}x |"
        )
    for label, ips in hybrid_rows:
        print(f"| {label} | {ips['vitzoo']:.2f} | {ips['timm']:.2f} | - | {ips['vitzoo'] / ips['timm']:.3f}x | - |")
    print("\n| B/16 at 384, batch 8, bf16 autocast | img/s | dynamic / static |")
    print("|---|---|---|")
    for lib in ("vitzoo", "timm"):
        s, d = dyn_ips[f"{lib} static 384"], dyn_ips[f"{lib} dynamic"]
        print(f"| {lib} static (built at 384) | {s:.2f} | |")
        print(f"| {lib} dynamic_img_size (224 weights, 384 input) | {d:.2f} | {d / s:.3f}x |")


if __name__ == "__main__":
    main()
