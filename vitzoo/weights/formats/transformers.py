"""Hugging Face transformers ``ViTModel`` / ``ViTForImageClassification``, ``DeiT*``, ``ViTMAE*`` and ``IJepa*``
state dicts to timm names.

Handles the names written by ``save_pretrained`` (and stored in the google/vit-* and facebook/deit-* Hub repos:
``encoder.layer.{i}.attention.attention.query``...) and the in-memory names of transformers >= 5
(``layers.{i}.attention.q_proj``...), with or without the ``vit.`` / ``deit.`` / ``ijepa.`` prefix. ViT-MAE and
I-JEPA encoders have ViT's names (I-JEPA without a class token); ``ViTMAEForPreTraining``'s decoder is dropped.
Separate q/k/v Linears are concatenated into timm's fused ``qkv`` (rows in q, k, v order).
"""

from __future__ import annotations

import torch

from .base import Converted, concat_parts, rename_keys

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
]
_POOLER = (r"pooler\.dense\." + _WB, r"pre_logits.fc.\1")  # ViTModel's tanh pooler = the paper's pre-logits layer
_QKV = _L + r"\.attention\.(?:attention\.)?(query|key|value|q_proj|k_proj|v_proj)\.(weight|bias)"
_QKV_ORDER = {"query": 0, "key": 1, "value": 2, "q_proj": 0, "k_proj": 1, "v_proj": 2}
# DeiT: the distillation token and its head (DeiTForImageClassificationWithTeacher)
_DEIT_RENAMES = [
    (r"embeddings\.distillation_token", "dist_token"),
    (r"cls_classifier\." + _WB, r"head.\1"),
    (r"distillation_classifier\." + _WB, r"head_dist.\1"),
]


def _strip(state_dict: dict[str, torch.Tensor], prefix: str, notes: list[str]) -> dict[str, torch.Tensor]:
    if any(k.startswith(prefix) for k in state_dict):
        notes.append(f"stripped the {prefix!r} prefix")
    return {k.removeprefix(prefix): v for k, v in state_dict.items()}


def _convert(state_dict: dict[str, torch.Tensor], rules: list[tuple[str, str]], what: str) -> dict[str, torch.Tensor]:
    qkv, rest = concat_parts(state_dict, _QKV, _QKV_ORDER, "blocks.{}.attn.qkv.{}", what)
    return {**rename_keys(rest, rules, what), **qkv}


def from_transformers(state_dict: dict[str, torch.Tensor]) -> Converted:
    """Convert a transformers ViT state dict to vitzoo/timm names; unknown keys raise ``FormatError``."""
    notes: list[str] = []
    state_dict = _strip(_strip(state_dict, "vit.", notes), "ijepa.", notes)
    out = _convert(state_dict, [*_RENAMES, _POOLER], "transformers ViT")
    return Converted("transformers", out, [*notes, "renamed transformers keys", "fused query/key/value into qkv"])


def from_transformers_mae(state_dict: dict[str, torch.Tensor]) -> Converted:
    """``ViTMAEForPreTraining`` to timm names: the encoder (``vit.``), without the pixel decoder (``decoder.*``)."""
    encoder = {k: v for k, v in state_dict.items() if not k.startswith("decoder.")}
    converted = from_transformers(encoder)
    converted.format = "transformers-mae"
    converted.dropped["decoder.*"] = "ViT-MAE's pixel-reconstruction decoder (pretraining only; the encoder is kept)"
    return converted


def from_transformers_deit(state_dict: dict[str, torch.Tensor]) -> Converted:
    """``DeiTModel`` / ``DeiTForImageClassificationWithTeacher`` / ``DeiTForImageClassification`` to timm names.

    With the teacher's two heads (``cls_classifier``, ``distillation_classifier``) the distillation token is timm's
    ``dist_token`` and the output is the mean of both heads, as in transformers. ``DeiTForImageClassification``'s
    ``classifier`` reads the class token only: its distillation token is kept as a register token (``reg_token``,
    same position-table row), which computes the same. ``DeiTModel``'s tanh ``pooler`` reads the class token only
    and has no place in a distilled model: it is dropped and reported.
    """
    notes: list[str] = []
    state_dict = _strip(state_dict, "deit.", notes)
    dropped = {}
    if any(k.startswith("pooler.") for k in state_dict):
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("pooler.")}
        dropped["pooler.*"] = "DeiTModel's tanh pooler over the class token (not part of timm's distilled DeiT)"
    rules = [*_DEIT_RENAMES, *_RENAMES]
    if "classifier.weight" in state_dict and "cls_classifier.weight" not in state_dict:
        rules[0] = (r"embeddings\.distillation_token", "reg_token")
        notes.append("DeiTForImageClassification: the distillation token is kept as a register token (reg_token)")
    out = _convert(state_dict, rules, "transformers DeiT")
    notes += ["renamed transformers DeiT keys", "fused query/key/value into qkv"]
    return Converted("transformers-deit", out, notes, dropped)
