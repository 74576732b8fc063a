"""transformers ``Aimv2VisionModel`` (apple/aimv2-*) state dicts to timm's AIMv2 names.

The patch embedding's RMSNorm is ``patch_embed.norm``; the position ``Embedding`` of N rows becomes the (1, N, D)
table; q/k/v are fused into ``qkv``; the SwiGLU's ``gate_proj`` / ``up_proj`` / ``down_proj`` are ``fc1_g`` /
``fc1_x`` / ``fc2``. The image tower of a two-tower ``Aimv2Model`` is read from under ``vision_model.``. transformers'
attention-pooling head (``head.*``, its ``pooler_output``) is not part of timm's AIMv2 and is dropped and reported,
as is a two-tower model's text half.
"""

from __future__ import annotations

import torch

from .base import Converted, concat_parts, rename_keys

_WB = r"(weight|bias)"
_L = r"encoder\.layers\.(\d+)"
_RENAMES: list[tuple[str, str]] = [
    (r"embeddings\.patch_embed\." + _WB, r"patch_embed.proj.\1"),
    (r"embeddings\.rms_norm\.weight", "patch_embed.norm.weight"),
    (r"embeddings\.position_embedding\.weight", "pos_embed"),
    (_L + r"\.attention\.out_proj\." + _WB, r"blocks.\1.attn.proj.\2"),
    (_L + r"\.ffn\.gate_proj\." + _WB, r"blocks.\1.mlp.fc1_g.\2"),
    (_L + r"\.ffn\.up_proj\." + _WB, r"blocks.\1.mlp.fc1_x.\2"),
    (_L + r"\.ffn\.down_proj\." + _WB, r"blocks.\1.mlp.fc2.\2"),
    (_L + r"\.rms_norm1\.weight", r"blocks.\1.norm1.weight"),
    (_L + r"\.rms_norm2\.weight", r"blocks.\1.norm2.weight"),
    (r"rms_norm\.weight", "norm.weight"),
]
_QKV = _L + r"\.attention\.(q_proj|k_proj|v_proj)\.(weight|bias)"
_HEAD = "transformers' attention-pooling head (pooler_output); timm's AIMv2 pools the patch mean"


def from_transformers_aimv2(state_dict: dict[str, torch.Tensor]) -> Converted:
    """Convert an ``Aimv2VisionModel`` (or ``Aimv2Model``'s image tower) state dict to vitzoo/timm names."""
    notes: list[str] = []
    dropped: dict[str, str] = {}
    if any(k.startswith("vision_model.") for k in state_dict):
        other = sorted({k.split(".")[0] for k in state_dict if not k.startswith("vision_model.")})
        dropped.update({f"{p}.*" if p.endswith("model") else p: "the text half of a two-tower AIMv2" for p in other})
        state_dict = {
            k.removeprefix("vision_model."): v for k, v in state_dict.items() if k.startswith("vision_model.")
        }
        notes.append("read the image tower under 'vision_model.'")
    if any(k.startswith("head.") for k in state_dict):
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("head.")}
        dropped["head.*"] = _HEAD
    order = {"q_proj": 0, "k_proj": 1, "v_proj": 2}
    qkv, rest = concat_parts(state_dict, _QKV, order, "blocks.{}.attn.qkv.{}", "transformers AIMv2")
    out = {**rename_keys(rest, _RENAMES, "transformers AIMv2"), **qkv}
    if "pos_embed" in out and out["pos_embed"].ndim == 2:
        out["pos_embed"] = out["pos_embed"].unsqueeze(0)  # (N, D) Embedding rows -> (1, N, D)
    notes += ["renamed transformers AIMv2 keys", "fused q/k/v into qkv"]
    return Converted("transformers-aimv2", out, notes, dropped)
