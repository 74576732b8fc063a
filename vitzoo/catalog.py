"""The model and checkpoint tables: ``vitzoo list`` prints them, docs/models.md and docs/pretrained.md are them.

``model_rows`` and ``pretrained_rows`` give the cells as text (one list per arch or checkpoint, in the order of
``MODEL_HEADERS`` / ``PRETRAINED_HEADERS``); ``models_markdown`` and ``pretrained_markdown`` are the generated docs.
"""

from __future__ import annotations

from collections.abc import Sequence

from .factory import describe
from .models.archs import ALIASES, family_of, list_models
from .weights.pretrained import PRETRAINED, list_pretrained

_COLUMNS = (
    "name",
    "family",
    "aliases",
    "params",
    "params_no_head",
    "layers",
    "width",
    "mlp",
    "heads",
    "patch",
    "img_size",
    "tokens",
    "pool",
)
MODEL_HEADERS = (
    "model",
    "family",
    "aliases",
    "params",
    "params (no head)",
    "layers",
    "D",
    "MLP",
    "heads",
    "patch",
    "img",
    "tokens",
    "pool",
)
PRETRAINED_HEADERS = (
    "checkpoint",
    "family",
    "classes",
    "img",
    "top-1",
    "mean/std",
    "crop",
    "interp",
    "license",
    "description",
)
_NORMS: dict[tuple[float, ...], str] = {
    (0.5, 0.5, 0.5): "0.5",
    (0.485, 0.456, 0.406): "imagenet",
    (0.48145466, 0.4578275, 0.40821073): "clip",
}


def model_rows(pattern: str | None = None) -> list[list[str]]:
    """One row per arch matching the shell-style ``pattern`` (every arch for None): sizes, tokens, parameters."""
    rows = []
    for name in list_models(pattern):
        info = describe(name)
        info["aliases"] = ", ".join(a for a, n in ALIASES.items() if n == name)
        info["params"] = f"{info['params']:,}"
        info["params_no_head"] = f"{info['params_no_head']:,}"
        rows.append([str(info[c]) for c in _COLUMNS])
    return rows


def pretrained_rows(pattern: str | None = None) -> list[list[str]]:
    """One row per checkpoint (``arch.tag``) matching ``pattern``: classes, size, top-1, preprocessing, license."""
    rows = []
    for name in list_pretrained(pattern):
        c = PRETRAINED[name]
        rows.append(
            [
                name,
                family_of(c.arch),
                str(c.num_classes),
                str(c.img_size[0]) if c.img_size[0] == c.img_size[1] else "x".join(map(str, c.img_size)),
                f"{c.top1:.2f}" if c.top1 else "-",
                _NORMS.get(c.mean, "custom"),
                f"{c.crop_pct:g} {c.crop_mode}",
                c.interpolation,
                c.license or "-",
                c.description,
            ]
        )
    return rows


def _markdown(headers: Sequence[str], rows: list[list[str]]) -> list[str]:
    """A markdown table, the first column (the name) as code."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return lines + ["| " + " | ".join([f"`{r[0]}`", *r[1:]]) + " |" for r in rows]


def models_markdown() -> str:
    """docs/models.md (regenerate with ``vitzoo list --format markdown > docs/models.md``)."""
    lines = [
        "# Models",
        "",
        "Generated from the registry by `vitzoo list --format markdown > docs/models.md`; do not edit by hand.",
        "Sizes of the paper's archs are its Table 1 (Ti and S: the official repo's configs); the families' are timm's.",
        "`params` counts the head of the arch's default checkpoint (none for the self-supervised and image-text",
        "towers; CLIP's head is its projection into the joint space). Parameter counts equal timm's. `tokens` is",
        "the sequence length at `img` (class, distillation and register tokens included); `pool` is what",
        "`forward_head` pools. The flags of each family are in [Families](families.md).",
        "",
        *_markdown(MODEL_HEADERS, model_rows()),
    ]
    return "\n".join(lines) + "\n"


def pretrained_markdown() -> str:
    """The checkpoint table of docs/pretrained.md (``vitzoo list --pretrained --format markdown``)."""
    return "\n".join(_markdown(PRETRAINED_HEADERS, pretrained_rows())) + "\n"
