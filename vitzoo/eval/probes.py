"""Frozen-feature probes: the weighted k-NN of DINO/DINOv2 and the L-BFGS logistic regression of CLIP's linear probe.

Both take features and labels already computed (``extract_features``, ``vitzoo embed``), as torch tensors or numpy
arrays, and return accuracies in [0, 1]. Labels may be any integers; a test label absent from the training labels
counts as an error; at least two classes are needed. ``vitzoo.features.labelled.index_classes`` turns class names
into such labels, matched by name across train and test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F

from ..choices import KNN_K
from ..errors import ConfigError
from ..features.labelled import require_classes

C_EXPONENTS = (-6, -4, -2, 0, 2, 4, 6)  # CLIP's first sweep: C in 1e-6 .. 1e6, every two decades
C_STEPS_PER_DECADE = 8  # CLIP's final resolution of the sweep


# ------------------------------------------------------------------------------------------------- labels
def _as_features(x: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise ConfigError(f"{name} must be a (rows, dim) matrix of features, got shape {tuple(t.shape)}")
    return t.float() if not t.is_floating_point() else t


def encode_labels(train_labels: Any, test_labels: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Labels to class indices 0..K-1 (K = the distinct training labels, sorted, at least two); unknown test labels
    become -1."""
    train = torch.as_tensor(train_labels).long().flatten()
    test = torch.as_tensor(test_labels).long().flatten()
    classes, train_idx = torch.unique(train, return_inverse=True)
    require_classes(classes.tolist(), "the training labels")
    pos = torch.searchsorted(classes, test).clamp_max(len(classes) - 1)
    test_idx = torch.where(classes[pos] == test, pos, torch.full_like(pos, -1))
    return train_idx, test_idx, len(classes)


def _check_rows(feats: torch.Tensor, labels: torch.Tensor, name: str) -> None:
    if len(feats) != len(labels):
        raise ConfigError(f"{name}: {len(feats)} feature rows but {len(labels)} labels")
    if not len(feats):
        raise ConfigError(f"{name}: no rows")


# ---------------------------------------------------------------------------------------------------- k-NN
def knn_neighbours(
    train_feats: torch.Tensor,
    test_feats: torch.Tensor,
    k: int,
    *,
    chunk_size: int = 16384,
    batch_size: int = 2048,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` training rows most cosine-similar to each test row: (similarities, indices), each (test, k), sorted.

    Memory is bounded by one (``batch_size``, ``chunk_size``) similarity block plus the running top-k: train
    features are L2-normalised a chunk at a time on ``device`` (default: where the features are), never copied
    whole, and the best ``k`` of each chunk are merged with those of the chunks before.
    """
    if chunk_size < 1 or batch_size < 1:
        raise ConfigError(f"chunk_size and batch_size must be >= 1, got {chunk_size} and {batch_size}")
    device = torch.device(device) if device is not None else train_feats.device
    k = min(k, len(train_feats))
    sims_out, idx_out = [], []
    for q0 in range(0, len(test_feats), batch_size):
        queries = F.normalize(test_feats[q0 : q0 + batch_size].to(device).float(), dim=1, p=2)
        best_sims = torch.empty(len(queries), 0, device=device)
        best_idx = torch.empty(len(queries), 0, dtype=torch.long, device=device)
        for t0 in range(0, len(train_feats), chunk_size):
            keys = F.normalize(train_feats[t0 : t0 + chunk_size].to(device).float(), dim=1, p=2)
            sims, idx = torch.mm(queries, keys.T).topk(min(k, len(keys)), dim=1, largest=True, sorted=True)
            merged_sims = torch.cat([best_sims, sims], dim=1)
            merged_idx = torch.cat([best_idx, idx + t0], dim=1)
            best_sims, order = merged_sims.topk(min(k, merged_sims.shape[1]), dim=1, largest=True, sorted=True)
            best_idx = torch.gather(merged_idx, 1, order)
        sims_out.append(best_sims.cpu())
        idx_out.append(best_idx.cpu())
    return torch.cat(sims_out), torch.cat(idx_out)


def knn_eval(
    train_feats: Any,
    train_labels: Any,
    test_feats: Any,
    test_labels: Any,
    k: Sequence[int] = KNN_K,
    temperature: float = 0.07,
    *,
    chunk_size: int = 16384,
    batch_size: int = 2048,
    device: str | torch.device | None = None,
) -> dict[int, dict[str, float]]:
    """Weighted k-NN accuracy of DINO / DINOv2: ``{k: {"top1": ..., "top5": ...}}`` for each ``k``.

    Features are L2-normalised; the ``max(k)`` training features of highest cosine similarity vote for their class
    with weight ``exp(sim / temperature)`` (divided by the nearest one's, a per-query factor that keeps small
    temperatures finite and changes no ranking), and the class scores of each ``k`` sum the votes of the ``k`` nearest
    (DINOv2's eval/knn.py, which normalises the weights with a softmax: the same ranking). ``k`` larger than the
    training set uses all of it. Top-5 is top-min(5, classes). Runs in chunks (``knn_neighbours``), so 1M x 1024
    training features take one (``batch_size``, ``chunk_size``) similarity block and (``batch_size``, classes)
    scores of memory beyond themselves and the (queries, ``max(k)``) neighbour lists. ``device`` (e.g. ``"cuda"``)
    runs the blocks there; features already on it stay there, others are moved a block at a time.
    """
    train_x, test_x = _as_features(train_feats, "train_feats"), _as_features(test_feats, "test_feats")
    train_y, test_y, num_classes = encode_labels(train_labels, test_labels)
    _check_rows(train_x, train_y, "train")
    _check_rows(test_x, test_y, "test")
    if not k or min(k) < 1:
        raise ConfigError(f"k must be one or more positive numbers of neighbours, got {list(k)}")
    if temperature <= 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    sims, idx = knn_neighbours(train_x, test_x, max(k), chunk_size=chunk_size, batch_size=batch_size, device=device)
    ks = sorted(set(k))
    top = min(5, num_classes)
    hits1, hits5 = dict.fromkeys(ks, 0), dict.fromkeys(ks, 0)
    for q0 in range(0, len(test_y), batch_size):  # votes a query batch at a time: (batch, classes) scores
        labels = train_y[idx[q0 : q0 + batch_size]]  # (batch, max k), nearest first
        near = sims[q0 : q0 + batch_size].double()
        weights = ((near - near[:, :1]) / temperature).exp()  # exp(sim / T) / exp(sim_1 / T): no overflow at small T
        truth = test_y[q0 : q0 + batch_size].unsqueeze(1)
        scores = torch.zeros(len(labels), num_classes, dtype=torch.float64)
        done = 0
        for kk in ks:  # the scores of k add the votes of neighbours done+1..k to those of the previous k
            scores.scatter_add_(1, labels[:, done:kk], weights[:, done:kk])
            done = kk
            ranked = scores.topk(top, dim=1).indices == truth
            hits1[kk] += int(ranked[:, 0].sum())
            hits5[kk] += int(ranked.any(dim=1).sum())
    n = len(test_y)
    return {kk: {"top1": hits1[kk] / n, "top5": hits5[kk] / n} for kk in k}


# ------------------------------------------------------------------------------------------- linear probe
@dataclass
class LinearProbeResult:
    """What ``linear_probe`` measured: test accuracy at the chosen ``C``, and the validation accuracy of each ``C``
    of the sweep (empty when ``C`` was given)."""

    accuracy: float
    C: float
    val_accuracy: dict[float, float] = field(default_factory=dict)


def fit_logistic(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, C: float, max_iter: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression with an L2 penalty, fitted by L-BFGS: (weights (D, K), bias (K,)).

    Minimises ``sum_i CE(x_i W + b, y_i) + ||W||^2 / (2 C)`` (scikit-learn's ``LogisticRegression(C=C)``
    objective, the bias unpenalised), scaled by 1/n, from zeros, in float64 on the features' device.
    """
    x = x.double()
    n, d = x.shape
    weight = torch.zeros(d, num_classes, dtype=x.dtype, device=x.device, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=x.dtype, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        history_size=10,
        tolerance_grad=1e-6,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )
    penalty = 1.0 / (2.0 * C * n)

    def closure() -> torch.Tensor:
        loss = F.cross_entropy(x @ weight + bias, y) + penalty * weight.pow(2).sum()
        weight.grad, bias.grad = torch.autograd.grad(loss, [weight, bias])
        return loss.detach()

    step = cast(Callable[[Callable[[], torch.Tensor]], Any], opt.step)  # torch leaves Optimizer.step unannotated
    with torch.enable_grad():
        step(closure)
    return weight.detach(), bias.detach()


# rows x dims x classes under which a fit runs on one thread: L-BFGS makes hundreds of small matmuls, and threads
# that wait for each other (or for another process's) cost far more than they save. Measured on 2 busy cores:
# 300 x 192 x 5 took 4.2 s on two threads and 0.08 s on one; 2000 x 768 x 10, 11.4 s and 1.5 s.
SMALL_FIT = 1 << 26


@contextlib.contextmanager
def _threads_for(x: torch.Tensor, num_classes: int) -> Iterator[None]:
    """One thread for a small fit on the CPU (``SMALL_FIT``); torch's setting otherwise. Restored afterwards."""
    if x.device.type != "cpu" or x.numel() * num_classes > SMALL_FIT:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _accuracy(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    pred = (x.double() @ weight + bias).argmax(dim=1)
    return (pred == y).double().mean().item()


def _split(y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A stratified random split of the rows: ``fraction`` of each class (rounded down) to validation."""
    gen = torch.Generator().manual_seed(seed)
    fit, val = [], []
    for c in torch.unique(y):
        rows = (y == c).nonzero().flatten()
        rows = rows[torch.randperm(len(rows), generator=gen)]
        n_val = int(len(rows) * fraction)
        val.append(rows[:n_val])
        fit.append(rows[n_val:])
    return torch.cat(fit).sort().values, torch.cat(val).sort().values


def linear_probe(
    train_feats: Any,
    train_labels: Any,
    test_feats: Any,
    test_labels: Any,
    *,
    C: float | None = None,
    val_fraction: float = 0.2,
    max_iter: int = 1000,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> LinearProbeResult:
    """Linear-probe accuracy: multinomial logistic regression on frozen features (CLIP paper, §3.2 / App. A.3).

    With ``C=None`` the inverse L2 strength is chosen on a validation split (``val_fraction`` of each training class,
    drawn with ``seed``) by CLIP's parametric search: C in 1e-6 .. 1e6 every two decades, then the interval around
    the best is halved until it reaches 8 steps per decade (ties go to the stronger penalty). The classifier is then
    refitted on the whole training set at that C and scored on the test set. Each fit is L-BFGS with at most
    ``max_iter`` iterations (``fit_logistic``); ``device`` runs it elsewhere (e.g. ``"cuda"``).
    """
    dev = torch.device(device) if device is not None else None
    train_x = _as_features(train_feats, "train_feats").to(dev)
    test_x = _as_features(test_feats, "test_feats").to(dev)
    train_y, test_y, num_classes = encode_labels(train_labels, test_labels)
    _check_rows(train_x, train_y, "train")
    _check_rows(test_x, test_y, "test")
    train_y, test_y = train_y.to(train_x.device), test_y.to(train_x.device)
    if C is not None and C <= 0:
        raise ConfigError(f"C must be > 0, got {C}")
    sweep: dict[float, float] = {}
    with _threads_for(train_x, num_classes):
        C = _choose_C(train_x, train_y, num_classes, C, sweep, val_fraction, max_iter, seed)
        weight, bias = fit_logistic(train_x, train_y, num_classes, C, max_iter)
    return LinearProbeResult(
        accuracy=_accuracy(weight, bias, test_x, test_y), C=C, val_accuracy=dict(sorted(sweep.items()))
    )


def _choose_C(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    num_classes: int,
    C: float | None,
    sweep: dict[float, float],
    val_fraction: float,
    max_iter: int,
    seed: int,
) -> float:
    """``C`` itself when given, else CLIP's search on a validation split (each C's accuracy goes into ``sweep``)."""
    if C is None:
        if not 0 < val_fraction < 1:
            raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
        fit_rows, val_rows = _split(train_y.cpu(), val_fraction, seed)
        if not len(val_rows):
            raise ConfigError("the validation split is empty: pass C=..., or more training rows per class")
        fit_x, fit_y = train_x[fit_rows.to(train_x.device)], train_y[fit_rows.to(train_x.device)]
        val_x, val_y = train_x[val_rows.to(train_x.device)], train_y[val_rows.to(train_x.device)]

        def score(exponent: float) -> float:
            c = 10.0**exponent
            if c not in sweep:
                sweep[c] = _accuracy(*fit_logistic(fit_x, fit_y, num_classes, c, max_iter), val_x, val_y)
            return sweep[c]

        best: float = max(C_EXPONENTS, key=lambda e: (score(e), -e))
        step = float(C_EXPONENTS[1] - C_EXPONENTS[0])
        while step > 1.0 / C_STEPS_PER_DECADE + 1e-9:
            step /= 2
            around = [e for e in (best - step, best, best + step) if C_EXPONENTS[0] <= e <= C_EXPONENTS[-1]]
            best = max(around, key=lambda e: (score(e), -e))
        C = 10.0**best
    return C
