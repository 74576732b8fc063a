"""Foreign checkpoint layouts, each checked against the peer library that defines it (max abs diff <= TOL).

* torchvision: a ``torchvision.models.VisionTransformer`` state dict saved with ``torch.save``.
* JAX ``.npz``: written here in the original (google-research/vision_transformer) and big_vision layouts from a
  random timm model; the reference is timm's own npz loader (``_load_weights``) reading the same file.
"""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from timm.models.vision_transformer import _load_weights

import vitzoo
from conftest import TOL, batch, maxdiff, randomize_, timm_model, to_npz
from vitzoo.weights.formats import FormatError, detect_format


@pytest.mark.parametrize("representation_size", [None, 32])
@torch.no_grad()
def test_torchvision_state_dict(tmp_path, representation_size):
    torch.manual_seed(0)
    ref = torchvision.models.VisionTransformer(
        image_size=224,
        patch_size=16,
        num_layers=3,
        num_heads=3,
        hidden_dim=192,
        mlp_dim=768,
        num_classes=10,
        representation_size=representation_size,
    )
    randomize_(ref, seed=5).eval()
    path = tmp_path / "vit_tv.pth"
    torch.save(ref.state_dict(), path)
    extra = {"representation_size": representation_size} if representation_size else {}
    model = vitzoo.create_model("vit_tiny_patch16_224", depth=3, pretrained=str(path), **extra).eval()
    assert model.load_report.format == "torchvision" and model.config.num_classes == 10
    assert maxdiff(model(batch()), ref(batch())) <= TOL


@torch.no_grad()
def test_torchvision_resized_to_384_matches_torchvision_interpolate_embeddings(tmp_path):
    torch.manual_seed(0)
    kw = dict(patch_size=16, num_layers=2, num_heads=3, hidden_dim=192, mlp_dim=768, num_classes=10)
    src = randomize_(torchvision.models.VisionTransformer(image_size=224, **kw), seed=6)
    ref = torchvision.models.VisionTransformer(image_size=384, **kw).eval()
    ref.load_state_dict(torchvision.models.vision_transformer.interpolate_embeddings(384, 16, src.state_dict()))
    torch.save(src.state_dict(), tmp_path / "tv.pth")
    model = vitzoo.create_model(
        "vit_tiny_patch16_224",
        depth=2,
        img_size=384,
        pos_embed_interpolation="torchvision",
        pretrained=str(tmp_path / "tv.pth"),
    ).eval()
    assert model.load_report.resized["pos_embed"] == ((1, 197, 192), (1, 577, 192))
    x = batch(384)
    assert maxdiff(model(x), ref(x)) <= TOL


def _timm_tiny(num_classes: int, seed: int, **kw):
    return timm_model("vit_tiny_patch16_224", seed=seed, depth=3, num_classes=num_classes, **kw)


@torch.no_grad()
def test_jax_npz_original_layout_with_valid_head(tmp_path):
    src = _timm_tiny(1000, 1)
    to_npz(src, tmp_path / "augreg.npz")
    ref = timm.create_model("vit_tiny_patch16_224", depth=3, num_classes=1000).eval()
    _load_weights(ref, str(tmp_path / "augreg.npz"))  # timm's own reader is the reference
    model = vitzoo.create_model("vit_tiny_patch16_224", depth=3, pretrained=str(tmp_path / "augreg.npz")).eval()
    assert model.load_report.format == "jax" and model.config.num_classes == 1000
    assert maxdiff(model(batch()), ref(batch())) <= TOL


@torch.no_grad()
def test_jax_npz_resized_to_384_matches_timm_npz_loader(tmp_path):
    """timm's npz loader resizes with bilinear, no antialiasing: the same choice in vitzoo gives the same numbers."""
    to_npz(_timm_tiny(1000, 4), tmp_path / "augreg.npz")
    ref = timm.create_model("vit_tiny_patch16_224", depth=3, num_classes=1000, img_size=384).eval()
    _load_weights(ref, str(tmp_path / "augreg.npz"))
    model = vitzoo.create_model(
        "vit_tiny_patch16_224",
        depth=3,
        img_size=384,
        pos_embed_interpolation="bilinear",
        pos_embed_antialias=False,
        pretrained=str(tmp_path / "augreg.npz"),
    ).eval()
    assert "pos_embed" in model.load_report.resized
    x = batch(384)
    assert maxdiff(model(x), ref(x)) <= TOL


@torch.no_grad()
def test_jax_npz_in21k_release_drops_pre_logits_and_zeroed_head(tmp_path):
    """The original ImageNet-21k files: pre_logits + a zeroed 21k head. Never served as a classifier."""
    src = _timm_tiny(21843, 2)
    to_npz(src, tmp_path / "in21k.npz", pre_logits=192, zero_head=True)
    ref = timm.create_model("vit_tiny_patch16_224", depth=3, num_classes=0).eval()
    _load_weights(ref, str(tmp_path / "in21k.npz"))
    model = vitzoo.create_model("vit_tiny_patch16_224", depth=3, pretrained=str(tmp_path / "in21k.npz")).eval()
    report = model.load_report
    assert model.config.num_classes == 0 and isinstance(model.head, torch.nn.Identity)
    assert set(report.dropped) == {"head.weight", "head.bias", "pre_logits.fc.weight", "pre_logits.fc.bias"}
    assert "zeroed head" in report.dropped["head.weight"]
    assert maxdiff(model(batch()), ref(batch())) <= TOL
    # asking for a classifier gets a zero-initialised head to fine-tune, reported as such
    clf = vitzoo.create_model("vit_tiny_patch16_224", depth=3, num_classes=10, pretrained=str(tmp_path / "in21k.npz"))
    assert set(clf.load_report.reinitialized) == {"head.weight", "head.bias"} and not clf.head.weight.any()


@pytest.mark.parametrize("scanned", [False, True], ids=["per-block", "scanned"])
@torch.no_grad()
def test_big_vision_npz(tmp_path, scanned):
    src = _timm_tiny(1000, 3, no_embed_class=True)  # big_vision: the class token gets no position embedding
    to_npz(src, tmp_path / "bv.npz", big_vision=True, scanned=scanned)
    ref = timm.create_model("vit_tiny_patch16_224", depth=3, num_classes=1000, no_embed_class=True).eval()
    _load_weights(ref, str(tmp_path / "bv.npz"))
    model = vitzoo.create_model("vit_tiny_patch16_224", depth=3, pretrained=str(tmp_path / "bv.npz")).eval()
    assert any("prepended zeros" in n for n in model.load_report.notes)
    assert maxdiff(model(batch()), ref(batch())) <= TOL


def test_detect_format():
    assert detect_format({"cls_token": 0, "pos_embed": 0, "patch_embed.proj.weight": 0}) == "timm"
    assert detect_format({"vit.embeddings.patch_embeddings.projection.weight": 0}) == "transformers"
    assert detect_format({"class_token": 0, "conv_proj.weight": 0}) == "torchvision"
    assert detect_format({"Transformer/encoder_norm/scale": 0, "embedding/kernel": 0}) == "jax"
    with pytest.raises(FormatError, match=r"cannot tell the checkpoint format.*resnet"):
        detect_format({"resnet.conv1.weight": 0})
