"""Regenerate vitzoo/data/imagenet{1k,21k}_labels.txt (one class name a line, in head order) from timm's data files.

    python scripts/gen_labels.py

Names are the first WordNet lemma of each synset (timm's imagenet_synset_to_lemma.txt); the 21k order is the
21,843-class head of the original Google checkpoints (timm's imagenet21k_goog_synsets.txt).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

info = resources.files("timm.data") / "_info"
lemmas = dict(
    line.split("\t", 1) for line in (info / "imagenet_synset_to_lemma.txt").read_text().splitlines() if "\t" in line
)
out = Path(__file__).resolve().parents[1] / "vitzoo" / "data"
for src, dst in (
    ("imagenet_synsets.txt", "imagenet1k_labels.txt"),
    ("imagenet21k_goog_synsets.txt", "imagenet21k_labels.txt"),
):
    synsets = (info / src).read_text().split()
    names = [lemmas[s].split(",")[0].strip() for s in synsets]
    (out / dst).write_text("\n".join(names) + "\n")
    print(dst, len(names))
