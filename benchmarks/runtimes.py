"""ViT-B/16 forward on this CPU per runtime, as a fraction of the machine's own GEMM rate, measured in one run.

    python benchmarks/runtimes.py            # batch 1 and 8 (several minutes on 2 cores: compiles and exports)
    python benchmarks/runtimes.py --quick    # fewer rounds

First the GEMM rate: the median time of one matmul the size of ViT-B/16's MLP at batch 8 as GFLOP/s, in torch (fp32:
MKL), oneDNN (fp32), onnxruntime (fp32, MLAS) and torch bf16; the fastest fp32 one is the rate fp32 rows are a
fraction of. Then the same random ViT-B/16 (its forward's FLOPs counted by torch's FlopCounterMode) through vitzoo's
own runtimes, exactly what ``extract_features(model, ..., runtime=..., dtype=...)`` runs per batch (the model's own
pooling): eager PyTorch (fp32, and the model in bf16 as ``dtype="bf16"``), ``runtime="compile"`` (fp32, bf16),
``runtime="onnxruntime"`` (fp32) and ``dtype="int8"`` (onnxruntime's dynamic quantisation: int8 weights, activations
quantised per call; torch's ``quantize_dynamic`` replaces ``nn.Linear`` modules whose weights vitzoo's attention
reads directly, so it does not apply). Each row: images/s, GFLOP/s, that as a fraction of the fp32 (bf16 rows: bf16)
GEMM rate, the ratio to eager fp32, and the cosine of its features to eager fp32's (min over the batch). Rounds of
the runtimes are interleaved; medians. Paste the table into docs/performance.md. ``python benchmarks/forward.py
--runtimes`` runs the same.
"""

from __future__ import annotations

import argparse
import atexit
import copy
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch

import vitzoo
from vitzoo.features.extract import feature_fn, resolve_pool
from vitzoo.features.runtimes import runner_for
from vitzoo.models.flops import flops

Runner = Callable[[torch.Tensor], torch.Tensor]


def _median_seconds(fn: Callable[[], object], rounds: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gemm_rates(shape: tuple[int, int, int] = (1576, 768, 3072), rounds: int = 5) -> dict[str, float]:
    """GFLOP/s of one (m, k) @ (k, n) matmul, by default ViT-B/16's MLP at batch 8 (8 x 197 tokens, 768 -> 3072):
    torch's fp32 ``mm`` (MKL), oneDNN's fp32 linear (``mkldnn_linear``), onnxruntime's fp32 MatMul (MLAS) and
    torch's bf16 ``mm`` (oneDNN). The fastest fp32 one is this machine's fp32 GEMM rate here."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    m, k, n = shape
    flop = 2 * m * k * n / 1e9
    a, b = torch.randn(m, k), torch.randn(k, n)
    rates = {"torch fp32": flop / _median_seconds(lambda: a @ b, rounds)}
    am, bm = a.to_mkldnn(), b.t().contiguous().to_mkldnn()
    rates["oneDNN fp32"] = flop / _median_seconds(lambda: torch._C._nn.mkldnn_linear(am, bm), rounds)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "gemm",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [k, n]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [m, n])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {"a": a.numpy(), "b": b.numpy()}
    rates["onnxruntime fp32"] = flop / _median_seconds(lambda: session.run(None, feeds), rounds)
    a16, b16 = a.bfloat16(), b.bfloat16()
    rates["torch bf16"] = flop / _median_seconds(lambda: a16 @ b16, rounds)
    return rates


def vitzoo_runner(model: torch.nn.Module, runtime: str, batch: int, int8: bool = False) -> Runner:
    """What ``extract_features(model, ..., runtime=runtime)`` runs per batch (the model's own pooling): the same
    ``vitzoo.features.runtimes`` runner, built (compiled, exported, quantised) before timing starts."""
    fn = feature_fn(model)
    what = {"pool": resolve_pool(model, None), "layers": []}
    runner = runner_for(model, fn, runtime, int8=int8, what=what, batch_size=batch)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return runner(x.to(next(model.parameters()).dtype))["features"]

    return run


def bench(runners: dict[str, Runner], x: torch.Tensor, rounds: int) -> dict[str, float]:
    """Median seconds per call of each runner over interleaved rounds (after one warm-up call each)."""
    for run in runners.values():
        run(x)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run(x)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    run(quick=parser.parse_args().quick)


def scratch_cache(prefix: str) -> None:
    """Point vitzoo's runtime cache (exported ONNX graphs, GBs at real sizes) at a temporary folder removed at exit,
    unless ``VITZOO_CACHE`` is set: a benchmark leaves nothing behind."""
    if "VITZOO_CACHE" not in os.environ:
        os.environ["VITZOO_CACHE"] = path = tempfile.mkdtemp(prefix=prefix)
        atexit.register(shutil.rmtree, path, ignore_errors=True)


def run(quick: bool = False) -> None:
    """Measure and print the table (``benchmarks/forward.py --runtimes`` calls this too)."""
    torch.manual_seed(0)
    gemm = gemm_rates()
    peak = {"fp32": max(v for name, v in gemm.items() if "fp32" in name), "bf16": gemm["torch bf16"]}
    model = vitzoo.create_model("vit_base_patch16_224", num_classes=0).eval()
    gflop = flops(model) / 1e9
    scratch_cache("vitzoo-runtimes-")
    bf16_model = copy.deepcopy(model).to(torch.bfloat16)  # what dtype="bf16" runs: the model in bf16
    rows = []
    for batch in (1, 8):
        runners: dict[str, tuple[str, Runner]] = {  # name: (dtype whose GEMM rate it is measured against, runner)
            "eager fp32": ("fp32", vitzoo_runner(model, "torch", batch)),
            "eager bf16": ("bf16", vitzoo_runner(bf16_model, "torch", batch)),
            "compile fp32": ("fp32", vitzoo_runner(model, "compile", batch)),
            "compile bf16": ("bf16", vitzoo_runner(bf16_model, "compile", batch)),
            "onnxruntime fp32": ("fp32", vitzoo_runner(model, "onnxruntime", batch)),
            "onnxruntime int8 (dynamic)": ("fp32", vitzoo_runner(model, "onnxruntime", batch, int8=True)),
        }
        x = torch.randn(batch, 3, 224, 224)
        rounds = (3 if quick else 7) if batch == 8 else (5 if quick else 15)
        seconds = bench({name: run for name, (_, run) in runners.items()}, x, rounds)
        reference = runners["eager fp32"][1](x)
        for name, (dtype, run) in runners.items():
            out = run(x)
            cosine = torch.nn.functional.cosine_similarity(out.float(), reference, dim=-1).min().item()
            rate = gflop * batch / seconds[name]
            speedup = seconds["eager fp32"] / seconds[name]
            rows.append((batch, name, batch / seconds[name], rate, rate / peak[dtype], speedup, cosine))
            print(rows[-1], flush=True)
    print(
        f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}; ViT-B/16 forward {gflop:.1f} GFLOP/image; "
        "GEMM (1576 x 768 x 3072) GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in gemm.items()) + "\n"
    )
    print("| batch | runtime | img/s | GFLOP/s | of the GEMM rate | vs eager fp32 | cosine to eager fp32 (min) |")
    print("|---|---|---|---|---|---|---|")
    for batch, name, ips, rate, fraction, speedup, cosine in rows:
        print(
            f"| {batch} | {name} | {ips:.2f} | {rate:.0f} | {fraction:.0%} | {speedup:.2f}x | "
            f"{np.format_float_positional(cosine, precision=6)} |"
        )


if __name__ == "__main__":
    main()
