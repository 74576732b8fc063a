"""Meta's Sapiens2 checkpoints (facebookresearch/sapiens2; the ``model.safetensors`` of timm's
``timm/vit_*_patch16_sapiens2.fb`` repos is this layout) to vitzoo's names, as timm's ``eva.py checkpoint_filter_fn``
does.

Renamed: ``storage_tokens`` -> ``reg_token``, ``patch_embed.projection`` -> ``patch_embed.proj``, ``ln1`` / ``ln2``
-> ``norm1`` / ``norm2`` (the top-level ``ln1`` is the final ``norm``), ``attn.gamma.weight`` (the layer scale of
the attention branch, the only one) -> ``ls1.gamma``, the packed SwiGLU ``ffn.w12`` / ``ffn.w3`` -> ``mlp.fc1`` /
``mlp.fc2``. ``attn.wq`` / ``wk`` / ``wv`` (fewer rows for k and v in the grouped-query blocks) are fused into
``attn.qkv`` with their three biases. Dropped and reported: ``mask_token`` (training only) and any rotary buffer
(vitzoo recomputes the frequencies in float32, as timm does).
"""

from __future__ import annotations

import re

import torch

from .base import Converted, concat_parts, rename_keys

_WB = r"(weight|bias)"
_RENAMES: list[tuple[str, str]] = [  # (regex for the whole key, replacement); everything else is unknown
    (r"cls_token", "cls_token"),
    (r"storage_tokens", "reg_token"),
    (r"patch_embed\.projection\." + _WB, r"patch_embed.proj.\1"),
    (r"blocks\.(\d+)\.ln([12])\.weight", r"blocks.\1.norm\2.weight"),
    (r"blocks\.(\d+)\.attn\.([qk]_norm|proj)\." + _WB, r"blocks.\1.attn.\2.\3"),
    (r"blocks\.(\d+)\.attn\.gamma\.weight", r"blocks.\1.ls1.gamma"),
    (r"blocks\.(\d+)\.ffn\.w12\." + _WB, r"blocks.\1.mlp.fc1.\2"),  # packed SwiGLU: [gate; up]
    (r"blocks\.(\d+)\.ffn\.w3\." + _WB, r"blocks.\1.mlp.fc2.\2"),
    (r"ln1\.weight", "norm.weight"),
]
_DROPPED: list[tuple[str, str]] = [  # (regex, why)
    (r"mask_token", "Sapiens2's masked-image-modelling token, used in training only"),
    (r".*rope.*", "a rotary buffer: vitzoo recomputes the frequencies in float32 (as timm)"),
]


def is_sapiens2(keys: set[str]) -> bool:
    """Sapiens2's own layout: DINOv3-like ``storage_tokens`` with ``attn.wq`` and a packed ``ffn.w12``."""
    return "blocks.0.attn.wq.weight" in keys and "blocks.0.ffn.w12.weight" in keys


def from_sapiens2(state_dict: dict[str, torch.Tensor]) -> Converted:
    """Convert a Sapiens2 state dict; unknown keys raise ``FormatError``."""
    dropped = {k: why for k in state_dict for pattern, why in _DROPPED if re.fullmatch(pattern, k)}
    kept = {k: v for k, v in state_dict.items() if k not in dropped}
    order = {"wq": 0, "wk": 1, "wv": 2}
    fused, rest = concat_parts(
        kept, r"blocks\.(\d+)\.attn\.(w[qkv])\." + _WB, order, "blocks.{}.attn.qkv.{}", "Sapiens2"
    )
    out = {**rename_keys(rest, _RENAMES, "Sapiens2"), **fused}
    notes = [
        "renamed Sapiens2 keys (storage_tokens, ln1/ln2, attn.gamma, ffn.w12/w3) and fused attn.wq/wk/wv into attn.qkv"
    ]
    return Converted("sapiens2", out, notes, dropped)
