"""The ViT paper's few-shot evaluation (Section 4.1): closed-form regularised least squares from frozen features to
{-1, 1}^K targets, on k images per class, scored on a test set.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, cast

import torch

from ..errors import InputError, VitzooError
from ..features.batches import ImageList
from ..features.extract import extract_features
from ..features.labelled import LabelledImages, index_classes, read_labelled, require_classes
from ..models.vit import VisionTransformer


def _sample_shots(labels: torch.Tensor, shots: int, seed: int) -> torch.Tensor:
    rng = random.Random(seed)
    picked = []
    for c in sorted(set(labels.tolist())):
        idx = [i for i, y in enumerate(labels.tolist()) if y == c]
        if len(idx) < shots:
            raise VitzooError(f"class {c} has {len(idx)} training images, fewer than {shots} shots: ask for fewer")
        picked += rng.sample(idx, shots)
    return torch.tensor(sorted(picked))


def fewshot_linear(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, l2_reg: float = 1.0
) -> float:
    """Accuracy of the closed-form ridge regression from features to {-1, 1}^K targets (the paper's few-shot probe).

    Features are centred with the training mean (which plays the role of the bias); the weights solve
    ``(X^T X + l2_reg I) W = X^T Y``; the prediction is the arg-max of ``X_test W``.
    """
    classes = sorted(set(train_y.tolist()))
    index = {c: i for i, c in enumerate(classes)}
    x = train_x.double()
    mean = x.mean(dim=0, keepdim=True)
    x = x - mean
    y = -torch.ones(len(train_y), len(classes), dtype=torch.float64)
    y[torch.arange(len(train_y)), torch.tensor([index[int(v)] for v in train_y])] = 1.0
    gram = x.T @ x + l2_reg * torch.eye(x.shape[1], dtype=x.dtype)
    weights = torch.linalg.solve(gram, x.T @ y)
    pred = ((test_x.double() - mean) @ weights).argmax(dim=1)
    truth = torch.tensor([index.get(int(v), -1) for v in test_y])
    return (pred == truth).double().mean().item()


def fewshot_eval(
    model: VisionTransformer,
    train: Any,
    test: Any,
    shots: Sequence[int] = (1, 5, 10, 25),
    *,
    l2_reg: float = 1.0,
    seed: int = 0,
    pool: str | None = None,
    **extract_kwargs: Any,
) -> dict[int, float]:
    """Few-shot linear accuracy for each number of ``shots`` per class (paper §4.1).

    ``train`` / ``test``: ImageFolder-style folders, or ``(features, labels)`` pairs already computed. Features come
    from ``extract_features`` (frozen model, checkpoint transform, ``pool``: None is the model's own pooling);
    ``shots`` images per class are drawn from ``train`` with ``seed``. Two folders are matched by class name (a
    test class the training folder lacks is an error); both are listed before any image is embedded.
    """

    def listed(split: Any) -> LabelledImages | None:
        is_features = isinstance(split, (tuple, list)) and len(split) == 2 and torch.is_tensor(split[0])
        return None if is_features else read_labelled(split)

    def features(split: Any, listing: LabelledImages | None) -> torch.Tensor:
        if listing is None:
            return cast(torch.Tensor, split[0])
        feats = extract_features(model, ImageList(listing.paths), pool=pool, **extract_kwargs)
        assert isinstance(feats, torch.Tensor)  # no layers: one tensor
        return feats

    def indices(listing: LabelledImages) -> torch.Tensor:  # a folder beside given labels: its sorted class names
        return torch.tensor([listing.classes.index(y) for y in listing.labels])

    train_list, test_list = listed(train), listed(test)  # both listed (and checked) before any image is embedded
    if train_list is not None and test_list is not None:  # two folders: their classes matched by name
        _, train_y, test_y = index_classes(
            train_list.labels, test_list.labels, f"the training folder {train}", f"the test folder {test}"
        )
    else:
        train_y = torch.as_tensor(train[1]) if train_list is None else indices(train_list)
        test_y = torch.as_tensor(test[1]) if test_list is None else indices(test_list)
    train_x, test_x = features(train, train_list), features(test, test_list)
    return fewshot_from_features(train_x, train_y, test_x, test_y, shots, l2_reg, seed)


def fewshot_from_features(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    shots: Sequence[int] = (1, 5, 10, 25),
    l2_reg: float = 1.0,
    seed: int = 0,
) -> dict[int, float]:
    """``fewshot_eval`` on features already computed: ``shots`` rows per class drawn with ``seed``, then
    ``fewshot_linear``. At least two training classes are needed, and every test label must be a training one."""
    known = set(train_y.tolist())
    require_classes(sorted(known))
    unknown = sorted(set(test_y.tolist()) - known)
    if unknown:
        raise InputError(f"the test labels {unknown[:5]} are not among the training labels; leave those rows out")
    results = {}
    for k in shots:
        idx = _sample_shots(train_y, k, seed)
        results[k] = fewshot_linear(train_x[idx], train_y[idx], test_x, test_y, l2_reg)
    return results
