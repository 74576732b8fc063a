"""Export time and CPU throughput of the exported graphs: onnxruntime against eager PyTorch, ViT-B/16.

    python benchmarks/export.py            # fixed 224 and dynamic-size graphs, batch 8 (a few minutes on 2 cores)
    python benchmarks/export.py --quick    # fewer rounds

Random weights (throughput does not depend on them). Each row times PyTorch (eager, torch.inference_mode) and the
onnxruntime session (CPU provider, default options) in interleaved rounds on the same input and reports the median
images/s. The dynamic-size graph runs at 224 and 320x448. Paste the printed markdown into docs/performance.md.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import onnxruntime as ort
import torch
from forward import bench

import vitzoo
from vitzoo.export import export_onnx, export_program


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="vit_base_patch16_224")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    torch.manual_seed(0)
    model = vitzoo.create_model(args.arch).eval()
    print(f"{args.arch}, batch {args.batch}, fp32, {platform.processor() or platform.machine()}, ")
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {ort.__version__}\n")
    print("| graph | export s | input | PyTorch eager img/s | onnxruntime img/s | ort / eager |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for dynamic in (False, True):
            start = time.perf_counter()
            path = export_onnx(model, Path(tmp) / f"m{int(dynamic)}.onnx", dynamic_size=dynamic)
            seconds = time.perf_counter() - start
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            eager = vitzoo.create_model(args.arch, dynamic_img_size=dynamic).eval()
            eager.load_state_dict(model.state_dict())
            for h, w in [(224, 224), (320, 448)] if dynamic else [(224, 224)]:
                x = torch.randn(args.batch, 3, h, w)
                feed = {session.get_inputs()[0].name: x.numpy()}

                def run_eager(x: torch.Tensor = x, eager: torch.nn.Module = eager) -> object:
                    with torch.inference_mode():
                        return eager(x)

                def run_ort(feed: dict[str, object] = feed, session: ort.InferenceSession = session) -> object:
                    return session.run(None, feed)

                speed = bench({"eager": run_eager, "ort": run_ort}, args.batch, rounds)
                name = "ONNX, dynamic size" if dynamic else "ONNX, fixed 224"
                print(
                    f"| {name} | {seconds:.1f} | {h}x{w} | {speed['eager']:.1f} | {speed['ort']:.1f} | "
                    f"{speed['ort'] / speed['eager']:.2f} |"
                )
    for dynamic in (False, True):
        start = time.perf_counter()
        export_program(model, dynamic_size=dynamic)
        kind = "dynamic size" if dynamic else "fixed 224"
        print(f"| torch.export, {kind} | {time.perf_counter() - start:.1f} | | | | |")


if __name__ == "__main__":
    main()
