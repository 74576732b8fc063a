"""The original DINOv2 torch.hub files (``dinov2_vit{s,b,l,g}14[_reg4]_pretrain.pth``) to timm names, as timm's
``_convert_dinov2`` does.

The names are timm's but for: ``mask_token`` (masked-image-modelling training only: dropped and reported),
``register_tokens`` (-> ``reg_token``) and the giant's packed SwiGLU ``mlp.w12`` / ``mlp.w3`` (-> ``mlp.fc1`` /
``mlp.fc2``, fc1 rows = [gate; up]). With registers the original adds ``pos_embed[:, 0]`` to the class token and
inserts the registers after it without a position embedding; timm's reg4 models (``no_embed_class=True``) hold the
sum in ``cls_token`` and only the patch rows in ``pos_embed``, which computes the same sequence.
"""

from __future__ import annotations

import torch

from .base import Converted, rename_keys

_WB = r"(weight|bias)"
_RENAMES: list[tuple[str, str]] = [  # (regex for the whole key, replacement); everything else is unknown
    (r"(cls_token|pos_embed)", r"\1"),
    (r"patch_embed\.proj\." + _WB, r"patch_embed.proj.\1"),
    (r"blocks\.(\d+)\.(norm[12]|attn\.qkv|attn\.proj|mlp\.fc[12])\." + _WB, r"blocks.\1.\2.\3"),
    (r"blocks\.(\d+)\.mlp\.w12\." + _WB, r"blocks.\1.mlp.fc1.\2"),  # giant: packed SwiGLU [gate; up]
    (r"blocks\.(\d+)\.mlp\.w3\." + _WB, r"blocks.\1.mlp.fc2.\2"),
    (r"blocks\.(\d+)\.(ls[12])\.gamma", r"blocks.\1.\2.gamma"),
    (r"norm\." + _WB, r"norm.\1"),
]


def from_dinov2(state_dict: dict[str, torch.Tensor]) -> Converted:
    """Convert an original DINOv2 state dict; unknown keys raise ``FormatError``."""
    state_dict = dict(state_dict)
    dropped = {}
    if state_dict.pop("mask_token", None) is not None:
        dropped["mask_token"] = "DINOv2's masked-image-modelling token, used in training only"
    notes = ["renamed original DINOv2 keys (mlp.w12 / mlp.w3 of the SwiGLU giant to mlp.fc1 / mlp.fc2)"]
    registers = state_dict.pop("register_tokens", None)
    out = rename_keys(state_dict, _RENAMES, "DINOv2")
    if registers is not None:
        out["reg_token"] = registers
        out["cls_token"] = out["cls_token"] + out["pos_embed"][:, :1]
        out["pos_embed"] = out["pos_embed"][:, 1:]
        notes.append(
            "register_tokens -> reg_token; pos_embed[:, 0] folded into cls_token and pos_embed kept for the patches "
            "only (timm's layout: create the model with no_embed_class=True)"
        )
    return Converted("dinov2", out, notes, dropped)
