"""Checkpoint formats: one small pure function per format, each returning a state dict with vitzoo's (timm's) names;
``to_timm`` writes timm's names back (``save_pretrained``).

``detect_format`` looks at the keys only; a converter never downloads or reads files. ``split_towers`` parts a
two-tower checkpoint (CLIP, SigLIP) into its image half, for ``convert``, and its text half, converted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ...errors import FormatError
from . import hf_text, open_clip_text
from .base import Converted
from .deit3 import from_deit3
from .dinov2 import from_dinov2
from .dinov3 import from_dinov3
from .hf_aimv2 import from_transformers_aimv2
from .hf_clip import from_transformers_clip, from_transformers_siglip
from .hf_dinov2 import from_transformers_dinov2
from .hf_dinov3 import from_transformers_dinov3
from .hf_text import text_from_transformers
from .jax import from_jax
from .open_clip import from_open_clip
from .open_clip_text import text_from_open_clip
from .radio import from_radio
from .sapiens2 import from_sapiens2, is_sapiens2
from .timm import from_timm, from_timm_eva, to_timm
from .torchvision import from_torchvision
from .transformers import from_transformers, from_transformers_deit, from_transformers_mae

CONVERTERS: dict[str, Callable[[Any], Converted]] = {
    "timm": from_timm,
    "timm-eva": from_timm_eva,
    "transformers": from_transformers,
    "transformers-deit": from_transformers_deit,
    "transformers-mae": from_transformers_mae,
    "transformers-aimv2": from_transformers_aimv2,
    "transformers-dinov2": from_transformers_dinov2,
    "transformers-clip": from_transformers_clip,
    "transformers-siglip": from_transformers_siglip,
    "transformers-dinov3": from_transformers_dinov3,
    "torchvision": from_torchvision,
    "jax": from_jax,
    "open_clip": from_open_clip,
    "dinov2": from_dinov2,
    "dinov3": from_dinov3,
    "deit3": from_deit3,
    "radio": from_radio,
    "sapiens2": from_sapiens2,
}


def detect_format(keys: list[str] | Mapping[str, Any]) -> str:
    """Name the format of a checkpoint from its keys: a key of ``CONVERTERS``.

    The original releases come first, each by a key only it has: a two-tower CLIP's ``visual.`` prefix (open_clip /
    OpenAI), DINOv3's ``storage_tokens``, DINOv2's ``mask_token`` or ``register_tokens``, DeiT-III's ``gamma_1`` beside
    a ``pos_embed`` (Sapiens2's ``attn.wq`` with ``ffn.w12`` before DINOv3's); timm's DINOv3 files (its ``Eva``
    class) say ``gamma_1`` too, without one. transformers models
    are told apart by a name only their family uses: ViT's patch ``projection`` with DeiT's ``distillation_token`` or
    DINOv2's ``layer_scale`` or ViT-MAE's ``decoder``; DINOv3's conv ``patch_embeddings.weight``; AIMv2's
    ``patch_embed`` with a SwiGLU ``ffn``; the ``patch_embedding`` (singular) of CLIP
    (with ``class_embedding``) and SigLIP (without).
    """
    keys = list(keys)
    names = set(keys)

    def has(fragment: str) -> bool:
        return any(fragment in k for k in keys)

    if any(k.endswith("embedding/kernel") for k in keys):
        return "jax"
    if any(k.startswith(("visual.", "module.visual.")) for k in keys):  # a two-tower CLIP state dict
        return "open_clip"
    if "conv1.weight" in names and "class_embedding" in names:  # its image tower alone (PE lang and spatial files)
        return "open_clip"
    if "radio_model.model.patch_generator.embedder.weight" in names:  # NVIDIA's own C-RADIO repos
        return "radio"
    if is_sapiens2(names):  # before DINOv3: Sapiens2 names its registers storage_tokens too
        return "sapiens2"
    if "storage_tokens" in names or "rope_embed.periods" in names:
        return "dinov3"
    if "mask_token" in names or "register_tokens" in names:
        return "dinov2"
    if any(k.startswith("blocks.") and k.endswith(".attn.q_proj.weight") for k in keys):
        return "timm-eva"  # timm's Eva with separate q/k/v projections (EVA-02 B/L, EVA-CLIP)
    if has(".gamma_1"):  # layer scales named gamma_1: DeiT-III's with a position table, timm Eva's (DINOv3) without
        return "deit3" if "pos_embed" in names else "timm-eva"
    if has("embeddings.patch_embeddings.projection"):
        if has("embeddings.distillation_token"):
            return "transformers-deit"
        if has("decoder.decoder_embed."):
            return "transformers-mae"
        return "transformers-dinov2" if has(".layer_scale1.lambda1") else "transformers"
    if has("embeddings.patch_embeddings.weight"):
        return "transformers-dinov3"
    if has("embeddings.patch_embed.weight") and has(".ffn.gate_proj."):
        return "transformers-aimv2"
    if has("embeddings.patch_embedding.weight"):
        return "transformers-clip" if has("embeddings.class_embedding") else "transformers-siglip"
    if "class_token" in names or has("conv_proj.weight") or has("encoder.layers.encoder_layer_"):
        return "torchvision"
    if has("patch_embed.proj.weight") or has("blocks.0.attn.qkv.weight"):
        return "timm"
    raise FormatError(
        "cannot tell the checkpoint format from its keys (first keys: "
        f"{sorted(keys)[:6]}); vitzoo reads timm, transformers (ViT, DeiT, ViT-MAE, I-JEPA, DINOv2, CLIP, SigLIP, "
        "DINOv3, AIMv2), torchvision vit_* and JAX .npz checkpoints, open_clip / OpenAI CLIP state dicts, and the "
        "original DINOv2, DINOv3, DeiT-III, Perception Encoder, C-RADIO and Sapiens2 files"
    )


def convert(state_dict: Mapping[str, Any]) -> Converted:
    """Convert to vitzoo names, detecting the format from the keys."""
    return CONVERTERS[detect_format(state_dict)](dict(state_dict))


def split_towers(state_dict: Mapping[str, Any]) -> tuple[dict[str, Any], Converted]:
    """A two-tower checkpoint as its image half (for ``convert``, unchanged) and its text half converted to
    ``ImageTextModel``'s names (``text.*``, ``logit_scale``, ``logit_bias``): transformers' ``text_model.*`` or
    open_clip's (everything but ``visual.*``). A checkpoint with neither raises ``FormatError``."""
    if any(hf_text.is_text_key(k) and k.startswith("text_model.") for k in state_dict):
        is_text, to_text = hf_text.is_text_key, text_from_transformers
    elif detect_format(list(state_dict)) == "open_clip":
        is_text, to_text = open_clip_text.is_text_key, text_from_open_clip
    else:
        raise FormatError(
            "no text tower in this checkpoint (no text_model.* keys, and not an open_clip state dict): an image model"
        )
    image = {k: v for k, v in state_dict.items() if not is_text(k)}
    return image, to_text({k: v for k, v in state_dict.items() if is_text(k)})


__all__ = [
    "CONVERTERS",
    "Converted",
    "FormatError",
    "convert",
    "detect_format",
    "from_deit3",
    "from_dinov2",
    "from_dinov3",
    "from_jax",
    "from_open_clip",
    "from_timm",
    "from_timm_eva",
    "from_torchvision",
    "from_transformers",
    "from_transformers_clip",
    "from_transformers_deit",
    "from_transformers_dinov2",
    "from_transformers_dinov3",
    "from_transformers_siglip",
    "split_towers",
    "text_from_open_clip",
    "text_from_transformers",
    "to_timm",
]
