"""The original DINOv3 torch.hub files (``dinov3_vit*16_pretrain_*.pth``, facebookresearch/dinov3) to vitzoo's names,
as timm's ``eva.py checkpoint_filter_fn`` does (but for the layer scales, which keep their ``ls1.gamma`` names here).

Renamed: ``storage_tokens`` -> ``reg_token``, SwiGLU ``mlp.w1`` / ``w2`` / ``w3`` -> ``mlp.fc1_g`` / ``fc1_x`` /
``fc2``. The fused ``attn.qkv.bias`` is split into ``attn.q_bias`` and ``attn.v_bias`` (``qkv_bias_mode="qv"``): its
k third is multiplied by the zero third of ``bias_mask`` in
the original (and a key bias never changes attention anyway: it adds the same ``q . b`` to every logit of a row).
Dropped and reported: ``mask_token`` (training only), ``rope_embed.periods`` (vitzoo recomputes the rotary
frequencies in float32 from ``rope_temperature``), every ``attn.qkv.bias_mask``, and the 7B's ``local_cls_norm``.
"""

from __future__ import annotations

import re

import torch

from .base import Converted, rename_keys

_WB = r"(weight|bias)"
_RENAMES: list[tuple[str, str]] = [  # (regex for the whole key, replacement); everything else is unknown
    (r"cls_token", "cls_token"),
    (r"storage_tokens", "reg_token"),
    (r"patch_embed\.proj\." + _WB, r"patch_embed.proj.\1"),
    (r"blocks\.(\d+)\.(norm[12]|attn\.proj|mlp\.fc[12])\." + _WB, r"blocks.\1.\2.\3"),
    (r"blocks\.(\d+)\.attn\.qkv\.weight", r"blocks.\1.attn.qkv.weight"),
    (r"blocks\.(\d+)\.(ls[12])\.gamma", r"blocks.\1.\2.gamma"),
    (r"blocks\.(\d+)\.mlp\.w1\." + _WB, r"blocks.\1.mlp.fc1_g.\2"),  # SwiGLU gate (S+, H+, 7B)
    (r"blocks\.(\d+)\.mlp\.w2\." + _WB, r"blocks.\1.mlp.fc1_x.\2"),  # SwiGLU up
    (r"blocks\.(\d+)\.mlp\.w3\." + _WB, r"blocks.\1.mlp.fc2.\2"),
    (r"norm\." + _WB, r"norm.\1"),
]
_DROPPED: list[tuple[str, str]] = [  # (regex, why)
    (r"mask_token", "DINOv3's masked-image-modelling token, used in training only"),
    (r"rope_embed\.periods", "rotary periods: vitzoo recomputes them in float32 from rope_temperature"),
    (r"blocks\.\d+\.attn\.qkv\.bias_mask", "constant mask of the fused bias (q and v kept, k zero)"),
    (r"local_cls_norm\.(weight|bias)", "the 7B's norm for local crops, used in training only"),
]
_QKV_BIAS = re.compile(r"blocks\.(\d+)\.attn\.qkv\.bias")


def from_dinov3(state_dict: dict[str, torch.Tensor]) -> Converted:
    """Convert an original DINOv3 state dict; unknown keys raise ``FormatError``."""
    dropped: dict[str, str] = {}
    rest: dict[str, torch.Tensor] = {}
    biases: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        why = next((why for pattern, why in _DROPPED if re.fullmatch(pattern, key)), None)
        match = _QKV_BIAS.fullmatch(key)
        if why is not None:
            dropped[key] = why
        elif match:
            q, _, v = value.chunk(3)
            biases[f"blocks.{match[1]}.attn.q_bias"], biases[f"blocks.{match[1]}.attn.v_bias"] = q, v
        else:
            rest[key] = value
    out = {**rename_keys(rest, _RENAMES, "DINOv3"), **biases}
    notes = ["renamed original DINOv3 keys (storage_tokens, mlp.w1/w2/w3)"]
    if biases:
        notes.append("split attn.qkv.bias into attn.q_bias and attn.v_bias (the k third is masked to zero)")
    return Converted("dinov3", out, notes, dropped)
