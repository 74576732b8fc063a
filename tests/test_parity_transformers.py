"""Same weights in, same numbers out: vitzoo against Hugging Face transformers' ViTModel.

The checkpoint is what ``save_pretrained`` writes (the key names of the google/vit-* Hub repos), read back from
safetensors and converted with ``vitzoo.weights.formats.from_transformers``. transformers' configs carry
``layer_norm_eps=1e-12``; vitzoo takes it as an override. At other sizes transformers' ``interpolate_pos_encoding``
resizes bicubically without antialiasing, so vitzoo runs with ``pos_embed_antialias=False`` there.
"""

from __future__ import annotations

import pytest
import torch
import transformers

import vitzoo
from conftest import TOL, maxdiff, randomize_
from vitzoo.weights.formats import from_transformers

TINY = dict(hidden_size=192, num_hidden_layers=3, num_attention_heads=3, intermediate_size=768)  # ViT-Ti widths
SMALL = dict(hidden_size=384, num_hidden_layers=2, num_attention_heads=6, intermediate_size=1536)  # ViT-S widths


def _hf_config(**kw) -> transformers.ViTConfig:
    base = dict(image_size=224, patch_size=16, layer_norm_eps=1e-12, qkv_bias=True)
    return transformers.ViTConfig(**{**base, **kw})


def _saved(model: torch.nn.Module, folder) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    model.save_pretrained(folder)
    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def vitmodel(tmp_path_factory):
    """transformers' ViTModel with random weights, and vitzoo loaded from its saved file (one pair for all sizes)."""
    torch.manual_seed(0)
    hf = randomize_(transformers.ViTModel(_hf_config(**TINY), add_pooling_layer=False), seed=2).eval()
    ours = vitzoo.create_model(
        "vit_tiny_patch16_224",
        depth=TINY["num_hidden_layers"],
        num_classes=0,
        layer_norm_eps=1e-12,
        dynamic_img_size=True,
        pos_embed_antialias=False,
    ).eval()
    ours.load_state_dict(from_transformers(_saved(hf, tmp_path_factory.mktemp("vitmodel"))).state_dict, strict=True)
    return hf, ours


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """transformers' ViTForImageClassification (ViT-S widths, 10 labels) with random weights, and its saved file."""
    torch.manual_seed(0)
    hf = randomize_(transformers.ViTForImageClassification(_hf_config(num_labels=10, **SMALL)), seed=3).eval()
    return hf, _saved(hf, tmp_path_factory.mktemp("classifier"))


def _ours_classifier(state_dict) -> vitzoo.VisionTransformer:
    ours = vitzoo.create_model(
        "vit_small_patch16_224", num_classes=10, depth=SMALL["num_hidden_layers"], layer_norm_eps=1e-12
    ).eval()
    ours.load_state_dict(from_transformers(state_dict).state_dict, strict=True)
    return ours


@pytest.mark.parametrize("size", [(224, 224), (384, 384), (320, 448)], ids=str)
@torch.no_grad()
def test_vitmodel_tokens_match(size, vitmodel, images):
    hf, ours = vitmodel
    x = images(*size)
    ref = hf(pixel_values=x, interpolate_pos_encoding=size != (224, 224)).last_hidden_state
    assert maxdiff(ours.forward_features(x), ref) <= TOL


@torch.no_grad()
def test_image_classification_logits_match(classifier, images):
    hf, saved = classifier
    x = images(224, 224)
    assert maxdiff(_ours_classifier(saved)(x), hf(pixel_values=x).logits) <= TOL


@torch.no_grad()
def test_in_memory_names_of_transformers_5_convert_too(classifier, images):
    """``model.state_dict()`` of transformers >= 5 uses other names than the files; both give transformers' numbers."""
    hf, saved = classifier
    in_memory = hf.state_dict()
    assert set(in_memory) != set(saved)  # the two namings really differ (else this test checks nothing new)
    x = images(224, 224)
    assert maxdiff(_ours_classifier(in_memory)(x), hf(pixel_values=x).logits) <= TOL


def test_unknown_keys_are_named():
    with pytest.raises(vitzoo.VitzooError, match=r"encoder.extra.weight"):
        from_transformers({"encoder.extra.weight": torch.zeros(2, 2)})
