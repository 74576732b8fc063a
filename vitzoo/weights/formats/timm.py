"""timm state dicts, both ways. timm builds vitzoo's archs with two classes:

* ``VisionTransformer``: vitzoo's own names. Only wrappers need removing.
* ``Eva`` (the rotary-position archs: DINOv3): the same names but for the layer scales, plain block parameters
  ``blocks.N.gamma_1`` / ``gamma_2`` where vitzoo has ``blocks.N.ls1.gamma`` / ``ls2.gamma``. (Its separate
  ``attn.q_bias`` / ``attn.v_bias`` are vitzoo's names for ``qkv_bias_mode="qv"``.)

``to_timm`` writes the names of the class timm builds for a config: what ``save_pretrained`` stores, so that timm
reads the folder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ...models.config import ViTConfig
from .base import Converted

_WRAPPERS = ("module.", "model.", "_orig_mod.")  # DDP, some training scripts, torch.compile
_GAMMA = re.compile(r"blocks\.(\d+)\.gamma_([12])")  # Eva's (and the original DeiT-III's) layer scales
_LAYER_SCALE = re.compile(r"blocks\.(\d+)\.ls([12])\.gamma")  # vitzoo's (and timm VisionTransformer's)


def is_eva(config: ViTConfig) -> bool:
    """timm builds this config with its ``Eva`` class: timm's rotary-position ViTs are Eva models."""
    return config.rope


def from_timm(state_dict: dict[str, torch.Tensor]) -> Converted:
    """Strip DDP / trainer / torch.compile prefixes (and report it); names are otherwise used verbatim."""
    notes = []
    for prefix in _WRAPPERS:
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix) :]: v for k, v in state_dict.items()}
            notes.append(f"stripped the {prefix!r} prefix from every key")
    return Converted("timm", dict(state_dict), notes)


def gammas_to_layer_scales(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``blocks.N.gamma_1`` / ``gamma_2`` -> ``blocks.N.ls1.gamma`` / ``ls2.gamma``; every other key unchanged."""
    return {_GAMMA.sub(r"blocks.\1.ls\2.gamma", k) if _GAMMA.fullmatch(k) else k: v for k, v in state_dict.items()}


def from_timm_eva(state_dict: dict[str, torch.Tensor]) -> Converted:
    """timm's ``Eva`` state dict (its DINOv3 files): wrappers stripped, layer scales renamed."""
    stripped = from_timm(state_dict)
    notes = [*stripped.notes, "renamed timm Eva's layer scales gamma_1 / gamma_2 to ls1.gamma / ls2.gamma"]
    return Converted("timm-eva", gammas_to_layer_scales(stripped.state_dict), notes)


def to_timm(state_dict: Mapping[str, torch.Tensor], config: ViTConfig) -> dict[str, torch.Tensor]:
    """A vitzoo state dict under the names of the timm class that builds ``config`` (``is_eva``: Eva's)."""
    if not is_eva(config):
        return dict(state_dict)
    return {
        _LAYER_SCALE.sub(r"blocks.\1.gamma_\2", k) if _LAYER_SCALE.fullmatch(k) else k: v for k, v in state_dict.items()
    }
