"""One checkpoint of every family, by its tag, through the loopback Hub: vitzoo equals timm on the same weights.

Each repo is what timm's ``save_for_hf`` writes for a model of that arch with random weights (real widths, patch
and image sizes; two blocks, to keep the suite fast: every block runs the same code, and the full shapes of every
arch are compared with timm's in test_archs.py). ``create_model(tag, pretrained=True)`` downloads it from the
repo the registry names (the QuickGELU tag reads its GELU twin's repo, as timm does). Tokens
(``forward_features``), pooled features (``forward_head(pre_logits=True)``) and the output (logits, CLIP's joint
embedding, SigLIP's MAP output) equal timm's within TOL at the native size and, with ``dynamic_img_size=True`` on
both sides, at a non-square size.
"""

from __future__ import annotations

import pytest
import timm
import torch
from timm.data import resolve_data_config
from timm.models import get_pretrained_cfg

import vitzoo
from conftest import TOL, batch, fast_first, maxdiff, timm_repo
from vitzoo.weights.pretrained import PRETRAINED

DEPTH = 2
TAGS = [
    "deit_tiny_distilled_patch16_224.fb_in1k",
    "deit3_small_patch16_224.fb_in1k",
    "vit_small_patch8_224.dino",
    "vit_small_patch14_dinov2.lvd142m",
    "vit_small_patch14_reg4_dinov2.lvd142m",
    "vit_base_patch32_clip_224.laion2b",
    "vit_base_patch32_clip_quickgelu_224.openai",
    "vit_base_patch16_siglip_224.webli",
    "vit_base_patch32_siglip_256.v2_webli",
    "vit_base_patch16_siglip_gap_224.webli",
    "vit_small_patch16_dinov3.lvd1689m",
    "vit_small_plus_patch16_dinov3_qkvb.lvd1689m",
    # the smallest arch of each group registered from timm's own entry points (their flags were there already)
    "vit_small_r26_s32_224.augreg_in21k_ft_in1k",  # hybrid with all four ResNet stages (stride 32)
    "vit_tiny_r_s16_p8_224.augreg_in21k_ft_in1k",  # the ResNet stem alone, 8 x 8 patches of its map
    "flexivit_small.300ep_in1k",
    "vit_xsmall_patch16_clip_224.tinyclip_yfcc15m",
    "vit_wee_patch16_reg1_gap_256.sbb_in1k",
    "vit_medium_patch16_gap_256.sw_in12k_ft_in1k",
    "vit_so150m_patch16_reg4_gap_256.sbb_e250_in12k_ft_in1k",  # registers inside the position table, no fc_norm
    "vit_so150m2_patch16_reg1_gap_256.sbb_e200_in12k_ft_in1k",
    "vit_base_patch16_224_miil.in21k_ft_in1k",
    "eva_large_patch14_196.in22k_ft_in1k",
    "vit_base_patch14_reg1_tipsv2.webli",
    # EVA-02: fused q/k/v and a packed SwiGLU (Ti); separate q/k/v projections and the MLP norm (B); the EVA-CLIP
    # tower with the norm inside attention; EVA-01 g (timm's Eva without RoPE)
    "eva02_tiny_patch14_224.mim_in22k",
    "eva02_base_patch14_224.mim_in22k",
    "eva02_base_patch16_clip_224.merged2b",
    "eva_giant_patch14_clip_224.laion400m",
    # RoPE-ViT axial, without and with a table; timm's SBB RoPE ViT; Perception Encoder core (RoPE x first from index
    # 1, an 8-head attention pool over the class token too), spatial and lang (no final norm)
    "vit_small_patch16_rope_224.naver_in1k",
    "vit_small_patch16_rope_ape_224.naver_in1k",
    "vit_medium_patch16_rope_reg1_gap_256.sbb_in1k",
    "vit_pe_core_tiny_patch16_384.fb",
    "vit_pe_spatial_tiny_patch16_512.fb",
    "vit_pe_lang_large_patch14_448.fb",
    # no final norm: C-RADIO (7 registers outside the table), InternViT-300M (layer scale 0.1); AIMv2 (RMSNorm, the
    # patch embedding normed, SwiGLU and projections without biases, no class token)
    "vit_base_patch16_radio_v3.c_radio",
    "vit_intern300m_patch14_448.ogvl_dist",
    "aimv2_large_patch14_224.apple_pt",
    "vit_so400m_patch14_siglip_gap_384.webli",  # 384 px at patch 14: the last 6 pixels unseen, as timm
    "beit3_base_patch16_224.in22k_ft_in1k",  # norms inside attention and the MLP, without RoPE or SwiGLU
    "vit_base_patch16_rpn_224.sw_in1k",  # res-post-norm: each branch normed at its output
    "eva02_enormous_patch14_clip_224.laion2b",
    "vit_relpos_small_patch16_224.sw_in1k",  # relative position MLP in every block, no position table
    "vit_srelpos_small_patch16_224.sw_in1k",  # one shared relative position MLP
    "vit_relpos_medium_patch16_cls_224.sw_in1k",  # with a class token (no bias on its row and column)
    "vit_small_patch16_rope_mixed_224.naver_in1k",  # RoPE-Mixed: learned frequencies per block and head
    "vit_small_patch16_rope_mixed_ape_224.naver_in1k",
    "vit_small_patch16_lingbot.robbyant",  # LingBot-Vision: DINOv3's network, weights outside timm/ (belfner/)
    "vit_dwee_patch16_reg1_gap_256.sbb_in1k",  # differential attention
    "vit_dpwee_patch16_reg1_gap_256.sbb_nadamuon_in1k",  # parallel blocks with differential attention
]


def _timm(arch: str, state_dict, num_classes: int, dynamic: bool, size: tuple[int, int]) -> torch.nn.Module:
    # DINOv3: vitzoo pools the class token (upstream's and transformers' choice); timm's Eva needs to be told
    kw: dict = {"global_pool": "token"} if "dinov3" in arch else {}
    # timm's relative-position ViT has no dynamic size: it is built at the size (its weights fit any grid)
    kw |= {"img_size": size} if "relpos" in arch else {"dynamic_img_size": dynamic}
    with torch.device("meta"):
        model = timm.create_model(arch, depth=DEPTH, num_classes=num_classes, **kw)
    model.load_state_dict(state_dict, strict=True, assign=True)
    if any(b.is_meta for b in model.buffers()):  # non-persistent buffers (RoPE tables, Eva's zero k bias): build on CPU
        model = timm.create_model(arch, depth=DEPTH, num_classes=num_classes, **kw)
        model.load_state_dict(state_dict, strict=True)
    return model.eval()


# `pytest` runs every tag. The fast suite runs two: the distillation token, and DINOv3 S+ (RoPE, storage tokens,
# q/v biases, the split SwiGLU, layer scale); the other flags have fast tests of their own (test_model_flags.py,
# test_families_features.py, test_hybrid.py).
FAST = (
    "deit_tiny_distilled_patch16_224.fb_in1k",
    "vit_small_plus_patch16_dinov3_qkvb.lvd1689m",
)


@pytest.mark.parametrize("tag", fast_first(TAGS, FAST))
@torch.no_grad()
def test_tag_through_the_hub_equals_timm(tag, hub, tmp_path):
    facts = PRETRAINED[tag]
    arch = facts.arch
    ref, files = timm_repo(arch, tmp_path, num_classes=facts.num_classes, safe=True, depth=DEPTH)
    assert facts.hf_hub_id is not None
    hub.add_commit(facts.hf_hub_id, files)
    state_dict = ref.state_dict()
    h, w = facts.img_size
    patch = vitzoo.create_model(arch, device="meta").patch_size[0]
    other = ((h // patch + 2) * patch, (w // patch - 1) * patch)  # timm's dynamic path needs whole patches
    for size, dynamic in (((h, w), False), (other, True)):
        ours = vitzoo.create_model(tag, pretrained=True, depth=DEPTH, dynamic_img_size=dynamic).eval()
        assert ours.load_report is not None and not ours.load_report.missing and not ours.load_report.unexpected
        theirs = _timm(arch, state_dict, facts.num_classes, dynamic, size)
        x = batch(*size, n=2 if h <= 256 else 1)  # rows must not mix; DINOv2's 518 px (1,369 patches) one image:
        # every family runs two in test_families_features
        tokens, ref_tokens = ours.forward_features(x), theirs.forward_features(x)
        assert maxdiff(tokens, ref_tokens) <= TOL, (tag, size, "tokens")
        pooled = ours.forward_head(tokens, pre_logits=True)
        assert maxdiff(pooled, theirs.forward_head(ref_tokens, pre_logits=True)) <= TOL, (tag, size, "pooled")
        assert maxdiff(ours(x), theirs(x)) <= TOL, (tag, size, "output")


@pytest.mark.slow  # 418 tags: a registry check for CI, not the edit loop
def test_every_tags_data_config_equals_timms():
    """The eval recipe of every registered tag (size, resize filter, mean/std, crop) is timm's pretrained_cfg's."""
    keys = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")
    wrong = {}
    for tag in vitzoo.list_models(pretrained=True):
        ours = vitzoo.resolve_data_config(tag)
        theirs = resolve_data_config(pretrained_cfg=get_pretrained_cfg(tag).to_dict())
        if tuple(getattr(ours, k) for k in keys) != tuple(theirs[k] for k in keys):
            wrong[tag] = (ours, theirs)
    assert not wrong, wrong
