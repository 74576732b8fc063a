"""transformers CLIP and SigLIP image towers (openai/clip-vit-*, laion/CLIP-ViT-*, google/siglip-*, google/siglip2-*)
to timm names.

Both keep the tower under ``vision_model.`` (``CLIPModel``, ``CLIPVisionModel(WithProjection)``, ``SiglipModel``,
``Siglip2Model``; transformers 5's ``SiglipVisionModel`` has no prefix) with ``encoder.layers.{i}.{layer_norm1,
self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1, mlp.fc2}`` and ``post_layernorm``; the names are the same on disk
and in memory. The text tower, ``text_projection``, ``logit_scale`` and ``logit_bias`` are not part of an image
model: they are dropped and reported, as are ``position_ids`` buffers of older files.

* CLIP: ``class_embedding`` (D,) is timm's ``cls_token`` (1, 1, D), ``pre_layrnorm`` (sic) ``norm_pre``, the patch
  conv has no bias, and ``visual_projection`` (E, D, no bias) is the head (``head.weight`` plus a zero bias).
* SigLIP: no class token; the MAP head's ``probe``, fused ``in_proj`` (rows [q; k; v]), ``out_proj``,
  ``layernorm`` and ``mlp`` are timm's ``attn_pool.latent``, ``q`` + ``kv``, ``proj``, ``norm`` and ``mlp``.
  SigLIP 2 (NaFlex) embeds patches with a Linear over (P, P, C)-flattened pixels: the same map as a conv kernel
  ``W.reshape(D, P, P, C).permute(0, 3, 1, 2)``.
"""

from __future__ import annotations

import math

import torch

from ...errors import FormatError
from .base import Converted, concat_parts, rename_keys

_WB = r"(weight|bias)"
_C = r"encoder\.layers\.(\d+)\."
_ENCODER: list[tuple[str, str]] = [
    (r"embeddings\.position_embedding\.weight", "pos_embed"),
    (_C + r"layer_norm([12])\." + _WB, r"blocks.\1.norm\2.\3"),
    (_C + r"self_attn\.out_proj\." + _WB, r"blocks.\1.attn.proj.\2"),
    (_C + r"mlp\.(fc[12])\." + _WB, r"blocks.\1.mlp.\2.\3"),
    (r"post_layernorm\." + _WB, r"norm.\1"),
]
_CLIP: list[tuple[str, str]] = [
    (r"embeddings\.class_embedding", "cls_token"),
    (r"embeddings\.patch_embedding\.weight", "patch_embed.proj.weight"),
    (r"pre_layrnorm\." + _WB, r"norm_pre.\1"),
    (r"visual_projection\.weight", "head.weight"),
]
_SIGLIP: list[tuple[str, str]] = [
    (r"embeddings\.patch_embedding\." + _WB, r"patch_embed.proj.\1"),
    (r"head\.probe", "attn_pool.latent"),
    (r"head\.attention\.in_proj_" + _WB, r"attn_pool.in_proj.\1"),  # split into q and kv below
    (r"head\.attention\.out_proj\." + _WB, r"attn_pool.proj.\1"),
    (r"head\.layernorm\." + _WB, r"attn_pool.norm.\1"),
    (r"head\.mlp\.(fc[12])\." + _WB, r"attn_pool.mlp.\1.\2"),
]
_QKV = _C + r"self_attn\.([qkv])_proj\.(weight|bias)"
_QKV_ORDER = {"q": 0, "k": 1, "v": 2}
_TEXT = ("text_model.", "text_projection.", "logit_scale", "logit_bias")  # the text tower and the contrastive scalars


def from_transformers_clip(state_dict: dict[str, torch.Tensor]) -> Converted:
    """Convert a transformers CLIP checkpoint (whole model or image tower) to the image tower under timm names."""
    out, notes, dropped = _tower(state_dict, _CLIP, "transformers CLIP")
    if "cls_token" in out:
        out["cls_token"] = out["cls_token"].reshape(1, 1, -1)
    if "head.weight" in out:
        out["head.bias"] = torch.zeros(out["head.weight"].shape[0], dtype=out["head.weight"].dtype)
        notes.append("visual_projection is the head (zero bias): model(x) is the image embedding")
    return Converted("transformers-clip", out, notes, dropped)


def from_transformers_siglip(state_dict: dict[str, torch.Tensor]) -> Converted:
    """Convert a transformers SigLIP / SigLIP 2 checkpoint (whole model or image tower) to timm names."""
    out, notes, dropped = _tower(state_dict, _SIGLIP, "transformers SigLIP")
    kernel = out.get("patch_embed.proj.weight")
    if kernel is not None and kernel.ndim == 2:  # SigLIP 2: Linear over (P, P, C)-flattened patches
        dim, inputs = kernel.shape
        patch = math.isqrt(inputs // 3)
        if 3 * patch * patch != inputs:
            raise FormatError(f"transformers SigLIP 2: patch_embedding {tuple(kernel.shape)} is not (D, P * P * 3)")
        out["patch_embed.proj.weight"] = kernel.reshape(dim, patch, patch, 3).permute(0, 3, 1, 2).contiguous()
        notes.append("SigLIP 2: the Linear patch embedding over (P, P, C) pixels as a conv kernel")
    for kind in ("weight", "bias"):
        fused = out.pop(f"attn_pool.in_proj.{kind}", None)
        if fused is not None:
            width = fused.shape[0] // 3
            out[f"attn_pool.q.{kind}"], out[f"attn_pool.kv.{kind}"] = fused[:width], fused[width:]
    if "attn_pool.latent" in out:
        notes.append("MAP head: in_proj split into attn_pool.q and attn_pool.kv")
    return Converted("transformers-siglip", out, notes, dropped)


def _tower(
    state_dict: dict[str, torch.Tensor], rules: list[tuple[str, str]], what: str
) -> tuple[dict[str, torch.Tensor], list[str], dict[str, str]]:
    """The image tower renamed (q/k/v fused, ``pos_embed`` given its batch axis); what was left out, and why."""
    dropped: dict[str, str] = {}
    text = [k for k in state_dict if k.startswith(_TEXT)]
    if text:
        dropped["text_model.*, text_projection, logit_*"] = f"the text tower ({len(text)} tensors): not an image model"
    buffers = [k for k in state_dict if k.endswith("position_ids") and k not in text]
    for key in buffers:
        dropped[key] = "a buffer of token indices (older files), not a weight"
    tower = {k.removeprefix("vision_model."): v for k, v in state_dict.items() if k not in text and k not in buffers}
    qkv, rest = concat_parts(tower, _QKV, _QKV_ORDER, "blocks.{}.attn.qkv.{}", what)
    out = {**rename_keys(rest, [*_ENCODER, *rules], what), **qkv}
    if "pos_embed" in out:
        out["pos_embed"] = out["pos_embed"].unsqueeze(0)
    return out, [f"renamed {what} image-tower keys", "fused q/k/v projections into qkv"], dropped
