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
from collections.abc import Mapping
from typing import Any

from .config import ViTConfig, to_pair
from .errors import ConfigError, UnknownModelError
from .loading import OPEN_CLIP_WEIGHT_FILES
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
