"""Time and peak memory of ``vitzoo.search_embeddings`` next to a brute-force numpy search of the same output.

    python benchmarks/search.py                               # 25k, 50k, 100k, 200k x 768; 1 and 100 queries
    python benchmarks/search.py --rows 10000 20000 --repeat 2  # a quick look
    python benchmarks/search.py --layout npy --queries 1       # one .npy file instead of a directory

Each size is a dataset directory written shard by shard (1024 rows a shard, as ``vitzoo embed`` writes by default;
seeded float32 rows) into ``--work`` (a temporary folder unless given), and, with ``--layout npy`` or
``safetensors``, merged into one file as ``vitzoo embed`` merges its shards, before anything is timed, so every run
reads it from the page cache. Every row of the table runs in a fresh process; "extra peak MB" is that process's peak
resident memory minus its peak once the libraries are imported and the queries made, i.e. what the search itself
took (the shards' mapped pages included). Both return the top 10 of each query; their row indices must agree, and
the script stops if they do not. numpy reads every shard into one array, normalises it and ranks all rows at once
(``argpartition``, then a sort of the 10), the way one searches an output that fits in memory. Runs are interleaved
rounds; the table has the median time and the largest extra peak.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import vitzoo
from vitzoo.features.fingerprint import EmbedMeta
from vitzoo.features.outputs import merge_shards
from vitzoo.features.shards import write_index, write_shard

SHARD = 1024
K = 10


def peak_mb() -> float:
    """This process's peak resident memory: VmHWM, where Linux has it (ru_maxrss is carried over from the parent
    across exec, and the parent here holds whole outputs while it merges them), else ru_maxrss."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def write_output(folder: Path, rows: int, dim: int) -> None:
    """``rows`` seeded float32 rows as a dataset directory, one shard in memory at a time."""
    if (folder / "index.json").exists():
        return
    folder.mkdir(parents=True)
    rng = np.random.default_rng(rows)
    shards = range(0, rows, SHARD)
    for k, start in enumerate(shards):
        n = min(SHARD, rows - start)
        feats = rng.standard_normal((n, dim), dtype=np.float32)
        write_shard(folder, k, {"features": feats}, [f"images/{i:07d}.jpg" for i in range(start, start + n)], [])
    write_index(folder, len(shards), {"model": "synthetic", "pool": "output", "layers": []}, {"inputs": "synthetic"})


def write_file(folder: Path, layout: str) -> Path:
    """The directory merged into ``folder.npy`` / ``folder.safetensors``, as ``vitzoo embed`` finishes a file."""
    out = folder.with_suffix(f".{layout}")
    if not out.exists():
        meta = EmbedMeta(None, None, None, [224, 224], pool="output", layers=[], dtype="float32")
        merge_shards(folder, len(json.loads((folder / "index.json").read_text())["shards"]), out, meta, {})
    return out


def output_path(work: Path, rows: int, layout: str) -> Path:
    folder = work / f"rows-{rows}"
    return folder if layout == "dir" else folder.with_suffix(f".{layout}")


def numpy_search(path: Path, queries: np.ndarray) -> np.ndarray:
    """Every row in memory, normalised, ranked at once: the top ``K`` rows of each query."""
    E = vitzoo.open_embeddings(path)
    x = np.concatenate([np.asarray(shard["features"]) for shard in E])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = q @ x.T
    top = np.argpartition(-scores, K, axis=1)[:, :K]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def warm_up(folder: Path, queries: np.ndarray, kind: str) -> None:
    """The method run once on a 64-row output: the lazy imports done and torch's and numpy's threads started, so that
    the timed run measures the search, and the peak so far stays far below that of the timed run."""
    if kind == "numpy":
        numpy_search(folder, queries)
    else:
        vitzoo.search_embeddings(folder, torch.from_numpy(queries), k=K)


def worker(args: argparse.Namespace) -> None:
    """One measurement in this process; prints a JSON line."""
    queries = np.random.default_rng(1).standard_normal((args.queries, args.dim), dtype=np.float32)
    folder = output_path(Path(args.work), args.worker_rows, args.layout)
    warm_up(Path(args.work) / "warm-up", queries, args.worker)
    base = peak_mb()
    start = time.perf_counter()
    if args.worker == "numpy":
        rows = numpy_search(folder, queries)
    else:
        rows = vitzoo.search_embeddings(folder, torch.from_numpy(queries), k=K).indices.numpy()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "extra_peak_mb": peak_mb() - base, "rows": rows.tolist()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[25_000, 50_000, 100_000, 200_000])
    parser.add_argument("--queries", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (the median time is reported)")
    parser.add_argument("--layout", choices=("dir", "npy", "safetensors"), default="dir", help="the output's layout")
    parser.add_argument("--work", help="where the outputs are written (and kept; default: a temporary folder)")
    parser.add_argument("--worker", choices=("vitzoo", "numpy"), help=argparse.SUPPRESS)
    parser.add_argument("--worker-rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.queries = args.queries[0]
        worker(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        for rows in args.rows:
            write_output(work / f"rows-{rows}", rows, args.dim)
            if args.layout != "dir":
                write_file(work / f"rows-{rows}", args.layout)
        write_output(work / "warm-up", 64, args.dim)
        print(
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), numpy {np.__version__}; {args.dim}-wide float32 rows, "
            f"{'in shards of ' + str(SHARD) if args.layout == 'dir' else 'one .' + args.layout + ' file'}, top {K}; "
            f"median of {args.repeat} interleaved rounds"
        )
        cases = [(rows, q, kind) for rows in args.rows for q in args.queries for kind in ("vitzoo", "numpy")]
        results: dict[tuple[int, int, str], list[dict[str, object]]] = {case: [] for case in cases}
        for _ in range(args.repeat):  # interleaved: a slow spell on a shared machine hits every method alike
            for rows, q, kind in cases:
                cmd = [sys.executable, __file__, "--work", str(work), "--dim", str(args.dim), "--layout", args.layout]
                cmd += ["--worker", kind, "--worker-rows", str(rows), "--queries", str(q)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True)
                results[rows, q, kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("\n| rows | queries | vitzoo s | numpy s | vitzoo / numpy | vitzoo extra peak MB | numpy extra peak MB |")
    print("|---|---|---|---|---|---|---|")
    for rows in args.rows:
        for q in args.queries:
            ours, theirs = results[rows, q, "vitzoo"], results[rows, q, "numpy"]
            if ours[0]["rows"] != theirs[0]["rows"]:
                raise SystemExit(f"{rows} rows, {q} queries: vitzoo and numpy found different rows")
            t_ours = statistics.median(float(r["seconds"]) for r in ours)  # type: ignore[arg-type]
            t_theirs = statistics.median(float(r["seconds"]) for r in theirs)  # type: ignore[arg-type]
            m_ours = max(float(r["extra_peak_mb"]) for r in ours)  # type: ignore[arg-type]
            m_theirs = max(float(r["extra_peak_mb"]) for r in theirs)  # type: ignore[arg-type]
            print(
                f"| {rows:,} | {q} | {t_ours:.2f} | {t_theirs:.2f} | {t_ours / t_theirs:.2f}x | {m_ours:.0f} | "
                f"{m_theirs:.0f} |"
            )


if __name__ == "__main__":
    main()
