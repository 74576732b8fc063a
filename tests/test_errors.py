"""Every bad input gets a clear error that says what to do, before any compute."""

from __future__ import annotations

import pytest
import torch

import vitzoo
from vitzoo import ConfigError, HubError, InputError, UnknownModelError


@pytest.fixture(scope="module")
def model():
    return vitzoo.create_model("vit_tiny_patch16_224", depth=1).eval()


def test_unknown_name_lists_closest(model):
    with pytest.raises(UnknownModelError, match="vit_base_patch16_224") as err:
        vitzoo.create_model("vit_base_patch16_244")
    assert isinstance(err.value, ValueError)
    with pytest.raises(UnknownModelError, match="ViT-B/16"):
        vitzoo.create_model("ViT-B/61")


def test_aliases_resolve():
    assert vitzoo.create_model("vit-l/32", device="meta").config == vitzoo.create_model(
        "vit_large_patch32_224", device="meta"
    ).config
    assert vitzoo.create_model("ViT-H_14", device="meta").config.patch_size == (14, 14)


def test_img_size_not_divisible_names_nearest_sizes():
    with pytest.raises(ConfigError, match=r"not divisible by patch size 16; nearest valid sizes: \(224, 240\)"):
        vitzoo.create_model("vit_base_patch16_224", img_size=230, device="meta")
    with pytest.raises(ConfigError, match=r"\(378, 392\)"):
        vitzoo.create_model("vit_huge_patch14_224", img_size=384, device="meta")


def test_input_not_divisible_names_nearest_sizes():
    model = vitzoo.create_model("vit_tiny_patch16_224", depth=1, dynamic_img_size=True)
    with pytest.raises(InputError, match=r"input width 230 .* nearest valid sizes: \(224, 240\).*dynamic_img_pad"):
        model(torch.zeros(1, 3, 224, 230))


def test_wrong_input_size_wrong_channels_wrong_rank(model):
    with pytest.raises(InputError, match="does not match the model's img_size .*dynamic_img_size=True"):
        model(torch.zeros(1, 3, 256, 256))
    with pytest.raises(InputError, match="expected 3 input channels, got 1"):
        model(torch.zeros(1, 1, 224, 224))
    with pytest.raises(InputError, match=r"4-D .*add a batch dimension"):
        model(torch.zeros(3, 224, 224))
    with pytest.raises(InputError, match="4-D"):
        model.forward_intermediates(torch.zeros(224, 224))


@pytest.mark.parametrize(
    "overrides,match",
    [
        (dict(num_heads=5), "not divisible by num_heads 5"),
        (dict(global_pool="token", class_token=False), "needs class_token=True"),
        (dict(global_pool="max"), "global_pool must be one of"),
        (dict(num_classes=-1), "num_classes must be an int >= 0"),
        (dict(img_size=(224,)), "img_size must be an int or an"),
        (dict(patch_size=0), "must be positive"),
        (dict(embed_dimm=10), "did you mean \\['embed_dim'\\]"),
        (dict(drop_path_rate=1.0), "drop_path_rate must be in"),
        (dict(pos_embed_interpolation="cubic"), "pos_embed_interpolation must be one of"),
    ],
)
def test_contradictory_or_invalid_overrides(overrides, match):
    with pytest.raises(ConfigError, match=match):
        vitzoo.create_model("vit_tiny_patch16_224", device="meta", **overrides)


def test_pretrained_without_weights_is_an_error_not_random_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(HubError, match="no cached copy") as err:
        vitzoo.create_model("vit_base_patch16_224", pretrained=True)
    assert isinstance(err.value, OSError)


def test_all_errors_share_one_base():
    for cls in (ConfigError, HubError, InputError, UnknownModelError, vitzoo.CheckpointError, vitzoo.FormatError):
        assert issubclass(cls, vitzoo.VitzooError)
