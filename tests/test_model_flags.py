"""Each family flag of ``ViTConfig`` against timm's own module for that family: the same random weights (timm's
state dict, converted from timm's names: none for its VisionTransformer, the layer scales for its Eva) give the same
tokens, pooled features and logits, at the native size and at a
non-square dynamic size. Tiny towers (2 blocks, width 64) keep it fast; the flags are what is tested here, the
registered archs and checkpoints are tested in test_families.py."""

from __future__ import annotations

import pytest
import timm
import torch
from timm.models import eva

import vitzoo
from conftest import TOL, batch, fast_first, maxdiff, randomize_
from vitzoo.models.config import ViTConfig
from vitzoo.models.vit import VisionTransformer
from vitzoo.weights.formats import convert, from_timm_eva, to_timm

TINY = {"embed_dim": 64, "depth": 2, "num_heads": 4, "mlp_dim": 256, "num_classes": 10, "dynamic_img_size": True}
DINOV3 = {
    "rope": True,
    "abs_pos_embed": False,
    "reg_tokens": 4,
    "init_values": 1e-5,
    "layer_norm_eps": 1e-5,
    "qkv_bias": False,
    "qkv_bias_mode": "qv",
}
CLIP = {"pre_norm": True, "patch_bias": False, "layer_norm_eps": 1e-5}
EVA02 = {
    "patch_size": 14,
    "rope": True,
    "rope_type": "eva",
    "rope_temperature": 10000.0,
    "rope_ref_grid": (16, 16),
    "qkv_bias_mode": "qv",
    "act_layer": "silu",
    "mlp_layer": "swiglu_packed",
    "global_pool": "avg",
    "fc_norm": True,
}
EVA02_BL = {"mlp_layer": "swiglu", "mlp_norm": True}
# RoPE on x then y patch indices (RoPE-ViT; the Perception Encoder from index 1, scaled to its pretraining grid)
ROPE_VIT = {
    "rope": True,
    "rope_type": "eva",
    "rope_temperature": 100.0,
    "rope_grid_indexing": "xy",
    "abs_pos_embed": False,
}
PE = {
    **ROPE_VIT,
    "abs_pos_embed": True,
    "rope_temperature": 10000.0,
    "rope_grid_offset": 1.0,
    "rope_ref_grid": (24, 24),
    "pre_norm": True,
    "patch_bias": False,
    "layer_norm_eps": 1e-5,
    "global_pool": "map",
    "attn_pool_heads": 8,
    "pool_include_prefix": True,
}

# family: (timm arch, its extra kwargs, vitzoo flags)
CASES = {
    "deit_distilled": ("deit_tiny_distilled_patch16_224", {}, {"distilled": True}),
    "deit3": ("deit3_small_patch16_224", {}, {"no_embed_class": True, "init_values": 1e-6}),
    "dinov2": ("vit_small_patch14_dinov2", {}, {"patch_size": 14, "init_values": 1e-5}),
    "dinov2_reg4": (
        "vit_small_patch14_reg4_dinov2",
        {},
        {"patch_size": 14, "init_values": 1e-5, "reg_tokens": 4, "no_embed_class": True},
    ),
    "dinov2_giant_swiglu": (
        "vit_giant_patch14_dinov2",
        {"mlp_ratio": 4.0},
        {"patch_size": 14, "init_values": 1e-5, "mlp_layer": "swiglu_packed", "act_layer": "silu"},
    ),
    "clip": ("vit_base_patch16_clip_224", {}, CLIP),
    "clip_quickgelu": ("vit_base_patch16_clip_quickgelu_224", {}, {**CLIP, "act_layer": "quick_gelu"}),
    "siglip_map": ("vit_base_patch16_siglip_224", {}, {"class_token": False, "global_pool": "map"}),
    "siglip_map_gelu_tanh": (
        "vit_large_patch16_siglip_512",
        {},
        {"class_token": False, "global_pool": "map", "act_layer": "gelu_tanh"},
    ),
    "siglip_gap": ("vit_base_patch16_siglip_gap_224", {}, {"class_token": False, "global_pool": "avg"}),
    "dinov3": ("vit_small_patch16_dinov3", {"global_pool": "token"}, DINOV3),
    "dinov3_qkvb": ("vit_small_patch16_dinov3_qkvb", {"global_pool": "token"}, {**DINOV3, "qkv_bias": True}),
    "dinov3_swiglu": (
        "vit_small_plus_patch16_dinov3",
        {"global_pool": "token"},
        {**DINOV3, "mlp_layer": "swiglu", "act_layer": "silu"},
    ),
    # EVA-02: RoPE on scaled patch indices beside the table, q/v biases, SwiGLU packed (Ti) or split with the MLP
    # norm and separate q/k/v projections in timm (B), plus the norm inside attention (EVA-CLIP)
    "eva02": ("eva02_tiny_patch14_224", {"mlp_ratio": 4.0}, {**EVA02, "mlp_dim": 512}),
    "eva02_mlp_norm": ("eva02_base_patch14_224", {"mlp_ratio": 4.0}, {**EVA02, **EVA02_BL}),
    "eva02_clip_attn_norm": (
        "eva02_base_patch16_clip_224",
        {"mlp_ratio": 4.0},
        {**EVA02, **EVA02_BL, "patch_size": 16, "attn_norm": True, "global_pool": "token", "fc_norm": False},
    ),
    "eva01_qv_bias_no_rope": (
        "eva_giant_patch14_224",
        {"mlp_ratio": 4.0},
        {"patch_size": 14, "qkv_bias_mode": "qv", "global_pool": "avg", "fc_norm": True},
    ),
    "rope_vit_axial": ("vit_small_patch16_rope_224", {}, {**ROPE_VIT, "init_values": 1e-5}),
    "pe_core": ("vit_pe_core_tiny_patch16_384", {}, PE),
    "pe_no_final_norm": (
        "vit_pe_spatial_tiny_patch16_512",
        {},
        {**PE, "rope_ref_grid": (32, 32), "final_norm": False, "global_pool": "avg", "pool_include_prefix": False},
    ),
    "aimv2_rmsnorm_no_biases": (
        "aimv2_large_patch14_224",
        {"mlp_ratio": 4.0},
        {
            "patch_size": 14,
            "norm_layer": "rmsnorm",
            "layer_norm_eps": 1e-5,
            "patch_norm": True,
            "qkv_bias": False,
            "proj_bias": False,
            "mlp_layer": "swiglu",
            "act_layer": "silu",
            "class_token": False,
            "global_pool": "avg",
        },
    ),
    "radio_no_final_norm": (
        "vit_base_patch16_radio_v3",
        {},
        {"init_values": 1e-5, "reg_tokens": 7, "no_embed_class": True, "final_norm": False},
    ),
    "res_post_norm": (
        "vit_base_patch16_rpn_224",
        {},
        {
            "res_post_norm": True,
            "init_values": 1e-5,
            "class_token": False,
            "qkv_bias": False,
            "global_pool": "avg",
            "fc_norm": True,
        },
    ),
    "beit3_norms_inside": (
        "beit3_base_patch16_224",
        {},
        {"attn_norm": True, "mlp_norm": True, "global_pool": "avg", "fc_norm": True, "layer_norm_eps": 1e-5},
    ),
    "fc_norm_avg": (
        "vit_base_patch16_224",
        {"global_pool": "avg", "fc_norm": True},
        {"global_pool": "avg", "fc_norm": True},
    ),
}


@pytest.mark.parametrize("family", list(CASES))
def test_flags_equal_timm_with_the_same_weights(family):
    arch, timm_kw, flags = CASES[family]
    patch = flags.get("patch_size", 16)
    img = 5 * patch
    kw = {k: v for k, v in TINY.items() if k != "mlp_dim"}
    ref = timm.create_model(arch, pretrained=False, img_size=img, **kw, **timm_kw).eval()
    randomize_(ref)
    ours = VisionTransformer(ViTConfig(**{**TINY, **flags, "img_size": img})).eval()
    ours.load_state_dict(convert(ref.state_dict()).state_dict, strict=True)  # timm's names (Eva: its layer scales)
    for h, w in ((img, img), (img + 2 * patch, img - patch)):
        x = batch(h, w)
        with torch.no_grad():
            tokens, ref_tokens = ours.forward_features(x), ref.forward_features(x)
            assert maxdiff(tokens, ref_tokens) <= TOL, (family, h, w)
            pooled = ours.forward_head(tokens, pre_logits=True)
            assert maxdiff(pooled, ref.forward_head(ref_tokens, pre_logits=True)) <= TOL, (family, h, w)
            assert maxdiff(ours(x), ref(x)) <= TOL, (family, h, w)  # forward computes the class rows only
            assert maxdiff(ours.forward_head(tokens), ours(x)) <= TOL


def test_features_of_an_fc_norm_model_are_normed_after_pooling():
    arch, timm_kw, flags = CASES["fc_norm_avg"]
    kw = {k: v for k, v in TINY.items() if k != "mlp_dim"}
    ref = timm.create_model(arch, pretrained=False, img_size=80, **kw, **timm_kw).eval()
    randomize_(ref)
    ours = VisionTransformer(ViTConfig(**{**TINY, **flags, "img_size": 80})).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = batch(80, 80)
    with torch.no_grad():
        tokens = ref.forward_features(x)  # not normed: the norm runs on the pooled vector (fc_norm)
        want = {"avg": ref.forward_head(tokens, pre_logits=True), "token": ref.fc_norm(tokens[:, 0])}
    for pool in (None, "avg", "token"):
        feats = vitzoo.extract_features(ours, x, pool=pool, progress=False, num_workers=0)
        assert maxdiff(feats, want[pool or "avg"]) <= TOL, pool


@torch.no_grad()
def test_q_and_v_biases_are_a_flag_of_their_own_equal_to_timms_eva():
    """``qkv_bias_mode="qv"`` (learned q and v biases, no k bias) is independent of ``rope``: with a learned position
    table it is timm's ``Eva`` with its defaults (the BEiT / EVA layout), with the same parameter count."""
    img, kw = 80, {k: v for k, v in TINY.items() if k != "mlp_dim"}
    ref = randomize_(eva.Eva(img_size=img, global_pool="token", init_values=1e-5, **kw)).eval()
    ours = VisionTransformer(ViTConfig(**TINY, img_size=img, init_values=1e-5, qkv_bias_mode="qv")).eval()
    assert ours.pos_embed is not None and ours.blocks[0].attn.qkv.bias is None
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    ours.load_state_dict(from_timm_eva(ref.state_dict()).state_dict, strict=True)
    for h, w in ((img, img), (img + 32, img - 16)):
        x = batch(h, w)
        assert maxdiff(ours.forward_features(x), ref.forward_features(x)) <= TOL, (h, w)
        assert maxdiff(ours(x), ref(x)) <= TOL, (h, w)


def test_rotary_positions_do_not_pick_the_bias_layout():
    rope = {"rope": True, "abs_pos_embed": False, "init_values": 1e-5, "num_classes": 0}
    fused = VisionTransformer(ViTConfig(**{**TINY, **rope}))
    assert fused.pos_embed is None and fused.blocks[0].attn.qkv.bias is not None
    assert {"blocks.0.attn.q_bias", "blocks.0.attn.v_bias"}.isdisjoint(fused.state_dict())
    assert "blocks.0.ls1.gamma" in fused.state_dict()  # one layer-scale form, whatever the positions
    qv = VisionTransformer(ViTConfig(**{**TINY, **rope, "qkv_bias_mode": "qv"}))
    assert qv.blocks[0].attn.qkv.bias is None and qv.blocks[0].attn.q_bias is not None
    with pytest.raises(vitzoo.ConfigError, match="qkv_bias_mode must be one of"):
        ViTConfig(qkv_bias_mode="qkv_separate")


def test_to_timm_gives_evas_names_to_rotary_models_only():
    dinov3 = VisionTransformer(ViTConfig(**{**TINY, **DINOV3, "qkv_bias": True}))
    names = to_timm(dinov3.state_dict(), dinov3.config)
    assert "blocks.1.gamma_2" in names and "blocks.1.ls2.gamma" not in names and "blocks.1.attn.q_bias" in names
    assert from_timm_eva(names).state_dict.keys() == dinov3.state_dict().keys()
    deit3 = VisionTransformer(ViTConfig(**TINY, init_values=1e-6, no_embed_class=True))
    assert to_timm(deit3.state_dict(), deit3.config).keys() == deit3.state_dict().keys()


@torch.no_grad()
def test_drop_remainder_never_sees_the_last_pixels_and_is_refused_otherwise():
    cfg = ViTConfig(patch_size=14, img_size=62, embed_dim=48, depth=1, num_heads=3, mlp_dim=96, drop_remainder=True)
    model = VisionTransformer(cfg).eval()
    assert model.grid_size == (4, 4)
    x = batch(62, 62)
    y = x.clone()
    y[:, :, 56:, :] = 7.0  # the 6 rows and columns past the last whole patch
    y[:, :, :, 56:] = -7.0
    assert maxdiff(model(x), model(y)) == 0.0
    with pytest.raises(vitzoo.ConfigError, match="drop_remainder=True ignores"):
        ViTConfig(patch_size=14, img_size=62, embed_dim=48, depth=1, num_heads=3, mlp_dim=96)


@pytest.mark.parametrize(
    "arch",
    fast_first(["vit_relpos_small_patch16_224", "vit_relpos_base_patch16_clsgap_224", "vit_srelpos_small_patch16_224"]),
)
def test_the_simple_relative_position_bias_equals_timms(arch):
    """``rel_pos_type="bias"``: timm's RelPosBias (a learned table per offset; the class token's three rows), per
    block and shared, against timm's relpos ViT built with rel_pos_type='bias'. The table is for the built grid."""
    kw = {"embed_dim": 64, "depth": 2, "num_heads": 4, "num_classes": 10, "img_size": 80}
    ref = randomize_(timm.create_model(arch, pretrained=False, rel_pos_type="bias", **kw)).eval()
    ours = vitzoo.create_model(arch, rel_pos_type="bias", mlp_dim=256, **kw).eval()
    ours.load_state_dict(convert(ref.state_dict()).state_dict, strict=True)
    x = batch(80, 80)
    with torch.no_grad():
        assert maxdiff(ours.forward_features(x), ref.forward_features(x)) <= TOL
        assert maxdiff(ours(x), ref(x)) <= TOL
        with pytest.raises(vitzoo.InputError, match="does not match the model's img_size"):
            ours.forward_features(batch(96, 80))
        ours.set_input_size((96, 80))  # the table is not resampled (timm's is): refused, not wrong
        with pytest.raises(vitzoo.InputError, match="5x5 patch grid, this input is 6x5"):
            ours.forward_features(batch(96, 80))
    with pytest.raises(vitzoo.ConfigError, match="without dynamic_img_size"):
        vitzoo.create_model(arch, rel_pos_type="bias", dynamic_img_size=True, **kw)


@pytest.mark.parametrize("num_classes", fast_first([10, 0]))
def test_differential_attention_equals_timms(num_classes):
    """``attn_type="diff"``: timm's DiffAttention (two softmax maps per head, lambda per block, the per-head RMS norm)
    in timm's SBB register ViT, the same random weights; the lambdas are scaled up so they matter."""
    kw = {"embed_dim": 64, "depth": 3, "num_heads": 4, "num_classes": num_classes, "img_size": 64}
    ref = randomize_(timm.create_model("vit_wee_patch16_reg1_gap_256", attn_layer="diff", mlp_ratio=2, **kw)).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "lambda" in name:
                p.mul_(10)
    ours = vitzoo.create_model("vit_wee_patch16_reg1_gap_256", attn_type="diff", mlp_dim=128, **kw).eval()
    ours.load_state_dict(convert(ref.state_dict()).state_dict, strict=True)
    x = batch(64, 64)
    with torch.no_grad():
        assert maxdiff(ours.forward_features(x), ref.forward_features(x)) <= TOL
        assert maxdiff(ours(x), ref(x)) <= TOL
    with pytest.raises(vitzoo.ConfigError, match="differential attention"), vitzoo.capture_attention(ours):
        pass


@pytest.mark.parametrize(
    ("arch", "attn_type"),
    [("vit_pwee_patch16_reg1_gap_256", "standard"), ("vit_dpwee_patch16_reg1_gap_256", "diff")],
)
def test_parallel_blocks_equal_timms(arch, attn_type):
    """``block_type="parallel"``: timm's ParallelScalingBlock (pwee) and DiffParallelScalingBlock (dpwee), the same
    random weights (the lambdas scaled up so they matter); the class token's rows alone in the last block too."""
    kw = {"embed_dim": 64, "depth": 3, "num_heads": 4, "num_classes": 10, "img_size": 64}
    ref = randomize_(timm.create_model(arch, mlp_ratio=2, **kw)).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "lambda" in name:
                p.mul_(10)
    ours = vitzoo.create_model(arch, mlp_dim=128, **kw).eval()
    assert ours.config.block_type == "parallel" and ours.config.attn_type == attn_type
    ours.load_state_dict(convert(ref.state_dict()).state_dict, strict=True)  # timm's names, no renames
    x = batch(64, 64)
    with torch.no_grad():
        assert maxdiff(ours.forward_features(x), ref.forward_features(x)) <= TOL
        assert maxdiff(ours(x), ref(x)) <= TOL
    with torch.no_grad():  # the class token's rows alone in the last block (a qkv-bias-free, class-token build)
        tok = vitzoo.create_model(arch, mlp_dim=128, class_token=True, global_pool="token", qkv_bias=False, **kw)
        tok.eval()
        assert maxdiff(tok(x), tok.forward_head(tok.forward_features(x))) <= 1e-5
    ours.train()
    ours(x).square().mean().backward()  # every parameter takes part
    assert all(p.grad is not None for p in ours.parameters())


def test_parallel_blocks_refuse_what_they_are_built_without():
    with pytest.raises(vitzoo.ConfigError, match=r"block_type='parallel'.*rope, mlp_layer='swiglu'"):
        vitzoo.create_model("vit_small_patch16_dinov3", block_type="parallel", mlp_layer="swiglu")
    with pytest.raises(vitzoo.ConfigError, match="block_type must be"):
        vitzoo.create_model("vit_pwee_patch16_reg1_gap_256", block_type="sequential")


def test_grouped_query_attention_and_q_k_norms_say_what_they_need():
    cfg = vitzoo.create_model("vit_large_patch16_sapiens2", device="meta").config
    assert [cfg.kv_heads(i) for i in (0, 7, 8, 15, 16, 23)] == [16, 16, 8, 8, 16, 16]  # first and last 8 blocks full
    with pytest.raises(vitzoo.ConfigError, match="num_kv_heads must divide num_heads 16"):
        vitzoo.create_model("vit_large_patch16_sapiens2", num_kv_heads=3, device="meta")
    with pytest.raises(vitzoo.ConfigError, match=r"num_kv_heads .* takes the qkv bias layout 'qkv'"):
        vitzoo.create_model("vit_small_patch16_dinov3_qkvb", num_kv_heads=3, device="meta")
    with pytest.raises(vitzoo.ConfigError, match="takes no qk_norm or num_kv_heads"):
        vitzoo.create_model("vit_dwee_patch16_reg1_gap_256", qk_norm=True, device="meta")
