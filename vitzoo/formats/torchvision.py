"""torchvision ``vit_b_16`` ... ``vit_h_14`` state dicts to timm names (a pure rename; qkv is already fused)."""

from __future__ import annotations

import re

import torch

from .base import Converted, FormatError

_RENAMES: list[tuple[str, str]] = [
    (r"class_token", "cls_token"),
    (r"conv_proj\.", "patch_embed.proj."),
    (r"encoder\.pos_embedding", "pos_embed"),
    (r"encoder\.layers\.encoder_layer_(\d+)\.ln_1\.", r"blocks.\1.norm1."),
    (r"encoder\.layers\.encoder_layer_(\d+)\.ln_2\.", r"blocks.\1.norm2."),
    (r"encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_(weight|bias)", r"blocks.\1.attn.qkv.\2"),
    (r"encoder\.layers\.encoder_layer_(\d+)\.self_attention\.out_proj\.", r"blocks.\1.attn.proj."),
    (r"encoder\.layers\.encoder_layer_(\d+)\.mlp\.(?:0|linear_1)\.", r"blocks.\1.mlp.fc1."),
    (r"encoder\.layers\.encoder_layer_(\d+)\.mlp\.(?:3|linear_2)\.", r"blocks.\1.mlp.fc2."),
    (r"encoder\.ln\.", "norm."),
    (r"heads\.pre_logits\.", "pre_logits.fc."),
    (r"heads\.head\.", "head."),
]


def from_torchvision(state_dict: dict[str, torch.Tensor]) -> Converted:
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        for pattern, replacement in _RENAMES:
            new, n = re.subn(f"^{pattern}$" if pattern.endswith(("token", "embedding")) else f"^{pattern}",
                             replacement, key)  # fmt: skip
            if n:
                out[new] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise FormatError(f"keys not understood as a torchvision VisionTransformer checkpoint: {unknown[:8]}")
    return Converted("torchvision", out, ["renamed torchvision keys (class_token, encoder.layers.*, heads.head)"])
