"""transformers' ``config.json`` of the ViT families vitzoo builds, as a ``ViTConfig`` and the checkpoint's facts.

One builder per family, keyed by ``model_type``: ViT, DeiT, ViT-MAE, I-JEPA, DINOv2 (with or without registers),
CLIP, SigLIP, SigLIP 2, DINOv3 and AIMv2. Each reads the tower's sizes, ``layer_norm_eps`` (AIMv2: ``rms_norm_eps``)
and ``hidden_act`` (with transformers' own defaults for whatever a file leaves out: ``save_pretrained`` of older
releases wrote only what differed from them), sets the flags that make vitzoo compute what that transformers model
computes, and resamples position tables as its ``interpolate_pos_encoding`` does. Two-tower models (``CLIPModel``,
``SiglipModel``, ``Siglip2Model``, ``Aimv2Model``) are read from their ``vision_config``. The preprocessing facts are
the defaults of the family's image-processor class; a repo's ``preprocessor_config.json`` overrides them
(``vitzoo.processors``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError
from ...models.config import ViTConfig, to_pair
from ...models.pretrained_cfg import PretrainedCfg
from .processors import processor_facts

# transformers' hidden_act -> vitzoo's act_layer
ACTIVATIONS = {"gelu": "gelu", "gelu_pytorch_tanh": "gelu_tanh", "quick_gelu": "quick_gelu", "silu": "silu"}
_CLIP_MEAN, _CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_HALF = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Family:
    """What a ``model_type`` defaults to in transformers, and how its image processor prepares images."""

    label: str  # named in descriptions and errors
    processor: str  # the family's image-processor class: its defaults apply where a repo has no processor file
    width: int = 768
    depth: int = 12
    heads: int = 12
    patch: int = 16
    image: int = 224
    eps: float = 1e-12
    act: str = "gelu"


_FAMILIES: dict[str, Family] = {
    "vit": Family("ViT", "ViTImageProcessor"),
    "deit": Family("DeiT", "DeiTImageProcessor"),
    "dinov2": Family("DINOv2", "BitImageProcessor", patch=14, eps=1e-6),
    "dinov2_with_registers": Family("DINOv2 with registers", "BitImageProcessor", eps=1e-6),
    "clip": Family("CLIP", "CLIPImageProcessor", patch=32, eps=1e-5, act="quick_gelu"),
    "siglip": Family("SigLIP", "SiglipImageProcessor", eps=1e-6, act="gelu_pytorch_tanh"),
    # NaFlex: an aspect-preserving resize to at most num_patches patches, which vitzoo does not reproduce
    "siglip2": Family("SigLIP 2", "Siglip2ImageProcessor", eps=1e-6, act="gelu_pytorch_tanh"),
    "dinov3_vit": Family("DINOv3", "DINOv3ViTImageProcessor", width=384, heads=6, eps=1e-5),
    "vit_mae": Family("ViT-MAE", "ViTImageProcessor"),
    "ijepa": Family("I-JEPA", "ViTImageProcessor"),
    "aimv2_vision_model": Family(
        "AIMv2", "CLIPImageProcessor", width=1024, depth=24, heads=8, patch=14, eps=1e-5, act="silu"
    ),
}
_ALIASES = {
    "clip_vision_model": "clip",
    "siglip_vision_model": "siglip",
    "siglip2_vision_model": "siglip2",
    "aimv2": "aimv2_vision_model",
}
_TWO_TOWER = ("clip", "siglip", "siglip2", "aimv2")  # whole-model configs: the image tower is under vision_config
MODEL_TYPES: frozenset[str] = frozenset({*_FAMILIES, *_ALIASES})


def from_transformers(
    config: Mapping[str, Any],
    name: str,
    keys: set[str],
    repo_id: str | None,
    processor: Mapping[str, Any] | None = None,
) -> tuple[ViTConfig, PretrainedCfg]:
    """The ``ViTConfig`` and facts of a transformers ``config.json`` (``model_type`` absent: a ViT).

    The eval recipe is the repo's ``preprocessor_config.json`` (``processor``) over the defaults of the family's
    image-processor class (a file naming no class gets the family's). A recipe vitzoo cannot reproduce still
    gives the model; its facts then say ``processor="unsupported"`` and ``create_transform`` refuses with the reason.
    """
    model_type = str(config.get("model_type") or "vit")
    kind = _ALIASES.get(model_type, model_type)
    if kind not in _FAMILIES:
        raise ConfigError(
            f"{name}: config.json describes a transformers {model_type!r} model, which vitzoo does not build; "
            f"it reads model_type {', '.join(sorted(MODEL_TYPES))}"
        )
    family = _FAMILIES[kind]
    tower: Mapping[str, Any] = (config.get("vision_config") or {}) if model_type in _TWO_TOWER else config
    archs = [str(a) for a in config.get("architectures") or ()]
    fields, description = _BUILDERS[kind](config, tower, archs, keys)
    vit = ViTConfig(**{**_common(tower, family, name), **fields})
    labels = _labels(config) if vit.num_classes and kind in ("vit", "deit") else None
    recipe = dict(processor or {})
    if not recipe.get("image_processor_type") and not recipe.get("feature_extractor_type"):
        recipe["image_processor_type"] = family.processor
    try:
        pixels = processor_facts(recipe, name, vit.in_chans)
        if processor is None:  # no file: the class's recipe at the model's size (its crop ratio kept)
            pixels["input_size"] = (vit.in_chans, *vit.img_size)
    except ConfigError as err:  # the model is still usable; the eval transform is not
        pixels = {"input_size": (vit.in_chans, *vit.img_size), "processor": "unsupported"}
        description += f"; eval transform not reproduced: {err}"
    facts = PretrainedCfg(
        name=name,
        hf_hub_id=repo_id,
        num_classes=vit.num_classes,
        labels="custom" if labels else None,
        label_names=labels,
        description=f"transformers {family.label} checkpoint{description}",
        **pixels,
    )
    return vit, facts


def _common(tower: Mapping[str, Any], family: Family, name: str) -> dict[str, Any]:
    """The fields every family reads the same way (transformers' names, the family's defaults)."""
    act = str(tower.get("hidden_act", family.act))
    if act not in ACTIVATIONS:
        raise ConfigError(
            f"{name}: hidden_act={act!r} is not supported; vitzoo's MLP activations are {', '.join(ACTIVATIONS)}"
        )
    width = int(tower.get("hidden_size", family.width))
    return dict(
        embed_dim=width,
        depth=int(tower.get("num_hidden_layers", family.depth)),
        num_heads=int(tower.get("num_attention_heads", family.heads)),
        mlp_dim=int(tower.get("intermediate_size", 4 * width)),
        patch_size=to_pair(tower.get("patch_size", family.patch), "patch_size"),
        img_size=to_pair(tower.get("image_size", family.image), "image_size"),
        in_chans=int(tower.get("num_channels", 3)),
        layer_norm_eps=float(tower.get("layer_norm_eps", tower.get("rms_norm_eps", family.eps))),
        act_layer=ACTIVATIONS[act],
    )


def _labels(config: Mapping[str, Any]) -> tuple[str, ...] | None:
    id2label = config.get("id2label") or {}
    return tuple(id2label[k] for k in sorted(id2label, key=int)) or None


def _has(keys: set[str], suffix: str) -> bool:
    return any(k.endswith(suffix) for k in keys)


# Each builder: (config.json, its image tower, its architectures, checkpoint keys) -> (ViTConfig fields, description)
Fields = dict[str, Any]
Builder = Callable[[Mapping[str, Any], Mapping[str, Any], list[str], set[str]], tuple[Fields, str]]


def _vit(config: Mapping[str, Any], tower: Mapping[str, Any], archs: list[str], keys: set[str]) -> tuple[Fields, str]:
    classifier = any("ForImageClassification" in a for a in archs) or _has(keys, "classifier.weight")
    pooler = any(k.startswith("pooler.") or ".pooler." in k for k in keys)
    width = int(tower.get("hidden_size", 768))
    fields = dict(
        num_classes=len(config.get("id2label") or {}) if classifier else 0,
        qkv_bias=bool(tower.get("qkv_bias", True)),
        representation_size=width if pooler and not classifier else 0,
        pos_embed_antialias=False,  # interpolate_pos_encoding: bicubic without antialiasing
    )
    return fields, " with its tanh pooler as pre-logits" if pooler else ""


def _deit(config: Mapping[str, Any], tower: Mapping[str, Any], archs: list[str], keys: set[str]) -> tuple[Fields, str]:
    teacher = any("WithTeacher" in a for a in archs) or _has(keys, "distillation_classifier.weight")
    single = not teacher and (
        "DeiTForImageClassification" in archs
        or (_has(keys, "classifier.weight") and not _has(keys, "cls_classifier.weight"))
    )
    fields = dict(
        num_classes=len(config.get("id2label") or {}) if teacher or single else 0,
        qkv_bias=bool(tower.get("qkv_bias", True)),
        pos_embed_antialias=False,  # interpolate_pos_encoding: bicubic without antialiasing, two prefix rows
    )
    if single:  # the classifier reads the class token only; the distillation token rides along as a register
        return {**fields, "reg_tokens": 1}, " (DeiTForImageClassification: class-token head)"
    if fields["num_classes"]:
        return {**fields, "distilled": True}, " (distilled: model(x) is the mean of the class and distillation heads)"
    return {**fields, "distilled": True}, " (distilled: model(x) is the mean of the class and distillation tokens)"


def _dinov2(
    config: Mapping[str, Any], tower: Mapping[str, Any], archs: list[str], keys: set[str]
) -> tuple[Fields, str]:
    width = int(tower.get("hidden_size", 768))
    hidden = int(width * float(tower.get("mlp_ratio", 4)))
    fields: Fields = dict(
        num_classes=0,
        mlp_dim=hidden,
        qkv_bias=bool(tower.get("qkv_bias", True)),
        init_values=float(tower.get("layerscale_value", 1.0)),
        dynamic_img_size=True,  # Dinov2Model resamples its position table for any input size
        pos_embed_antialias=False,  # bicubic in float32 without antialiasing
    )
    if tower.get("use_swiglu_ffn"):  # the giant: SwiGLU keeps 2/3 of the hidden width, rounded up to 8
        hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
        fields.update(mlp_layer="swiglu_packed", mlp_dim=2 * hidden, act_layer="silu")
    return fields, ""


def _dinov2_registers(
    config: Mapping[str, Any], tower: Mapping[str, Any], archs: list[str], keys: set[str]
) -> tuple[Fields, str]:
    fields, _ = _dinov2(config, tower, archs, keys)
    fields.update(
        reg_tokens=int(tower.get("num_register_tokens", 4)),
        no_embed_class=True,  # the class token's position row is folded into cls_token (formats.hf_dinov2)
        pos_embed_antialias=True,  # Dinov2WithRegistersModel resamples bicubic with antialiasing
    )
    return fields, f" ({fields['reg_tokens']} registers)"


def _clip(config: Mapping[str, Any], tower: Mapping[str, Any], archs: list[str], keys: set[str]) -> tuple[Fields, str]:
    projection = config.get("model_type") == "clip" or any("WithProjection" in a for a in archs)
    projection = projection or _has(keys, "visual_projection.weight")
    fields = dict(
        num_classes=int(config.get("projection_dim", 512)) if projection else 0,
        pre_norm=True,  # pre_layrnorm
        patch_bias=False,
        pos_embed_antialias=False,  # interpolate_pos_encoding: bicubic without antialiasing
    )
    return fields, " (image tower; the head is visual_projection, model(x) the image embedding)" if projection else ""


def _siglip(
    config: Mapping[str, Any], tower: Mapping[str, Any], archs: list[str], keys: set[str]
) -> tuple[Fields, str]:
    head = bool(tower.get("vision_use_head", True))
    fields = dict(
        num_classes=0,
        class_token=False,
        global_pool="map" if head else "avg",
        pos_embed_antialias=False,  # interpolate_pos_encoding: bicubic without antialiasing
    )
    return fields, " (image tower; model(x) is the MAP head's pooled output)" if head else " (image tower, no head)"


def _siglip2(
    config: Mapping[str, Any], tower: Mapping[str, Any], archs: list[str], keys: set[str]
) -> tuple[Fields, str]:
    fields, _ = _siglip(config, tower, archs, keys)
    num_patches = int(tower.get("num_patches", 256))
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        raise ConfigError(f"SigLIP 2: num_patches={num_patches} is not a square grid of position embeddings")
    patch = to_pair(tower.get("patch_size", 16), "patch_size")
    fields.update(
        img_size=(side * patch[0], side * patch[1]),  # the position table is a side x side grid
        dynamic_img_size=True,  # NaFlex: the table is resized to each image's grid
        pos_embed_interpolation="bilinear",
        pos_embed_antialias=True,
    )
    return fields, " (NaFlex image tower run on whole images: any size divisible by the patch, no padding tokens)"


def _dinov3(
    config: Mapping[str, Any], tower: Mapping[str, Any], archs: list[str], keys: set[str]
) -> tuple[Fields, str]:
    unsupported = [
        f"{k}={tower.get(k, default)!r}"
        for k, default, wanted in (
            ("key_bias", False, False),
            ("mlp_bias", True, True),
            ("proj_bias", True, True),
            ("value_bias", True, bool(tower.get("query_bias", True))),
        )
        if bool(tower.get(k, default)) != wanted
    ]
    if unsupported:
        raise ConfigError(f"DINOv3 with {', '.join(unsupported)} is not built by vitzoo (q and v biases, no k bias)")
    fields: Fields = dict(
        num_classes=0,
        rope=True,
        abs_pos_embed=False,
        rope_temperature=float(tower.get("rope_theta", 100.0)),
        reg_tokens=int(tower.get("num_register_tokens", 0)),
        init_values=float(tower.get("layerscale_value", 1.0)),
        qkv_bias=bool(tower.get("query_bias", True)),
        qkv_bias_mode="qv",
        dynamic_img_size=True,  # RoPE: any size divisible by the patch
    )
    if tower.get("use_gated_mlp"):
        fields["mlp_layer"] = "swiglu"
    return fields, " (RoPE; model(x) is the normed class token, transformers' pooler_output)"


def _vit_mae(
    config: Mapping[str, Any], tower: Mapping[str, Any], archs: list[str], keys: set[str]
) -> tuple[Fields, str]:
    fields = dict(num_classes=0, qkv_bias=bool(tower.get("qkv_bias", True)), pos_embed_antialias=False)
    return fields, " (the encoder; no patches are masked: transformers' ViTMAEModel with mask_ratio=0 and no shuffle)"


def _ijepa(config: Mapping[str, Any], tower: Mapping[str, Any], archs: list[str], keys: set[str]) -> tuple[Fields, str]:
    classifier = any("ForImageClassification" in a for a in archs) or _has(keys, "classifier.weight")
    fields = dict(
        num_classes=len(config.get("id2label") or {}) if classifier else 0,
        qkv_bias=bool(tower.get("qkv_bias", True)),
        class_token=False,
        global_pool="avg",  # IJepaForImageClassification: the mean of the normed patch tokens
        pos_embed_antialias=False,
    )
    return fields, " (no class token; pooled = the mean of the patch tokens)"


def _aimv2(config: Mapping[str, Any], tower: Mapping[str, Any], archs: list[str], keys: set[str]) -> tuple[Fields, str]:
    if tower.get("is_native"):
        raise ConfigError("AIMv2 'native' (sin-cos positions at any aspect ratio) is not built by vitzoo")
    qkv_bias, mlp_bias = bool(tower.get("qkv_bias", False)), bool(tower.get("mlp_bias", False))
    if qkv_bias != mlp_bias:  # transformers: out_proj's bias follows qkv_bias; vitzoo's proj_bias covers both
        raise ConfigError(f"AIMv2 with qkv_bias={qkv_bias} and mlp_bias={mlp_bias} is not built by vitzoo")
    fields = dict(
        num_classes=0,
        norm_layer="rmsnorm",
        patch_norm=True,
        qkv_bias=qkv_bias,
        proj_bias=mlp_bias,
        mlp_layer="swiglu",
        class_token=False,
        global_pool="avg",
        pos_embed_antialias=False,
    )
    head = " (its attention-pooling head, pooler_output, is dropped: pooled = the patch mean, as timm)"
    return fields, head if _has(keys, "head.cls_token") else ""


_BUILDERS: dict[str, Builder] = {
    "vit": _vit,
    "deit": _deit,
    "dinov2": _dinov2,
    "dinov2_with_registers": _dinov2_registers,
    "clip": _clip,
    "siglip": _siglip,
    "siglip2": _siglip2,
    "dinov3_vit": _dinov3,
    "vit_mae": _vit_mae,
    "ijepa": _ijepa,
    "aimv2_vision_model": _aimv2,
}
