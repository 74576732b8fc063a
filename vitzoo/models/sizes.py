"""Model sizes and the families' flags, as plain data: the two tables every ``ArchSpec`` row builds on.

Sizes are Table 1 of Dosovitskiy et al. (ICLR 2021): Layers, Hidden size D, MLP size, Heads. Tiny and Small are not
in the paper; they come from the official repo's ``vit_jax/configs/models.py`` (DeiT's sizes) and serve fast tests.
"""

from __future__ import annotations

from typing import Any

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
    "enormous": (64, 1792, 15360, 16),  # EVA-02 E/14 CLIP tower (res-post-norm)
    "giant_lingbot": (40, 1536, 4096, 24),  # LingBot-Vision G/16: SwiGLU of 4096 (DINOv2 g's width, gate and up apart)
    # Sapiens2 (Khirodkar et al. 2026): a packed SwiGLU of 2 x 4D (gate and up), the fc1 width given here
    "sapiens2_base": (12, 768, 6144, 12),
    "sapiens2_large": (24, 1024, 8192, 16),
    "sapiens2_huge": (32, 1280, 10240, 16),
    "sapiens2_giant": (40, 1536, 12288, 24),
    "sapiens2_5b": (56, 2432, 19456, 32),
    "pe_gigantic": (50, 1536, 8960, 16),  # Perception Encoder G/14 (Bolya et al. 2025)
    "aimv2_large": (24, 1024, 2816, 8),  # AIMv2 (Fini et al. 2025): SwiGLU widths int(D * mlp_ratio)
    "aimv2_huge": (24, 1536, 4096, 12),
    "aimv2_1b": (24, 2048, 5632, 16),
    "aimv2_3b": (24, 3072, 8192, 24),
    # timm's own in-between sizes (timm/models/vision_transformer.py entry points; mlp = int(D * mlp_ratio))
    "xsmall": (10, 256, 1024, 4),  # TinyCLIP ViT-XS (vit_xsmall_patch16_clip_224)
    "wee": (14, 256, 1280, 4),  # timm SBB "wee", mlp_ratio 5
    "pwee": (16, 256, 1280, 4),  # timm SBB "pwee" (parallel blocks), mlp_ratio 5
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
    # BEiT-3 (Wang et al. 2023) image towers as timm remaps them: a norm inside attention and inside the MLP, the
    # patch mean through fc_norm
    "beit3": {"attn_norm": True, "mlp_norm": True, "global_pool": "avg", "fc_norm": True, "layer_norm_eps": 1e-5},
    # timm's res-post-norm ViT (vit_base_patch16_rpn_224): norms after each branch, weights starting at 1e-5; no class
    # token, no q/k/v biases, the patch mean through fc_norm
    "rpn": {
        "res_post_norm": True,
        "init_values": 1e-5,
        "class_token": False,
        "qkv_bias": False,
        "global_pool": "avg",
        "fc_norm": True,
    },
    # timm's relative-position ViTs (vision_transformer_relpos): no position table, a bias from an MLP of log-spaced
    # patch offsets in every block (srelpos: one for all), no class token, layer scale 1e-6, no q/k/v biases
    "relpos": {
        "rel_pos": True,
        "abs_pos_embed": False,
        "class_token": False,
        "global_pool": "avg",
        "init_values": 1e-6,
        "qkv_bias": False,
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
    # RoPE-Mixed (Heo et al. 2024): learned frequencies per block and head (rope.freqs), base 10, a class token
    "rope_mixed": {
        "rope": True,
        "rope_type": "mixed",
        "rope_temperature": 10.0,
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
    # NVIDIA C-RADIO v3 / v4 (timm's fixed-size VisionTransformer reading): class token plus 7 (v4: 9) registers
    # outside the table, no final norm; the summary is the class token
    "radio": {"reg_tokens": 7, "no_embed_class": True, "final_norm": False, "num_classes": 0},
    # InternViT-300M (OpenGVLab), InternVL 2.5's image encoder: layer scale 0.1, no final norm, any size
    # AIMv2 (Fini et al. 2025, Apple): RMSNorm everywhere (the patch embedding too), SwiGLU, no biases but the
    # patch projection's, no class token, the patch mean of the normed tokens
    "aimv2": {
        "norm_layer": "rmsnorm",
        "layer_norm_eps": 1e-5,
        "patch_norm": True,
        "qkv_bias": False,
        "proj_bias": False,
        "mlp_layer": "swiglu",
        "act_layer": "silu",
        "class_token": False,
        "global_pool": "avg",
        "num_classes": 0,
    },
    "internvit": {"init_values": 0.1, "final_norm": False, "dynamic_img_size": True, "num_classes": 0},
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
# LingBot-Vision (Fu et al. 2026): DINOv3's network with q and v biases (G/16: none, set on its arch), at 512 px
FAMILIES["lingbot"] = {**FAMILIES["dinov3"], "qkv_bias": True}
# Sapiens2 (Meta, human-centric; timm's Eva with attn_type="rope"): DINOv3's RoPE and prefix layout with 8 storage
# tokens, RMSNorm, q/k norms, q/k/v biases, a packed SwiGLU, layer scale 1.0 on the attention branch only, and
# grouped-query attention in all but the first and last 8 blocks (num_kv_heads per arch); 1024 x 768 portraits
FAMILIES["sapiens2"] = {
    **FAMILIES["dinov3"],
    "reg_tokens": 8,
    "init_values": 1.0,
    "mlp_layer_scale": False,
    "norm_layer": "rmsnorm",
    "layer_norm_eps": 1e-6,
    "qk_norm": True,
    "qkv_bias": True,
    "qkv_bias_mode": "qkv",
    "mlp_layer": "swiglu_packed",
    "act_layer": "silu",
    "full_attn_blocks": 8,
}
