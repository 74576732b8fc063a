"""Same weights in, same numbers out: vitzoo against timm's VisionTransformer (the real library).

A seeded timm model with random weights is saved as safetensors and loaded into vitzoo with zero renames
(strict). Logits, forward_features and forward_intermediates must agree to max abs difference <= 1e-4 at the
native size, at 384 (position embeddings resampled) and at a non-square size, both by resampling the stored table
(``set_input_size`` vs timm's ``checkpoint_filter_fn``) and per forward (``dynamic_img_size=True`` on both sides).
"""

from __future__ import annotations

import pytest
import timm
import torch
from timm.models.vision_transformer import checkpoint_filter_fn

import vitzoo
from conftest import randomize_, safetensors_round_trip

TOL = 1e-4  # max abs difference allowed in logits, features and intermediates

FAST = ["vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224"]
SLOW = [pytest.param(n, marks=pytest.mark.slow) for n in ("vit_base_patch32_224", "vit_large_patch16_224")]
SIZES = [224, 384, (320, 448)]


def _maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """name -> state dict of a seeded, randomised timm model at its native size, read back from safetensors."""
    cache: dict[str, dict[str, torch.Tensor]] = {}

    def get(name: str) -> dict[str, torch.Tensor]:
        if name not in cache:
            torch.manual_seed(0)
            model = randomize_(timm.create_model(name, num_classes=1000), seed=1)
            cache[name] = safetensors_round_trip(model.state_dict(), tmp_path_factory.mktemp(name) / "model.safetensors")
        return cache[name]

    return get


def _timm_at(name: str, state_dict, img_size, dynamic: bool = False):
    """timm built at ``img_size`` with the checkpoint resampled by timm's own filter (what timm users get)."""
    model = timm.create_model(name, img_size=img_size, dynamic_img_size=dynamic).eval()
    model.load_state_dict(checkpoint_filter_fn(dict(state_dict), model))
    return model


@pytest.mark.parametrize("name", FAST + SLOW)
@pytest.mark.parametrize("img_size", SIZES, ids=str)
@torch.no_grad()
def test_resampled_at_build_size_matches_timm(name, img_size, checkpoints, images):
    sd = checkpoints(name)
    ours = vitzoo.create_model(name).eval()
    ours.load_state_dict(sd, strict=True)  # timm names verbatim
    ours.set_input_size(img_size)
    ref = _timm_at(name, sd, img_size)
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    x = images(h, w)

    assert _maxdiff(ours(x), ref(x)) <= TOL
    assert _maxdiff(ours.forward_features(x), ref.forward_features(x)) <= TOL
    final, inter = ours.forward_intermediates(x, indices=[0, 5, -1], norm=True, return_prefix_tokens=True)
    ref_final, ref_inter = ref.forward_intermediates(x, indices=[0, 5, -1], norm=True, return_prefix_tokens=True)
    assert _maxdiff(final, ref_final) <= TOL
    assert len(inter) == len(ref_inter) == 3
    for (patches, prefix), (ref_patches, ref_prefix) in zip(inter, ref_inter):
        assert patches.shape[-2:] == (h // ours.patch_size[0], w // ours.patch_size[1])  # NCHW grid
        assert _maxdiff(patches, ref_patches) <= TOL
        assert _maxdiff(prefix, ref_prefix) <= TOL


@pytest.mark.parametrize("name", FAST)
@torch.no_grad()
def test_dynamic_img_size_matches_timm(name, checkpoints, images):
    sd = checkpoints(name)
    ours = vitzoo.create_model(name, dynamic_img_size=True).eval()
    ours.load_state_dict(sd)
    ref = _timm_at(name, sd, 224, dynamic=True)
    for h, w in [(224, 224), (384, 384), (320, 448), (160, 96)]:
        x = images(h, w)
        assert _maxdiff(ours(x), ref(x)) <= TOL, (h, w)
        for a, b in zip(
            ours.forward_intermediates(x, indices=2, output_fmt="NLC", intermediates_only=True),
            ref.forward_intermediates(x, indices=2, output_fmt="NLC", intermediates_only=True),
        ):
            assert _maxdiff(a, b) <= TOL


@torch.no_grad()
def test_avg_pool_and_headless_match_timm(checkpoints, images):
    name = "vit_small_patch16_224"
    sd = checkpoints(name)
    x = images(224, 224)
    ours = vitzoo.create_model(name).eval()
    ours.load_state_dict(sd)
    ref = _timm_at(name, sd, 224)
    ours.reset_classifier(0, global_pool="avg")
    ref.reset_classifier(0, global_pool="avg")
    assert _maxdiff(ours(x), ref(x)) <= TOL
    assert _maxdiff(ours.forward_head(ours.forward_features(x), pre_logits=True), ref.forward_head(
        ref.forward_features(x), pre_logits=True)) <= TOL  # fmt: skip


@torch.no_grad()
def test_patch_size_change_matches_timm(checkpoints, images):
    """set_input_size(patch_size=...) resamples the kernel (FlexiViT) exactly as timm does."""
    name = "vit_tiny_patch16_224"
    sd = checkpoints(name)
    ours = vitzoo.create_model(name).eval()
    ours.load_state_dict(sd)
    ref = _timm_at(name, sd, 224)
    ours.set_input_size(img_size=240, patch_size=12)
    ref.set_input_size(img_size=240, patch_size=12)
    x = images(240, 240)
    assert ours.grid_size == (20, 20)
    assert _maxdiff(ours(x), ref(x)) <= TOL


def test_param_counts_equal_timm():
    """Counts on the meta device (no memory); the issue's numbers are timm's."""
    expected = {
        ("vit_base_patch16_224", 1000): 86_567_656,
        ("vit_large_patch16_224", 1000): 304_326_632,
        ("vit_huge_patch14_224", 0): 630_764_800,
    }
    for name in vitzoo.list_models():
        for num_classes in (1000, 0):
            ours = vitzoo.create_model(name, num_classes=num_classes, device="meta")
            with torch.device("meta"):
                ref = timm.create_model(name, num_classes=num_classes)
            n = sum(p.numel() for p in ours.parameters())
            assert n == sum(p.numel() for p in ref.parameters()), name
            assert {k: v.shape for k, v in ours.state_dict().items()} == {
                k: v.shape for k, v in ref.state_dict().items()
            }, name
            if (name, num_classes) in expected:
                assert n == expected[(name, num_classes)]
