"""timm state dicts, both ways. timm builds vitzoo's archs with two classes:

* ``VisionTransformer``: vitzoo's own names. Only wrappers need removing.
* ``Eva`` (the rotary-position archs: DINOv3, EVA-02): the same names but for the layer scales, plain block
  parameters ``blocks.N.gamma_1`` / ``gamma_2`` where vitzoo has ``blocks.N.ls1.gamma`` / ``ls2.gamma``, and, in the
  entry points that pass ``qkv_fused=False`` (EVA-02 B and L, the EVA-CLIP towers), three projections
  ``attn.q_proj`` (with bias), ``attn.k_proj`` (none) and ``attn.v_proj`` (with bias) where vitzoo has one fused
  ``attn.qkv`` and ``attn.q_bias`` / ``attn.v_bias``. (The fused Eva's ``q_bias`` / ``v_bias`` are vitzoo's
  names for ``qkv_bias_mode="qv"``.)

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
_SPLIT_QKV = re.compile(r"(blocks\.\d+\.attn)\.q_proj\.weight")  # timm Eva with qkv_fused=False


def is_eva(config: ViTConfig) -> bool:
    """timm builds this config with its ``Eva`` class: its rotary-position ViTs (DINOv3, EVA-02) and the ones with
    separate q and v biases (EVA-01 g; timm's ``VisionTransformer`` has one fused qkv bias only)."""
    return config.rope or (config.qkv_bias and config.qkv_bias_mode == "qv")


def eva_splits_qkv(config: ViTConfig) -> bool:
    """timm's Eva entry points for this config pass ``qkv_fused=False``: EVA-02 B and L (their MLP has the inner
    norm; Ti and S, without it, keep the fused projection), the EVA-CLIP towers among them, and Sapiens2 (q/k norms,
    grouped-query attention)."""
    return config.rope and ((config.rope_type == "eva" and config.mlp_norm) or config.qk_norm)


def fuse_qkv(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Eva's ``attn.q_proj`` / ``k_proj`` / ``v_proj`` -> ``attn.qkv.weight`` and ``attn.q_bias`` / ``v_bias`` (EVA:
    no k bias), or one ``attn.qkv.bias`` where k has a bias too (timm's ``AttentionRope``: Sapiens2)."""
    out = dict(state_dict)
    for key in state_dict:
        m = _SPLIT_QKV.fullmatch(key)
        if m is None:
            continue
        a = m.group(1)
        out[f"{a}.qkv.weight"] = torch.cat([out.pop(f"{a}.{p}_proj.weight") for p in "qkv"])
        if f"{a}.k_proj.bias" in out:
            out[f"{a}.qkv.bias"] = torch.cat([out.pop(f"{a}.{p}_proj.bias") for p in "qkv"])
        for p in "qv":
            if f"{a}.{p}_proj.bias" in out:
                out[f"{a}.{p}_bias"] = out.pop(f"{a}.{p}_proj.bias")
    return out


def split_qkv(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The other way: ``attn.qkv.weight`` (rows q, then k and v of equal height: fewer with grouped-query attention)
    and ``attn.q_bias`` / ``v_bias`` or ``attn.qkv.bias`` -> three projections."""
    out = dict(state_dict)
    for key in state_dict:
        if not key.endswith(".attn.qkv.weight"):
            continue
        a = key[: -len(".qkv.weight")]
        weight = out.pop(key)
        dim = weight.shape[1]  # the query rows: as many as the embedding width
        sizes = [dim, (weight.shape[0] - dim) // 2, (weight.shape[0] - dim) // 2]
        for p, w in zip("qkv", torch.split(weight, sizes), strict=True):
            out[f"{a}.{p}_proj.weight"] = w
        if f"{a}.qkv.bias" in out:
            for p, b in zip("qkv", torch.split(out.pop(f"{a}.qkv.bias"), sizes), strict=True):
                out[f"{a}.{p}_proj.bias"] = b
        for p in "qv":
            if f"{a}.{p}_bias" in out:
                out[f"{a}.{p}_proj.bias"] = out.pop(f"{a}.{p}_bias")
    return out


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
    """timm's ``Eva`` state dict (its DINOv3 and EVA-02 files): wrappers stripped, layer scales renamed, separate
    q/k/v projections fused."""
    stripped = from_timm(state_dict)
    notes = list(stripped.notes)
    out = stripped.state_dict
    if any(_GAMMA.fullmatch(k) for k in out):
        out = gammas_to_layer_scales(out)
        notes.append("renamed timm Eva's layer scales gamma_1 / gamma_2 to ls1.gamma / ls2.gamma")
    if any(_SPLIT_QKV.fullmatch(k) for k in out):
        out = fuse_qkv(out)
        notes.append(
            "fused timm Eva's attn.q_proj / k_proj / v_proj into attn.qkv (and q_bias / v_bias, or one qkv.bias)"
        )
    return Converted("timm-eva", out, notes)


def to_timm(state_dict: Mapping[str, torch.Tensor], config: ViTConfig) -> dict[str, torch.Tensor]:
    """A vitzoo state dict under the names of the timm class that builds ``config`` (``is_eva``: Eva's)."""
    if not is_eva(config):
        return dict(state_dict)
    out = {
        _LAYER_SCALE.sub(r"blocks.\1.gamma_\2", k) if _LAYER_SCALE.fullmatch(k) else k: v for k, v in state_dict.items()
    }
    return split_qkv(out) if eva_splits_qkv(config) else out
