"""vitzoo.param_groups equals timm's param_groups_layer_decay on timm's own model of the same arch, for every
parameter (full-size ViT-B/16 and DINOv2-S/14 and one arch of every family, built on the meta device: only names and
shapes matter); freeze / unfreeze."""

from __future__ import annotations

import functools

import pytest
import timm
import torch
from timm.optim import param_groups_layer_decay

import vitzoo
from conftest import fast_first
from vitzoo.train.param_groups import freeze, unfreeze
from vitzoo.weights.formats import to_timm

ARCHS = [
    "vit_base_patch16_224",
    "vit_small_patch14_dinov2",
    "deit_tiny_distilled_patch16_224",
    "deit3_small_patch16_224",
    "vit_small_patch14_reg4_dinov2",
    "vit_base_patch32_clip_224",
    "vit_base_patch16_siglip_224",
    "vit_base_patch16_siglip_gap_224",
    "vit_small_patch16_dinov3",
    "eva02_tiny_patch14_224",  # RoPE beside the table, q and v biases
    "eva02_enormous_patch14_clip_224",  # res-post-norm (meta device: 4.4B parameters)
    "vit_pe_core_tiny_patch16_384",
    "vit_base_patch16_radio_v3",
    "aimv2_large_patch14_224",
    "beit3_base_patch16_224",
    "vit_relpos_small_patch16_224",
    "vit_srelpos_small_patch16_224",  # the shared relative position MLP
    "vit_small_patch16_lingbot",
    "vit_small_patch16_rope_mixed_224",  # rope.freqs: no weight decay
]
LR, WD = 1e-3, 0.05


def timm_names(model: torch.nn.Module) -> dict[str, str]:
    """vitzoo's parameter name -> timm's (``to_timm``: the same but for DINOv3's layer scales, Eva's gamma_1/2)."""
    params = dict(model.named_parameters())
    return dict(zip(params, to_timm(params, model.config), strict=True))


def pair(arch: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """vitzoo's and timm's model of ``arch`` on the meta device (same head size)."""
    with torch.device("meta"):
        ours = vitzoo.create_model(arch)
        ref = timm.create_model(arch, num_classes=ours.config.num_classes)
    assert set(timm_names(ours).values()) == {n for n, _ in ref.named_parameters()}
    return ours, ref


shared_pair = functools.cache(pair)  # for the tests that only read the models (both layer decays of each arch)


def per_param(model: torch.nn.Module, groups: list[dict], timm_style: bool) -> dict[str, tuple[float, float]]:
    """name -> (lr, weight decay) of every parameter in ``groups``."""
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for g in groups:
        lr = LR * g["lr_scale"] if timm_style else g["lr"]
        for p in g["params"]:
            assert names[id(p)] not in out, "a parameter in two groups"
            out[names[id(p)]] = (lr, g["weight_decay"])
    return out


def assert_same(got: dict[str, tuple[float, float]], want: dict[str, tuple[float, float]]) -> None:
    """The same parameters, each with the same weight decay and (to float rounding) the same lr. Compared one by
    one: pytest 9.2's approx() refuses a dict of tuples."""
    assert got.keys() == want.keys()
    bad = {n: (got[n], want[n]) for n in got if got[n][1] != want[n][1] or got[n][0] != pytest.approx(want[n][0])}
    assert not bad, bad


FAST = ["vit_base_patch16_224", "deit_tiny_distilled_patch16_224", "vit_small_patch16_dinov3"]


@pytest.mark.parametrize("arch", fast_first(ARCHS, FAST))
@pytest.mark.parametrize("layer_decay", [0.65, None])
def test_param_groups_equal_timm(arch, layer_decay):
    ours, ref = shared_pair(arch)
    assert {n for n, _ in ours.named_parameters() if n in ours.no_weight_decay()} == {
        n for n, _ in ref.named_parameters() if n in ref.no_weight_decay()
    }
    names = timm_names(ours)
    got = {names[n]: v for n, v in per_param(ours, vitzoo.param_groups(ours, LR, WD, layer_decay), False).items()}
    want = per_param(
        ref, param_groups_layer_decay(ref, WD, ref.no_weight_decay(), layer_decay=layer_decay or 1.0), timm_style=True
    )
    assert got.keys() == set(names.values())
    assert_same(got, want)


@pytest.mark.parametrize("arch", ["vit_base_patch16_224", "vit_small_patch14_dinov2"])
def test_frozen_parameters_are_left_out_as_in_timm(arch):
    ours, ref = pair(arch)
    vitzoo.freeze(ours, up_to=4)
    for name, p in ref.named_parameters():
        p.requires_grad_(dict(ours.named_parameters())[name].requires_grad)
    got = per_param(ours, vitzoo.param_groups(ours, LR, WD, 0.75), timm_style=False)
    want = per_param(ref, param_groups_layer_decay(ref, WD, ref.no_weight_decay(), layer_decay=0.75), timm_style=True)
    assert_same(got, want)
    assert "blocks.3.mlp.fc2.weight" not in got and "blocks.4.mlp.fc2.weight" in got and "pos_embed" not in got


def test_freeze_and_unfreeze():
    model = vitzoo.create_model("vit_tiny_patch16_224", depth=3, img_size=32, num_classes=5)
    trainable = lambda: {n for n, p in model.named_parameters() if p.requires_grad}  # noqa: E731
    everything = trainable()
    freeze(model)
    assert trainable() == {"head.weight", "head.bias"}
    unfreeze(model)
    freeze(model, up_to=0)
    assert trainable() == {n for n in everything if not n.startswith(("patch_embed", "cls_token", "pos_embed"))}
    freeze(model, up_to=2)
    assert {n.split(".")[0] for n in trainable()} == {"blocks", "norm", "head"}
    assert {n.split(".")[1] for n in trainable() if n.startswith("blocks")} == {"2"}
    assert unfreeze(model) is model and trainable() == everything
    with pytest.raises(vitzoo.ConfigError, match="up_to"):
        freeze(model, up_to=4)
