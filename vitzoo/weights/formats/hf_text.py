"""The text half of a transformers ``CLIPModel`` / ``SiglipModel`` / ``Siglip2Model`` checkpoint to vitzoo's
``ImageTextModel`` names (the image half is ``hf_clip``'s).

``text_model.embeddings.{token,position}_embedding`` -> ``text.token_embed`` / ``text.pos_embed`` (1, L, W);
``text_model.encoder.layers.{i}.{layer_norm1, self_attn.{q,k,v}_proj (fused), self_attn.out_proj, layer_norm2,
mlp.fc1, mlp.fc2}`` -> ``text.blocks.{i}.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``;
``text_model.final_layer_norm`` -> ``text.norm``; the projection, CLIP's ``text_projection`` (no bias) or SigLIP's
``text_model.head``, -> ``text.head``; ``logit_scale`` and ``logit_bias`` as 0-d scalars. The names are the same on
disk and in memory. ``position_ids`` buffers of older files are dropped and reported.
"""

from __future__ import annotations

import torch

from .base import Converted, concat_parts, rename_keys

TEXT_PREFIXES = ("text_model.", "text_projection.", "logit_scale", "logit_bias")  # the text half of the file

_WB = r"(weight|bias)"
_L = r"text_model\.encoder\.layers\.(\d+)\."
_RULES: list[tuple[str, str]] = [
    (r"text_model\.embeddings\.token_embedding\.weight", "text.token_embed.weight"),
    (r"text_model\.embeddings\.position_embedding\.weight", "text.pos_embed"),
    (_L + r"layer_norm([12])\." + _WB, r"text.blocks.\1.norm\2.\3"),
    (_L + r"self_attn\.out_proj\." + _WB, r"text.blocks.\1.attn.proj.\2"),
    (_L + r"mlp\.(fc[12])\." + _WB, r"text.blocks.\1.mlp.\2.\3"),
    (r"text_model\.final_layer_norm\." + _WB, r"text.norm.\1"),
    (r"text_projection\.weight", "text.head.weight"),  # CLIP
    (r"text_model\.head\." + _WB, r"text.head.\1"),  # SigLIP
    (r"logit_(scale|bias)", r"logit_\1"),
]
_QKV = _L + r"self_attn\.([qkv])_proj\.(weight|bias)"


def is_text_key(key: str) -> bool:
    """A key of the text half (the text tower and the contrastive scalars)."""
    return key.startswith(TEXT_PREFIXES)


def text_from_transformers(state_dict: dict[str, torch.Tensor]) -> Converted:
    """The text half of a transformers two-tower checkpoint under vitzoo's names; unknown keys raise."""
    text = {k: v for k, v in state_dict.items() if is_text_key(k)}
    dropped = {k: "a buffer of token indices (older files), not a weight" for k in text if k.endswith("position_ids")}
    text = {k: v for k, v in text.items() if k not in dropped}
    qkv, rest = concat_parts(text, _QKV, {"q": 0, "k": 1, "v": 2}, "text.blocks.{}.attn.qkv.{}", "transformers text")
    out = {**rename_keys(rest, _RULES, "transformers text tower"), **qkv}
    if "text.pos_embed" in out:
        out["text.pos_embed"] = out["text.pos_embed"].unsqueeze(0)
    for key in ("logit_scale", "logit_bias"):
        if key in out:
            out[key] = out[key].reshape(())
    notes = ["renamed the transformers text tower (text_model.*) and fused its q/k/v projections"]
    return Converted("transformers-text", out, notes, dropped)
