"""torchvision ``vit_b_16`` ... ``vit_h_14`` state dicts to timm names (a pure rename; qkv is already fused)."""

from __future__ import annotations

import torch

from .base import Converted, rename_keys

_WB = r"(weight|bias)"
_RENAMES: list[tuple[str, str]] = [  # (regex for the whole key, replacement)
    (r"class_token", "cls_token"),
    (r"conv_proj\." + _WB, r"patch_embed.proj.\1"),
    (r"encoder\.pos_embedding", "pos_embed"),
    (r"encoder\.layers\.encoder_layer_(\d+)\.ln_1\." + _WB, r"blocks.\1.norm1.\2"),
    (r"encoder\.layers\.encoder_layer_(\d+)\.ln_2\." + _WB, r"blocks.\1.norm2.\2"),
    (r"encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_" + _WB, r"blocks.\1.attn.qkv.\2"),
    (r"encoder\.layers\.encoder_layer_(\d+)\.self_attention\.out_proj\." + _WB, r"blocks.\1.attn.proj.\2"),
    (r"encoder\.layers\.encoder_layer_(\d+)\.mlp\.(?:0|linear_1)\." + _WB, r"blocks.\1.mlp.fc1.\2"),
    (r"encoder\.layers\.encoder_layer_(\d+)\.mlp\.(?:3|linear_2)\." + _WB, r"blocks.\1.mlp.fc2.\2"),
    (r"encoder\.ln\." + _WB, r"norm.\1"),
    (r"heads\.pre_logits\." + _WB, r"pre_logits.fc.\1"),
    (r"heads\.head\." + _WB, r"head.\1"),
]


def from_torchvision(state_dict: dict[str, torch.Tensor]) -> Converted:
    out = rename_keys(state_dict, _RENAMES, "torchvision VisionTransformer")
    return Converted("torchvision", out, ["renamed torchvision keys (class_token, encoder.layers.*, heads.head)"])
