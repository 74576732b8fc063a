"""What timm users type first, against timm itself (docs/from-timm.md): features_only, checkpoint_path,
list_models(pretrained=True), global_pool="", the model's attributes, default_cfg / pretrained_cfg, prune_intermediate
_layers and group_matcher; and timm's keywords vitzoo does not take, refused with the vitzoo way.

Models are small (Ti/16 at 64 px, or a family's arch cut to three narrow blocks) with the same random weights on both
sides (``timm_model``'s, loaded strictly under timm's names); outputs of the same function must agree to
``FEATURE_TOL`` = 1e-5 (max abs difference on outputs of order 1; both run the same ops, in practice they agree
exactly), attributes exactly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from timm.data import resolve_model_data_config
from timm.models import group_parameters

import vitzoo
from conftest import batch, fast_first, maxdiff, save_safetensors, timm_model
from vitzoo.models.archs import ARCHS
from vitzoo.models.timm_api import TIMM_ONLY

FEATURE_TOL = 1e-5
TINY = "vit_tiny_patch16_224"
SMALL = {"img_size": 64}  # Ti/16 at 64 px: 4 x 4 patches
NARROW = {"depth": 3, "img_size": 64, "embed_dim": 192, "num_heads": 3}  # a family's arch cut down
# name, kwargs of both create_models, vitzoo's own (it sizes the MLP by mlp_dim, timm by mlp_ratio), input side
FAMILIES = [
    pytest.param(TINY, SMALL, {}, 64, id="vit"),
    pytest.param("deit_tiny_distilled_patch16_224", {"depth": 3, **SMALL}, {}, 64, id="deit_distilled"),
    pytest.param("vit_small_patch14_reg4_dinov2", {**NARROW, "img_size": 56}, {"mlp_dim": 768}, 56, id="dinov2_reg"),
    pytest.param("vit_base_patch16_siglip_224", NARROW, {"mlp_dim": 768}, 64, id="siglip_map"),
]


@pytest.fixture(scope="module")
def weights():
    """(name, kwargs) -> state dict of a seeded, randomised timm model (randomising is the slow part: once each)."""
    cache: dict[str, dict[str, torch.Tensor]] = {}

    def get(name: str, kw: dict) -> dict[str, torch.Tensor]:
        key = f"{name}{sorted(kw.items())}"
        if key not in cache:
            cache[key] = timm_model(name, seed=1, **kw).state_dict()
        return {k: v.clone() for k, v in cache[key].items()}  # each test owns its tensors

    return get


def _load(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], prefix: str = "") -> torch.nn.Module:
    """``model`` (built on the meta device) given the tensors of ``state_dict`` it has (under ``prefix``), strictly."""
    own = model.state_dict()
    model.load_state_dict({prefix + k: v for k, v in state_dict.items() if prefix + k in own}, strict=True, assign=True)
    return model.eval()


def _pair(weights, name: str, kw: dict, ours_kw: dict, **extra):
    """vitzoo's and timm's ``name`` built with ``kw`` (and ``extra``), holding the same random weights."""
    sd = weights(name, kw)
    prefix = "model." if extra.get("features_only") else ""
    with torch.device("meta"):
        theirs = timm.create_model(name, **kw, **extra)
    ours = vitzoo.create_model(name, device="meta", **kw, **ours_kw, **extra)
    return _load(ours, sd, prefix), _load(theirs, sd, prefix)


@pytest.mark.parametrize(("name", "kw", "ours_kw", "side"), fast_first(FAMILIES, 2))
@pytest.mark.parametrize("out_indices", [None, (0, -1)], ids=["default", "first-last"])
@torch.no_grad()
def test_features_only_equals_timm(weights, name, kw, ours_kw, side, out_indices):
    pick = {} if out_indices is None else {"out_indices": out_indices}
    ours, theirs = _pair(weights, name, kw, ours_kw, features_only=True, **pick)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())  # timm's names: model.blocks.0...
    assert ours.out_indices == theirs.out_indices
    for what in ("channels", "reduction", "module_name"):
        assert getattr(ours.feature_info, what)() == getattr(theirs.feature_info, what)(), what
    x = batch(side)
    got, want = ours(x), theirs(x)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.ndim == 4 and maxdiff(a, b) <= FEATURE_TOL


@torch.no_grad()
def test_features_only_of_the_hybrid():
    """The hybrid's maps are its blocks' (forward_intermediates, checked against timm in test_hybrid.py) at timm's
    stride; built small (one bottleneck per stage, narrow blocks)."""
    name, kw = "vit_base_r50_s16_224", {"hybrid_layers": (1, 1, 1), **NARROW, "mlp_dim": 768}
    torch.manual_seed(0)
    full = vitzoo.create_model(name, **kw).eval()
    ours = _load(
        vitzoo.create_model(name, features_only=True, out_indices=(0, 1), device="meta", **kw),
        full.state_dict(),
        "model.",
    )
    with torch.device("meta"):
        theirs = timm.create_model(name, features_only=True, out_indices=(0, 1))
    assert ours.feature_info.reduction() == theirs.feature_info.reduction() == [16, 16]
    x = batch(64, n=1)
    want = full.forward_intermediates(x, indices=[0, 1], intermediates_only=True)
    for a, b in zip(ours(x), want, strict=True):
        assert maxdiff(a, b) == 0.0


@torch.no_grad()
def test_checkpoint_path_loads_the_file_as_timm(tmp_path):
    theirs = timm_model(TINY, seed=2, img_size=64)
    path = save_safetensors(theirs.state_dict(), tmp_path / "model.safetensors")
    ours = vitzoo.create_model(TINY, checkpoint_path=path, img_size=64).eval()
    timm_loaded = timm.create_model(TINY, checkpoint_path=path, img_size=64).eval()
    x = batch(64, n=1)
    assert maxdiff(ours(x), timm_loaded(x)) <= FEATURE_TOL
    assert ours.load_report is not None and ours.load_report.loaded == len(theirs.state_dict())
    with pytest.raises(vitzoo.ConfigError, match="pass the weights once"):
        vitzoo.create_model(TINY, pretrained=path, checkpoint_path=path)


def test_list_models_pretrained_names_the_tags_as_timm():
    ours = vitzoo.list_models(pretrained=True)
    assert ours == vitzoo.list_pretrained()
    assert set(ours) == {n for n in timm.list_models(pretrained=True) if n.partition(".")[0] in ARCHS}
    for pattern in ("vit_tiny*", "vit_small_patch14_dinov2", "*siglip*.webli"):
        assert set(vitzoo.list_models(pattern, pretrained=True)) == {
            n for n in timm.list_models(pattern, pretrained=True) if n.partition(".")[0] in ARCHS
        }, pattern
    assert vitzoo.list_models("ViT-Ti/16", pretrained=True) == vitzoo.list_models(TINY, pretrained=True)
    assert vitzoo.list_models("*tiny*") == [n for n in ARCHS if "tiny" in n]  # without pretrained: archs, as before


@pytest.mark.parametrize(("name", "kw", "ours_kw", "side"), FAMILIES)
def test_attributes_equal_timm(name, kw, ours_kw, side):
    with torch.device("meta"):
        theirs = timm.create_model(name, **kw)
    ours = vitzoo.create_model(name, device="meta", **kw, **ours_kw)
    for attr in ("num_classes", "embed_dim", "num_features", "global_pool", "has_class_token", "num_prefix_tokens"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert ours.group_matcher() == theirs.group_matcher()
    ours_groups, timm_groups = (group_parameters(m, m.group_matcher()) for m in (ours, theirs))
    assert {k: sorted(v) for k, v in ours_groups.items()} == {k: sorted(v) for k, v in timm_groups.items()}
    assert ours.feature_info == theirs.feature_info
    assert ours.no_weight_decay() == theirs.no_weight_decay()
    head, want = ours.get_classifier(), theirs.get_classifier()
    if isinstance(want, tuple):  # DeiT distilled: (head, head_dist)
        assert [h.weight.shape for h in head] == [h.weight.shape for h in want]
    else:
        assert type(head) is type(want)
        assert getattr(head, "weight", torch.empty(0)).shape == getattr(want, "weight", torch.empty(0)).shape


@pytest.mark.parametrize(("name", "kw", "ours_kw", "side"), FAMILIES)
def test_pretrained_cfg_of_a_bare_arch_is_its_default_tags_as_timm(name, kw, ours_kw, side):
    with torch.device("meta"):
        theirs = timm.create_model(name)
    ours = vitzoo.create_model(name, device="meta")
    assert ours.default_cfg is ours.pretrained_cfg
    for key in ("mean", "std", "input_size", "crop_pct", "crop_mode", "interpolation", "num_classes"):
        assert ours.pretrained_cfg[key] == theirs.pretrained_cfg[key], key
    assert resolve_model_data_config(ours) == resolve_model_data_config(theirs)  # timm reads ours as its own


@torch.no_grad()
def test_global_pool_none_and_reset_classifier_as_timm(weights):
    ours, theirs = _pair(weights, TINY, SMALL, {}, global_pool="")
    x = batch(64, n=1)
    got, want = ours(x), theirs(x)
    assert got.shape == want.shape == (1, 17, 1000) and maxdiff(got, want) <= FEATURE_TOL  # the head on every token
    for model in (ours, theirs):
        model.reset_classifier(0, "avg")
    assert maxdiff(ours(x), theirs(x)) <= FEATURE_TOL and ours.global_pool == theirs.global_pool == "avg"
    for model in (ours, theirs):
        model.reset_classifier(7)
    assert ours.num_classes == theirs.num_classes == 7
    assert ours.get_classifier().weight.shape == theirs.get_classifier().weight.shape


@pytest.mark.parametrize(("indices", "prune_norm"), [((1, -3), False), (2, True)], ids=["list", "last-2-no-norm"])
@torch.no_grad()
def test_prune_intermediate_layers_as_timm(weights, indices, prune_norm):
    ours, theirs = _pair(weights, TINY, SMALL, {})
    kept = ours.prune_intermediate_layers(indices, prune_norm=prune_norm)
    assert kept == theirs.prune_intermediate_layers(indices, prune_norm=prune_norm)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    assert len(ours.blocks) == ours.config.depth and ours.num_classes == 0 and ours.global_pool == ""
    x = batch(64, n=1)
    got = ours.forward_intermediates(x, indices=kept, norm=not prune_norm)
    want = theirs.forward_intermediates(x, indices=kept, norm=not prune_norm)
    assert maxdiff(got[0], want[0]) <= FEATURE_TOL
    for a, b in zip(got[1], want[1], strict=True):
        assert maxdiff(a, b) <= FEATURE_TOL


@pytest.mark.parametrize("key", sorted(TIMM_ONLY))
def test_timm_only_keywords_name_the_vitzoo_way(key):
    with pytest.raises(vitzoo.ConfigError, match=f"timm's {key}=") as err:
        vitzoo.create_model(TINY, device="meta", **{key: True})
    assert TIMM_ONLY[key] in str(err.value)


def test_features_only_keywords_out_of_place_say_so():
    with pytest.raises(vitzoo.ConfigError, match=r"forward_intermediates\(x, indices=...\)"):
        vitzoo.create_model(TINY, device="meta", out_indices=(1, 2))
    with pytest.raises(vitzoo.ConfigError, match="'getter'"):
        vitzoo.create_model(TINY, device="meta", features_only=True, feature_cls="hook")
    with pytest.raises(vitzoo.ConfigError, match="out of range"):
        vitzoo.create_model(TINY, device="meta", features_only=True, out_indices=(12,))


def test_the_docs_table_lists_every_refused_keyword():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "from-timm.md").read_text()
    assert [key for key in TIMM_ONLY if f"`{key}=`" not in doc] == []
