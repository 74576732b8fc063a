"""Time and peak memory of ``vitzoo.knn_eval`` next to scikit-learn's ``KNeighborsClassifier(metric="cosine")``.

    python benchmarks/knn.py                                 # 200k x 768 train, 10k queries, 1000 classes
    python benchmarks/knn.py --train 50000 --queries 2500    # 1/16 of the work, for a busy machine

Features are seeded float32 rows, class centres plus noise (the time does not depend on what they hold), labels
uniform over the classes. Every row runs in a fresh process: the features are generated there first, and "extra
peak MB" is the process's peak resident memory minus its peak after generating them, i.e. what the k-NN itself
allocated. Rows are run in interleaved rounds; the table has the median time and the largest extra peak.
scikit-learn gets the same vote as vitzoo (``weights=exp((1 - distance) / T)``, since cosine distance is
1 - similarity), so both top-1 columns must agree; it computes one k per fit, vitzoo every k from one neighbour
search.
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
import time

import numpy as np
import torch
from sklearn.neighbors import KNeighborsClassifier

import vitzoo

TEMPERATURE = 0.07


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def features(n_train: int, n_queries: int, dim: int, classes: int) -> tuple[torch.Tensor, ...]:
    """Class centres plus unit noise, so the vote has something to find (top-1 well above chance); built in place
    a chunk at a time, so generating them does not raise the peak above the features themselves."""
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(classes, dim, generator=gen) * 0.25
    out = []
    for n in (n_train, n_queries):
        x = torch.randn(n, dim, generator=gen)
        y = torch.randint(0, classes, (n,), generator=gen)
        for i in range(0, n, 8192):
            x[i : i + 8192] += centres[y[i : i + 8192]]
        out += [x, y]
    return tuple(out)


def vote(distances: np.ndarray) -> np.ndarray:
    return np.exp((1.0 - distances) / TEMPERATURE)


def worker(args: argparse.Namespace) -> None:
    """One measurement in this process; prints a JSON line."""
    train_x, train_y, test_x, test_y = features(args.train, args.queries, args.dim, args.classes)
    base = peak_mb()
    start = time.perf_counter()
    if args.worker == "sklearn":
        clf = KNeighborsClassifier(n_neighbors=20, metric="cosine", weights=vote, algorithm="brute")
        pred = clf.fit(train_x.numpy(), train_y.numpy()).predict(test_x.numpy())
        top1 = float((pred == test_y.numpy()).mean())
    else:
        ks = (10, 20, 100, 200) if args.worker == "vitzoo-all" else (20,)
        top1 = vitzoo.knn_eval(train_x, train_y, test_x, test_y, k=ks, temperature=TEMPERATURE)[20]["top1"]
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "extra_peak_mb": peak_mb() - base, "base_mb": base, "top1": top1}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (the median time is reported)")
    parser.add_argument("--worker", choices=("vitzoo-all", "vitzoo-20", "sklearn"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    rows = (
        ("vitzoo `knn_eval`, k = 10, 20, 100, 200", "vitzoo-all"),
        ("vitzoo `knn_eval`, k = 20", "vitzoo-20"),
        ('scikit-learn `KNeighborsClassifier(20, metric="cosine")`', "sklearn"),
    )
    size = f"--train {args.train} --queries {args.queries} --dim {args.dim} --classes {args.classes}".split()
    print(f"{args.train} x {args.dim} train, {args.queries} queries, {args.classes} classes; ", end="")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); median of {args.repeat} interleaved rounds"
    )
    results: dict[str, list[dict[str, float]]] = {kind: [] for _, kind in rows}
    for _ in range(args.repeat):  # interleaved: a slow spell on a shared machine hits every method alike
        for _, kind in rows:
            cmd = [sys.executable, __file__, *size, "--worker", kind]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
    feats = (args.train + args.queries) * args.dim * 4 / 2**20
    print("\n| method | seconds | extra peak MB | features MB | k=20 top-1 |")
    print("|---|---|---|---|---|")
    for label, kind in rows:
        runs = results[kind]
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = max(r["extra_peak_mb"] for r in runs)
        print(f"| {label} | {seconds:.1f} | {peak:.0f} | {feats:.0f} | {runs[0]['top1']:.4f} |")


if __name__ == "__main__":
    main()
