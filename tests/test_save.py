"""``save_pretrained`` folders are read back by vitzoo and by timm (``timm.create_model("local-dir:...")``)."""

from __future__ import annotations

import json

import pytest
import timm
import torch

import vitzoo
from conftest import fast_first, randomize_

TOL = 1e-4  # max abs logit difference between vitzoo and timm on the same weights (float32 CPU)


@pytest.mark.parametrize(
    ("arch", "overrides", "size"),
    fast_first(
        [
            ("vit_small_patch16_224", dict(depth=2, num_classes=5, img_size=(160, 224)), (160, 224)),
            ("vit_small_patch16_dinov3_qkvb", dict(depth=2, num_classes=7), 256),  # timm's Eva: its names are written
            ("vit_tiny_patch16_224", dict(depth=2, num_classes=7), 224),
            # the hybrid: timm's hybrid arch + model_args (test_hybrid.py saves one through the Hub in the fast suite)
            ("vit_base_r50_s16_224", dict(depth=2, num_classes=7), 224),
            # timm's Eva with separate q/k/v projections: the fused tensors are written split
            ("eva02_base_patch14_448", dict(depth=2, num_classes=7), 448),
            ("eva02_tiny_patch14_224", dict(depth=2, num_classes=7, img_size=168), 168),  # RoPE at another size
        ],
        2,
    ),
)
@torch.no_grad()
def test_saved_folder_loads_in_timm_and_back_with_equal_logits(arch, overrides, size, tmp_path):
    model = randomize_(vitzoo.create_model(arch, **overrides)).eval()
    folder = vitzoo.save_pretrained(model, tmp_path / "saved")
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == arch
    h, w = (size, size) if isinstance(size, int) else size
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0))
    ref = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert (model(x) - ref(x)).abs().max().item() <= TOL
    again = vitzoo.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert again.config == model.config
    assert torch.equal(again(x), model(x))


@torch.no_grad()
def test_a_dinov3_folder_of_vitzoo_0_1_reads_back(tmp_path):
    """vitzoo 0.1 wrote no ``qkv_bias_mode`` and no ``abs_pos_embed`` (its ``rope=True`` meant q and v biases and no
    position table) and the same Eva names."""
    model = randomize_(vitzoo.create_model("vit_small_patch16_dinov3_qkvb", depth=2)).eval()
    folder = vitzoo.save_pretrained(model, tmp_path / "saved")
    config = json.loads((folder / "config.json").read_text())
    assert config["vitzoo_config"].pop("qkv_bias_mode") == "qv"
    assert config["vitzoo_config"].pop("abs_pos_embed") is False
    for new in ("rope_type", "rope_ref_grid", "attn_norm", "mlp_norm"):  # fields added later, at their defaults
        config["vitzoo_config"].pop(new)
    (folder / "config.json").write_text(json.dumps(config))
    again = vitzoo.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert again.config == model.config and again.load_report.format == "timm-eva"
    ours, theirs = model.state_dict(), again.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
