"""The text half of an open_clip / OpenAI CLIP state dict to vitzoo's ``ImageTextModel`` names (the image half,
``visual.*``, is ``open_clip``'s).

Two layouts: open_clip's ``CLIP`` keeps the text tower at the top (``token_embedding``, ``positional_embedding``,
``transformer.resblocks``, ``ln_final``, ``text_projection``), ``CustomTextCLIP`` (SigLIP) under ``text.``. Either
way ``token_embedding`` -> ``text.token_embed``, ``positional_embedding (L, W)`` -> ``text.pos_embed (1, L, W)``,
``resblocks.{i}.{ln_1, attn.in_proj_*, attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj, ls_1, ls_2}`` ->
``text.blocks.{i}.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2, ls1, ls2}``, ``ln_final`` -> ``text.norm``;
the projection is ``text.head``: a ``(W, E)`` matrix applied as ``x @ proj`` is ``head.weight = proj.T``, a Linear
(SigLIP's, with bias) keeps its weight and bias. ``logit_scale`` / ``logit_bias`` become 0-d scalars.
"""

from __future__ import annotations

import torch

from .base import Converted, rename_keys

_WB = r"(weight|bias)"
_R = r"transformer\.resblocks\.(\d+)\."
_RULES: list[tuple[str, str]] = [  # keys without the "text." prefix of CustomTextCLIP
    (r"token_embedding\.weight", "text.token_embed.weight"),
    (r"positional_embedding", "text.pos_embed"),
    (_R + r"ln_([12])\." + _WB, r"text.blocks.\1.norm\2.\3"),
    (_R + r"attn\.in_proj_" + _WB, r"text.blocks.\1.attn.qkv.\2"),
    (_R + r"attn\.out_proj\." + _WB, r"text.blocks.\1.attn.proj.\2"),
    (_R + r"mlp\.c_fc\." + _WB, r"text.blocks.\1.mlp.fc1.\2"),
    (_R + r"mlp\.c_proj\." + _WB, r"text.blocks.\1.mlp.fc2.\2"),
    (_R + r"ls_([12])\.gamma", r"text.blocks.\1.ls\2.gamma"),
    (r"ln_final\." + _WB, r"text.norm.\1"),
    (r"text_projection", "text.head.weight"),  # the (W, E) matrix: transposed below
    (r"text_projection\." + _WB, r"text.head.\1"),  # a Linear
    (r"logit_(scale|bias)", r"logit_\1"),
]


def is_text_key(key: str) -> bool:
    """A key of the text half: everything but the image tower (``visual.*``)."""
    return not key.removeprefix("module.").startswith("visual.")


def text_from_open_clip(state_dict: dict[str, torch.Tensor]) -> Converted:
    """The text half of an open_clip checkpoint under vitzoo's names; unknown keys raise ``FormatError``."""
    text = {k.removeprefix("module."): v for k, v in state_dict.items() if is_text_key(k)}
    custom = any(k.startswith("text.") for k in text)  # CustomTextCLIP: the tower under "text."
    flat = {k.removeprefix("text.") if custom else k: v for k, v in text.items()}
    out = rename_keys(flat, _RULES, "open_clip text tower")
    notes = ["renamed the open_clip text tower" + (" (CustomTextCLIP: under 'text.')" if custom else "")]
    if "text.pos_embed" in out:
        out["text.pos_embed"] = out["text.pos_embed"].unsqueeze(0)
    if "text_projection" in flat:
        out["text.head.weight"] = flat["text_projection"].t().contiguous()
        notes.append("the projection text_projection (width, embed), applied as x @ proj, is head.weight = proj.T")
    for key in ("logit_scale", "logit_bias"):
        if key in out:
            out[key] = out[key].reshape(())
    return Converted("open_clip-text", out, notes)
