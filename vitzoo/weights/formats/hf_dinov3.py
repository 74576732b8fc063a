"""transformers ``DINOv3ViTModel`` state dicts (facebook/dinov3-vit*) to vitzoo's names.

On disk the blocks are ``layer.{i}.`` (``model.layer.{i}.`` in memory in transformers >= 5). q/k/v weights are fused
into ``attn.qkv.weight``; the q and v biases (the k projection has none) are ``attn.q_bias`` / ``attn.v_bias``
(``qkv_bias_mode="qv"``); ``layer_scale{1,2}.lambda1`` are ``ls1.gamma`` / ``ls2.gamma``; the MLP's
``up_proj``/``down_proj`` are ``fc1``/``fc2``, or with the gated MLP (S+, H+, 7B) ``gate_proj``/``up_proj``/
``down_proj`` are ``fc1_g``/``fc1_x``/``fc2``; ``register_tokens`` (DINOv3's storage tokens) are ``reg_token``. RoPE
periods are not stored.
"""

from __future__ import annotations

import torch

from .base import Converted, concat_parts, rename_keys

_WB = r"(weight|bias)"
_T = r"(?:model\.)?layer\.(\d+)\."
_RENAMES: list[tuple[str, str]] = [
    (r"embeddings\.cls_token", "cls_token"),
    (r"embeddings\.register_tokens", "reg_token"),
    (r"embeddings\.patch_embeddings\." + _WB, r"patch_embed.proj.\1"),
    (_T + r"norm([12])\." + _WB, r"blocks.\1.norm\2.\3"),
    (_T + r"attention\.([qv])_proj\.bias", r"blocks.\1.attn.\2_bias"),
    (_T + r"attention\.o_proj\." + _WB, r"blocks.\1.attn.proj.\2"),
    (_T + r"layer_scale([12])\.lambda1", r"blocks.\1.ls\2.gamma"),
    (_T + r"mlp\.gate_proj\." + _WB, r"blocks.\1.mlp.fc1_g.\2"),
    (_T + r"mlp\.down_proj\." + _WB, r"blocks.\1.mlp.fc2.\2"),
    (r"norm\." + _WB, r"norm.\1"),
]
_QKV = _T + r"attention\.([qkv])_proj\.(weight)"
_QKV_ORDER = {"q": 0, "k": 1, "v": 2}
WHAT = "transformers DINOv3"


def from_transformers_dinov3(state_dict: dict[str, torch.Tensor]) -> Converted:
    """Convert a transformers DINOv3 ViT state dict; unknown keys (a k bias, say) raise ``FormatError``."""
    dropped = {}
    if "embeddings.mask_token" in state_dict:
        dropped["embeddings.mask_token"] = "the masked-image-modeling token (used in training only)"
    registers = state_dict.get("embeddings.register_tokens")
    if registers is not None and not registers.numel():
        dropped["embeddings.register_tokens"] = "empty (the model has no register tokens)"
    state_dict = {k: v for k, v in state_dict.items() if k not in dropped}
    gated = any(".mlp.gate_proj." in k for k in state_dict)
    up = (_T + r"mlp\.up_proj\." + _WB, r"blocks.\1.mlp.fc1_x.\2" if gated else r"blocks.\1.mlp.fc1.\2")
    qkv, rest = concat_parts(state_dict, _QKV, _QKV_ORDER, "blocks.{}.attn.qkv.{}", WHAT)
    out = {**rename_keys(rest, [*_RENAMES, up], WHAT), **qkv}
    notes = ["renamed transformers DINOv3 keys", "fused q/k/v weights into qkv"]
    if gated:
        notes.append("gated MLP: gate_proj, up_proj, down_proj as fc1_g, fc1_x, fc2")
    return Converted("transformers-dinov3", out, notes, dropped)
