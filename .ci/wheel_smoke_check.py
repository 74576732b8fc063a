"""Run by .ci/wheel-smoke with the fresh venv's Python, from a directory outside the checkout.

Usage: python wheel_smoke_check.py CHECKOUT VERSION
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

import vitzoo

root, version = Path(sys.argv[1]).resolve(), sys.argv[2]
where = Path(vitzoo.__file__).resolve()
assert root not in where.parents, f"imported vitzoo from the checkout ({where}), not from the installed wheel"
assert vitzoo.__version__ == version, (vitzoo.__version__, version)
assert importlib.util.find_spec("timm") is None, "the venv has timm: it should hold the core dependencies only"
assert (where.parent / "py.typed").is_file(), "py.typed is not installed"

model = vitzoo.create_model("vit_tiny_patch16_224", depth=1, num_classes=10).eval()
with torch.inference_mode():
    logits = model(torch.randn(1, 3, 224, 224))
assert logits.shape == (1, 10) and bool(torch.isfinite(logits).all()), logits

for tag, labels in [("vit_base_patch16_224.augreg2_in21k_ft_in1k", "imagenet1k"),
                    ("vit_base_patch16_224.augreg_in21k", "imagenet21k")]:  # fmt: skip
    expected = (root / "vitzoo" / "data" / f"{labels}_labels.txt").read_text().splitlines()
    try:
        names = vitzoo.get_pretrained_cfg(tag).class_names()
    except FileNotFoundError as err:
        sys.exit(f"{tag}: the wheel lacks vitzoo/data/{labels}_labels.txt ({err})")
    assert names == expected, f"{tag}: class_names()[0] is {names[0]!r}, expected {expected[0]!r}"
    print(f"{tag}: class_names()[0] = {names[0]!r} ({len(names)} names)")

print(f"vitzoo {vitzoo.__version__} from {where.parent}, torch {torch.__version__}: forward {tuple(logits.shape)} ok")
