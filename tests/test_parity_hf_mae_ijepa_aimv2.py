"""Same weights in, same numbers out: vitzoo against transformers' ViT-MAE (facebook/vit-mae-*), I-JEPA
(facebook/ijepa_*) and AIMv2 (apple/aimv2-*), each written by transformers' own ``save_pretrained`` from a tiny
config with random weights (``randomize_``) and read by vitzoo as ``local-dir:`` or from the loopback Hub.

ViT-MAE is compared with ``ViTMAEModel`` unmasked (``mask_ratio=0``, the identity shuffle): the encoder vitzoo builds.
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers as tf  # model classes are looked up when a test runs: collection stays fast

import vitzoo
from conftest import TOL, fast_first, folder_files, hf_saved, maxdiff

TOWER = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)


def _ours(name: str) -> vitzoo.VisionTransformer:
    return vitzoo.create_model(name, pretrained=True).eval()


@torch.no_grad()
def test_vit_mae_pretraining_repo_is_the_unmasked_encoder(tmp_path, images):
    config = tf.ViTMAEConfig(
        **TOWER,
        image_size=32,
        patch_size=8,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=64,
    )
    _, folder = hf_saved(tf.ViTMAEForPreTraining(config), tmp_path / "vit-mae")
    ours = _ours(f"local-dir:{folder}")
    report = ours.load_report
    assert report.format == "transformers-mae" and "decoder.*" in report.dropped and not report.missing
    assert ours.config.class_token and ours.num_classes == 0
    encoder = tf.ViTMAEModel.from_pretrained(folder, mask_ratio=0.0).eval()
    x = images(32, 32)
    order = torch.arange(16.0).expand(2, 16)  # noise sorted ascending: the identity shuffle
    theirs = encoder(pixel_values=x, noise=order).last_hidden_state
    tokens = ours.forward_features(x)
    assert maxdiff(tokens, theirs) <= TOL
    assert maxdiff(ours(x), theirs[:, 0]) <= TOL  # the class token, as timm's vit_*.mae


@pytest.mark.parametrize("classifier", fast_first([False, True]))
@torch.no_grad()
def test_ijepa_tokens_and_mean_pooled_logits(classifier, tmp_path, images):
    config = tf.IJepaConfig(**TOWER, image_size=32, patch_size=8, num_labels=5)
    cls = tf.IJepaForImageClassification if classifier else tf.IJepaModel
    hf, folder = hf_saved(cls(config), tmp_path / "ijepa")
    ours = _ours(f"local-dir:{folder}")
    assert not ours.config.class_token and ours.config.global_pool == "avg"
    x = images(32, 32)
    tokens = ours.forward_features(x)
    if classifier:
        assert ours.num_classes == 5
        assert maxdiff(tokens, hf.ijepa(pixel_values=x).last_hidden_state) <= TOL
        assert maxdiff(ours(x), hf(pixel_values=x).logits) <= TOL
    else:
        theirs = hf(pixel_values=x).last_hidden_state
        assert maxdiff(tokens, theirs) <= TOL
        assert maxdiff(ours(x), theirs.mean(dim=1)) <= TOL


@torch.no_grad()
def test_aimv2_repo_from_the_hub_equals_transformers(hub, tmp_path, images):
    """An apple/aimv2-* style repo (tf.Aimv2VisionModel, RMSNorm, SwiGLU, no biases, CLIP's processor) by hf-hub: id."""
    hf, folder = hf_saved(
        tf.Aimv2VisionModel(tf.Aimv2VisionConfig(**TOWER, image_size=28, patch_size=14)), tmp_path / "aimv2"
    )
    tf.CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}).save_pretrained(folder)
    hub.add_commit("apple/aimv2-like", folder_files(folder))
    ours = _ours("hf-hub:apple/aimv2-like")
    report, cfg = ours.load_report, ours.config
    assert report.format == "transformers-aimv2" and "head.*" in report.dropped and not report.missing
    assert (cfg.norm_layer, cfg.patch_norm, cfg.qkv_bias, cfg.proj_bias, cfg.mlp_layer) == (
        "rmsnorm",
        True,
        False,
        False,
        "swiglu",
    )
    assert ours.pretrained_cfg.input_size == (3, 28, 28) and "AIMv2" in ours.pretrained_cfg.description
    x = images(28, 28)
    theirs = hf(pixel_values=x).last_hidden_state
    assert maxdiff(ours.forward_features(x), theirs) <= TOL
    assert maxdiff(ours(x), theirs.mean(dim=1)) <= TOL  # timm's AIMv2 pools the patch mean


def test_aimv2_configs_vitzoo_cannot_build_are_refused(tmp_path):
    _, folder = hf_saved(
        tf.Aimv2VisionModel(tf.Aimv2VisionConfig(**TOWER, image_size=28, patch_size=14)), tmp_path / "a"
    )
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "mlp_bias": True}))
    with pytest.raises(vitzoo.ConfigError, match="mlp_bias=True"):
        _ours(f"local-dir:{folder}")
    (folder / "config.json").write_text(json.dumps({**config, "is_native": True}))
    with pytest.raises(vitzoo.ConfigError, match="native"):
        _ours(f"local-dir:{folder}")
