"""Hugging Face transformers ``ViTModel`` / ``ViTForImageClassification`` state dicts to timm names.

Handles the names written by ``save_pretrained`` (and stored in the google/vit-* Hub repos:
``encoder.layer.{i}.attention.attention.query``...) and the in-memory names of transformers >= 5
(``layers.{i}.attention.q_proj``...), with or without the ``vit.`` prefix. Separate q/k/v Linears are
concatenated into timm's fused ``qkv`` (rows in q, k, v order).
"""

from __future__ import annotations

import re

import torch

from .base import Converted, FormatError

# (pattern on the key without "vit.", replacement); {i} is the block index.
_RENAMES: list[tuple[str, str]] = [
    (r"embeddings\.cls_token", "cls_token"),
    (r"embeddings\.position_embeddings", "pos_embed"),
    (r"embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"(?:encoder\.layer|layers)\.(\d+)\.layernorm_before\.", r"blocks.\1.norm1."),
    (r"(?:encoder\.layer|layers)\.(\d+)\.layernorm_after\.", r"blocks.\1.norm2."),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"blocks.\1.attn.proj."),
    (r"layers\.(\d+)\.attention\.o_proj\.", r"blocks.\1.attn.proj."),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.", r"blocks.\1.mlp.fc1."),
    (r"encoder\.layer\.(\d+)\.output\.dense\.", r"blocks.\1.mlp.fc2."),
    (r"layers\.(\d+)\.mlp\.(fc[12])\.", r"blocks.\1.mlp.\2."),
    (r"layernorm\.", "norm."),
    (r"classifier\.", "head."),
    (r"pooler\.dense\.", "pre_logits.fc."),  # ViTModel's tanh pooler = the paper's pre-logits layer
]
_QKV = re.compile(r"(?:encoder\.layer|layers)\.(\d+)\.attention\.(?:attention\.(query|key|value)|([qkv])_proj)\.(weight|bias)")
_QKV_ORDER = {"query": 0, "key": 1, "value": 2, "q": 0, "k": 1, "v": 2}


def from_transformers(state_dict: dict[str, torch.Tensor]) -> Converted:
    """Convert a transformers ViT state dict to vitzoo/timm names; unknown keys raise ``FormatError``."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[int, str], list[torch.Tensor | None]] = {}
    unknown: list[str] = []
    for key, value in state_dict.items():
        name = key.removeprefix("vit.")
        match = _QKV.fullmatch(name)
        if match:
            block, long, short, kind = match.groups()
            qkv.setdefault((int(block), kind), [None, None, None])[_QKV_ORDER[long or short]] = value
            continue
        for pattern, replacement in _RENAMES:
            new, count = re.subn(f"^{pattern}", replacement, name)
            if count:
                out[new] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise FormatError(f"keys not understood as a transformers ViT checkpoint: {unknown[:8]}")
    for (block, kind), parts in sorted(qkv.items()):
        if any(p is None for p in parts):
            raise FormatError(f"block {block}: {kind} of query/key/value incomplete in the checkpoint")
        out[f"blocks.{block}.attn.qkv.{kind}"] = torch.cat(parts, dim=0)  # type: ignore[arg-type]
    notes = ["renamed transformers keys", "fused query/key/value into qkv"]
    if any(k.startswith("vit.") for k in state_dict):
        notes.insert(0, "stripped the 'vit.' prefix")
    return Converted("transformers", out, notes)
