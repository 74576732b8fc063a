"""Same weights in, same numbers out: vitzoo against Hugging Face transformers' ViTModel.

The checkpoint is what ``save_pretrained`` writes (the key names of the google/vit-* Hub repos), read back from
safetensors and converted with ``vitzoo.formats.from_transformers``. transformers' configs carry
``layer_norm_eps=1e-12``; vitzoo takes it as an override. At other sizes transformers' ``interpolate_pos_encoding``
resizes bicubically without antialiasing, so vitzoo runs with ``pos_embed_antialias=False`` there.
"""

from __future__ import annotations

import pytest
import torch
import transformers

import vitzoo
from conftest import randomize_
from vitzoo.formats import from_transformers

TOL = 1e-4  # max abs difference allowed


def _hf_config(**kw) -> transformers.ViTConfig:
    base = dict(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768,
                image_size=224, patch_size=16, layer_norm_eps=1e-12, qkv_bias=True)  # fmt: skip
    return transformers.ViTConfig(**{**base, **kw})


def _saved(model: torch.nn.Module, tmp_path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    model.save_pretrained(tmp_path)
    return load_file(str(tmp_path / "model.safetensors"))


@pytest.mark.parametrize("size", [(224, 224), (384, 384), (320, 448)], ids=str)
@torch.no_grad()
def test_vitmodel_tokens_match(size, tmp_path, images):
    torch.manual_seed(0)
    hf = randomize_(transformers.ViTModel(_hf_config(), add_pooling_layer=False), seed=2).eval()
    ours = vitzoo.create_model(
        "vit_tiny_patch16_224", num_classes=0, layer_norm_eps=1e-12, dynamic_img_size=True, pos_embed_antialias=False
    ).eval()
    ours.load_state_dict(from_transformers(_saved(hf, tmp_path)).state_dict, strict=True)
    x = images(*size)
    ref = hf(pixel_values=x, interpolate_pos_encoding=size != (224, 224)).last_hidden_state
    got = ours.forward_features(x)
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() <= TOL


@torch.no_grad()
def test_image_classification_logits_match(tmp_path, images):
    torch.manual_seed(0)
    hf = transformers.ViTForImageClassification(_hf_config(num_labels=10, hidden_size=384, num_attention_heads=6,
                                                           intermediate_size=1536, num_hidden_layers=4))  # fmt: skip
    randomize_(hf, seed=3).eval()
    ours = vitzoo.create_model("vit_small_patch16_224", num_classes=10, depth=4, layer_norm_eps=1e-12).eval()
    ours.load_state_dict(from_transformers(_saved(hf, tmp_path)).state_dict, strict=True)
    x = images(224, 224)
    assert (ours(x) - hf(pixel_values=x).logits).abs().max().item() <= TOL


def test_in_memory_names_of_transformers_5_convert_too():
    """``model.state_dict()`` of transformers >= 5 uses other names than the files; both convert to the same."""
    torch.manual_seed(0)
    hf = transformers.ViTForImageClassification(_hf_config(num_labels=5, num_hidden_layers=2))
    converted = from_transformers(hf.state_dict()).state_dict
    ours = vitzoo.create_model("vit_tiny_patch16_224", num_classes=5, depth=2)
    ours.load_state_dict(converted, strict=True)


def test_unknown_keys_are_named():
    with pytest.raises(vitzoo.VitzooError, match="encoder.extra.weight"):
        from_transformers({"encoder.extra.weight": torch.zeros(2, 2)})
