"""R50x1+ViT-B/16 against timm's vit_base_r50_s16_* on the same random weights (max abs diff <= 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from timm.models.vision_transformer import _load_weights, checkpoint_filter_fn

import vitzoo
from conftest import randomize_, timm_repo

TOL = 1e-4


@pytest.fixture(scope="module")
def timm_hybrid():
    torch.manual_seed(0)
    return randomize_(timm.create_model("vit_base_r50_s16_384", num_classes=1000), seed=7).eval()


def _x(size: int | tuple[int, int]) -> torch.Tensor:
    h, w = (size, size) if isinstance(size, int) else size
    return torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("size", [384, 448, (320, 416)], ids=str)
@torch.no_grad()
def test_logits_match_timm(timm_hybrid, size, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "r50.safetensors"
    save_file(timm_hybrid.state_dict(), str(path))
    ours = vitzoo.create_model("vit_base_r50_s16_384", pretrained=str(path), img_size=size).eval()
    ref = timm_hybrid
    if size != 384:
        ref = timm.create_model("vit_base_r50_s16_384", num_classes=1000, img_size=size).eval()
        ref.load_state_dict(checkpoint_filter_fn(timm_hybrid.state_dict(), ref))
        assert "pos_embed" in ours.load_report.resized
    x = _x(size)
    assert (ours(x) - ref(x)).abs().max().item() <= TOL
    final, inter = ours.forward_intermediates(x, indices=2)
    ref_final, ref_inter = ref.forward_intermediates(x, indices=2)
    assert all((a - b).abs().max().item() <= TOL for a, b in zip(inter, ref_inter))


@torch.no_grad()
def test_structure_params_and_backbone_outputs():
    model = vitzoo.create_model("R50+ViT-B/16", device="meta")
    assert model.config.hybrid_layers == (3, 4, 9) and model.grid_size == (14, 14)
    with torch.device("meta"):
        ref = timm.create_model("vit_base_r50_s16_224", num_classes=1000)
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    assert sum(p.numel() for p in vitzoo.create_model("vit_base_r50_s16_384", device="meta").parameters()) == 98_950_952
    small = vitzoo.create_model("vit_base_r50_s16_224", depth=1, num_classes=0).eval()
    feats = small.forward_backbone(torch.randn(1, 3, 224, 224))
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 56, 56), (256, 56, 56), (512, 28, 28), (1024, 14, 14)]
    with pytest.raises(vitzoo.ConfigError, match="patch_size must be 16"):
        small.set_input_size(patch_size=8)
    dyn = vitzoo.create_model("vit_base_r50_s16_224", depth=1, num_classes=0, dynamic_img_size=True).eval()
    assert dyn(torch.randn(1, 3, 160, 96)).shape == (1, 768)


def _hybrid_npz(model: torch.nn.Module, path) -> None:
    """timm hybrid -> the original JAX layout (conv_root, gn_root, block{i}/unit{j}/..., Transformer/...)."""
    from test_formats import _to_npz

    _to_npz(model, path)
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
                w[f"{dst}gn_proj/scale"], w[f"{dst}gn_proj/bias"] = sd[f"{src}downsample.norm.weight"], sd[f"{src}downsample.norm.bias"]
    np.savez(path, **w)


@torch.no_grad()
def test_npz_round_trip_against_timm_npz_loader(tmp_path):
    torch.manual_seed(0)
    src = randomize_(timm.create_model("vit_base_r50_s16_384", depth=2, num_classes=1000), seed=8).eval()
    _hybrid_npz(src, tmp_path / "r50.npz")
    ref = timm.create_model("vit_base_r50_s16_384", depth=2, num_classes=1000).eval()
    _load_weights(ref, str(tmp_path / "r50.npz"))
    ours = vitzoo.create_model("vit_base_r50_s16_384", depth=2, pretrained=str(tmp_path / "r50.npz")).eval()
    assert any("hybrid" in n for n in ours.load_report.notes)
    x = _x(384)
    assert (ours(x) - ref(x)).abs().max().item() <= TOL
    assert (ours(x) - src(x)).abs().max().item() <= TOL  # the round trip returns the original numbers


@torch.no_grad()
def test_loopback_hub_loads_the_hybrid_by_tag(hub, tmp_path):
    ref, files = timm_repo("vit_base_r50_s16_384", tmp_path, 1000, safe=True, seed=9)
    hub.add_commit("timm/vit_base_r50_s16_384.orig_in21k_ft_in1k", files)
    model = vitzoo.create_model("vit_base_r50_s16_384.orig_in21k_ft_in1k", pretrained=True).eval()
    assert model.pretrained_cfg.top1 == 84.976 and model.load_report.format == "timm"
    assert (model(_x(384)) - ref(_x(384))).abs().max().item() <= TOL
