"""``config.json`` of a checkpoint folder or Hub repo, in timm's or transformers' layout, to vitzoo's config.

timm (``save_config_for_hf``): ``{"architecture", "num_classes", "global_pool", "pretrained_cfg": {...}}``;
vitzoo's ``save_pretrained`` writes the same layout plus ``"vitzoo_config"`` (every ``ViTConfig`` field).
transformers (``ViTConfig.save_pretrained`` and the later families' configs): ``model_type``, ``hidden_size``,
``num_hidden_layers``, ``num_attention_heads``, ``intermediate_size``, ``image_size``, ``patch_size``,
``layer_norm_eps``, ``id2label``, ``architectures``, read per family by ``vitzoo.transformers_config``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from .config import ViTConfig, to_pair
from .errors import ConfigError, UnknownModelError
from .pretrained_cfg import PretrainedCfg
from .registry import ARCHS
from .transformers_config import MODEL_TYPES, from_transformers

_PCFG_FIELDS = {f.name for f in dataclasses.fields(PretrainedCfg)}
_TIMM_PCFG_FIELDS = {
    "hf_hub_id",
    "input_size",
    "interpolation",
    "crop_pct",
    "crop_mode",
    "mean",
    "std",
    "num_classes",
    "license",
    "description",
    "label_names",
}


def is_transformers(config: Mapping[str, Any]) -> bool:
    """A transformers ``config.json``: a ``model_type`` vitzoo reads, or any with transformers' ``hidden_size``."""
    return config.get("model_type") in MODEL_TYPES or "hidden_size" in config


def parse(
    config: Mapping[str, Any],
    name: str,
    keys: set[str],
    repo_id: str | None = None,
    processor: Mapping[str, Any] | None = None,
) -> tuple[ViTConfig, PretrainedCfg]:
    """The model config and checkpoint facts a ``config.json`` describes.

    ``name`` names the checkpoint in the facts unless the config names it; ``keys`` are the checkpoint's tensor
    names (empty when only the config was read); ``repo_id`` is the Hub repo it came from, if any; ``processor`` is
    a transformers repo's ``preprocessor_config.json``, whose eval recipe then replaces ``ViTImageProcessor``'s
    defaults.
    """
    if is_transformers(config):
        vit, checkpoint = from_transformers(config, name, keys, repo_id)
        if processor is not None:
            checkpoint = dataclasses.replace(checkpoint, **processor_facts(processor, name, vit.in_chans))
        return vit, checkpoint
    if "vitzoo_config" in config:
        fields = dict(config["vitzoo_config"])
        for k in ("img_size", "patch_size"):
            fields[k] = tuple(fields[k])
        vit = ViTConfig(**fields)
    elif "architecture" in config:
        arch = str(config["architecture"])
        if arch not in ARCHS:
            raise UnknownModelError(
                f"{name}: config.json describes a timm {arch!r}, which vitzoo does not build; see vitzoo.list_models()"
            )
        vit = ARCHS[arch].replace(
            num_classes=int(config.get("num_classes", 1000)), global_pool=config.get("global_pool") or "token"
        )
        vit = vit.replace(**_from_timm_args(vit, config.get("model_args") or {}))
    else:
        raise ConfigError(f"{name}: config.json has neither timm's 'architecture' nor transformers' 'hidden_size'")
    raw = dict(config.get("vitzoo_pretrained_cfg") or config.get("pretrained_cfg") or {})
    input_size = tuple(raw.get("input_size") or (vit.in_chans, *vit.img_size))
    if tuple(input_size[1:]) != vit.img_size:
        vit = vit.replace(img_size=to_pair(tuple(input_size[1:]), "img_size"))
    facts: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items() if k in _PCFG_FIELDS}
    if raw.get("architecture") and raw.get("tag"):  # timm's pretrained_cfg names its checkpoint
        facts.setdefault("name", f"{raw['architecture']}.{raw['tag']}")
    facts.setdefault("name", name)  # vitzoo's save_pretrained keeps the name of the checkpoint it came from
    facts.update(num_classes=vit.num_classes, input_size=input_size)
    facts.setdefault("hf_hub_id", raw.get("hf_hub_id"))
    facts.setdefault("labels", _STANDARD_LABELS.get(vit.num_classes))
    names = config.get("label_names") or []  # timm writes synset ids or class names here
    synsets = bool(names) and all(str(n)[:1] == "n" and str(n)[1:].isdigit() for n in names)
    if names and len(names) == vit.num_classes and not (synsets and facts["labels"]):
        facts.update(labels=facts["labels"] or "custom", label_names=tuple(names))
    return vit, PretrainedCfg(**facts)


_STANDARD_LABELS = {1000: "imagenet-1k", 21843: "imagenet-21k"}


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


def to_json(config: ViTConfig, facts: PretrainedCfg | None) -> dict[str, Any]:
    """timm's config.json layout (timm can read it) plus every vitzoo config field."""
    vit = dataclasses.asdict(config)
    ours = facts.to_dict() if facts is not None else {}
    ours.update(input_size=[config.in_chans, *config.img_size], num_classes=config.num_classes)
    pretrained = {k: v for k, v in ours.items() if k in _TIMM_PCFG_FIELDS}  # what timm's PretrainedCfg accepts
    if facts is not None:
        pretrained.update(architecture=facts.arch, tag=facts.tag)
    arch = _closest_arch(config)
    return {
        "architecture": arch,
        "model_args": _timm_args(config, ARCHS[arch]),
        "num_classes": config.num_classes,
        "num_features": config.embed_dim,
        "global_pool": config.global_pool,
        "pretrained_cfg": pretrained,
        "vitzoo_config": vit,
        "vitzoo_pretrained_cfg": ours,
    }


# timm VisionTransformer kwargs <-> ViTConfig fields (mlp_ratio is converted separately)
_TIMM_ARGS = (
    "img_size",
    "patch_size",
    "in_chans",
    "embed_dim",
    "depth",
    "num_heads",
    "qkv_bias",
    "class_token",
    "global_pool",
    "dynamic_img_size",
    "dynamic_img_pad",
)


def _from_timm_args(base: ViTConfig, args: Mapping[str, Any]) -> dict[str, Any]:
    unsupported = sorted(set(args) - set(_TIMM_ARGS) - {"mlp_ratio", "num_classes"})
    if unsupported:
        raise ConfigError(f"config.json model_args {unsupported} describe a model vitzoo does not build")
    out = {k: (tuple(v) if isinstance(v, list) else v) for k, v in args.items() if k in _TIMM_ARGS}
    out["num_classes"] = args.get("num_classes", base.num_classes)
    if "mlp_ratio" in args:
        out["mlp_dim"] = int(out.get("embed_dim", base.embed_dim) * args["mlp_ratio"])
    return out


def _timm_args(config: ViTConfig, arch: ViTConfig) -> dict[str, Any]:
    """The timm kwargs that turn ``arch`` into ``config`` (written as config.json ``model_args``)."""
    args = {k: getattr(config, k) for k in _TIMM_ARGS if getattr(config, k) != getattr(arch, k)}
    if config.mlp_dim != arch.mlp_dim or "embed_dim" in args:
        args["mlp_ratio"] = config.mlp_dim / config.embed_dim
    return {k: list(v) if isinstance(v, tuple) else v for k, v in args.items()}


def _closest_arch(config: ViTConfig) -> str:
    """The registered arch nearest to ``config``: same stem (pixels or hybrid CNN) first, then width and patch.

    timm builds the hybrid's CNN inside its entry point, so a hybrid must be written under a hybrid name; the
    remaining differences go into ``model_args``.
    """

    def distance(item: tuple[str, ViTConfig]) -> tuple[bool, ...]:
        a = item[1]
        return (
            a.hybrid_layers != config.hybrid_layers,
            a.embed_dim != config.embed_dim,
            a.patch_size != config.patch_size,
            a.depth != config.depth,
            a.img_size != config.img_size,
        )

    return min(ARCHS.items(), key=distance)[0]
