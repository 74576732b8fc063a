"""timm's and vitzoo's ``config.json`` to vitzoo's config, and back (``to_json``, what ``save_pretrained`` writes).

timm (``save_config_for_hf``): ``{"architecture", "num_classes", "global_pool", "pretrained_cfg": {...}}``, plus
``model_args`` (the kwargs timm's entry point gets); vitzoo's ``save_pretrained`` writes the same layout plus
``"vitzoo_config"`` (every ``ViTConfig`` field) and ``"vitzoo_pretrained_cfg"``, which vitzoo reads back exactly.
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
from ..formats.timm import is_eva

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


def from_timm(config: Mapping[str, Any], name: str) -> tuple[ViTConfig, PretrainedCfg]:
    """The model config and checkpoint facts of a timm or vitzoo ``config.json``; ``name`` names the checkpoint in
    the facts unless the config names it."""
    if "vitzoo_config" in config:
        fields = dict(config["vitzoo_config"])
        for k in ("img_size", "patch_size"):
            fields[k] = tuple(fields[k])
        # vitzoo 0.1 wrote no qkv_bias_mode: its rope=True meant q and v biases too
        fields.setdefault("qkv_bias_mode", "qv" if fields.get("rope") else "qkv")
        fields.setdefault("abs_pos_embed", not fields.get("rope"))  # written before the field: rope meant no table
        if fields.get("rope_ref_grid") is not None:
            fields["rope_ref_grid"] = tuple(fields["rope_ref_grid"])
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
# the field names (mlp_dim is written as mlp_ratio); Eva's (formats.timm.is_eva: DINOv3) differ for three of them.
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
_EVA_NAMES = {
    "reg_tokens": "num_reg_tokens",
    "fc_norm": "use_fc_norm",
    "pre_norm": "use_pre_transformer_norm",
    "rope_ref_grid": "ref_feat_shape",
}
_EVA_ARGS = (*(f for f in _TIMM_ARGS if f not in ("no_embed_class", "act_layer")), "rope_temperature", "rope_ref_grid")
# Always written, as timm's own save does: timm takes the image size from its default checkpoint's cfg, not from the
# entry point, Eva pools "avg" by default and timm's fc_norm=None means "on for average pooling"
_ALWAYS = ("img_size", "global_pool", "fc_norm")
# Fields model_args cannot change: they pick timm's entry point (its class, stem, MLP module, norm eps, bias layout)
_ENTRY_FIELDS = (
    "hybrid_layers",
    "hybrid_stem_only",
    "distilled",
    "rope",
    "rope_type",
    "abs_pos_embed",
    "attn_norm",
    "mlp_norm",
    "qkv_bias_mode",
    "mlp_layer",
    "layer_norm_eps",
    "representation_size",
    "rel_pos_type",  # timm's relpos ViT takes it, its VisionTransformer does not: not written (timm builds the MLP)
    "attn_type",  # timm's vit_dwee/dlittle entry points pass attn_layer="diff"
    "block_type",  # and vit_pwee/dpwee their block_fn
    "qk_norm",  # Sapiens2's entry points: q/k norms, the attention-only layer scale and the key/value heads per block
    "mlp_layer_scale",
    "num_kv_heads",
    "full_attn_blocks",
)
# Flags that tell the families apart (models.archs.FAMILIES): the closest arch agrees on as many as it can
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


def _args_of(config: ViTConfig) -> dict[str, str]:
    """The fields model_args can set for the timm class that builds ``config``, each with its kwarg name there."""
    if is_eva(config):
        return {f: _EVA_NAMES.get(f, f) for f in _EVA_ARGS}
    return {f: f for f in _TIMM_ARGS}


def _not_expressible(config: ViTConfig, arch: ViTConfig) -> list[str]:
    """Fields in which ``config`` differs from ``arch`` that timm's model_args cannot carry."""
    fixed = [*_ENTRY_FIELDS, *(("act_layer",) if is_eva(config) else ())]
    lost = [f for f in fixed if getattr(config, f) != getattr(arch, f)]
    if config.patch_bias == config.pre_norm:
        lost.append("patch_bias")
    return lost


def _from_timm_args(base: ViTConfig, args: Mapping[str, Any]) -> dict[str, Any]:
    """ViTConfig changes of a timm config.json's ``model_args`` for the registered arch ``base``."""
    names = {kwarg: f for f, kwarg in _args_of(base).items()}
    unsupported = sorted(set(args) - set(names) - {"mlp_ratio", "num_classes"})
    if unsupported:
        raise ConfigError(f"config.json model_args {unsupported} describe a model vitzoo does not build")
    out = {names[k]: (tuple(v) if isinstance(v, list) else v) for k, v in args.items() if k in names}
    out["num_classes"] = args.get("num_classes", base.num_classes)
    if "mlp_ratio" in args:
        out["mlp_dim"] = int(out.get("embed_dim", base.embed_dim) * args["mlp_ratio"])
    if out.get("fc_norm") is None:  # timm's None: the entry point's choice, else on exactly for average pooling
        pool = out.get("global_pool", base.global_pool)
        out["fc_norm"] = base.fc_norm if is_eva(base) or pool == base.global_pool else pool == "avg"
    return out


def _timm_args(config: ViTConfig, arch: ViTConfig) -> dict[str, Any]:
    """The timm kwargs that turn ``arch`` into ``config`` (written as config.json ``model_args``)."""
    kwargs = _args_of(config)
    fields = [k for k in kwargs if k in _ALWAYS or getattr(config, k) != getattr(arch, k)]
    args = {kwargs[k]: getattr(config, k) for k in fields}
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
