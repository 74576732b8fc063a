"""Every bad input gets a clear error that says what to do, before any compute."""

from __future__ import annotations

import re

import pytest
import torch
from safetensors.torch import save_file

import vitzoo
from conftest import batch, cli, free_port, one_line_error
from vitzoo import CheckpointError, ConfigError, FormatError, HubError, ImageError, InputError, UnknownModelError


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
    assert (
        vitzoo.create_model("vit-l/32", device="meta").config
        == vitzoo.create_model("vit_large_patch32_224", device="meta").config
    )
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
    with pytest.raises(InputError, match=r"does not match the model's img_size .*dynamic_img_size=True"):
        model(torch.zeros(1, 3, 256, 256))
    with pytest.raises(InputError, match="expected 3 input channels, got 1"):
        model(torch.zeros(1, 1, 224, 224))
    with pytest.raises(InputError, match=r"4-D .*add a batch dimension"):
        model(torch.zeros(3, 224, 224))
    with pytest.raises(InputError, match="4-D"):
        model.forward_intermediates(torch.zeros(224, 224))


@pytest.mark.parametrize(
    ("overrides", "match"),
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
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # never the real Hub, even if not offline
    with pytest.raises(HubError, match="no cached copy") as err:
        vitzoo.create_model("vit_base_patch16_224", pretrained=True)
    assert isinstance(err.value, OSError)


def _tiny_checkpoint(tmp_path) -> bytes:
    torch.manual_seed(0)
    path = tmp_path / "whole.safetensors"
    save_file(vitzoo.create_model("vit_tiny_patch16_224", depth=1).state_dict(), str(path))
    return path.read_bytes()


def _unknown_name(tmp_path, monkeypatch):
    vitzoo.create_model("vit_base_patch16_244")


def _bad_config(tmp_path, monkeypatch):
    vitzoo.create_model("vit_tiny_patch16_224", num_heads=5, device="meta")


def _bad_input(tmp_path, monkeypatch):
    vitzoo.create_model("vit_tiny_patch16_224", depth=1)(torch.zeros(3, 224, 224))


def _truncated_checkpoint(tmp_path, monkeypatch):
    data = _tiny_checkpoint(tmp_path)
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    vitzoo.create_model("vit_tiny_patch16_224", depth=1, pretrained=str(tmp_path / "cut.safetensors"))


def _unknown_key_format(tmp_path, monkeypatch):
    save_file({"resnet.conv1.weight": torch.zeros(4, 3, 7, 7)}, str(tmp_path / "resnet.safetensors"))
    vitzoo.create_model("vit_tiny_patch16_224", depth=1, pretrained=str(tmp_path / "resnet.safetensors"))


def _offline_empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # never the real Hub, even if not offline
    vitzoo.create_model("vit_tiny_patch16_224.augreg_in21k_ft_in1k", pretrained=True)


def _hub_unreachable(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # connection refused
    vitzoo.create_model("vit_tiny_patch16_224.augreg_in21k_ft_in1k", pretrained=True)


def _unreadable_image(tmp_path, monkeypatch):
    from vitzoo.features.transforms import load_image

    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    load_image(tmp_path / "broken.jpg")


# (failing call, the vitzoo class, the builtin it promises, what the message must say: the problem and the fix)
FAILURES = [
    (
        _unknown_name,
        UnknownModelError,
        ValueError,
        r"unknown model 'vit_base_patch16_244'.*closest known names: "
        r"vit_base_patch16_224",
    ),
    (_bad_config, ConfigError, ValueError, r"not divisible by num_heads 5; pick num_heads from \[1, 2, 3, 4, 6"),
    (_bad_input, InputError, ValueError, r"4-D .*add a batch dimension"),
    (
        _truncated_checkpoint,
        CheckpointError,
        ValueError,
        r"cut.safetensors: cannot be read .*truncated or corrupt.*"
        r"Delete it .* download it again",
    ),
    (
        _unknown_key_format,
        FormatError,
        ValueError,
        r"cannot tell the checkpoint format .*resnet.conv1.weight.*"
        r"vitzoo reads timm, transformers \(ViT, DeiT, ViT-MAE, I-JEPA, DINOv2, CLIP, SigLIP, DINOv3, AIMv2\), "
        r"torchvision vit_\* and JAX",
    ),
    (
        _offline_empty_cache,
        HubError,
        OSError,
        r"HF_HUB_OFFLINE=1 is set and timm/vit_tiny_patch16_224\.augreg_in21k_"
        r"ft_in1k has no cached copy .*empty-cache.*Connect to the network.*vitzoo download",
    ),
    (
        _hub_unreachable,
        HubError,
        OSError,
        r"the Hub at http://127\.0\.0\.1:\d+ cannot be reached .*no cached copy.*"
        r"point HF_ENDPOINT at a mirror",
    ),
    (_unreadable_image, ImageError, ValueError, r"broken.jpg: cannot read the image"),
]


def _caught_by(action, catch, tmp_path, monkeypatch) -> BaseException:
    """Run ``action`` inside ``try: ... except catch``: what a user's handler would receive."""
    try:
        action(tmp_path, monkeypatch)
    except catch as err:
        return err
    pytest.fail(f"{action.__name__} raised nothing")


@pytest.mark.parametrize(
    ("action", "cls", "builtin", "says"), FAILURES, ids=[f[0].__name__.strip("_") for f in FAILURES]
)
def test_each_error_is_raised_by_a_real_failure_and_caught_both_ways(action, cls, builtin, says, tmp_path, monkeypatch):
    """A failing call raises its own class, which ``except VitzooError`` and ``except <builtin>`` both catch."""
    err = _caught_by(action, vitzoo.VitzooError, tmp_path, monkeypatch)
    assert type(err) is cls, type(err)
    assert re.search(says, str(err), flags=re.S), str(err)
    again = _caught_by(action, builtin, tmp_path, monkeypatch)  # the second handler sees the same failure
    assert type(again) is cls and re.search(says, str(again), flags=re.S)


def test_the_command_line_reports_errors_on_stderr_with_exit_code_2():
    out = cli("info", "vit_base_patch16_244")
    assert out.returncode == 2 and out.stdout == ""
    assert re.match(
        r"vitzoo: error: unknown model 'vit_base_patch16_244'.*closest known names: vit_base_patch16_224", out.stderr
    )


@pytest.mark.parametrize("name", ["hf-hub:", "hf-hub:a//b", "hf-hub:org/repo/extra", "hf-hub:-x"])
def test_a_malformed_hub_id_is_one_line_before_any_request(name):
    assert "is not a Hub repo id: write hf-hub:ORG/NAME" in one_line_error(cli("info", name))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize(
    ("device", "says"), [("cuda", "sees no CUDA GPU"), ("cuda:1", "sees no CUDA GPU"), ("tpu9", "not a device")]
)
def test_a_device_this_machine_lacks_is_one_line_before_any_work(device, says, tmp_path):
    for command in (["predict", "vit_tiny_patch16_224", str(tmp_path)], ["finetune", "m", str(tmp_path)]):
        out = cli(*command, "--device", device, *(["--out", str(tmp_path / "o")] if command[0] == "finetune" else []))
        assert says in one_line_error(out)
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigError, match=says):
        vitzoo.extract_features(vitzoo.create_model("vit_tiny_patch16_224", depth=1), batch(224), device=device)


def test_a_file_system_error_is_one_line_naming_the_path_and_the_fix(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    out = cli("export", "vit_tiny_patch16_224", "--random-weights", "--format", "pt2", "--out", tmp_path / "file/m.pt2")
    assert re.match(rf"vitzoo: error: {tmp_path / 'file'}: .*a file is in the way", one_line_error(out))
