"""NVIDIA C-RADIO v3 / v4 checkpoints as their Hub repos publish them (nvidia/C-RADIOv3-*, C-RADIOv4-*:
``model.safetensors`` of the RADIO wrapper) to timm's ``vit_*_radio_*`` names, as timm's ``_convert_radio`` reads them.

The backbone is under ``radio_model.model.``: a bias-free Linear over flattened (C, p, p) patches (the conv kernel
with a zero bias), one summary token per teacher followed by registers (the first is ``cls_token``, the rest
``reg_token``), the blocks under timm's names (layer scales ``grandma`` -> ``gamma``) and a 128 x 128 "CPE" position
grid. That grid is fitted to a model's grid as RADIO does at inference (``resample_pos_embed``): resized bilinear,
without antialiasing, to a square of the larger side, then cropped top-left. The input conditioner (RADIO's mean and
std, which are the tag's preprocessing), the summary indices and the teachers' adaptor heads are dropped and reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ...errors import FormatError
from .base import Converted

PREFIX = "radio_model.model."


def radio_resampler(align_corners: bool) -> Callable[[torch.Tensor, tuple[int, int]], torch.Tensor]:
    """RADIO's fit of its (1, S * S, D) position grid to an (h, w) model grid (timm's, at weight load)."""

    def resample(pos: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        side, dim = math.isqrt(pos.shape[1]), pos.shape[-1]
        if side * side != pos.shape[1]:
            raise FormatError(f"C-RADIO position grid of {pos.shape[1]} rows is not square")
        h, w = grid
        m = max(h, w)
        table = pos.float().reshape(1, side, side, dim).permute(0, 3, 1, 2)
        table = F.interpolate(table, size=(m, m), mode="bilinear", align_corners=align_corners)[:, :, :h, :w]
        return table.permute(0, 2, 3, 1).reshape(1, h * w, dim).to(pos.dtype)

    return resample


def from_radio(state_dict: dict[str, torch.Tensor]) -> Converted:
    """Convert a C-RADIO wrapper state dict to vitzoo/timm names (the backbone only)."""
    out: dict[str, torch.Tensor] = {}
    dropped: dict[str, str] = {}
    for key, value in state_dict.items():
        if not key.startswith(PREFIX):
            top = ".".join(key.split(".")[:2])
            dropped[f"{top}.*" if top != key else key] = (
                "RADIO's input conditioner, summary indices or teacher adaptors"
            )
            continue
        name = key.removeprefix(PREFIX)
        if name == "patch_generator.embedder.weight":  # (D, C * p * p), bias-free
            p = math.isqrt(value.shape[1] // 3)
            out["patch_embed.proj.weight"] = value.reshape(value.shape[0], 3, p, p)
            out["patch_embed.proj.bias"] = value.new_zeros(value.shape[0])
        elif name == "patch_generator.pos_embed":
            out["pos_embed"] = value if value.ndim == 3 else value.unsqueeze(0)
        elif name == "patch_generator.cls_token.token":  # (summary tokens + registers, D)
            out["cls_token"], out["reg_token"] = value[None, :1], value[None, 1:]
        elif name.startswith("blocks."):
            out[name.replace(".grandma", ".gamma")] = value
        else:
            dropped[key] = "not part of the RADIO backbone timm builds"
    if "patch_embed.proj.weight" not in out:
        raise FormatError("a C-RADIO checkpoint without radio_model.model.patch_generator.embedder.weight")
    # timm: the repos of C-RADIOv3-B and -H resize with align_corners=True, v3-L, v3-g and v4 without
    width, summary = out["patch_embed.proj.weight"].shape[0], out["cls_token"].shape[1] + out["reg_token"].shape[1]
    align = summary == 8 and width in (768, 1280)
    notes = [
        "C-RADIO backbone under radio_model.model. read as timm's vit_*_radio_* (patch Linear as a conv kernel)",
        f"its 128 x 128 position grid is fitted bilinear (align_corners={align}), square then cropped, as RADIO does",
    ]
    return Converted("radio", out, notes, dropped, resample_pos_embed=radio_resampler(align))
