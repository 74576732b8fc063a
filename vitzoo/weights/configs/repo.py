"""``config.json`` of a checkpoint folder or Hub repo, in timm's or transformers' layout, to vitzoo's config.

timm (``save_config_for_hf``): ``{"architecture", "num_classes", "global_pool", "pretrained_cfg": {...}}``;
vitzoo's ``save_pretrained`` writes the same layout plus ``"vitzoo_config"`` (every ``ViTConfig`` field).
transformers (``ViTConfig.save_pretrained`` and the later families' configs): ``model_type``, ``hidden_size``,
``num_hidden_layers``, ``num_attention_heads``, ``intermediate_size``, ``image_size``, ``patch_size``,
``layer_norm_eps``, ``id2label``, ``architectures``, read per family by ``vitzoo.transformers_config``.
open_clip (``open_clip_config.json``, written by its ``save_config_for_hf``): ``{"model_cfg": {"embed_dim",
"quick_gelu", "vision_cfg": {...}, "text_cfg": {...}}, "preprocess_cfg": {"mean", "std", "interpolation",
"resize_mode"}}``; vitzoo builds the image tower, its head being the projection into the joint embedding.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from ...errors import ConfigError, UnknownModelError
from ...models.archs import ARCHS
from ...models.config import ViTConfig, to_pair
from ...models.pretrained_cfg import PretrainedCfg, eval_size
from ..loading import OPEN_CLIP_WEIGHT_FILES
from .transformers import MODEL_TYPES, from_transformers

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
    a transformers repo's ``preprocessor_config.json``, whose eval recipe then replaces the defaults of the
    family's image-processor class.
    """
    if is_open_clip(config):
        return _from_open_clip(config, name, repo_id)
    if is_transformers(config):
        return from_transformers(config, name, keys, repo_id, processor)
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
    if tuple(input_size[1:]) != vit.img_size and "vitzoo_config" not in config:  # timm: the checkpoint's size
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


def is_open_clip(config: Mapping[str, Any]) -> bool:
    return "model_cfg" in config or "vision_cfg" in config  # open_clip_config.json, or a bare open_clip model config


# open_clip VisionTransformer options vitzoo does not build: a true value is refused
_OPEN_CLIP_REFUSED = (
    "attentional_pool",  # CoCa's attention pooler
    "final_ln_after_pool",  # CLIPA: ln_post on the pooled vector
    "qk_norm",
    "scaled_cosine_attn",
    "scale_heads",
    "scale_attn_inner",
    "scale_attn",
    "scale_fc",
    "act_kwargs",
)
_OPEN_CLIP_POOLS = {"tok": "token", "avg": "avg"}  # pool_type -> global_pool ("avg": mean of the patch tokens)
_OPEN_CLIP_RESIZE = {"shortest": "center", "squash": "squash"}  # resize_mode -> crop_mode, both with crop_pct 1.0
_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)  # open_clip's defaults (OPENAI_DATASET_MEAN / _STD)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def _from_open_clip(config: Mapping[str, Any], name: str, repo_id: str | None) -> tuple[ViTConfig, PretrainedCfg]:
    """The image tower an open_clip config describes, with the projection to the joint embedding as its head."""
    model = config.get("model_cfg", config)
    vision = dict(model.get("vision_cfg") or {})
    embed_dim = int(model["embed_dim"])
    img = to_pair(vision.get("image_size", 224), "image_size")
    if vision.get("timm_model_name"):
        vit = _open_clip_timm_trunk(vision, embed_dim, img, name)
    else:
        vit = _open_clip_vit(vision, embed_dim, img, bool(model.get("quick_gelu", False)), name)
    pp = config.get("preprocess_cfg") or {}
    mode = pp.get("resize_mode", "shortest")
    if mode not in _OPEN_CLIP_RESIZE:
        raise ConfigError(
            f"{name}: open_clip resize_mode={mode!r} (resize the longer side, pad with fill_color) is not what "
            "vitzoo's eval transform does; prepare the images yourself and pass tensors"
        )
    interpolation = pp.get("interpolation", "bicubic")
    facts = PretrainedCfg(
        name=name,
        hf_hub_id=repo_id,
        num_classes=vit.num_classes,
        input_size=(vit.in_chans, *img),
        crop_pct=1.0,
        crop_mode=_OPEN_CLIP_RESIZE[mode],
        interpolation="bicubic" if interpolation == "random" else interpolation,  # open_clip's eval reads 'random' so
        mean=tuple(float(v) for v in pp.get("mean", _OPENAI_MEAN)),
        std=tuple(float(v) for v in pp.get("std", _OPENAI_STD)),
        description="open_clip image tower; the head projects into the joint image-text embedding",
        filenames=OPEN_CLIP_WEIGHT_FILES,
    )
    return vit, facts


def _open_clip_vit(
    vision: Mapping[str, Any], embed_dim: int, img: tuple[int, int], quick_gelu: bool, name: str
) -> ViTConfig:
    """open_clip's own ``VisionTransformer`` (OpenAI's layout): pre-norm ``ln_pre``, no patch bias, LayerNorm 1e-5."""
    if isinstance(vision.get("layers"), (list, tuple)):
        raise ConfigError(f"{name}: the image tower is a ModifiedResNet (RN50...); vitzoo builds ViTs only")
    refused = [k for k in _OPEN_CLIP_REFUSED if vision.get(k)]
    if vision.get("block_type") not in (None, "default"):
        refused.append(f"block_type={vision['block_type']!r}")
    if vision.get("pool_type", "tok") not in _OPEN_CLIP_POOLS:
        refused.append(f"pool_type={vision['pool_type']!r}")
    if vision.get("pos_embed_type", "learnable") not in ("learnable", "sin_cos_2d"):  # both a stored table
        refused.append(f"pos_embed_type={vision['pos_embed_type']!r}")
    norm = dict(vision.get("norm_kwargs") or {})
    eps = float(norm.pop("eps", 1e-5))
    if norm:
        refused.append(f"norm_kwargs={norm}")
    if refused:
        raise ConfigError(f"{name}: open_clip vision_cfg {refused} describes an image tower vitzoo does not build")
    width = int(vision.get("width", 768))
    return ViTConfig(
        embed_dim=width,
        depth=int(vision.get("layers", 12)),
        num_heads=width // int(vision.get("head_width", 64)),
        mlp_dim=int(width * float(vision.get("mlp_ratio", 4.0))),
        patch_size=to_pair(vision.get("patch_size", 16), "patch_size"),
        img_size=img,
        num_classes=embed_dim,
        global_pool=_OPEN_CLIP_POOLS[vision.get("pool_type", "tok")],
        pre_norm=not vision.get("no_ln_pre", False),
        patch_bias=False,
        layer_norm_eps=eps,
        act_layer="quick_gelu" if quick_gelu else "gelu",
        init_values=vision.get("ls_init_value"),
    )


def _open_clip_timm_trunk(vision: Mapping[str, Any], embed_dim: int, img: tuple[int, int], name: str) -> ViTConfig:
    """A timm model as open_clip's image tower (``TimmModel``): the registered arch, its head the projection."""
    arch = str(vision["timm_model_name"])
    if arch not in ARCHS:
        raise UnknownModelError(
            f"{name}: the image tower is timm's {arch!r}, which vitzoo does not build; see vitzoo.list_models()"
        )
    pool, proj = vision.get("timm_pool", "avg"), vision.get("timm_proj", "linear")
    if proj not in ("linear", "none", None) or (proj != "linear" and not pool):
        raise ConfigError(f"{name}: open_clip timm_proj={proj!r} with timm_pool={pool!r} is not a head vitzoo builds")
    # 'linear': open_clip's own Linear after the trunk; None: the trunk's head; 'none': no projection at all
    return ARCHS[arch].replace(
        img_size=img, global_pool=pool or ARCHS[arch].global_pool, num_classes=0 if proj == "none" else embed_dim
    )


def to_json(config: ViTConfig, facts: PretrainedCfg | None) -> dict[str, Any]:
    """timm's config.json layout (timm can read it) plus every vitzoo config field.

    ``architecture`` is the registered arch nearest to ``config`` (``_closest_arch``: same timm class and family
    first) and ``model_args`` the timm kwargs that turn it into ``config``. A field model_args cannot carry (a flag
    only vitzoo has, another norm eps) is logged: timm builds it as the arch has it; vitzoo reads the folder as saved.
    """
    vit = dataclasses.asdict(config)
    ours = facts.to_dict() if facts is not None else {}
    ours.update(input_size=[config.in_chans, *eval_size(config, facts)], num_classes=config.num_classes)
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
