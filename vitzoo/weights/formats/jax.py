"""Original JAX/Flax ``.npz`` checkpoints (google-research/vision_transformer and big_vision) to timm names.

Layouts (same mapping as timm's ``_load_weights``):
* vision_transformer: ``embedding/kernel`` (P, P, C, D) HWIO, ``cls``, ``Transformer/posembed_input/pos_embedding``
  (1, 1 + N, D), blocks ``Transformer/encoderblock_{i}/`` with ``LayerNorm_0``, ``MultiHeadDotProductAttention_1``
  (per-head ``query/key/value`` kernels (D, H, Dh), ``out`` (H, Dh, D)), ``LayerNorm_2``, ``MlpBlock_3/Dense_{0,1}``;
  ``Transformer/encoder_norm``, optional ``pre_logits``, ``head``. Files may nest this under ``opt/target/``.
* big_vision: under ``params/`` (or ``params/img/``), ``pos_embedding`` (1, N, D) without a class-token row,
  ``MultiHeadDotProductAttention_0``, ``LayerNorm_1``, ``MlpBlock_0``; blocks may be scanned
  (``Transformer/encoderblock/...`` with a leading layer axis).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from ...errors import FormatError
from .base import Converted

_PREFIXES = ("", "opt/target/", "params/", "params/img/")


def _t(a: np.ndarray) -> torch.Tensor:
    """Flax layout to PyTorch: Dense (in, out) -> (out, in); Conv HWIO -> OIHW; others unchanged.

    Old flax GroupNorm scales/biases are stored as (1, 1, 1, C): those are flattened, as timm does."""
    if a.ndim == 4 and a.shape[:3] == (1, 1, 1):
        a = a.reshape(-1)
    if a.ndim == 4:
        a = a.transpose(3, 2, 0, 1)
    elif a.ndim == 2:
        a = a.T
    return torch.from_numpy(np.ascontiguousarray(a))


def from_jax(arrays: Mapping[str, np.ndarray]) -> Converted:
    prefix = next((p for p in _PREFIXES if f"{p}embedding/kernel" in arrays), None)
    if prefix is None:
        raise FormatError("not a JAX ViT checkpoint: no 'embedding/kernel' (under '', 'opt/target/' or 'params/')")
    w = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
    big_vision = (
        prefix.startswith("params/") or "pos_embedding" in w or "Transformer/encoderblock/LayerNorm_0/scale" in w
    )
    scanned = "Transformer/encoderblock/LayerNorm_0/scale" in w
    mha, ln2, mlp = (
        ("MultiHeadDotProductAttention_0", "LayerNorm_1", "MlpBlock_0")
        if big_vision
        else ("MultiHeadDotProductAttention_1", "LayerNorm_2", "MlpBlock_3")
    )
    used: set[str] = set()

    def get(name: str, layer: int | None = None) -> np.ndarray:
        used.add(name)
        if name not in w:
            raise FormatError(f"JAX checkpoint lacks {prefix + name!r}")
        return w[name] if layer is None else w[name][layer]

    sd: dict[str, torch.Tensor] = {
        "patch_embed.proj.weight": _t(get("embedding/kernel")),
        "patch_embed.proj.bias": _t(get("embedding/bias")),
        "norm.weight": _t(get("Transformer/encoder_norm/scale")),
        "norm.bias": _t(get("Transformer/encoder_norm/bias")),
    }
    notes = ["converted JAX layouts (HWIO kernels, per-head q/k/v, (in, out) Dense kernels)"]
    if "cls" in w:
        sd["cls_token"] = _t(get("cls"))
    if big_vision:
        pos = torch.from_numpy(np.asarray(get("pos_embedding"))).reshape(1, -1, sd["norm.weight"].shape[0])
        if "cls_token" in sd:  # big_vision adds no position to the class token: a zero row is the same thing
            pos = torch.cat([torch.zeros_like(pos[:, :1]), pos], dim=1)
            notes.append("big_vision pos_embedding has no class-token row: prepended zeros (same computation)")
    else:
        pos = torch.from_numpy(np.asarray(get("Transformer/posembed_input/pos_embedding")))
    sd["pos_embed"] = pos

    depth = (
        w["Transformer/encoderblock/LayerNorm_0/scale"].shape[0]
        if scanned
        else len({k.split("/")[1] for k in w if k.startswith("Transformer/encoderblock_")})
    )
    for i in range(depth):
        base, layer = ("Transformer/encoderblock/", i) if scanned else (f"Transformer/encoderblock_{i}/", None)

        def g(name: str, base: str = base, layer: int | None = layer) -> np.ndarray:
            return get(base + name, layer)

        qkv_w = [g(f"{mha}/{n}/kernel") for n in ("query", "key", "value")]  # each (D, H, Dh)
        qkv_b = [g(f"{mha}/{n}/bias") for n in ("query", "key", "value")]  # each (H, Dh)
        out_k = g(f"{mha}/out/kernel")  # (H, Dh, D)
        sd |= {
            f"blocks.{i}.norm1.weight": _t(g("LayerNorm_0/scale")),
            f"blocks.{i}.norm1.bias": _t(g("LayerNorm_0/bias")),
            f"blocks.{i}.attn.qkv.weight": torch.cat(
                [torch.from_numpy(k.reshape(k.shape[0], -1).T.copy()) for k in qkv_w]
            ),
            f"blocks.{i}.attn.qkv.bias": torch.cat([torch.from_numpy(b.reshape(-1).copy()) for b in qkv_b]),
            f"blocks.{i}.attn.proj.weight": torch.from_numpy(out_k.reshape(-1, out_k.shape[-1]).T.copy()),
            f"blocks.{i}.attn.proj.bias": _t(g(f"{mha}/out/bias")),
            f"blocks.{i}.norm2.weight": _t(g(f"{ln2}/scale")),
            f"blocks.{i}.norm2.bias": _t(g(f"{ln2}/bias")),
            f"blocks.{i}.mlp.fc1.weight": _t(g(f"{mlp}/Dense_0/kernel")),
            f"blocks.{i}.mlp.fc1.bias": _t(g(f"{mlp}/Dense_0/bias")),
            f"blocks.{i}.mlp.fc2.weight": _t(g(f"{mlp}/Dense_1/kernel")),
            f"blocks.{i}.mlp.fc2.bias": _t(g(f"{mlp}/Dense_1/bias")),
        }
    if "conv_root/kernel" in w:  # the hybrid's ResNet (timm's _load_weights mapping)
        bb = "patch_embed.backbone."
        sd[bb + "stem.conv.weight"] = _t(get("conv_root/kernel"))
        sd[bb + "stem.norm.weight"], sd[bb + "stem.norm.bias"] = _t(get("gn_root/scale")), _t(get("gn_root/bias"))
        units = sorted({tuple(k.split("/")[:2]) for k in w if k.startswith("block") and "/unit" in k})
        for block, unit in units:
            s, b = int(block.removeprefix("block")) - 1, int(unit.removeprefix("unit")) - 1
            src, dst = f"{block}/{unit}/", f"{bb}stages.{s}.blocks.{b}."
            for r in (1, 2, 3):
                sd[f"{dst}conv{r}.weight"] = _t(get(f"{src}conv{r}/kernel"))
                sd[f"{dst}norm{r}.weight"] = _t(get(f"{src}gn{r}/scale"))
                sd[f"{dst}norm{r}.bias"] = _t(get(f"{src}gn{r}/bias"))
            if f"{src}conv_proj/kernel" in w:
                sd[f"{dst}downsample.conv.weight"] = _t(get(f"{src}conv_proj/kernel"))
                sd[f"{dst}downsample.norm.weight"] = _t(get(f"{src}gn_proj/scale"))
                sd[f"{dst}downsample.norm.bias"] = _t(get(f"{src}gn_proj/bias"))
        notes.append(f"converted the hybrid's ResNet ({len(units)} units)")
    for src, dst in (("pre_logits", "pre_logits.fc"), ("head", "head")):
        if f"{src}/kernel" in w:
            sd[f"{dst}.weight"] = _t(get(f"{src}/kernel"))
            sd[f"{dst}.bias"] = _t(get(f"{src}/bias"))
    ignored = sorted(set(w) - used)
    if ignored:
        raise FormatError(f"JAX checkpoint entries not understood: {[prefix + k for k in ignored[:8]]}")
    return Converted("jax", sd, notes)
