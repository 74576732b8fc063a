"""Same weights in, same numbers out: vitzoo against timm's VisionTransformer (the real library).

A seeded timm model with random weights is saved as safetensors and loaded into vitzoo with zero renames
(strict). Logits, final features and forward_intermediates must agree to max abs difference <= TOL at the
native size, at 384 (position embeddings resampled) and at a non-square size, both by resampling the stored table
(``set_input_size`` vs timm's ``checkpoint_filter_fn``) and per forward (``dynamic_img_size=True`` on both sides).
"""

from __future__ import annotations

import pytest
import timm
import torch
from timm.models.vision_transformer import checkpoint_filter_fn

import vitzoo
from conftest import TOL, batch, fast_first, maxdiff, safetensors_round_trip, timm_model
from vitzoo.models.archs import family_of

# Every variant at every size runs the same code; the widths, depths and head counts of the published sizes are
# checked on the meta device (test_param_counts_equal_timm; B/16's in test_cli's info tests too). Ti runs at all
# sizes on every run, S at its native size; S at other sizes (the resampling Ti runs), B/16 (the code S and Ti run
# at another width), B/32 and L/16 are marked slow.
FAST = ["vit_tiny_patch16_224", "vit_small_patch16_224"]
SIZES = [224, 384, (320, 448)]
RESAMPLED = [
    *fast_first([("vit_tiny_patch16_224", size) for size in SIZES[::-1]]),  # fast: the non-square size
    pytest.param("vit_small_patch16_224", 224, marks=pytest.mark.slow),
    *[
        pytest.param(name, size, marks=pytest.mark.slow)
        for name, sizes in (
            ("vit_small_patch16_224", SIZES[1:]),
            ("vit_base_patch16_224", SIZES),
            ("vit_base_patch32_224", SIZES),
            ("vit_large_patch16_224", SIZES),
        )
        for size in sizes
    ],
]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """name -> state dict of a seeded, randomised timm model at its native size, read back from safetensors."""
    cache: dict[str, dict[str, torch.Tensor]] = {}

    def get(name: str) -> dict[str, torch.Tensor]:
        if name not in cache:
            model = timm_model(name, seed=1, num_classes=1000)
            cache[name] = safetensors_round_trip(
                model.state_dict(), tmp_path_factory.mktemp(name) / "model.safetensors"
            )
        return {k: v.clone() for k, v in cache[name].items()}  # each test owns its tensors

    return get


def _ours(name: str, state_dict, **kw) -> vitzoo.VisionTransformer:
    """vitzoo's model with the timm checkpoint loaded strictly under timm's names (built on the meta device, so no
    time goes into a random init that the checkpoint replaces)."""
    model = vitzoo.create_model(name, device="meta", **kw)
    model.load_state_dict(state_dict, strict=True, assign=True)
    return model.eval()


def _timm_at(name: str, state_dict, img_size, dynamic: bool = False):
    """timm built at ``img_size`` with the checkpoint resampled by timm's own filter (what timm users get)."""
    with torch.device("meta"):
        model = timm.create_model(name, img_size=img_size, dynamic_img_size=dynamic)
    model.load_state_dict(checkpoint_filter_fn(dict(state_dict), model), strict=True, assign=True)
    return model.eval()


def _n(name: str) -> int:
    """Images per batch: two where it is cheap (rows must not mix), one for B and L."""
    return 2 if name in FAST else 1


@pytest.mark.parametrize(("name", "img_size"), RESAMPLED, ids=str)
@torch.no_grad()
def test_resampled_at_build_size_matches_timm(name, img_size, checkpoints):
    sd = checkpoints(name)
    ours = _ours(name, sd)  # timm names verbatim
    ours.set_input_size(img_size)
    ref = _timm_at(name, sd, img_size)
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    x = batch(h, w, n=_n(name))

    # forward_intermediates' final output is forward_features' (test_model checks that they are equal for vitzoo;
    # timm's forward is forward_head(forward_features)), so timm runs once per size
    final, inter = ours.forward_intermediates(x, indices=[0, 5, -1], norm=True, return_prefix_tokens=True)
    ref_final, ref_inter = ref.forward_intermediates(x, indices=[0, 5, -1], norm=True, return_prefix_tokens=True)
    assert maxdiff(ours(x), ref.forward_head(ref_final)) <= TOL
    assert maxdiff(final, ref_final) <= TOL
    assert len(inter) == len(ref_inter) == 3
    for (patches, prefix), (ref_patches, ref_prefix) in zip(inter, ref_inter, strict=True):
        assert patches.shape[-2:] == (h // ours.patch_size[0], w // ours.patch_size[1])  # NCHW grid
        assert maxdiff(patches, ref_patches) <= TOL
        assert maxdiff(prefix, ref_prefix) <= TOL


@pytest.mark.parametrize(
    "name",
    [
        "vit_tiny_patch16_224",
        *[pytest.param(n, marks=pytest.mark.slow) for n in ("vit_small_patch16_224", "vit_base_patch16_224")],
    ],
)
@torch.no_grad()
def test_dynamic_img_size_matches_timm(name, checkpoints):
    sd = checkpoints(name)
    ours = _ours(name, sd, dynamic_img_size=True)
    ref = _timm_at(name, sd, 224, dynamic=True)
    for h, w in [(224, 224), (384, 384), (320, 448), (160, 96)]:
        x = batch(h, w, n=_n(name))
        assert maxdiff(ours(x), ref(x)) <= TOL, (h, w)
        for a, b in zip(
            ours.forward_intermediates(x, indices=2, output_fmt="NLC", intermediates_only=True),
            ref.forward_intermediates(x, indices=2, output_fmt="NLC", intermediates_only=True),
            strict=True,
        ):
            assert maxdiff(a, b) <= TOL


@torch.no_grad()
def test_avg_pool_and_headless_match_timm(checkpoints):
    name = "vit_tiny_patch16_224"  # any width runs the same pooling
    sd = checkpoints(name)
    x = batch(224)
    ours = _ours(name, sd)
    ref = _timm_at(name, sd, 224)
    ours.reset_classifier(0, global_pool="avg")
    ref.reset_classifier(0, global_pool="avg")
    assert maxdiff(ours(x), ref(x)) <= TOL
    assert (
        maxdiff(
            ours.forward_head(ours.forward_features(x), pre_logits=True),
            ref.forward_head(ref.forward_features(x), pre_logits=True),
        )
        <= TOL
    )


@torch.no_grad()
def test_patch_size_change_matches_timm(checkpoints):
    """set_input_size(patch_size=...) resamples the kernel (FlexiViT) exactly as timm does."""
    name = "vit_tiny_patch16_224"
    sd = checkpoints(name)
    ours = _ours(name, sd)
    ref = _timm_at(name, sd, 224)
    ours.set_input_size(img_size=240, patch_size=12)
    ref.set_input_size(img_size=240, patch_size=12)
    x = batch(240)
    assert ours.grid_size == (20, 20)
    assert maxdiff(ours(x), ref(x)) <= TOL


@pytest.mark.slow  # every paper arch twice on the meta device; test_archs.py checks one arch per family fast
def test_param_counts_equal_timm():
    """Counts on the meta device (no memory); the issue's numbers are timm's. The paper's archs, with and without a
    head (every other family's arch is compared with timm's in test_archs.py)."""
    expected = {
        ("vit_base_patch16_224", 1000): 86_567_656,
        ("vit_large_patch16_224", 1000): 304_326_632,
        ("vit_huge_patch14_224", 0): 630_764_800,
    }
    for name in [n for n in vitzoo.list_models() if n.startswith("vit_") and family_of(n) == "vit"]:
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
