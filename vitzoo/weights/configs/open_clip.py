"""open_clip's ``open_clip_config.json`` to vitzoo's config: the image tower, its head the projection into the joint
embedding.

Written by open_clip's ``save_config_for_hf``: ``{"model_cfg": {"embed_dim", "quick_gelu", "vision_cfg": {...},
"text_cfg": {...}}, "preprocess_cfg": {"mean", "std", "interpolation", "resize_mode"}}``; a bare open_clip model
config (``vision_cfg`` at the top) is read too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import ConfigError, UnknownModelError
from ...models.archs import ARCHS
from ...models.config import ViTConfig, to_pair
from ...models.pretrained_cfg import PretrainedCfg
from ..loading import OPEN_CLIP_WEIGHT_FILES

# open_clip VisionTransformer options vitzoo does not build: a true value is refused
_OPEN_CLIP_REFUSED = (
    "attentional_pool",  # CoCa's attention pooler
    "final_ln_after_pool",  # CLIPA: ln_post on the pooled vector
    "qk_norm",
    "scaled_cosine_attn",
    "scale_heads",
    "scale_attn_inner",
    "scale_attn",
    "scale_fc",
    "act_kwargs",
)
_OPEN_CLIP_POOLS = {"tok": "token", "avg": "avg"}  # pool_type -> global_pool ("avg": mean of the patch tokens)
_OPEN_CLIP_RESIZE = {"shortest": "center", "squash": "squash"}  # resize_mode -> crop_mode, both with crop_pct 1.0
_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)  # open_clip's defaults (OPENAI_DATASET_MEAN / _STD)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def from_open_clip(config: Mapping[str, Any], name: str, repo_id: str | None) -> tuple[ViTConfig, PretrainedCfg]:
    """The image tower an open_clip config describes, with the projection to the joint embedding as its head."""
    model = config.get("model_cfg", config)
    vision = dict(model.get("vision_cfg") or {})
    embed_dim = int(model["embed_dim"])
    img = to_pair(vision.get("image_size", 224), "image_size")
    if vision.get("timm_model_name"):
        vit = _open_clip_timm_trunk(vision, embed_dim, img, name)
    else:
        vit = _open_clip_vit(vision, embed_dim, img, bool(model.get("quick_gelu", False)), name)
    pp = config.get("preprocess_cfg") or {}
    mode = pp.get("resize_mode", "shortest")
    if mode not in _OPEN_CLIP_RESIZE:
        raise ConfigError(
            f"{name}: open_clip resize_mode={mode!r} (resize the longer side, pad with fill_color) is not what "
            "vitzoo's eval transform does; prepare the images yourself and pass tensors"
        )
    interpolation = pp.get("interpolation", "bicubic")
    facts = PretrainedCfg(
        name=name,
        hf_hub_id=repo_id,
        num_classes=vit.num_classes,
        input_size=(vit.in_chans, *img),
        crop_pct=1.0,
        crop_mode=_OPEN_CLIP_RESIZE[mode],
        interpolation="bicubic" if interpolation == "random" else interpolation,  # open_clip's eval reads 'random' so
        mean=tuple(float(v) for v in pp.get("mean", _OPENAI_MEAN)),
        std=tuple(float(v) for v in pp.get("std", _OPENAI_STD)),
        description="open_clip image tower; the head projects into the joint image-text embedding",
        filenames=OPEN_CLIP_WEIGHT_FILES,
    )
    return vit, facts


def _open_clip_vit(
    vision: Mapping[str, Any], embed_dim: int, img: tuple[int, int], quick_gelu: bool, name: str
) -> ViTConfig:
    """open_clip's own ``VisionTransformer`` (OpenAI's layout): pre-norm ``ln_pre``, no patch bias, LayerNorm 1e-5."""
    if isinstance(vision.get("layers"), (list, tuple)):
        raise ConfigError(f"{name}: the image tower is a ModifiedResNet (RN50...); vitzoo builds ViTs only")
    refused = [k for k in _OPEN_CLIP_REFUSED if vision.get(k)]
    if vision.get("block_type") not in (None, "default"):
        refused.append(f"block_type={vision['block_type']!r}")
    if vision.get("pool_type", "tok") not in _OPEN_CLIP_POOLS:
        refused.append(f"pool_type={vision['pool_type']!r}")
    if vision.get("pos_embed_type", "learnable") not in ("learnable", "sin_cos_2d"):  # both a stored table
        refused.append(f"pos_embed_type={vision['pos_embed_type']!r}")
    norm = dict(vision.get("norm_kwargs") or {})
    eps = float(norm.pop("eps", 1e-5))
    if norm:
        refused.append(f"norm_kwargs={norm}")
    if refused:
        raise ConfigError(f"{name}: open_clip vision_cfg {refused} describes an image tower vitzoo does not build")
    width = int(vision.get("width", 768))
    return ViTConfig(
        embed_dim=width,
        depth=int(vision.get("layers", 12)),
        num_heads=width // int(vision.get("head_width", 64)),
        mlp_dim=int(width * float(vision.get("mlp_ratio", 4.0))),
        patch_size=to_pair(vision.get("patch_size", 16), "patch_size"),
        img_size=img,
        num_classes=embed_dim,
        global_pool=_OPEN_CLIP_POOLS[vision.get("pool_type", "tok")],
        pre_norm=not vision.get("no_ln_pre", False),
        patch_bias=False,
        layer_norm_eps=eps,
        act_layer="quick_gelu" if quick_gelu else "gelu",
        init_values=vision.get("ls_init_value"),
    )


def _open_clip_timm_trunk(vision: Mapping[str, Any], embed_dim: int, img: tuple[int, int], name: str) -> ViTConfig:
    """A timm model as open_clip's image tower (``TimmModel``): the registered arch, its head the projection."""
    arch = str(vision["timm_model_name"])
    if arch not in ARCHS:
        raise UnknownModelError(
            f"{name}: the image tower is timm's {arch!r}, which vitzoo does not build; see vitzoo.list_models()"
        )
    pool, proj = vision.get("timm_pool", "avg"), vision.get("timm_proj", "linear")
    if proj not in ("linear", "none", None) or (proj != "linear" and not pool):
        raise ConfigError(f"{name}: open_clip timm_proj={proj!r} with timm_pool={pool!r} is not a head vitzoo builds")
    # 'linear': open_clip's own Linear after the trunk; None: the trunk's head; 'none': no projection at all
    return ARCHS[arch].replace(
        img_size=img, global_pool=pool or ARCHS[arch].global_pool, num_classes=0 if proj == "none" else embed_dim
    )
