"""Strict, loud loading: every adaptation is reported, everything else that does not fit raises."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import timm
import torch

import vitzoo
from conftest import TOL, batch, maxdiff, save_safetensors, timm_model
from vitzoo import CheckpointError


@pytest.fixture(scope="module")
def tiny_sd():
    model = timm_model("vit_tiny_patch16_224", seed=1, depth=2, num_classes=10)
    return model, {k: v.clone() for k, v in model.state_dict().items()}


def _tiny(pretrained, **kw):
    return vitzoo.create_model("vit_tiny_patch16_224", depth=2, pretrained=pretrained, **kw)


def test_missing_and_unexpected_keys_raise_with_names(tiny_sd, tmp_path):
    _, sd = tiny_sd
    missing = {k: v for k, v in sd.items() if k != "blocks.1.norm1.weight"}
    with pytest.raises(CheckpointError, match=r"missing \['blocks.1.norm1.weight'\].*strict=False"):
        _tiny(save_safetensors(missing, tmp_path / "m.safetensors"))
    loose = _tiny(save_safetensors(missing, tmp_path / "m.safetensors"), strict=False)
    assert loose.load_report.missing == ["blocks.1.norm1.weight"]
    assert torch.equal(loose.blocks[1].norm1.weight, torch.ones(192))  # initialised, not left on meta
    extra = dict(sd) | {"blocks.0.attn.q_norm.weight": torch.ones(64)}
    with pytest.raises(CheckpointError, match=r"unexpected \['blocks.0.attn.q_norm.weight'\]"):
        _tiny(save_safetensors(extra, tmp_path / "u.safetensors"))
    assert _tiny(save_safetensors(extra, tmp_path / "u.safetensors"), strict=False).load_report.unexpected == [
        "blocks.0.attn.q_norm.weight"
    ]


def test_another_architecture_is_refused_with_shapes(tiny_sd, tmp_path):
    _, sd = tiny_sd
    path = save_safetensors(sd, tmp_path / "tiny.safetensors")
    with pytest.raises(
        CheckpointError, match=r"tiny.safetensors: checkpoint does not fit .*\(192,\) vs model \(384,\)"
    ):
        vitzoo.create_model("vit_small_patch16_224", depth=2, pretrained=path)
    with pytest.raises(CheckpointError, match=r"width 192 and 2 blocks, the model has width 192 and 3 blocks|missing"):
        vitzoo.create_model("vit_tiny_patch16_224", depth=3, pretrained=path)


def test_truncated_and_corrupt_files_name_the_file(tiny_sd, tmp_path):
    _, sd = tiny_sd
    path = tmp_path / "cut.safetensors"
    data = Path(save_safetensors(sd, path)).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut.safetensors: cannot be read .*truncated or corrupt.*download it"):
        _tiny(str(path))
    bad = tmp_path / "pytorch_model.bin"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin: cannot be read"):
        _tiny(str(bad))
    with pytest.raises(CheckpointError, match="no such file"):
        vitzoo.load_pretrained(_tiny(False), str(tmp_path / "absent.safetensors"))


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_with_code_is_refused_and_nothing_runs(tiny_sd, tmp_path):
    _, sd = tiny_sd
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        torch.save(dict(sd) | {"payload": _Evil(str(marker))}, f)
    with pytest.raises(CheckpointError, match=r"evil.pth: refused to unpickle"):
        _tiny(str(path))
    assert not marker.exists()
    raw = tmp_path / "evil_plain.pkl.pth"
    raw.write_bytes(pickle.dumps(_Evil(str(marker))))  # a plain (non-zip) pickle
    with pytest.raises(CheckpointError, match=r"refused to unpickle|cannot be read"):
        _tiny(str(raw))
    assert not marker.exists()


@torch.no_grad()
def test_wrappers_heads_and_dtypes_are_reported(tiny_sd, tmp_path):
    ref, sd = tiny_sd
    x = batch(224, n=1)
    wrapped = {f"module.{k}": v.half() for k, v in sd.items()}  # a DDP checkpoint saved in fp16
    path = tmp_path / "ddp.pth"
    torch.save(wrapped, path)
    model = _tiny(str(path)).eval()
    report = model.load_report
    assert "stripped the 'module.' prefix from every key" in report.notes
    assert report.cast["pos_embed"] == ("float16", "float32") and len(report.cast) == len(sd)
    assert model.config.num_classes == 10  # taken from the checkpoint's head
    assert maxdiff(model(x), ref(x)) <= 1e-2  # the checkpoint holds fp16 weights: their rounding, not TOL
    headless = _tiny(str(path), num_classes=0)
    assert set(headless.load_report.dropped) == {"head.weight", "head.bias"}
    assert "num_classes=0" in headless.load_report.dropped["head.weight"]
    text = str(_tiny(str(path), num_classes=3).load_report)
    assert "re-initialised head.weight: zeros for 3 classes (checkpoint head (10, 192))" in text


@torch.no_grad()
def test_load_pretrained_into_an_existing_model_and_save_round_trip(tiny_sd, tmp_path):
    ref, sd = tiny_sd
    x = batch(224, n=1)
    model = vitzoo.create_model("vit_tiny_patch16_224", depth=2, num_classes=10, dtype=torch.float64)
    report = vitzoo.load_pretrained(model, sd)  # a state dict straight from timm
    assert report.loaded == len(sd) and model.pos_embed.dtype == torch.float64
    assert maxdiff(model.eval()(x.double()).float(), ref(x)) <= TOL
    folder = vitzoo.save_pretrained(model.float(), tmp_path / "saved")
    again = vitzoo.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert again.config == model.config
    assert maxdiff(again(x), ref(x)) <= TOL
    assert maxdiff(timm.create_model(f"local-dir:{folder}", pretrained=True).eval()(x), ref(x)) <= TOL
    # a model carrying checkpoint facts round-trips them, and timm still reads the folder
    tagged = vitzoo.create_model("vit_tiny_patch16_224.augreg_in21k_ft_in1k", depth=2)
    folder = vitzoo.save_pretrained(tagged, tmp_path / "tagged")
    back = vitzoo.create_model(f"local-dir:{folder}", pretrained=True)
    assert back.pretrained_cfg == tagged.pretrained_cfg
    timm_model = timm.create_model(f"local-dir:{folder}", pretrained=True)
    assert timm_model.pretrained_cfg["crop_pct"] == 0.9 and timm_model.pretrained_cfg["tag"] == "augreg_in21k_ft_in1k"


def test_unknown_sources_and_tags():
    with pytest.raises(vitzoo.UnknownModelError, match=r"did you mean .*augreg_in21k_ft_in1k"):
        vitzoo.create_model("vit_base_patch16_224.augreg_in21k_ft", pretrained=True)
    with pytest.raises(CheckpointError, match="no such file"):
        vitzoo.create_model("vit_tiny_patch16_224", pretrained="weights.safetensors")
