"""Labelled images: the one reader of an ImageFolder or a ``path,label`` CSV, and the one rule matching classes.

Every command that takes labelled images (``vitzoo probe``, ``fewshot``, ``finetune``) reads them here, so a bad row
gets the same error everywhere, and classes are matched by name across the training set and a test or validation
set: a class only the second one has is an error naming it, and so is a training set of fewer than two classes.
Paths come out absolute (relative CSV paths are relative to the CSV's folder), as the embed job records them.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, InputError
from .inputs import iter_names

CSV_HEADER = ["path", "label"]  # optional first row of a CSV


@dataclass
class LabelledImages:
    """Image paths (absolute) and the class name of each."""

    paths: list[str]
    labels: list[str]

    @property
    def classes(self) -> list[str]:
        """The class names, sorted."""
        return sorted(set(self.labels))


def read_labelled(spec: str | Path, *, must_exist: bool = False) -> LabelledImages:
    """An ImageFolder (one sub-folder of images per class, images found at any depth, in sorted order) or a CSV
    file of ``path,label`` rows (an optional ``path,label`` header; blank lines skipped; any other row that is not
    two non-empty cells is refused, naming its line). ``must_exist``: refuse a CSV that lists missing images."""
    spec = Path(spec)
    if spec.is_dir():
        images = _image_folder(spec)
    elif spec.suffix.lower() == ".csv" and spec.is_file():
        paths, labels = _read_csv(spec)
        images = LabelledImages([_absolute(spec, p) for p in paths], labels)
    else:
        what = "no such file or folder" if not spec.exists() else "neither a folder nor a .csv file"
        raise InputError(
            f"{spec}: {what}; expected an ImageFolder (one sub-folder of images per class) or a .csv of path,label rows"
        )
    if must_exist:
        missing = [p for p in images.paths if not os.path.isfile(p)]
        if missing:
            raise InputError(f"{spec}: {len(missing)} listed image(s) do not exist, e.g. {missing[0]}; fix the list")
    return images


def _image_folder(root: Path) -> LabelledImages:
    root = Path(os.path.abspath(root))
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise InputError(f"{root}: no class sub-folders; expected an ImageFolder (one sub-folder of images per class)")
    paths: list[str] = []
    labels: list[str] = []
    for name in classes:
        found = list(iter_names(root / name))  # the images of the folder, recursively, sorted
        paths += found
        labels += [name] * len(found)
    if not paths:
        raise InputError(f"{root}: its class sub-folders ({', '.join(classes[:5])}, ...) hold no images")
    return LabelledImages(paths, labels)


def _read_csv(path: Path) -> tuple[list[str], list[str]]:
    try:
        with path.open(newline="") as f:
            rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"{path}: cannot be read as a CSV of path,label rows ({err})") from err
    header = 1 if rows and [c.strip().lower() for c in rows[0]] == CSV_HEADER else 0
    for number, row in enumerate(rows[header:], header + 1):
        if len(row) != 2 or not all(cell.strip() for cell in row):
            raise InputError(
                f"{path}: line {number} is not a path,label row ({','.join(row)[:80]!r}); fix or remove it"
            )
    if len(rows) == header:
        raise InputError(f"{path}: no path,label rows")
    return [p.strip() for p, _ in rows[header:]], [label.strip() for _, label in rows[header:]]


def _absolute(csv_path: Path, p: str) -> str:
    """A CSV's path as an absolute one: relative paths are relative to the CSV's folder."""
    return os.path.abspath(csv_path.parent / p)


def label_lookup(spec: str | Path) -> dict[str, str]:
    """A CSV of ``path,label`` rows as a path -> label mapping, for embeddings files: each path as written and
    relative to the CSV's folder (absolute, as the embed job records the paths it was given)."""
    spec = Path(spec)
    if not spec.is_file():
        raise InputError(f"{spec}: no such file; --labels takes a .csv of path,label rows")
    paths, labels = _read_csv(spec)
    return dict(zip(paths, labels, strict=True)) | {_absolute(spec, p): y for p, y in zip(paths, labels, strict=True)}


def labels_of(paths: Sequence[str], lookup: Mapping[str, str] | None = None) -> list[str]:
    """The class of each path: from ``lookup`` when given, else the name of its parent folder (ImageFolder)."""
    if lookup is None:
        return [Path(p).parent.name for p in paths]
    missing = [p for p in paths if p not in lookup]
    if missing:
        raise InputError(
            f"{len(missing)} embedded path(s) have no label in the label list, e.g. {missing[0]}; add a path,label "
            "row for each (as the embeddings file records it, or relative to the CSV's folder)"
        )
    return [lookup[p] for p in paths]


# ------------------------------------------------------------------------------------------------ classes
def require_classes(classes: Sequence[Any], where: str = "the training set") -> None:
    """Refuse fewer than two classes: a classifier over one class is right by construction (100%, loss 0)."""
    if len(classes) < 2:
        held = f"only {classes[0]!r}" if classes else "none"
        raise ConfigError(f"{where} has {held}: at least two classes are needed; add images of other classes")


def index_classes(
    train: Sequence[str], test: Sequence[str], where: str = "the training set", test_name: str = "the test set"
) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Class names to indices: (the sorted training classes, train indices, test indices), matched by name.

    Fewer than two training classes, or a test class the training set lacks, raise an error naming them."""
    classes = sorted(set(train))
    require_classes(classes, where)
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(test) - index.keys())
    if unknown:
        listed = ", ".join(map(repr, unknown[:5])) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise InputError(
            f"{test_name} has classes {where} lacks: {listed}; leave those images out or add them to the training set"
        )
    return classes, torch.tensor([index[y] for y in train]), torch.tensor([index[y] for y in test])
