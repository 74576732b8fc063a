"""transformers ``Dinov2Model`` and ``Dinov2WithRegistersModel`` state dicts (facebook/dinov2-*) to timm names.

On disk (``save_pretrained``, Hub repos): ``encoder.layer.{i}.attention.attention.{query,key,value}``,
``layer_scale{1,2}.lambda1``, ``mlp.fc1/fc2`` or, for the SwiGLU giant, ``mlp.weights_in`` (rows [gate; up], timm's
packed ``fc1``) and ``mlp.weights_out``. transformers >= 5 in memory: ``attention.{q,k,v,o}_proj`` and
``mlp.gate_proj/up_proj/down_proj``. Register models are stored as timm's reg4 models are: the class token's
position row is folded into ``cls_token`` and ``pos_embed`` covers the patches only (``no_embed_class``), which
computes what transformers does (it adds that row to the class token before inserting the registers).
"""

from __future__ import annotations

import torch

from .base import Converted, concat_parts, rename_keys

_WB = r"(weight|bias)"
_L = r"encoder\.layer\.(\d+)\."
_RENAMES: list[tuple[str, str]] = [
    (r"embeddings\.cls_token", "cls_token"),
    (r"embeddings\.position_embeddings", "pos_embed"),
    (r"embeddings\.register_tokens", "reg_token"),
    (r"embeddings\.patch_embeddings\.projection\." + _WB, r"patch_embed.proj.\1"),
    (_L + r"norm([12])\." + _WB, r"blocks.\1.norm\2.\3"),
    (_L + r"attention\.(?:output\.dense|o_proj)\." + _WB, r"blocks.\1.attn.proj.\2"),
    (_L + r"layer_scale([12])\.lambda1", r"blocks.\1.ls\2.gamma"),
    (_L + r"mlp\.(fc[12])\." + _WB, r"blocks.\1.mlp.\2.\3"),
    (_L + r"mlp\.weights_in\." + _WB, r"blocks.\1.mlp.fc1.\2"),  # SwiGLU: already [gate; up], timm's packed fc1
    (_L + r"mlp\.(?:weights_out|down_proj)\." + _WB, r"blocks.\1.mlp.fc2.\2"),
    (r"layernorm\." + _WB, r"norm.\1"),
]
_QKV = _L + r"attention\.(?:attention\.)?(query|key|value|q_proj|k_proj|v_proj)\.(weight|bias)"
_QKV_ORDER = {"query": 0, "key": 1, "value": 2, "q_proj": 0, "k_proj": 1, "v_proj": 2}
_SWIGLU_IN = _L + r"mlp\.(gate_proj|up_proj)\.(weight|bias)"  # in memory: weights_in split in two
_SWIGLU_ORDER = {"gate_proj": 0, "up_proj": 1}
WHAT = "transformers DINOv2"


def from_transformers_dinov2(state_dict: dict[str, torch.Tensor]) -> Converted:
    """Convert a transformers DINOv2 (with or without registers) state dict; unknown keys raise ``FormatError``."""
    notes = ["renamed transformers DINOv2 keys", "fused query/key/value into qkv"]
    dropped = {}
    if "embeddings.mask_token" in state_dict:
        state_dict = {k: v for k, v in state_dict.items() if k != "embeddings.mask_token"}
        dropped["embeddings.mask_token"] = "the masked-image-modeling token (used in training only)"
    qkv, rest = concat_parts(state_dict, _QKV, _QKV_ORDER, "blocks.{}.attn.qkv.{}", WHAT)
    fc1, rest = concat_parts(rest, _SWIGLU_IN, _SWIGLU_ORDER, "blocks.{}.mlp.fc1.{}", WHAT)
    out = {**rename_keys(rest, _RENAMES, WHAT), **qkv, **fc1}
    if "reg_token" in out and "pos_embed" in out and "cls_token" in out:
        pos = out["pos_embed"]
        out["cls_token"] = out["cls_token"] + pos[:, :1]
        out["pos_embed"] = pos[:, 1:]
        notes.append("folded the class token's position row into cls_token; pos_embed covers the patches only")
        if not out["reg_token"].numel():
            del out["reg_token"]
            dropped["embeddings.register_tokens"] = "empty (the model has no register tokens)"
    if fc1:
        notes.append("SwiGLU: gate_proj and up_proj packed into mlp.fc1")
    return Converted("transformers-dinov2", out, notes, dropped)
