"""Architecture names (timm's), paper aliases and their configs, as plain data.

Names are looked up here exactly; ``vitzoo.source`` is where a user's name (alias, ``arch.tag``, ...) is parsed.

The sizes (paper Table 1) and the families' flags are ``vitzoo.models.sizes``; they are re-exported here.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import ViTConfig
from .sizes import FAMILIES, SIZES

_TANH = {"act_layer": "gelu_tanh"}  # the SigLIP 2 towers timm builds with tanh GELU
_SWIGLU = {"mlp_layer": "swiglu", "act_layer": "silu"}
_MEDIUM_GAP = {"qkv_bias": False, "init_values": 1e-6}  # vit_medium_patch16_gap_*
_SO150M2 = {"reg_tokens": 1, "qkv_bias": False, "init_values": 1e-5, "fc_norm": True}  # vit_so150m2_*
_EVA02_BL = {"mlp_layer": "swiglu", "mlp_norm": True}  # EVA-02 B and L: separate gate and up, a norm before fc2
# EVA-CLIP image towers: EVA-02 B/L with a norm inside attention too, the class token through the final norm
_EVA02_CLIP = {**_EVA02_BL, "attn_norm": True, "global_pool": "token", "fc_norm": False}
_TOKEN = {"global_pool": "token", "fc_norm": False}  # EVA-01 g's CLIP tower
_APE = {"abs_pos_embed": True, "no_embed_class": True}  # RoPE-ViT's _ape archs
_PE_DENSE = {"final_norm": False, "global_pool": "avg", "pool_include_prefix": False, "num_classes": 0}
_PE_G = {"class_token": False, "rope_grid_offset": 0.0, "attn_pool_mlp_dim": 6144}  # PE G/14: no class token


def _ref(n: int) -> dict[str, Any]:
    """The pretraining grid that PE's RoPE positions are scaled to."""
    return {"rope_ref_grid": (n, n)}


@dataclass(frozen=True)
class ArchSpec:
    """One registered arch: a size of ``SIZES``, its patch and image side, its family (a ``FAMILIES`` key) and the
    config changes on top of the family's flags; a hybrid names its ResNet stage depths (``hybrid_layers``)."""

    size: str
    patch: int
    img: int | tuple[int, int]  # one side, or (height, width)
    family: str = "vit"
    changes: Mapping[str, Any] = field(default_factory=dict)
    hybrid: tuple[int, ...] = ()
    aliased: bool = False  # also named as in the paper: "ViT-B/16" and the JAX configs' "ViT-B_16" ("R50+ViT-B/16")


ARCH_SPECS: dict[str, ArchSpec] = {  # timm's arch name: its spec
    "vit_tiny_patch16_224": ArchSpec("tiny", 16, 224, aliased=True),
    "vit_tiny_patch16_384": ArchSpec("tiny", 16, 384),
    "vit_small_patch16_224": ArchSpec("small", 16, 224, aliased=True),
    "vit_small_patch16_384": ArchSpec("small", 16, 384),
    "vit_base_patch16_224": ArchSpec("base", 16, 224, aliased=True),
    "vit_base_patch16_384": ArchSpec("base", 16, 384),
    "vit_base_patch32_224": ArchSpec("base", 32, 224, aliased=True),
    "vit_base_patch32_384": ArchSpec("base", 32, 384),
    "vit_large_patch16_224": ArchSpec("large", 16, 224, aliased=True),
    "vit_large_patch16_384": ArchSpec("large", 16, 384),
    "vit_large_patch32_224": ArchSpec("large", 32, 224, aliased=True),
    "vit_large_patch32_384": ArchSpec("large", 32, 384),
    "vit_huge_patch14_224": ArchSpec("huge", 14, 224, aliased=True),
    "vit_small_patch32_224": ArchSpec("small", 32, 224),  # AugReg (Steiner et al. 2021)
    "vit_small_patch32_384": ArchSpec("small", 32, 384),
    "vit_base_patch16_224_miil": ArchSpec("base", 16, 224, changes={"qkv_bias": False, "num_classes": 11221}),  # MIIL
    # EVA-01 L (Fang et al. 2023) fine-tunes, built by timm's VisionTransformer: the patch mean through fc_norm
    "eva_large_patch14_196": ArchSpec("large", 14, 196, changes={"global_pool": "avg", "fc_norm": True}),
    "eva_large_patch14_336": ArchSpec("large", 14, 336, changes={"global_pool": "avg", "fc_norm": True}),
    # R50x1+ViT-B/16 (paper §4.1 option (ii)): ResNet50 with stage 4's blocks in stage 3, stride 16, 1x1 patches
    "vit_base_r50_s16_224": ArchSpec("base", 16, 224, hybrid=(3, 4, 9), aliased=True),
    "vit_base_r50_s16_384": ArchSpec("base", 16, 384, hybrid=(3, 4, 9)),
    # AugReg hybrids with all four ResNet stages (stride 32): R26 (2, 2, 2, 2) + ViT-S, R50 (3, 4, 6, 3) + ViT-L
    "vit_small_r26_s32_224": ArchSpec("small", 32, 224, hybrid=(2, 2, 2, 2)),
    "vit_small_r26_s32_384": ArchSpec("small", 32, 384, hybrid=(2, 2, 2, 2)),
    "vit_large_r50_s32_224": ArchSpec("large", 32, 224, hybrid=(3, 4, 6, 3)),
    "vit_large_r50_s32_384": ArchSpec("large", 32, 384, hybrid=(3, 4, 6, 3)),
    # the ResNet stem alone (stride 4) cut into 8 x 8 patches: 32 px per token
    "vit_tiny_r_s16_p8_224": ArchSpec("tiny", 32, 224, changes={"hybrid_stem_only": True}),
    "vit_tiny_r_s16_p8_384": ArchSpec("tiny", 32, 384, changes={"hybrid_stem_only": True}),
    # FlexiViT (its checkpoints take any patch size through set_input_size(patch_size=...))
    "flexivit_small": ArchSpec("small", 16, 240, "flexivit"),
    "flexivit_base": ArchSpec("base", 16, 240, "flexivit"),
    "flexivit_large": ArchSpec("large", 16, 240, "flexivit"),
    # DINO's patch-8 ViTs (its patch-16 weights are tags of vit_small/base_patch16_224)
    "vit_small_patch8_224": ArchSpec("small", 8, 224, changes={"num_classes": 0}),
    "vit_base_patch8_224": ArchSpec("base", 8, 224),
    # DeiT
    "deit_tiny_patch16_224": ArchSpec("tiny", 16, 224),
    "deit_small_patch16_224": ArchSpec("small", 16, 224),
    "deit_base_patch16_224": ArchSpec("base", 16, 224),
    "deit_base_patch16_384": ArchSpec("base", 16, 384),
    "deit_tiny_distilled_patch16_224": ArchSpec("tiny", 16, 224, "deit_distilled"),
    "deit_small_distilled_patch16_224": ArchSpec("small", 16, 224, "deit_distilled"),
    "deit_base_distilled_patch16_224": ArchSpec("base", 16, 224, "deit_distilled"),
    "deit_base_distilled_patch16_384": ArchSpec("base", 16, 384, "deit_distilled"),
    # DeiT-III
    "deit3_small_patch16_224": ArchSpec("small", 16, 224, "deit3"),
    "deit3_small_patch16_384": ArchSpec("small", 16, 384, "deit3"),
    "deit3_medium_patch16_224": ArchSpec("medium", 16, 224, "deit3"),
    "deit3_base_patch16_224": ArchSpec("base", 16, 224, "deit3"),
    "deit3_base_patch16_384": ArchSpec("base", 16, 384, "deit3"),
    "deit3_large_patch16_224": ArchSpec("large", 16, 224, "deit3"),
    "deit3_large_patch16_384": ArchSpec("large", 16, 384, "deit3"),
    "deit3_huge_patch14_224": ArchSpec("huge", 14, 224, "deit3"),
    # DINOv2, with and without 4 registers (518 px = 37 x 37 patches of 14)
    "vit_small_patch14_dinov2": ArchSpec("small", 14, 518, "dinov2"),
    "vit_base_patch14_dinov2": ArchSpec("base", 14, 518, "dinov2"),
    "vit_large_patch14_dinov2": ArchSpec("large", 14, 518, "dinov2"),
    "vit_giant_patch14_dinov2": ArchSpec(
        "giant_dinov2",
        14,
        518,
        "dinov2",
        {"mlp_layer": "swiglu_packed", "act_layer": "silu"},
    ),
    "vit_small_patch14_reg4_dinov2": ArchSpec("small", 14, 518, "dinov2_reg"),
    "vit_base_patch14_reg4_dinov2": ArchSpec("base", 14, 518, "dinov2_reg"),
    "vit_large_patch14_reg4_dinov2": ArchSpec("large", 14, 518, "dinov2_reg"),
    "vit_giant_patch14_reg4_dinov2": ArchSpec(
        "giant_dinov2",
        14,
        518,
        "dinov2_reg",
        {"mlp_layer": "swiglu_packed", "act_layer": "silu"},
    ),
    # CLIP image towers; the head is the projection into the joint space (num_classes = its width) unless the
    # arch's default checkpoint is an ImageNet fine-tune (1000)
    "vit_xsmall_patch16_clip_224": ArchSpec("xsmall", 16, 224, "clip", {"num_classes": 512}),  # TinyCLIP
    "vit_medium_patch16_clip_224": ArchSpec("medium", 16, 224, "clip", {"num_classes": 512}),  # TinyCLIP
    "vit_medium_patch32_clip_224": ArchSpec("medium", 32, 224, "clip", {"num_classes": 512}),  # TinyCLIP
    "vit_betwixt_patch32_clip_224": ArchSpec("betwixt", 32, 224, "clip", {"num_classes": 512}),  # TinyCLIP
    "vit_base_patch16_plus_clip_240": ArchSpec("base_plus", 16, 240, "clip", {"num_classes": 640}),  # OpenCLIP
    "vit_base_patch32_clip_224": ArchSpec("base", 32, 224, "clip"),
    "vit_base_patch32_clip_256": ArchSpec("base", 32, 256, "clip", {"num_classes": 512}),
    "vit_base_patch32_clip_384": ArchSpec("base", 32, 384, "clip"),
    "vit_base_patch32_clip_448": ArchSpec("base", 32, 448, "clip"),
    "vit_base_patch32_clip_quickgelu_224": ArchSpec("base", 32, 224, "clip_quickgelu", {"num_classes": 512}),
    "vit_base_patch16_clip_224": ArchSpec("base", 16, 224, "clip"),
    "vit_base_patch16_clip_384": ArchSpec("base", 16, 384, "clip"),
    "vit_base_patch16_clip_quickgelu_224": ArchSpec("base", 16, 224, "clip_quickgelu", {"num_classes": 512}),
    "vit_large_patch14_clip_224": ArchSpec("large", 14, 224, "clip"),
    "vit_large_patch14_clip_336": ArchSpec("large", 14, 336, "clip"),
    "vit_large_patch14_clip_quickgelu_224": ArchSpec("large", 14, 224, "clip_quickgelu", {"num_classes": 768}),
    "vit_large_patch14_clip_quickgelu_336": ArchSpec("large", 14, 336, "clip_quickgelu", {"num_classes": 768}),
    "vit_huge_patch14_clip_224": ArchSpec("huge", 14, 224, "clip"),
    "vit_huge_patch14_clip_336": ArchSpec("huge", 14, 336, "clip"),
    "vit_huge_patch14_clip_378": ArchSpec("huge", 14, 378, "clip", {"num_classes": 1024}),
    "vit_huge_patch14_clip_quickgelu_224": ArchSpec("huge", 14, 224, "clip_quickgelu", {"num_classes": 1024}),
    "vit_huge_patch14_clip_quickgelu_378": ArchSpec("huge", 14, 378, "clip_quickgelu", {"num_classes": 1024}),
    "vit_giant_patch14_clip_224": ArchSpec("giant_clip", 14, 224, "clip", {"num_classes": 1024}),
    "vit_gigantic_patch14_clip_224": ArchSpec("gigantic", 14, 224, "clip", {"num_classes": 1280}),
    "vit_gigantic_patch14_clip_378": ArchSpec("gigantic", 14, 378, "clip", {"num_classes": 1280}),
    "vit_gigantic_patch14_clip_quickgelu_224": ArchSpec("gigantic", 14, 224, "clip_quickgelu", {"num_classes": 1280}),
    # SigLIP and SigLIP 2 image towers: attention-pool (MAP) output, or the mean of the tokens (gap)
    "vit_base_patch16_siglip_224": ArchSpec("base", 16, 224, "siglip"),
    "vit_base_patch16_siglip_256": ArchSpec("base", 16, 256, "siglip"),
    "vit_base_patch16_siglip_384": ArchSpec("base", 16, 384, "siglip"),
    "vit_base_patch16_siglip_512": ArchSpec("base", 16, 512, "siglip"),
    "vit_base_patch32_siglip_256": ArchSpec("base", 32, 256, "siglip", _TANH),
    "vit_large_patch16_siglip_256": ArchSpec("large", 16, 256, "siglip"),
    "vit_large_patch16_siglip_384": ArchSpec("large", 16, 384, "siglip"),
    "vit_large_patch16_siglip_512": ArchSpec("large", 16, 512, "siglip", _TANH),
    "vit_so400m_patch14_siglip_224": ArchSpec("so400m", 14, 224, "siglip"),
    "vit_so400m_patch14_siglip_378": ArchSpec("so400m", 14, 378, "siglip"),
    # 384 px at patch 14: a 27 x 27 grid, the last 6 rows and columns unseen (timm's convolution drops them)
    "vit_so400m_patch14_siglip_384": ArchSpec("so400m", 14, 384, "siglip", {"drop_remainder": True}),
    "vit_so400m_patch16_siglip_256": ArchSpec("so400m", 16, 256, "siglip", _TANH),
    "vit_so400m_patch16_siglip_384": ArchSpec("so400m", 16, 384, "siglip", _TANH),
    "vit_so400m_patch16_siglip_512": ArchSpec("so400m", 16, 512, "siglip", _TANH),
    "vit_giantopt_patch16_siglip_256": ArchSpec("giantopt", 16, 256, "siglip", _TANH),
    "vit_giantopt_patch16_siglip_384": ArchSpec("giantopt", 16, 384, "siglip", _TANH),
    "vit_base_patch16_siglip_gap_224": ArchSpec("base", 16, 224, "siglip_gap"),
    "vit_base_patch16_siglip_gap_256": ArchSpec("base", 16, 256, "siglip_gap"),
    "vit_base_patch16_siglip_gap_384": ArchSpec("base", 16, 384, "siglip_gap"),
    "vit_base_patch16_siglip_gap_512": ArchSpec("base", 16, 512, "siglip_gap"),
    "vit_base_patch32_siglip_gap_256": ArchSpec("base", 32, 256, "siglip_gap", _TANH),
    "vit_large_patch16_siglip_gap_256": ArchSpec("large", 16, 256, "siglip_gap"),
    "vit_large_patch16_siglip_gap_384": ArchSpec("large", 16, 384, "siglip_gap"),
    "vit_large_patch16_siglip_gap_512": ArchSpec("large", 16, 512, "siglip_gap", _TANH),
    "vit_so400m_patch14_siglip_gap_224": ArchSpec("so400m", 14, 224, "siglip_gap"),
    "vit_so400m_patch14_siglip_gap_378": ArchSpec("so400m", 14, 378, "siglip_gap"),
    "vit_so400m_patch14_siglip_gap_384": ArchSpec("so400m", 14, 384, "siglip_gap", {"drop_remainder": True}),
    "vit_so400m_patch14_siglip_gap_448": ArchSpec("so400m", 14, 448, "siglip_gap"),
    "vit_so400m_patch14_siglip_gap_896": ArchSpec("so400m", 14, 896, "siglip_gap"),
    "vit_so400m_patch16_siglip_gap_256": ArchSpec("so400m", 16, 256, "siglip_gap", _TANH),
    "vit_so400m_patch16_siglip_gap_384": ArchSpec("so400m", 16, 384, "siglip_gap", _TANH),
    "vit_so400m_patch16_siglip_gap_512": ArchSpec("so400m", 16, 512, "siglip_gap", _TANH),
    "vit_giantopt_patch16_siglip_gap_256": ArchSpec("giantopt", 16, 256, "siglip_gap", _TANH),
    "vit_giantopt_patch16_siglip_gap_384": ArchSpec("giantopt", 16, 384, "siglip_gap", _TANH),
    # DINOv3 (256 px is the pretraining size; RoPE takes any multiple of 16); _qkvb: with q and v biases
    "vit_small_patch16_dinov3": ArchSpec("small", 16, 256, "dinov3"),
    "vit_small_plus_patch16_dinov3": ArchSpec("small", 16, 256, "dinov3", _SWIGLU),
    "vit_base_patch16_dinov3": ArchSpec("base", 16, 256, "dinov3"),
    "vit_large_patch16_dinov3": ArchSpec("large", 16, 256, "dinov3"),
    "vit_huge_plus_patch16_dinov3": ArchSpec("huge_plus", 16, 256, "dinov3", _SWIGLU),
    "vit_7b_patch16_dinov3": ArchSpec("vit7b", 16, 256, "dinov3", _SWIGLU),
    "vit_tiny_patch16_dinov3_qkvb": ArchSpec("tiny", 16, 256, "dinov3", {"qkv_bias": True}),
    "vit_small_patch16_dinov3_qkvb": ArchSpec("small", 16, 256, "dinov3", {"qkv_bias": True}),
    "vit_small_plus_patch16_dinov3_qkvb": ArchSpec("small", 16, 256, "dinov3", {**_SWIGLU, "qkv_bias": True}),
    "vit_base_patch16_dinov3_qkvb": ArchSpec("base", 16, 256, "dinov3", {"qkv_bias": True}),
    "vit_large_patch16_dinov3_qkvb": ArchSpec("large", 16, 256, "dinov3", {"qkv_bias": True}),
    "vit_huge_plus_patch16_dinov3_qkvb": ArchSpec("huge_plus", 16, 256, "dinov3", {**_SWIGLU, "qkv_bias": True}),
}

ARCH_SPECS.update(
    {  # timm's own trainings (Wightman): SBB register ViTs (reg1 / reg4), class-token-free gap ViTs
        "vit_wee_patch16_reg1_gap_256": ArchSpec("wee", 16, 256, "sbb_reg", {"reg_tokens": 1}),
        "vit_little_patch16_reg1_gap_256": ArchSpec("little", 16, 256, "sbb_reg", {"reg_tokens": 1}),
        "vit_dwee_patch16_reg1_gap_256": ArchSpec("wee", 16, 256, "sbb_reg", {"reg_tokens": 1, "attn_type": "diff"}),
        "vit_dlittle_patch16_reg1_gap_256": ArchSpec(
            "little", 16, 256, "sbb_reg", {"reg_tokens": 1, "attn_type": "diff"}
        ),
        "vit_pwee_patch16_reg1_gap_256": ArchSpec(
            "pwee", 16, 256, "sbb_reg", {"reg_tokens": 1, "block_type": "parallel"}
        ),
        "vit_dpwee_patch16_reg1_gap_256": ArchSpec(
            "pwee", 16, 256, "sbb_reg", {"reg_tokens": 1, "block_type": "parallel", "attn_type": "diff"}
        ),
        "vit_little_patch16_reg4_gap_256": ArchSpec("little", 16, 256, "sbb_reg"),
        "vit_medium_patch16_reg1_gap_256": ArchSpec("medium", 16, 256, "sbb_reg", {"reg_tokens": 1}),
        "vit_medium_patch16_reg4_gap_256": ArchSpec("medium", 16, 256, "sbb_reg"),
        "vit_mediumd_patch16_reg4_gap_256": ArchSpec("mediumd", 16, 256, "sbb_reg"),
        "vit_mediumd_patch16_reg4_gap_384": ArchSpec("mediumd", 16, 384, "sbb_reg"),
        "vit_betwixt_patch16_reg1_gap_256": ArchSpec("betwixt", 16, 256, "sbb_reg", {"reg_tokens": 1}),
        "vit_betwixt_patch16_reg4_gap_256": ArchSpec("betwixt", 16, 256, "sbb_reg"),
        "vit_betwixt_patch16_reg4_gap_384": ArchSpec("betwixt", 16, 384, "sbb_reg"),
        "vit_medium_patch16_gap_240": ArchSpec("medium", 16, 240, "gap", {**_MEDIUM_GAP, "num_classes": 11821}),
        "vit_medium_patch16_gap_256": ArchSpec("medium", 16, 256, "gap", _MEDIUM_GAP),
        "vit_medium_patch16_gap_384": ArchSpec("medium", 16, 384, "gap", _MEDIUM_GAP),
        "vit_so150m_patch16_reg4_gap_256": ArchSpec("so150m", 16, 256, "gap", {"reg_tokens": 4}),
        "vit_so150m_patch16_reg4_gap_384": ArchSpec("so150m", 16, 384, "gap", {"reg_tokens": 4}),
        "vit_so150m2_patch16_reg1_gap_256": ArchSpec("so150m2", 16, 256, "gap", _SO150M2),
        "vit_so150m2_patch16_reg1_gap_384": ArchSpec("so150m2", 16, 384, "gap", _SO150M2),
        "vit_so150m2_patch16_reg1_gap_448": ArchSpec("so150m2", 16, 448, "gap", _SO150M2),
        # TIPSv2 (Google) image towers: class token plus 1 register, layer scale 1.0; giant: DINOv2-g's packed SwiGLU
        "vit_base_patch14_reg1_tipsv2": ArchSpec("base", 14, 448, "tipsv2"),
        "vit_large_patch14_reg1_tipsv2": ArchSpec("large", 14, 448, "tipsv2"),
        "vit_so400m_patch14_reg1_tipsv2": ArchSpec("so400m", 14, 448, "tipsv2"),
        "vit_giant_patch14_reg1_tipsv2": ArchSpec(
            "giant_dinov2", 14, 448, "tipsv2", {"mlp_layer": "swiglu_packed", "act_layer": "silu"}
        ),
    }
)

ARCH_SPECS.update(
    {  # EVA-01 g and EVA-02 (timm's eva.py); MLP widths are timm's int(D * mlp_ratio), doubled when packed
        "eva_giant_patch14_224": ArchSpec("giant_clip", 14, 224, "eva"),
        "eva_giant_patch14_336": ArchSpec("giant_clip", 14, 336, "eva"),
        "eva_giant_patch14_560": ArchSpec("giant_clip", 14, 560, "eva"),
        "eva_giant_patch14_clip_224": ArchSpec("giant_clip", 14, 224, "eva", {**_TOKEN, "num_classes": 1024}),
        "eva02_tiny_patch14_224": ArchSpec("tiny", 14, 224, "eva02", {"mlp_dim": 1024, "num_classes": 0}),
        "eva02_tiny_patch14_336": ArchSpec("tiny", 14, 336, "eva02", {"mlp_dim": 1024}),
        "eva02_small_patch14_224": ArchSpec("small", 14, 224, "eva02", {"mlp_dim": 2048, "num_classes": 0}),
        "eva02_small_patch14_336": ArchSpec("small", 14, 336, "eva02", {"mlp_dim": 2048}),
        "eva02_base_patch14_224": ArchSpec("base", 14, 224, "eva02", {**_EVA02_BL, "mlp_dim": 2048, "num_classes": 0}),
        "eva02_base_patch14_448": ArchSpec("base", 14, 448, "eva02", {**_EVA02_BL, "mlp_dim": 2048}),
        "eva02_large_patch14_224": ArchSpec(
            "large", 14, 224, "eva02", {**_EVA02_BL, "mlp_dim": 2730, "num_classes": 0}
        ),
        "eva02_large_patch14_448": ArchSpec("large", 14, 448, "eva02", {**_EVA02_BL, "mlp_dim": 2730}),
        "eva02_base_patch16_clip_224": ArchSpec(
            "base", 16, 224, "eva02", {**_EVA02_CLIP, "mlp_dim": 2048, "num_classes": 512}
        ),
        "eva02_large_patch14_clip_224": ArchSpec(
            "large", 14, 224, "eva02", {**_EVA02_CLIP, "mlp_dim": 2730, "num_classes": 768}
        ),
        "eva02_large_patch14_clip_336": ArchSpec(
            "large", 14, 336, "eva02", {**_EVA02_CLIP, "mlp_dim": 2730, "num_classes": 768}
        ),
    }
)

ARCH_SPECS.update(
    {  # RoPE-ViT axial (naver), timm's SBB RoPE ViTs, Perception Encoder core / lang / spatial (timm's eva.py)
        "vit_small_patch16_rope_224": ArchSpec("small", 16, 224, "rope_vit"),
        "vit_base_patch16_rope_224": ArchSpec("base", 16, 224, "rope_vit"),
        "vit_large_patch16_rope_224": ArchSpec("large", 16, 224, "rope_vit"),
        "vit_small_patch16_rope_ape_224": ArchSpec("small", 16, 224, "rope_vit", _APE),
        "vit_base_patch16_rope_ape_224": ArchSpec("base", 16, 224, "rope_vit", _APE),
        "vit_large_patch16_rope_ape_224": ArchSpec("large", 16, 224, "rope_vit", _APE),
        "vit_small_patch16_rope_mixed_224": ArchSpec("small", 16, 224, "rope_mixed"),
        "vit_base_patch16_rope_mixed_224": ArchSpec("base", 16, 224, "rope_mixed"),
        "vit_large_patch16_rope_mixed_224": ArchSpec("large", 16, 224, "rope_mixed"),
        "vit_small_patch16_rope_mixed_ape_224": ArchSpec("small", 16, 224, "rope_mixed", _APE),
        "vit_base_patch16_rope_mixed_ape_224": ArchSpec("base", 16, 224, "rope_mixed", _APE),
        "vit_large_patch16_rope_mixed_ape_224": ArchSpec("large", 16, 224, "rope_mixed", _APE),
        "vit_medium_patch16_rope_reg1_gap_256": ArchSpec("medium", 16, 256, "sbb_rope"),
        "vit_mediumd_patch16_rope_reg1_gap_256": ArchSpec("mediumd", 16, 256, "sbb_rope", {"qkv_bias": False}),
        "vit_betwixt_patch16_rope_reg4_gap_256": ArchSpec("betwixt", 16, 256, "sbb_rope", {"reg_tokens": 4}),
        "vit_base_patch16_rope_reg1_gap_256": ArchSpec("base", 16, 256, "sbb_rope"),
        "vit_pe_core_tiny_patch16_384": ArchSpec("tiny", 16, 384, "pe", {**_ref(24), "num_classes": 512}),
        "vit_pe_core_small_patch16_384": ArchSpec("small", 16, 384, "pe", {**_ref(24), "num_classes": 512}),
        "vit_pe_core_base_patch16_224": ArchSpec("base", 16, 224, "pe", {**_ref(14), "num_classes": 1024}),
        "vit_pe_core_large_patch14_336": ArchSpec("large", 14, 336, "pe", {**_ref(24), "num_classes": 1024}),
        "vit_pe_core_gigantic_patch14_448": ArchSpec(
            "pe_gigantic", 14, 448, "pe", {**_ref(32), **_PE_G, "num_classes": 1280}
        ),
        "vit_pe_lang_large_patch14_448": ArchSpec(
            "large", 14, 448, "pe", {**_ref(32), **_PE_DENSE, "depth": 23, "init_values": 0.1}
        ),
        "vit_pe_lang_gigantic_patch14_448": ArchSpec(
            "pe_gigantic", 14, 448, "pe", {**_ref(32), **_PE_DENSE, **_PE_G, "depth": 47, "init_values": 0.1}
        ),
        "vit_pe_spatial_tiny_patch16_512": ArchSpec("tiny", 16, 512, "pe", {**_ref(32), **_PE_DENSE}),
        "vit_pe_spatial_small_patch16_512": ArchSpec("small", 16, 512, "pe", {**_ref(32), **_PE_DENSE}),
        "vit_pe_spatial_base_patch16_512": ArchSpec("base", 16, 512, "pe", {**_ref(32), **_PE_DENSE}),
        "vit_pe_spatial_large_patch14_448": ArchSpec("large", 14, 448, "pe", {**_ref(32), **_PE_DENSE}),
        "vit_pe_spatial_gigantic_patch14_448": ArchSpec(
            "pe_gigantic", 14, 448, "pe", {**_ref(32), **_PE_DENSE, **_PE_G, "init_values": 0.1}
        ),
    }
)

ARCH_SPECS.update(
    {  # C-RADIO v3 / v4 and InternViT-300M: the flags above with no final norm
        "vit_base_patch16_radio_v3": ArchSpec("base", 16, 512, "radio", {"init_values": 1e-5}),
        "vit_large_patch16_radio_v3": ArchSpec("large", 16, 512, "radio", {"init_values": 1e-5}),
        "vit_huge_patch16_radio_v3": ArchSpec("huge", 16, 512, "radio"),
        "vit_giant_patch16_radio_v3": ArchSpec("giantopt", 16, 512, "radio", {"num_heads": 24}),
        "vit_so400m_patch16_radio_v4": ArchSpec("so400m", 16, 512, "radio", {"reg_tokens": 9}),
        "vit_huge_patch16_radio_v4": ArchSpec("huge", 16, 512, "radio", {"reg_tokens": 9}),
        "vit_intern300m_patch14_448": ArchSpec("large", 14, 448, "internvit"),
        "aimv2_large_patch14_224": ArchSpec("aimv2_large", 14, 224, "aimv2"),
        "aimv2_large_patch14_336": ArchSpec("aimv2_large", 14, 336, "aimv2"),
        "aimv2_large_patch14_448": ArchSpec("aimv2_large", 14, 448, "aimv2"),
        "aimv2_huge_patch14_224": ArchSpec("aimv2_huge", 14, 224, "aimv2"),
        "aimv2_huge_patch14_336": ArchSpec("aimv2_huge", 14, 336, "aimv2"),
        "aimv2_huge_patch14_448": ArchSpec("aimv2_huge", 14, 448, "aimv2"),
        "aimv2_1b_patch14_224": ArchSpec("aimv2_1b", 14, 224, "aimv2"),
        "aimv2_1b_patch14_336": ArchSpec("aimv2_1b", 14, 336, "aimv2"),
        "aimv2_1b_patch14_448": ArchSpec("aimv2_1b", 14, 448, "aimv2"),
        "aimv2_3b_patch14_224": ArchSpec("aimv2_3b", 14, 224, "aimv2"),
        "aimv2_3b_patch14_336": ArchSpec("aimv2_3b", 14, 336, "aimv2"),
        "aimv2_3b_patch14_448": ArchSpec("aimv2_3b", 14, 448, "aimv2"),
    }
)

ARCH_SPECS.update(
    {  # BEiT-3's image towers; res-post-norm ViTs; LingBot-Vision: DINOv3's flags, weights in belfner/ repos
        "beit3_base_patch16_224": ArchSpec("base", 16, 224, "beit3"),
        "beit3_large_patch16_224": ArchSpec("large", 16, 224, "beit3"),
        "vit_base_patch16_rpn_224": ArchSpec("base", 16, 224, "rpn"),
        # EVA-02 E/14 CLIP tower: EVA-01's flags with res-post-norm blocks, the class token into a projection
        "eva02_enormous_patch14_clip_224": ArchSpec(
            "enormous", 14, 224, "eva", {**_TOKEN, "res_post_norm": True, "num_classes": 1024}
        ),
        "vit_small_patch16_lingbot": ArchSpec("small", 16, 512, "lingbot"),
        "vit_base_patch16_lingbot": ArchSpec("base", 16, 512, "lingbot"),
        "vit_large_patch16_lingbot": ArchSpec("large", 16, 512, "lingbot"),
        "vit_giant_patch16_lingbot": ArchSpec("giant_lingbot", 16, 512, "lingbot", {**_SWIGLU, "qkv_bias": False}),
        # Sapiens2: key/value heads of the grouped-query blocks (B/16 has none: 12 blocks, the first and last 8 full)
        "vit_base_patch16_sapiens2": ArchSpec("sapiens2_base", 16, (1024, 768), "sapiens2", {"num_kv_heads": 6}),
        "vit_large_patch16_sapiens2": ArchSpec("sapiens2_large", 16, (1024, 768), "sapiens2", {"num_kv_heads": 8}),
        "vit_huge_patch16_sapiens2": ArchSpec("sapiens2_huge", 16, (1024, 768), "sapiens2", {"num_kv_heads": 8}),
        "vit_giant_patch16_sapiens2": ArchSpec("sapiens2_giant", 16, (1024, 768), "sapiens2", {"num_kv_heads": 12}),
        "vit_5b_patch16_sapiens2": ArchSpec("sapiens2_5b", 16, (1024, 768), "sapiens2", {"num_kv_heads": 16}),
    }
)

_FC = {"fc_norm": True}
ARCH_SPECS.update(
    {  # timm's relative-position ViTs (_cls: the class token; _clsgap: a class token, the patch mean; _rpn: post-norm)
        "vit_relpos_small_patch16_224": ArchSpec("small", 16, 224, "relpos", _FC),
        "vit_relpos_medium_patch16_224": ArchSpec("medium", 16, 224, "relpos", _FC),
        "vit_relpos_base_patch16_224": ArchSpec("base", 16, 224, "relpos", _FC),
        "vit_srelpos_small_patch16_224": ArchSpec(
            "small", 16, 224, "relpos", {"rel_pos_dim": 384, "rel_pos_shared": True}
        ),
        "vit_srelpos_medium_patch16_224": ArchSpec(
            "medium", 16, 224, "relpos", {"rel_pos_dim": 512, "rel_pos_shared": True}
        ),
        "vit_relpos_medium_patch16_cls_224": ArchSpec(
            "medium", 16, 224, "relpos", {"rel_pos_dim": 256, "class_token": True, "global_pool": "token"}
        ),
        "vit_relpos_base_patch16_clsgap_224": ArchSpec("base", 16, 224, "relpos", {**_FC, "class_token": True}),
        "vit_relpos_medium_patch16_rpn_224": ArchSpec("medium", 16, 224, "relpos", {"res_post_norm": True}),
        "vit_relpos_base_patch32_plus_rpn_256": ArchSpec(
            "base_plus", 32, 256, "relpos", {"res_post_norm": True, "qkv_bias": True}
        ),
    }
)

_LETTER = {"tiny": "Ti", "small": "S", "base": "B", "large": "L", "huge": "H"}


def _config(spec: ArchSpec) -> ViTConfig:
    """The ViTConfig of one ``ARCH_SPECS`` entry: its size and family, then its own changes."""
    depth, dim, mlp, heads = SIZES[spec.size]
    sizes = dict(embed_dim=dim, depth=depth, mlp_dim=mlp, num_heads=heads)
    return ViTConfig(
        patch_size=(spec.patch, spec.patch),
        img_size=spec.img if isinstance(spec.img, tuple) else (spec.img, spec.img),
        hybrid_layers=spec.hybrid,
        **{**sizes, **FAMILIES[spec.family], **spec.changes},
    )


ARCHS: dict[str, ViTConfig] = {name: _config(spec) for name, spec in ARCH_SPECS.items()}


def family_of(arch: str) -> str:
    """The family (a ``FAMILIES`` key) of a registered arch: ``"vit"`` for the paper's, DeiT and DINO archs."""
    return ARCH_SPECS[arch].family


def _aliases() -> dict[str, str]:
    """Paper names ("ViT-B/16") and the official JAX config names ("ViT-B_16") for the paper's 224 px archs."""
    out: dict[str, str] = {}
    for name, spec in ARCH_SPECS.items():
        if spec.aliased:
            prefix = "R50+" if spec.hybrid else ""
            out[f"{prefix}ViT-{_LETTER[spec.size]}/{spec.patch}"] = name
            out[f"{prefix}ViT-{_LETTER[spec.size]}_{spec.patch}"] = name
    return out


ALIASES: dict[str, str] = _aliases()


def list_models(pattern: str | None = None) -> list[str]:
    """Arch names in table order, optionally filtered by a shell-style ``pattern`` (``"*base*"``); aliases match too."""
    names = list(ARCHS)  # table order: the paper's archs, then family by family
    if pattern is None:
        return names
    hits = {n for n in names if fnmatch.fnmatch(n, pattern)}
    hits |= {a for alias, a in ALIASES.items() if fnmatch.fnmatch(alias.lower(), pattern.lower())}
    return [n for n in names if n in hits]
