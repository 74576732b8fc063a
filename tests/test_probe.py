"""Frozen-feature probes against independent references: DINOv2's weighted k-NN vote written out here, and
scikit-learn's LogisticRegression."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

import vitzoo


def blobs(n: int, classes: int, dim: int, spread: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Overlapping Gaussian classes: a probe reaches neither chance nor 100%, so a wrong vote or fit shows."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(1234)) * spread
    y = torch.randint(0, classes, (n,), generator=gen)
    return centres[y] + torch.randn(n, dim, generator=gen), y


def dinov2_knn_reference(train_x, train_y, test_x, test_y, ks, temperature):
    """DINOv2's eval/knn.py in one piece, without chunks: L2-normalised features, cosine similarity to every training
    feature, the max(k) most similar, votes exp(sim / T) on their one-hot labels, class scores of the first k summed.
    (DINOv2 divides the weights by their sum, a softmax: the same ranking.) Top-1 / top-5 as torchmetrics counts."""
    train = F.normalize(train_x.double(), dim=1)
    test = F.normalize(test_x.double(), dim=1)
    sims, idx = (test @ train.T).topk(max(ks), dim=1)
    num_classes = int(train_y.max()) + 1
    out = {}
    for k in ks:
        weights = (sims[:, :k] / temperature).exp()
        scores = (F.one_hot(train_y[idx[:, :k]], num_classes).double() * weights[..., None]).sum(dim=1)
        top5 = scores.topk(5, dim=1).indices
        out[k] = {
            "top1": (top5[:, 0] == test_y).double().mean().item(),
            "top5": (top5 == test_y[:, None]).any(dim=1).double().mean().item(),
        }
    return out


def test_knn_equals_the_dinov2_vote_across_chunks():
    train_x, train_y = blobs(900, 8, 24, 0.35, seed=0)
    test_x, test_y = blobs(300, 8, 24, 0.35, seed=1)
    ref = dinov2_knn_reference(train_x, train_y, test_x, test_y, (10, 20, 100, 200), 0.07)
    # Odd chunk sizes: many train chunks (fewer rows than k=200 in each) and query batches with a ragged end.
    got = vitzoo.knn_eval(train_x, train_y, test_x, test_y, chunk_size=97, batch_size=71)
    assert got == ref
    assert 0.3 < ref[20]["top1"] < 0.95  # neither chance (0.125) nor solved: the vote is what is measured
    # Labels are names, not positions: any integers give the same result; unseen test labels count as errors.
    shifted = vitzoo.knn_eval(train_x, train_y * 7 - 3, test_x, test_y * 7 - 3, k=(20,), chunk_size=97)
    assert shifted[20] == ref[20]
    unseen = test_y.clone()
    unseen[:30] = 99
    got = vitzoo.knn_eval(train_x, train_y, test_x, unseen, k=(20,))
    assert got == dinov2_knn_reference(train_x, train_y, test_x, unseen, (20,), 0.07)
    assert got[20]["top1"] < ref[20]["top1"]


def test_knn_never_builds_more_than_one_similarity_block(monkeypatch):
    train_x, train_y = blobs(1000, 4, 16, 0.5, seed=0)
    test_x, test_y = blobs(130, 4, 16, 0.5, seed=1)
    shapes = []
    mm = torch.mm

    def recording(a, b):
        shapes.append((a.shape[0], b.shape[1]))
        return mm(a, b)

    monkeypatch.setattr(torch, "mm", recording)
    vitzoo.knn_eval(train_x, train_y, test_x, test_y, k=(10,), chunk_size=256, batch_size=64)
    assert max(shapes) == (64, 256) and len(shapes) == 3 * 4  # 3 query batches x 4 train chunks


@pytest.mark.parametrize("C", [0.01, 1.0])
def test_linear_probe_matches_scikit_learn_at_the_same_C(C):
    train_x, train_y = blobs(600, 6, 32, 0.3, seed=0)
    test_x, test_y = blobs(1000, 6, 32, 0.3, seed=1)
    sk = LogisticRegression(C=C, max_iter=1000).fit(train_x.numpy(), train_y.numpy())
    expected = float((sk.predict(test_x.numpy()) == test_y.numpy()).mean())
    got = vitzoo.linear_probe(train_x, train_y, test_x, test_y, C=C)
    assert got.C == C and got.val_accuracy == {}
    assert 0.4 < expected < 0.95
    assert abs(got.accuracy - expected) <= 0.005, (got.accuracy, expected)


def test_linear_probe_sweep_follows_clips_search():
    train_x, train_y = blobs(150, 3, 64, 0.25, seed=0)  # few rows, many dims: the penalty matters
    test_x, test_y = blobs(300, 3, 64, 0.25, seed=1)
    got = vitzoo.linear_probe(train_x, train_y, test_x, test_y)
    exponents = sorted(math.log10(c) for c in got.val_accuracy)
    assert {-6, -4, -2, 0, 2, 4, 6} <= {round(e, 6) for e in exponents}  # the first, coarse sweep
    assert len(exponents) <= 7 + 2 * 4  # then two neighbours per halving: 2 -> 1 -> 1/2 -> 1/4 -> 1/8 decades
    best = max(got.val_accuracy.values())
    assert got.val_accuracy[got.C] == best  # the chosen C is a best one on validation...
    assert min(c for c, acc in got.val_accuracy.items() if acc == best) == got.C  # ...the most regularised of those
    assert abs(math.log10(got.C) * 8 - round(math.log10(got.C) * 8)) < 1e-9  # on the 8-per-decade grid
    refit = vitzoo.linear_probe(train_x, train_y, test_x, test_y, C=got.C)
    assert refit.accuracy == got.accuracy  # the final model is the refit on the whole training set at that C


def test_probe_inputs_refuse_mismatches():
    x, y = blobs(20, 2, 4, 1.0, seed=0)
    with pytest.raises(vitzoo.ConfigError, match="20 feature rows but 19 labels"):
        vitzoo.knn_eval(x, y[:19], x, y)
    with pytest.raises(vitzoo.ConfigError, match="temperature"):
        vitzoo.knn_eval(x, y, x, y, temperature=0)
    with pytest.raises(vitzoo.ConfigError, match="matrix"):
        vitzoo.linear_probe(x[0], y, x, y)
