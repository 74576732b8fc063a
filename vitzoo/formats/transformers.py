"""Hugging Face transformers ``ViTModel`` / ``ViTForImageClassification`` state dicts to timm names.

Handles the names written by ``save_pretrained`` (and stored in the google/vit-* Hub repos:
``encoder.layer.{i}.attention.attention.query``...) and the in-memory names of transformers >= 5
(``layers.{i}.attention.q_proj``...), with or without the ``vit.`` prefix. Separate q/k/v Linears are
concatenated into timm's fused ``qkv`` (rows in q, k, v order).
"""

from __future__ import annotations

import re

import torch

from ..errors import FormatError
from .base import Converted, rename_keys

_WB = r"(weight|bias)"
_L = r"(?:encoder\.layer|layers)\.(\d+)"  # file names | transformers >= 5 in-memory names
_RENAMES: list[tuple[str, str]] = [  # (regex for the whole key without "vit.", replacement)
    (r"embeddings\.cls_token", "cls_token"),
    (r"embeddings\.position_embeddings", "pos_embed"),
    (r"embeddings\.patch_embeddings\.projection\." + _WB, r"patch_embed.proj.\1"),
    (_L + r"\.layernorm_before\." + _WB, r"blocks.\1.norm1.\2"),
    (_L + r"\.layernorm_after\." + _WB, r"blocks.\1.norm2.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\." + _WB, r"blocks.\1.attn.proj.\2"),
    (r"layers\.(\d+)\.attention\.o_proj\." + _WB, r"blocks.\1.attn.proj.\2"),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\." + _WB, r"blocks.\1.mlp.fc1.\2"),
    (r"encoder\.layer\.(\d+)\.output\.dense\." + _WB, r"blocks.\1.mlp.fc2.\2"),
    (r"layers\.(\d+)\.mlp\.(fc[12])\." + _WB, r"blocks.\1.mlp.\2.\3"),
    (r"layernorm\." + _WB, r"norm.\1"),
    (r"classifier\." + _WB, r"head.\1"),
    (r"pooler\.dense\." + _WB, r"pre_logits.fc.\1"),  # ViTModel's tanh pooler = the paper's pre-logits layer
]
_QKV = re.compile(
    r"(?:encoder\.layer|layers)\.(\d+)\.attention\.(?:attention\.(query|key|value)|([qkv])_proj)\.(weight|bias)"
)
_QKV_ORDER = {"query": 0, "key": 1, "value": 2, "q": 0, "k": 1, "v": 2}


def from_transformers(state_dict: dict[str, torch.Tensor]) -> Converted:
    """Convert a transformers ViT state dict to vitzoo/timm names; unknown keys raise ``FormatError``."""
    qkv: dict[tuple[int, str], list[torch.Tensor | None]] = {}
    rest: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        match = _QKV.fullmatch(key.removeprefix("vit."))
        if match:
            block, long, short, kind = match.groups()
            qkv.setdefault((int(block), kind), [None, None, None])[_QKV_ORDER[long or short]] = value
        else:
            rest[key] = value
    out = rename_keys(rest, _RENAMES, "transformers ViT", strip="vit.")
    for (block, kind), parts in sorted(qkv.items()):
        if any(p is None for p in parts):
            raise FormatError(f"block {block}: {kind} of query/key/value incomplete in the checkpoint")
        out[f"blocks.{block}.attn.qkv.{kind}"] = torch.cat(parts, dim=0)  # type: ignore[arg-type]
    notes = ["renamed transformers keys", "fused query/key/value into qkv"]
    if any(k.startswith("vit.") for k in state_dict):
        notes.insert(0, "stripped the 'vit.' prefix")
    return Converted("transformers", out, notes)
