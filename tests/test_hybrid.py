"""R50+ViT-B/16 against timm's hybrid ViT (ResNetV2 stem + HybridEmbed) on the same random weights (max abs diff
<= TOL).

The hybrid code paths (weight-standardised "SAME" convolutions, GroupNorm bottlenecks, stage strides, the 1x1
embedding, position tables at other sizes, the JAX layout) are the same for any stage depths and any ViT width, so
most tests run a reduced hybrid: one bottleneck per CNN stage, ViT-Ti widths, two blocks, built by timm from the
same classes its ``vit_base_r50_s16_*`` entries use (checked against the registered model below). The full-size
R50+ViT-B/16 is compared once, in a test marked slow; its shapes and parameter count are checked on the meta device.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import timm
import torch
from timm.models.vision_transformer import _load_weights, checkpoint_filter_fn

import vitzoo
from conftest import TOL, batch, folder_files, maxdiff, randomize_, save_safetensors, to_npz

STAGES = (1, 1, 1)  # one bottleneck per stage instead of (3, 4, 9): same strides (4, 8, 16) and channels
SMALL = dict(embed_dim=192, depth=2, num_heads=3)  # ViT-Ti widths, two blocks
OURS_SMALL = dict(hybrid_layers=STAGES, mlp_dim=768, **SMALL)


def timm_hybrid(layers=STAGES, img_size: int | tuple[int, int] = 224, num_classes: int = 1000, **vit):
    """timm's hybrid ViT built as ``vit_base_r50_s16_*`` builds it (timm's ``_resnetv2`` + ``HybridEmbed``), with
    ``layers`` CNN blocks per stage."""
    from timm.layers import HybridEmbed, StdConv2dSame
    from timm.models.resnetv2 import ResNetV2
    from timm.models.vision_transformer import VisionTransformer

    backbone = ResNetV2(
        layers=layers,
        num_classes=0,
        global_pool="",
        in_chans=3,
        preact=False,
        stem_type="same",
        conv_layer=partial(StdConv2dSame, eps=1e-8),
    )
    vit = {"embed_dim": 768, "depth": 12, "num_heads": 12, **vit}
    return VisionTransformer(
        img_size=img_size,
        patch_size=1,
        num_classes=num_classes,
        embed_layer=partial(HybridEmbed, backbone=backbone),
        **vit,
    )


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The reduced timm hybrid at 224 with random weights, and its state dict saved as safetensors."""
    torch.manual_seed(0)
    ref = randomize_(timm_hybrid(**SMALL), seed=7).eval()
    return ref, save_safetensors(ref.state_dict(), tmp_path_factory.mktemp("hybrid") / "r50.safetensors")


def test_the_reduced_timm_builder_is_timms_registered_hybrid():
    """With (3, 4, 9) and ViT-B widths the helper above builds exactly timm's vit_base_r50_s16_224 (names, shapes)."""
    with torch.device("meta"):
        assert _shapes(timm_hybrid((3, 4, 9))) == _shapes(timm.create_model("vit_base_r50_s16_224", num_classes=1000))


@pytest.mark.parametrize("size", [224, 288, (160, 256)], ids=str)
@torch.no_grad()
def test_logits_match_timm(small, size):
    ref, path = small
    ours = vitzoo.create_model("vit_base_r50_s16_224", pretrained=path, img_size=size, **OURS_SMALL).eval()
    if size != 224:
        ref_sd = ref.state_dict()
        ref = timm_hybrid(img_size=size, **SMALL).eval()
        ref.load_state_dict(checkpoint_filter_fn(ref_sd, ref))  # timm resamples the position table its own way
        assert "pos_embed" in ours.load_report.resized
    x = batch(*((size, size) if isinstance(size, int) else size), n=1)
    assert maxdiff(ours(x), ref(x)) <= TOL
    _, inter = ours.forward_intermediates(x, indices=2)
    _, ref_inter = ref.forward_intermediates(x, indices=2)
    assert len(inter) == len(ref_inter) == 2
    assert all(maxdiff(a, b) <= TOL for a, b in zip(inter, ref_inter, strict=True))


@torch.no_grad()
def test_backbone_feature_maps_match_timm_stage_by_stage(small):
    ref, path = small
    ours = vitzoo.create_model("vit_base_r50_s16_224", pretrained=path, **OURS_SMALL).eval()
    x = batch(224, n=1)
    feats = ours.forward_backbone(x)
    bb = ref.patch_embed.backbone
    want = [bb.stem(x)]
    for stage in bb.stages:
        want.append(stage(want[-1]))
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 56, 56), (256, 56, 56), (512, 28, 28), (1024, 14, 14)]
    assert all(maxdiff(a, b) <= TOL for a, b in zip(feats, want, strict=True))


@torch.no_grad()
def test_structure_params_and_input_checks():
    model = vitzoo.create_model("R50+ViT-B/16", device="meta")
    assert model.config.hybrid_layers == (3, 4, 9) and model.grid_size == (14, 14)
    with torch.device("meta"):
        ref = timm.create_model("vit_base_r50_s16_224", num_classes=1000)
    assert _shapes(model) == _shapes(ref)
    big = vitzoo.create_model("vit_base_r50_s16_384", device="meta")
    with torch.device("meta"):
        ref384 = timm.create_model("vit_base_r50_s16_384")
    assert sum(p.numel() for p in big.parameters()) == sum(p.numel() for p in ref384.parameters()) == 98_950_952
    small = vitzoo.create_model("vit_base_r50_s16_224", num_classes=0, **OURS_SMALL).eval()
    with pytest.raises(vitzoo.ConfigError, match="patch_size must be 16"):
        small.set_input_size(patch_size=8)
    dyn = vitzoo.create_model("vit_base_r50_s16_224", num_classes=0, dynamic_img_size=True, **OURS_SMALL).eval()
    assert dyn(batch(160, 96, n=1)).shape == (1, 192)


@pytest.mark.slow
@torch.no_grad()
def test_full_size_r50_vit_b16_at_384_matches_timm(tmp_path):
    """The real shapes: R50 (3, 4, 9) + ViT-B/16, 12 blocks, at 384."""
    torch.manual_seed(0)
    ref = randomize_(timm.create_model("vit_base_r50_s16_384", num_classes=1000), seed=7).eval()
    ours = vitzoo.create_model(
        "vit_base_r50_s16_384", pretrained=save_safetensors(ref.state_dict(), tmp_path / "r50.safetensors")
    ).eval()
    x = batch(384, n=1)
    assert maxdiff(ours(x), ref(x)) <= TOL
    _, inter = ours.forward_intermediates(x, indices=2)
    _, ref_inter = ref.forward_intermediates(x, indices=2)
    assert all(maxdiff(a, b) <= TOL for a, b in zip(inter, ref_inter, strict=True))


def _hybrid_npz(model: torch.nn.Module, path) -> None:
    """timm hybrid -> the original JAX layout (conv_root, gn_root, block{i}/unit{j}/..., Transformer/...)."""

    to_npz(model, path)
    w = dict(np.load(path))
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    bb = "patch_embed.backbone."
    w["conv_root/kernel"] = sd[bb + "stem.conv.weight"].transpose(2, 3, 1, 0)
    w["gn_root/scale"], w["gn_root/bias"] = sd[bb + "stem.norm.weight"], sd[bb + "stem.norm.bias"]
    for s, stage in enumerate(model.patch_embed.backbone.stages):
        for b in range(len(stage.blocks)):
            src, dst = f"{bb}stages.{s}.blocks.{b}.", f"block{s + 1}/unit{b + 1}/"
            for r in (1, 2, 3):
                w[f"{dst}conv{r}/kernel"] = sd[f"{src}conv{r}.weight"].transpose(2, 3, 1, 0)
                w[f"{dst}gn{r}/scale"] = sd[f"{src}norm{r}.weight"].reshape(1, 1, 1, -1)  # old flax GN shape
                w[f"{dst}gn{r}/bias"] = sd[f"{src}norm{r}.bias"].reshape(1, 1, 1, -1)
            if f"{src}downsample.conv.weight" in sd:
                w[f"{dst}conv_proj/kernel"] = sd[f"{src}downsample.conv.weight"].transpose(2, 3, 1, 0)
                w[f"{dst}gn_proj/scale"], w[f"{dst}gn_proj/bias"] = (
                    sd[f"{src}downsample.norm.weight"],
                    sd[f"{src}downsample.norm.bias"],
                )
    np.savez(path, **w)


@torch.no_grad()
def test_npz_round_trip_against_timm_npz_loader(small, tmp_path):
    src, _ = small
    _hybrid_npz(src, tmp_path / "r50.npz")
    ref = timm_hybrid(**SMALL).eval()
    _load_weights(ref, str(tmp_path / "r50.npz"))  # timm's own reader is the reference
    ours = vitzoo.create_model("vit_base_r50_s16_224", pretrained=str(tmp_path / "r50.npz"), **OURS_SMALL).eval()
    assert any("hybrid" in n for n in ours.load_report.notes)
    x = batch(224, n=1)
    assert maxdiff(ours(x), ref(x)) <= TOL
    assert maxdiff(ours(x), src(x)) <= TOL  # the round trip returns the original numbers


@torch.no_grad()
def test_saved_hybrid_round_trips_through_the_hub_with_its_stages_and_facts(small, hub, tmp_path):
    """save_pretrained keeps hybrid_layers and the tag's facts; hf-hub: rebuilds the same reduced hybrid."""
    ref, path = small
    tagged = vitzoo.create_model("vit_base_r50_s16_384.orig_in21k_ft_in1k", img_size=224, **OURS_SMALL)
    vitzoo.load_pretrained(tagged, path)
    hub.add_commit("someone/r50-vit-small", folder_files(vitzoo.save_pretrained(tagged, tmp_path / "saved")))
    model = vitzoo.create_model("hf-hub:someone/r50-vit-small", pretrained=True).eval()
    assert model.config == tagged.config and model.config.hybrid_layers == STAGES
    assert model.pretrained_cfg.name == "vit_base_r50_s16_384.orig_in21k_ft_in1k"
    assert model.pretrained_cfg.top1 == vitzoo.get_pretrained_cfg("vit_base_r50_s16_384.orig_in21k_ft_in1k").top1
    x = batch(224, n=1)
    assert maxdiff(model(x), ref(x)) <= TOL
