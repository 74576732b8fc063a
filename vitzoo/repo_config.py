"""``config.json`` of a checkpoint folder or Hub repo, in timm's or transformers' layout, to vitzoo's config.

timm (``save_config_for_hf``): ``{"architecture", "num_classes", "global_pool", "pretrained_cfg": {...}}``;
vitzoo's ``save_pretrained`` writes the same layout plus ``"vitzoo_config"`` (every ``ViTConfig`` field).
transformers (``ViTConfig.save_pretrained``): ``hidden_size``, ``num_hidden_layers``, ``num_attention_heads``,
``intermediate_size``, ``image_size``, ``patch_size``, ``layer_norm_eps``, ``id2label``, ``architectures``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from typing import Any

from .config import ViTConfig, to_pair
from .errors import ConfigError, UnknownModelError
from .pretrained_cfg import PretrainedCfg
from .registry import ARCHS

logger = logging.getLogger("vitzoo")

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
    return config.get("model_type") == "vit" or "hidden_size" in config


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
        vit, checkpoint = _from_transformers(config, name, keys, repo_id)
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
        args: dict[str, Any] = {"num_classes": int(config.get("num_classes", 1000))}
        if config.get("global_pool"):  # what the timm model pooled with (timm's DINOv3 default: "avg")
            args["global_pool"] = config["global_pool"]
        vit = ARCHS[arch].replace(**_from_timm_args(ARCHS[arch], {**args, **(config.get("model_args") or {})}))
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


def _from_transformers(
    config: Mapping[str, Any], name: str, keys: set[str], repo_id: str | None
) -> tuple[ViTConfig, PretrainedCfg]:
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        raise ConfigError(f"{name}: hidden_act={act!r} is not supported (vitzoo's ViT uses the exact erf GELU)")
    archs = config.get("architectures") or ["ViTModel"]
    classifier = any("ForImageClassification" in a for a in archs) or any(k.endswith("classifier.weight") for k in keys)
    id2label = config.get("id2label") or {}
    num_classes = len(id2label) if classifier else 0
    width = int(config.get("hidden_size", 768))
    has_pooler = any(k.startswith("pooler.") or ".pooler." in k for k in keys)
    img = to_pair(config.get("image_size", 224), "image_size")
    vit = ViTConfig(
        embed_dim=width,
        depth=int(config.get("num_hidden_layers", 12)),
        num_heads=int(config.get("num_attention_heads", 12)),
        mlp_dim=int(config.get("intermediate_size", 4 * width)),
        patch_size=to_pair(config.get("patch_size", 16), "patch_size"),
        img_size=img,
        in_chans=int(config.get("num_channels", 3)),
        num_classes=num_classes,
        qkv_bias=bool(config.get("qkv_bias", True)),
        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
        representation_size=width if has_pooler and not classifier else 0,
        # transformers' interpolate_pos_encoding: bicubic without antialiasing
        pos_embed_antialias=False,
    )
    labels = [id2label[k] for k in sorted(id2label, key=int)] if classifier else None
    facts = PretrainedCfg(
        name=name,
        hf_hub_id=repo_id,
        num_classes=num_classes,
        input_size=(vit.in_chans, *img),
        crop_pct=1.0,
        crop_mode="squash",  # ViTImageProcessor: resize straight to size x size, no crop
        interpolation="bilinear",
        labels="custom" if labels else None,
        label_names=tuple(labels) if labels else None,
        description="transformers ViT checkpoint" + (" with its tanh pooler as pre-logits" if has_pooler else ""),
    )
    return vit, facts


# PIL's resampling filters by the integer a preprocessor_config.json records (PIL.Image.Resampling values)
_PIL_FILTERS = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


def processor_facts(processor: Mapping[str, Any], name: str, in_chans: int = 3) -> dict[str, Any]:
    """The eval recipe of a transformers image processor (``preprocessor_config.json``) as ``PretrainedCfg`` fields.

    ``ViTImageProcessor``/``DeiTImageProcessor`` and kin: resize both sides to ``size`` (vitzoo's ``squash``), then,
    with ``do_center_crop``, crop ``crop_size``; rescale by 1/255; normalise with ``image_mean``/``image_std``.
    Anything this recipe cannot reproduce exactly (a shortest-edge resize, as CLIP's processor does, for one)
    raises ``ConfigError`` rather than preparing images differently from the checkpoint's own processor.
    """
    size = processor.get("size") or {"height": 224, "width": 224}
    if isinstance(size, int):
        size = {"shortest_edge": size}
    crop = processor.get("crop_size") if processor.get("do_center_crop") else None
    crop = {"height": crop, "width": crop} if isinstance(crop, int) else crop
    unsupported: list[str] = []
    if not processor.get("do_resize", True):
        unsupported.append("do_resize=false")
    if processor.get("do_rescale", True) and abs(float(processor.get("rescale_factor", 1 / 255)) - 1 / 255) > 1e-9:
        unsupported.append(f"rescale_factor={processor.get('rescale_factor')}")
    if set(size) not in ({"height", "width"}, {"shortest_edge"}):
        unsupported.append(f"size={dict(size)}")
    if crop is not None and set(crop) != {"height", "width"}:
        unsupported.append(f"crop_size={dict(crop)}")
    resample = processor.get("resample", 2)
    if resample not in _PIL_FILTERS:
        unsupported.append(f"resample={resample}")
    if "shortest_edge" in size:  # without a crop the output is not square; with one, transformers floors the crop
        unsupported.append("a shortest-edge resize")  # offset where timm rounds it, and the offset varies per image
    if not unsupported:
        # vitzoo's squash recipe: resize both sides to floor(out / crop_pct), then center-crop to out
        resized = (int(size["height"]), int(size["width"]))
        out = (int(crop["height"]), int(crop["width"])) if crop else resized
        crop_pct = out[0] / resized[0]
        if any(math.floor(o / crop_pct) != r or (r - o) % 2 for o, r in zip(out, resized, strict=True)):
            # the resize must come out exactly, and the margin must be even: timm rounds a half-pixel crop offset,
            # transformers floors it
            unsupported.append(f"a {out} crop of a {resized} resize")
    if unsupported:
        raise ConfigError(
            f"{name}: preprocessor_config.json asks for {', '.join(unsupported)}, which vitzoo's eval transform does "
            "not reproduce; prepare the images yourself and pass tensors, or report the repo"
        )
    normalize = processor.get("do_normalize", True)
    mean = tuple(float(v) for v in processor.get("image_mean", (0.5,) * in_chans)) if normalize else (0.0,) * in_chans
    std = tuple(float(v) for v in processor.get("image_std", (0.5,) * in_chans)) if normalize else (1.0,) * in_chans
    if not processor.get("do_rescale", True):  # pixels stay in [0, 255]: fold the factor into mean and std
        mean, std = tuple(m / 255 for m in mean), tuple(s / 255 for s in std)
    return {
        "input_size": (in_chans, *out),
        "crop_pct": crop_pct,
        "crop_mode": "squash",
        "interpolation": _PIL_FILTERS[resample],
        "mean": mean,
        "std": std,
    }


def to_json(config: ViTConfig, facts: PretrainedCfg | None) -> dict[str, Any]:
    """timm's config.json layout (timm can read it) plus every vitzoo config field.

    ``architecture`` is the registered arch nearest to ``config`` (``_closest_arch``: same timm class and family
    first) and ``model_args`` the timm kwargs that turn it into ``config``. A field model_args cannot carry (a flag
    only vitzoo has, another norm eps) is logged: timm builds it as the arch has it; vitzoo reads the folder as saved.
    """
    vit = dataclasses.asdict(config)
    ours = facts.to_dict() if facts is not None else {}
    ours.update(input_size=[config.in_chans, *config.img_size], num_classes=config.num_classes)
    pretrained = {k: v for k, v in ours.items() if k in _TIMM_PCFG_FIELDS}  # what timm's PretrainedCfg accepts
    if facts is not None:
        pretrained.update(architecture=facts.arch, tag=facts.tag)
    arch = _closest_arch(config, facts.arch if facts is not None else None)
    lost = _not_expressible(config, ARCHS[arch])
    if lost:
        logger.warning(
            "config.json: timm's model_args cannot carry %s, so timm builds these as %s has them (vitzoo reads the "
            "folder as saved)",
            ", ".join(lost),
            arch,
        )
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


# ViTConfig fields a timm config.json can change through model_args, with timm's kwarg names: VisionTransformer's are
# the field names (mlp_dim is written as mlp_ratio); Eva's (DINOv3, rope=True) differ for three of them.
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
    "init_values",
    "reg_tokens",
    "no_embed_class",
    "pre_norm",  # timm ties the patch bias to it: bias = not pre_norm
    "fc_norm",
    "act_layer",  # a name timm's get_act_layer knows: gelu, gelu_tanh, quick_gelu, silu
)
_EVA_NAMES = {"reg_tokens": "num_reg_tokens", "fc_norm": "use_fc_norm", "pre_norm": "use_pre_transformer_norm"}
_EVA_ARGS = (*(f for f in _TIMM_ARGS if f not in ("no_embed_class", "act_layer")), "rope_temperature")
# Always written, as timm's own save does: timm takes the image size from its default checkpoint's cfg, not from the
# entry point, Eva pools "avg" by default and timm's fc_norm=None means "on for average pooling"
_ALWAYS = ("img_size", "global_pool", "fc_norm")
# Fields model_args cannot change: they pick timm's entry point (its class, stem, MLP module, norm eps)
_ENTRY_FIELDS = ("hybrid_layers", "distilled", "rope", "mlp_layer", "layer_norm_eps", "representation_size")
# Flags that tell the families apart (registry.FAMILIES): the closest arch agrees on as many as it can
_FAMILY_FIELDS = (
    "init_values",
    "reg_tokens",
    "no_embed_class",
    "pre_norm",
    "class_token",
    "global_pool",
    "fc_norm",
    "act_layer",
    "qkv_bias",
    "dynamic_img_size",
)


def _args_of(config: ViTConfig) -> tuple[str, ...]:
    return _EVA_ARGS if config.rope else _TIMM_ARGS


def _not_expressible(config: ViTConfig, arch: ViTConfig) -> list[str]:
    """Fields in which ``config`` differs from ``arch`` that timm's model_args cannot carry."""
    fixed = [*_ENTRY_FIELDS, *(("act_layer",) if config.rope else ())]
    lost = [f for f in fixed if getattr(config, f) != getattr(arch, f)]
    if config.patch_bias == config.pre_norm:
        lost.append("patch_bias")
    return lost


def _from_timm_args(base: ViTConfig, args: Mapping[str, Any]) -> dict[str, Any]:
    """ViTConfig changes of a timm config.json's ``model_args`` for the registered arch ``base``."""
    names = {_EVA_NAMES.get(f, f) if base.rope else f: f for f in _args_of(base)}
    unsupported = sorted(set(args) - set(names) - {"mlp_ratio", "num_classes"})
    if unsupported:
        raise ConfigError(f"config.json model_args {unsupported} describe a model vitzoo does not build")
    out = {names[k]: (tuple(v) if isinstance(v, list) else v) for k, v in args.items() if k in names}
    out["num_classes"] = args.get("num_classes", base.num_classes)
    if "mlp_ratio" in args:
        out["mlp_dim"] = int(out.get("embed_dim", base.embed_dim) * args["mlp_ratio"])
    if out.get("fc_norm") is None:  # timm's None: the entry point's choice, else on exactly for average pooling
        pool = out.get("global_pool", base.global_pool)
        out["fc_norm"] = base.fc_norm if base.rope or pool == base.global_pool else pool == "avg"
    return out


def _timm_args(config: ViTConfig, arch: ViTConfig) -> dict[str, Any]:
    """The timm kwargs that turn ``arch`` into ``config`` (written as config.json ``model_args``)."""
    fields = [k for k in _args_of(config) if k in _ALWAYS or getattr(config, k) != getattr(arch, k)]
    args = {_EVA_NAMES.get(k, k) if config.rope else k: getattr(config, k) for k in fields}
    if config.mlp_dim != arch.mlp_dim or "embed_dim" in args:
        args["mlp_ratio"] = config.mlp_dim / config.embed_dim
    return {k: list(v) if isinstance(v, tuple) else v for k, v in args.items()}


def _closest_arch(config: ViTConfig, preferred: str | None = None) -> str:
    """The registered arch nearest to ``config``: the same timm entry point (class, stem, MLP, norm eps), then the
    same family flags, then width, patch, depth and image size; ``preferred`` (the checkpoint's arch) wins ties.

    timm builds the class, the hybrid's CNN and the MLP module inside its entry point, so these must match; the
    remaining differences go into ``model_args``.
    """

    def distance(item: tuple[str, ViTConfig]) -> tuple[int | bool, ...]:
        name, a = item
        return (
            sum(getattr(a, f) != getattr(config, f) for f in _ENTRY_FIELDS),
            sum(getattr(a, f) != getattr(config, f) for f in _FAMILY_FIELDS),
            a.embed_dim != config.embed_dim,
            a.patch_size != config.patch_size,
            a.depth != config.depth,
            a.img_size != config.img_size,
            name != preferred,
        )

    return min(ARCHS.items(), key=distance)[0]
