"""A transformers repo's image processor (``preprocessor_config.json``) as vitzoo's eval recipe.

vitzoo reproduces the processors of the families it builds (``_PROCESSORS``) with transformers 5's default
(torchvision) backend pixels; anything else is refused by name, never approximated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ...errors import ConfigError

# PIL's resampling filters by the integer a preprocessor_config.json records (PIL.Image.Resampling values)
_PIL_FILTERS = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
_HALF, _IMAGENET = (0.5, 0.5, 0.5), ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
_SQUARE = {"height": 224, "width": 224}
# The image processors vitzoo reproduces: each class's defaults (transformers 5.24), which the file's keys override.
# "shortest" is transformers' default_to_square=False: a legacy int ``size`` is then the shortest edge.
_PROCESSORS: dict[str, dict[str, Any]] = {
    "ViTImageProcessor": {"size": _SQUARE, "resample": 2, "image_mean": _HALF, "image_std": _HALF},
    "DeiTImageProcessor": {
        "size": {"height": 256, "width": 256},
        "crop_size": _SQUARE,
        "do_center_crop": True,
        "resample": 3,
        "image_mean": _HALF,
        "image_std": _HALF,
    },
    "SiglipImageProcessor": {"size": _SQUARE, "resample": 3, "image_mean": _HALF, "image_std": _HALF},
    "CLIPImageProcessor": {
        "size": {"shortest_edge": 224},
        "crop_size": _SQUARE,
        "do_center_crop": True,
        "resample": 3,
        "image_mean": _CLIP[0],
        "image_std": _CLIP[1],
        "shortest": True,
    },
    # DINOv3 rescales to [0, 1] before it resizes
    "DINOv3ViTImageProcessor": {
        "size": _SQUARE,
        "resample": 2,
        "image_mean": _IMAGENET[0],
        "image_std": _IMAGENET[1],
        "rescale_first": True,
    },
}
_PROCESSORS["BitImageProcessor"] = _PROCESSORS["CLIPImageProcessor"]  # facebook/dinov2-*: the same class defaults


def processor_class(processor: Mapping[str, Any]) -> str:
    """The image processor class a ``preprocessor_config.json`` names, as transformers 5 resolves it: legacy
    ``*FeatureExtractor`` names and the ``Fast``/``Pil`` backends are the one class; a file naming none is
    ``ViTImageProcessor``."""
    name = str(processor.get("image_processor_type") or processor.get("feature_extractor_type") or "ViTImageProcessor")
    name = name.replace("FeatureExtractor", "ImageProcessor")
    for suffix in ("Fast", "Pil"):
        name = name.removesuffix(suffix)
    return name


def processor_facts(processor: Mapping[str, Any], name: str, in_chans: int = 3) -> dict[str, Any]:
    """The eval recipe of a transformers image processor (``preprocessor_config.json``) as ``PretrainedCfg`` fields.

    The class's defaults (transformers 5.24) overridden by the file's keys (a flag set to ``null`` is off, as
    transformers reads it; another key set to ``null`` keeps the class default): resize to ``size``
    (``{height, width}``: both sides, vitzoo's ``squash``; ``shortest_edge``: the shorter side, ``center``), with
    ``do_center_crop`` crop ``crop_size``, rescale by 1/255, normalise with ``image_mean``/``image_std``. The pixels
    are those of transformers 5's default (torchvision) backend: ``processor="transformers"``, or
    ``"transformers_float"`` for ``DINOv3ViTImageProcessor``, which rescales before it resizes. A recipe this cannot
    reproduce (a variable-resolution processor, a shortest-edge resize without a square crop, another class) raises
    ``ConfigError`` rather than preparing images differently from the checkpoint's own processor.
    """
    cls = processor_class(processor)
    if cls not in _PROCESSORS:
        kind = " (NaFlex: variable resolution, the patch count varies per image)" if cls.startswith("Siglip2") else ""
        raise ConfigError(
            f"{name}: preprocessor_config.json names the image processor {cls}{kind}, which vitzoo's eval transform "
            f"does not reproduce (it does {', '.join(sorted(_PROCESSORS))}); prepare the images yourself and pass "
            "tensors, or report the repo"
        )
    defaults = _PROCESSORS[cls]

    def value(key: str, default: Any = None) -> Any:
        given = processor.get(key)
        return defaults.get(key, default) if given is None else given

    def flag(key: str, default: bool = False) -> bool:
        return bool(processor[key]) if key in processor else bool(defaults.get(key, default))

    size, crop = value("size"), value("crop_size") if flag("do_center_crop") else None
    if isinstance(size, int):  # legacy files: an int is the shortest edge or both sides, as the class reads it
        size = {"shortest_edge": size} if defaults.get("shortest") else {"height": size, "width": size}
    crop = {"height": crop, "width": crop} if isinstance(crop, int) else crop
    unsupported: list[str] = []
    if not flag("do_resize", True):
        unsupported.append("do_resize=false")
    rescale = flag("do_rescale", True)
    if rescale and abs(float(value("rescale_factor", 1 / 255)) - 1 / 255) > 1e-9:
        unsupported.append(f"rescale_factor={processor.get('rescale_factor')}")
    if set(size) not in ({"height", "width"}, {"shortest_edge"}):
        unsupported.append(f"size={dict(size)}")
    if crop is not None and set(crop) != {"height", "width"}:
        unsupported.append(f"crop_size={dict(crop)}")
    resample = value("resample", 2)
    if _PIL_FILTERS.get(resample) not in ("nearest", "bilinear", "bicubic"):
        unsupported.append(f"resample={resample} (transformers' torchvision backend: 0, 2 or 3)")
    if "shortest_edge" in size and crop is None:
        unsupported.append("a shortest-edge resize without a crop (the output size varies per image)")
    _refuse(name, unsupported)
    side = int(size.get("shortest_edge", 0))
    resized = (side, side) if side else (int(size["height"]), int(size["width"]))
    out = (int(crop["height"]), int(crop["width"])) if crop else resized
    crop_pct = _crop_pct(out[0], resized[0])
    if any(math.floor(o / crop_pct) != r for o, r in zip(out, resized, strict=True)):
        # one crop_pct scales both sides: a crop of another aspect than the resize is not a timm recipe
        _refuse(name, [f"a {out} crop of a {'shortest edge ' if side else ''}{resized} resize"])
    normalize = flag("do_normalize", True)
    mean = tuple(float(v) for v in value("image_mean")) if normalize else (0.0,) * in_chans
    std = tuple(float(v) for v in value("image_std")) if normalize else (1.0,) * in_chans
    if not rescale:  # pixels stay in [0, 255]: fold the factor into mean and std
        mean, std = tuple(m / 255 for m in mean), tuple(s / 255 for s in std)
    return {
        "input_size": (in_chans, *out),
        "crop_pct": crop_pct,
        "crop_mode": "center" if side else "squash",
        "interpolation": _PIL_FILTERS[resample],
        "mean": mean,
        "std": std,
        # DINOv3 without do_rescale resizes the 8-bit image
        "processor": "transformers_float" if defaults.get("rescale_first") and rescale else "transformers",
    }


def _refuse(name: str, unsupported: list[str]) -> None:
    if unsupported:
        raise ConfigError(
            f"{name}: preprocessor_config.json asks for {', '.join(unsupported)}, which vitzoo's eval transform does "
            "not reproduce; prepare the images yourself and pass tensors, or report the repo"
        )


def _crop_pct(out: int, resized: int) -> float:
    """The crop_pct whose timm resize ``floor(out / crop_pct)`` is ``resized`` (``out / resized`` can land a hair
    below it in floats: 14 / (14 / 25) = 24.999...)."""
    pct = out / resized
    for _ in range(4):
        if math.floor(out / pct) >= resized:
            break
        pct = math.nextafter(pct, 0.0)
    return pct
