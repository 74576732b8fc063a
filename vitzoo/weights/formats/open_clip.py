"""OpenAI CLIP / open_clip two-tower state dicts (``open_clip_model.safetensors``, ``open_clip_pytorch_model.bin``):
the image tower under ``visual.`` to timm names, the text tower dropped (one reported entry, with its size).

Two image towers:

* open_clip's own ``VisionTransformer`` (OpenAI's layout): ``visual.conv1`` -> ``patch_embed.proj``,
  ``class_embedding (D,)`` -> ``cls_token (1, 1, D)``, ``positional_embedding (N+1, D)`` -> ``pos_embed``,
  ``ln_pre`` -> ``norm_pre``, ``transformer.resblocks.N.{ln_1, attn.in_proj_*, attn.out_proj, ln_2, mlp.c_fc,
  mlp.c_proj}`` -> ``blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``ln_post`` -> ``norm``, and
  ``proj (D, E)``, applied as ``pooled @ proj``, -> ``head.weight = proj.T`` with a zero ``head.bias``;
* a timm trunk (``visual.trunk.*``: SigLIP, EVA-CLIP and PE-Core in open_clip): timm's names already (an ``Eva``
  trunk's layer scales and split q/k/v read as timm's Eva files are), plus an optional linear projection
  ``visual.head.proj``, which becomes the head (with a zero bias when it has none).
"""

from __future__ import annotations

import torch

from ...errors import FormatError
from .base import Converted, rename_keys
from .timm import from_timm_eva

_WB = r"(weight|bias)"
_BLOCK = r"transformer\.resblocks\.(\d+)\."
_RENAMES: list[tuple[str, str]] = [  # (regex for the whole key without "visual.", replacement)
    (r"conv1\.weight", "patch_embed.proj.weight"),
    (r"ln_pre\." + _WB, r"norm_pre.\1"),
    (_BLOCK + r"ln_([12])\." + _WB, r"blocks.\1.norm\2.\3"),
    (_BLOCK + r"attn\.in_proj_" + _WB, r"blocks.\1.attn.qkv.\2"),
    (_BLOCK + r"attn\.out_proj\." + _WB, r"blocks.\1.attn.proj.\2"),
    (_BLOCK + r"mlp\.c_fc\." + _WB, r"blocks.\1.mlp.fc1.\2"),
    (_BLOCK + r"mlp\.c_proj\." + _WB, r"blocks.\1.mlp.fc2.\2"),
    (_BLOCK + r"ls_([12])\.gamma", r"blocks.\1.ls\2.gamma"),  # layer scale (ls_init_value)
    (r"ln_post\." + _WB, r"norm.\1"),
    # the Perception Encoder's attention pool (PE core): a learned probe through nn.MultiheadAttention, then an MLP
    (r"attn_pool\.probe", "attn_pool.latent"),
    (r"attn_pool\.attn\.out_proj\." + _WB, r"attn_pool.proj.\1"),
    (r"attn_pool\.layernorm\." + _WB, r"attn_pool.norm.\1"),
    (r"attn_pool\.mlp\.c_fc\." + _WB, r"attn_pool.mlp.fc1.\1"),
    (r"attn_pool\.mlp\.c_proj\." + _WB, r"attn_pool.mlp.fc2.\1"),
]
_TRUNK_RENAMES: list[tuple[str, str]] = [
    (r"trunk\.(.+)", r"\1"),  # a timm VisionTransformer: vitzoo's names
    (r"head\.proj\." + _WB, r"head.\1"),  # open_clip's linear projection after the trunk (timm_proj='linear')
]


def from_open_clip(state_dict: dict[str, torch.Tensor]) -> Converted:
    """The image tower of a CLIP state dict under timm names; unknown image-tower keys raise ``FormatError``."""
    notes = []
    if all(k.startswith("module.") for k in state_dict):
        state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
        notes.append("stripped the 'module.' prefix from every key")
    if "conv1.weight" in state_dict and "class_embedding" in state_dict:  # an image tower alone (PE lang, spatial)
        state_dict = {f"visual.{k}": v for k, v in state_dict.items()}
    visual = {k: v for k, v in state_dict.items() if k.startswith("visual.")}
    text = sorted({k.split(".")[0] + (".*" if "." in k else "") for k in state_dict if not k.startswith("visual.")})
    if "visual.layer1.0.conv1.weight" in visual:
        raise FormatError("this CLIP checkpoint's image tower is a ModifiedResNet (RN50...); vitzoo builds ViTs only")
    if "visual.trunk.patch_embed.proj.weight" in visual:
        out = rename_keys(visual, _TRUNK_RENAMES, "open_clip (timm trunk)", strip="visual.")
        notes.append("stripped the 'visual.trunk.' prefix (open_clip's timm image tower)")
        eva = from_timm_eva(out)  # timm's Eva trunks (EVA-CLIP, PE-Core): layer scales and split q/k/v; else as is
        out, notes = eva.state_dict, [*notes, *eva.notes]
    elif "visual.class_embedding" in visual and "visual.positional_embedding" in visual:
        special = {"visual.class_embedding", "visual.positional_embedding", "visual.proj"}
        special |= {"visual.attn_pool.attn.in_proj_weight", "visual.attn_pool.attn.in_proj_bias"}
        out = rename_keys({k: v for k, v in visual.items() if k not in special}, _RENAMES, "CLIP", strip="visual.")
        for kind in ("weight", "bias"):  # PE's pool: nn.MultiheadAttention's in_proj rows [q; k; v] -> q, kv
            if (rows := visual.get(f"visual.attn_pool.attn.in_proj_{kind}")) is not None:
                width = rows.shape[0] // 3
                out[f"attn_pool.q.{kind}"], out[f"attn_pool.kv.{kind}"] = rows[:width], rows[width:]
        out["cls_token"] = visual["visual.class_embedding"].reshape(1, 1, -1)
        out["pos_embed"] = visual["visual.positional_embedding"].unsqueeze(0)
        notes.append("renamed OpenAI CLIP image-tower keys (conv1, ln_pre, transformer.resblocks, ln_post)")
        if "visual.proj" in visual:
            out["head.weight"] = visual["visual.proj"].t().contiguous()
            notes.append("the projection visual.proj (width, embed), applied as x @ proj, is head.weight = proj.T")
    else:
        raise FormatError(
            "a CLIP checkpoint without visual.class_embedding/positional_embedding or visual.trunk.*; image-tower "
            f"keys: {sorted(visual)[:6]}"
        )
    if "head.weight" in out and "head.bias" not in out:
        out["head.bias"] = torch.zeros(out["head.weight"].shape[0], dtype=out["head.weight"].dtype)
        notes.append("head.bias: zeros (CLIP's image projection has no bias)")
    dropped = {}
    if text:  # one entry for the whole tower, as the transformers CLIP converter reports it
        names = ", ".join(text)
        dropped[names] = f"the text tower and logit scale ({len(state_dict) - len(visual)} tensors): not an image model"
    return Converted("open_clip", out, notes, dropped)
