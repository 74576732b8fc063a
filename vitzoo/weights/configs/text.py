"""The text tower a two-tower config describes, as a ``TextConfig``: transformers' ``CLIPModel`` / ``SiglipModel`` /
``Siglip2Model`` ``config.json`` (its ``text_config``) and open_clip's ``open_clip_config.json`` (its ``text_cfg``).

transformers (defaults of ``CLIPTextConfig`` / ``SiglipTextConfig`` for what a file leaves out):

* CLIP: causal, pooled at the end-of-text token: ``eos_token_id == 2`` (the legacy value of OpenAI's repos) takes
  ``argmax(input_ids)``, any other the first position of ``eos_token_id``, as ``CLIPTextModel`` does; the projection
  is the top-level ``projection_dim``, without bias.
* SigLIP / SigLIP 2: bidirectional, the last position pooled, ``text_model.head`` (with bias, ``projection_size``
  wide, default the width) the projection; a logit bias.

open_clip: ``CLIPTextCfg``'s fields and defaults (causal unless ``no_causal_mask``, ``pool_type`` ``argmax`` /
``eos`` / ``last``, ``proj_bias``, ``norm_kwargs.eps``, ``act_kwargs.approximate``, the model's ``quick_gelu``); a
logit bias when the model has ``init_logit_bias``. Text towers vitzoo does not build (a Hugging Face text model,
CoCa's class embedding, the custom attention blocks) are refused, naming the option.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import ConfigError
from ...models.text import TextConfig
from .transformers import ACTIVATIONS

TWO_TOWER_TYPES = ("clip", "siglip", "siglip2")  # transformers model_types with a text tower in the same file

_HF_DEFAULTS: dict[str, dict[str, Any]] = {  # CLIPTextConfig / SiglipTextConfig / Siglip2TextConfig (transformers 5)
    "clip": dict(vocab=49408, width=512, mlp=2048, depth=12, heads=8, context=77, act="quick_gelu", eps=1e-5),
    "siglip": dict(vocab=32000, width=768, mlp=3072, depth=12, heads=12, context=64, act="gelu_pytorch_tanh", eps=1e-6),
}
_LEGACY_EOS = 2  # transformers' CLIP configs before its PR #24773: pool at argmax(input_ids)

# open_clip CLIPTextCfg options that change what the tower computes, refused when true
_OPEN_CLIP_REFUSED = (
    "hf_model_name",  # a Hugging Face text model (RoBERTa, XLM-R, mT5, ...)
    "embed_cls",  # CoCa's appended class token
    "qk_norm",
    "scaled_cosine_attn",
    "scale_heads",
    "scale_attn_inner",
    "scale_attn",
    "scale_fc",
)
_OPEN_CLIP_POOLS = ("argmax", "eos", "last")


def has_text_tower(config: Mapping[str, Any]) -> bool:
    """A transformers two-tower ``config.json``, or an open_clip config: one that describes a text tower."""
    if "model_cfg" in config or "text_cfg" in config:
        return True
    return config.get("model_type") in TWO_TOWER_TYPES


def has_logit_bias(config: Mapping[str, Any]) -> bool:
    """The model turns cosines into logits with a bias too (SigLIP's sigmoid loss)."""
    if "model_cfg" in config or "text_cfg" in config:
        return config.get("model_cfg", config).get("init_logit_bias") is not None
    return config.get("model_type") in ("siglip", "siglip2")


def text_config(config: Mapping[str, Any], name: str) -> TextConfig:
    """The text tower of a transformers two-tower ``config.json`` or an open_clip config."""
    if "model_cfg" in config or "text_cfg" in config:
        return _from_open_clip(config.get("model_cfg", config), name)
    if config.get("model_type") in TWO_TOWER_TYPES:
        return _from_transformers(config, name)
    raise ConfigError(f"{name}: the config describes no text tower (model_type {config.get('model_type')!r})")


def _from_transformers(config: Mapping[str, Any], name: str) -> TextConfig:
    clip = config["model_type"] == "clip"
    text = config.get("text_config") or {}
    d = _HF_DEFAULTS["clip" if clip else "siglip"]
    act = str(text.get("hidden_act", d["act"]))
    if act not in ACTIVATIONS:
        raise ConfigError(f"{name}: text hidden_act={act!r} is not supported; vitzoo has {', '.join(ACTIVATIONS)}")
    width = int(text.get("hidden_size", d["width"]))
    fields: dict[str, Any] = dict(
        vocab_size=int(text.get("vocab_size", d["vocab"])),
        context_length=int(text.get("max_position_embeddings", d["context"])),
        width=width,
        depth=int(text.get("num_hidden_layers", d["depth"])),
        num_heads=int(text.get("num_attention_heads", d["heads"])),
        mlp_dim=int(text.get("intermediate_size", d["mlp"])),
        act_layer=ACTIVATIONS[act],
        layer_norm_eps=float(text.get("layer_norm_eps", d["eps"])),
    )
    if clip:
        eos = int(text.get("eos_token_id", 49407))
        pool = dict(pool="argmax") if eos == _LEGACY_EOS else dict(pool="eos", eos_id=eos)
        return TextConfig(**fields, **pool, causal=True, embed_dim=int(config.get("projection_dim", 512)))
    projection = text.get("projection_size")
    return TextConfig(
        **fields, causal=False, pool="last", proj_bias=True, embed_dim=int(projection if projection else width)
    )


def _from_open_clip(model: Mapping[str, Any], name: str) -> TextConfig:
    text = dict(model.get("text_cfg") or {})
    refused = [k for k in _OPEN_CLIP_REFUSED if text.get(k)]
    if text.get("block_type") not in (None, "default"):
        refused.append(f"block_type={text['block_type']!r}")
    pool = text.get("pool_type", "argmax")
    if pool not in _OPEN_CLIP_POOLS:
        refused.append(f"pool_type={pool!r}")
    proj = text.get("proj_type", "linear")
    if proj not in ("linear", "none"):
        refused.append(f"proj_type={proj!r}")
    norm = dict(text.get("norm_kwargs") or {})
    eps = float(norm.pop("eps", 1e-5))
    act_kwargs = dict(text.get("act_kwargs") or {})
    quick_gelu = bool(model.get("quick_gelu", False))
    approximate = act_kwargs.pop("approximate", "none")
    if norm or act_kwargs or approximate not in ("none", "tanh") or (quick_gelu and approximate != "none"):
        refused.append(f"norm_kwargs={text.get('norm_kwargs')}, act_kwargs={text.get('act_kwargs')}")
    if refused:
        raise ConfigError(f"{name}: open_clip text_cfg {refused} describes a text tower vitzoo does not build")
    width = int(text.get("width", 512))
    act = "quick_gelu" if quick_gelu else "gelu_tanh" if approximate == "tanh" else "gelu"
    return TextConfig(
        vocab_size=int(text.get("vocab_size", 49408)),
        context_length=int(text.get("context_length", 77)),
        width=width,
        depth=int(text.get("layers", 12)),
        num_heads=int(text.get("heads", 8)),
        mlp_dim=int(width * float(text.get("mlp_ratio", 4.0))),
        embed_dim=0 if proj == "none" else int(model["embed_dim"]),
        causal=not text.get("no_causal_mask", False),
        pool=pool,
        eos_id=int(text.get("eos_id", 2)) if pool == "eos" else None,
        act_layer=act,
        layer_norm_eps=eps,
        proj_bias=bool(text.get("proj_bias", False)),
        init_values=text.get("ls_init_value"),
    )
