"""Architecture names (timm's), paper aliases and their configs, as plain data.

Names are looked up here exactly; ``vitzoo.source`` is where a user's name (alias, ``arch.tag``, ...) is parsed.

Sizes are Table 1 of Dosovitskiy et al. (ICLR 2021): Layers, Hidden size D, MLP size, Heads. Tiny and Small are not
in the paper; they come from the official repo's ``vit_jax/configs/models.py`` (DeiT's sizes) and serve fast tests.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import ViTConfig

# size: (layers, hidden size D, MLP size, heads)       source
SIZES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (12, 192, 768, 3),  # official repo configs (ViT-Ti/16); DeiT-Ti
    "small": (12, 384, 1536, 6),  # official repo configs (ViT-S/16); DeiT-S
    "medium": (12, 512, 2048, 8),  # DeiT-III medium (Touvron et al. 2022)
    "base": (12, 768, 3072, 12),  # paper Table 1, ViT-Base
    "large": (24, 1024, 4096, 16),  # paper Table 1, ViT-Large
    "huge": (32, 1280, 5120, 16),  # paper Table 1, ViT-Huge
    "huge_plus": (32, 1280, 5120, 20),  # DINOv3 ViT-H+ (SwiGLU, 20 heads of 64)
    "giant_dinov2": (40, 1536, 8192, 24),  # DINOv2 ViT-g/14: MLP 8192 = packed SwiGLU [gate; up] of 4096
    "giant_clip": (40, 1408, 6144, 16),  # OpenCLIP ViT-g/14 (Cherti et al. 2023)
    "gigantic": (48, 1664, 8192, 16),  # OpenCLIP ViT-bigG/14
    "so400m": (27, 1152, 4304, 16),  # SigLIP shape-optimised 400M (Alabdulmohsin et al. 2023)
    "giantopt": (40, 1536, 6144, 16),  # SigLIP 2 g-opt
    "vit7b": (40, 4096, 8192, 32),  # DINOv3 ViT-7B/16 (SwiGLU of 8192)
    "pe_gigantic": (50, 1536, 8960, 16),  # Perception Encoder G/14 (Bolya et al. 2025)
    # timm's own in-between sizes (timm/models/vision_transformer.py entry points; mlp = int(D * mlp_ratio))
    "xsmall": (10, 256, 1024, 4),  # TinyCLIP ViT-XS (vit_xsmall_patch16_clip_224)
    "wee": (14, 256, 1280, 4),  # timm SBB "wee", mlp_ratio 5
    "little": (14, 320, 1792, 5),  # timm SBB "little", mlp_ratio 5.6
    "mediumd": (20, 512, 2048, 8),  # timm SBB "mediumd": medium, deeper
    "betwixt": (12, 640, 2560, 10),  # timm SBB "betwixt" (and TinyCLIP ViT-betwixt/32)
    "base_plus": (12, 896, 3584, 14),  # OpenCLIP ViT-B/16-plus-240
    "so150m": (18, 896, 2304, 14),  # timm SBB shape-optimised 150M, mlp_ratio 2.572
    "so150m2": (21, 832, 2176, 13),  # timm SBB so150m2, mlp_ratio 2.615
}

# ViTConfig flags of each family: the kwargs timm's entry points pass for it (docs/models.md)
FAMILIES: dict[str, dict[str, Any]] = {
    "vit": {},  # Dosovitskiy et al. 2021; DeiT (Touvron et al. 2021) and DINO (Caron et al. 2021) use it unchanged
    "deit_distilled": {"distilled": True},  # DeiT with the distillation token and its head
    "deit3": {"no_embed_class": True, "init_values": 1e-6},  # DeiT-III (Touvron et al. 2022)
    "dinov2": {"init_values": 1e-5, "num_classes": 0},  # Oquab et al. 2024
    "dinov2_reg": {"init_values": 1e-5, "reg_tokens": 4, "no_embed_class": True, "num_classes": 0},  # Darcet 2024
    "clip": {"pre_norm": True, "patch_bias": False, "layer_norm_eps": 1e-5},  # Radford et al. 2021, OpenCLIP
    "clip_quickgelu": {"pre_norm": True, "patch_bias": False, "layer_norm_eps": 1e-5, "act_layer": "quick_gelu"},
    "siglip": {"class_token": False, "global_pool": "map", "num_classes": 0},  # Zhai et al. 2023; SigLIP 2
    "siglip_gap": {"class_token": False, "global_pool": "avg", "num_classes": 0},  # SigLIP without MAP (PaliGemma)
    # DINOv3 (Simeoni et al. 2025): RoPE, 4 storage tokens; pooled = the class token, as upstream and transformers
    # (timm's Eva defaults to the patch mean: pass global_pool="avg" for that)
    "dinov3": {
        "rope": True,
        "abs_pos_embed": False,
        "reg_tokens": 4,
        "init_values": 1e-5,
        "layer_norm_eps": 1e-5,
        "qkv_bias": False,  # the _qkvb archs: True
        "qkv_bias_mode": "qv",  # BEiT's and EVA's layout: learned q and v biases, no k bias
        "dynamic_img_size": True,
        "num_classes": 0,
    },
    # timm's "searching for better baselines" (SBB) ViTs: no class token, 4 registers (reg1 archs: 1) outside the
    # position table, layer scale 1e-5, the patch mean through fc_norm (timm's default for global_pool="avg")
    "sbb_reg": {
        "class_token": False,
        "reg_tokens": 4,
        "no_embed_class": True,
        "init_values": 1e-5,
        "global_pool": "avg",
        "fc_norm": True,
    },
    "gap": {"class_token": False, "global_pool": "avg"},  # no class token, the patch mean, no fc_norm (timm's gap ViTs)
    "flexivit": {"no_embed_class": True},  # FlexiViT (Beyer et al. 2023): 240 px, position table of the patches only
    "tipsv2": {"init_values": 1.0, "reg_tokens": 1, "no_embed_class": True, "num_classes": 0},  # TIPSv2 image towers
    # EVA-01 g (Fang et al. 2023), timm's Eva without RoPE: q and v biases, the patch mean through fc_norm
    "eva": {"qkv_bias_mode": "qv", "global_pool": "avg", "fc_norm": True},
    # EVA-02 (Fang et al. 2024): RoPE on patch indices scaled to the 16 x 16 pretraining grid beside the learned
    # table, SwiGLU (Ti/S packed; B/L with a norm on the hidden units, _EVA02_BL), q and v biases, patch mean + fc_norm
    "eva02": {
        "rope": True,
        "rope_type": "eva",
        "rope_temperature": 10000.0,
        "rope_ref_grid": (16, 16),
        "qkv_bias_mode": "qv",
        "mlp_layer": "swiglu_packed",
        "act_layer": "silu",
        "global_pool": "avg",
        "fc_norm": True,
    },
    # RoPE-ViT (Heo et al. 2024, naver-ai/rope-vit) "axial": RoPE on x then y patch indices, period base 100, no
    # table (the _ape archs keep one, of the patches only), layer scale 1e-5
    "rope_vit": {
        "rope": True,
        "rope_type": "eva",
        "rope_temperature": 100.0,
        "rope_grid_indexing": "xy",
        "abs_pos_embed": False,
        "init_values": 1e-5,
    },
    # timm's SBB ViTs with RoPE (scaled to the 16 x 16 grid) instead of a table: registers, q/v biases, patch mean
    "sbb_rope": {
        "rope": True,
        "rope_type": "eva",
        "rope_temperature": 10000.0,
        "rope_ref_grid": (16, 16),
        "abs_pos_embed": False,
        "qkv_bias_mode": "qv",
        "init_values": 1e-5,
        "class_token": False,
        "reg_tokens": 1,
        "global_pool": "avg",
        "fc_norm": True,
    },
    # Perception Encoder (Bolya et al. 2025): a table and RoPE (x first, indices + 1, scaled to the pretraining
    # grid), a norm before the blocks, no patch bias; core: an 8-head attention pool over every token and a
    # projection head; lang and spatial (_PE_DENSE): no final norm, the patch mean
    "pe": {
        "rope": True,
        "rope_type": "eva",
        "rope_temperature": 10000.0,
        "rope_grid_offset": 1.0,
        "rope_grid_indexing": "xy",
        "pre_norm": True,
        "patch_bias": False,
        "layer_norm_eps": 1e-5,
        "global_pool": "map",
        "attn_pool_heads": 8,
        "pool_include_prefix": True,
    },
}
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
    img: int
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

_LETTER = {"tiny": "Ti", "small": "S", "base": "B", "large": "L", "huge": "H"}


def _config(spec: ArchSpec) -> ViTConfig:
    """The ViTConfig of one ``ARCH_SPECS`` entry: its size and family, then its own changes."""
    depth, dim, mlp, heads = SIZES[spec.size]
    sizes = dict(embed_dim=dim, depth=depth, mlp_dim=mlp, num_heads=heads)
    return ViTConfig(
        patch_size=(spec.patch, spec.patch),
        img_size=(spec.img, spec.img),
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
