"""``extract_features``, ``predict`` and ``vitzoo predict`` on generated images, in this process.

Every output is checked against ``model(create_transform(model)(image))`` computed directly here. The embed job is
tested in test_embed.py, which uses the model and images made here.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

import vitzoo
import vitzoo.cli
from conftest import BF16_TOL, cli, one_line_error, preprocess, save_tiny_model, write_images
from vitzoo.choices import FEATURE_POOLS, POOLS
from vitzoo.features.batches import expand_inputs
from vitzoo.models.vit import pool_tokens

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread for this module


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    return write_images(tmp_path_factory.mktemp("imgs"))


def good(files: dict[str, Path]) -> list[Path]:
    return [files[n] for n in ("a_photo.jpg", "b_alpha.png", "c_gray.png")]


def extract(model, inputs, **kw):
    return vitzoo.extract_features(model, inputs, num_workers=0, progress=False, **kw)


def test_every_pool_and_layers_match_the_direct_forward(saved_model, files):
    model, _ = saved_model
    x = preprocess(model, good(files))
    with torch.no_grad():
        tokens = model.forward_features(x)
        expected = {"token": tokens[:, 0], "avg": tokens[:, 1:].mean(1), "tokens": tokens,
                    "pre_logits": model.forward_head(tokens, pre_logits=True), "output": model(x)}  # fmt: skip
        _, inter = model.forward_intermediates(x, indices=[0, 1], norm=True, output_fmt="NLC",
                                               return_prefix_tokens=True)  # fmt: skip
    assert set(expected) == set(FEATURE_POOLS) - {"map"}  # map: SigLIP only (test_families)
    for pool, ref in expected.items():
        assert (extract(model, good(files), pool=pool) - ref).abs().max().item() <= 1e-4, pool
    multi = extract(model, good(files), layers=[0, -1], pool="tokens")
    assert set(multi) == {"layer_0", "layer_1"} and multi["layer_1"].shape == (3, 197, 192)
    assert (multi["layer_0"] - torch.cat([inter[0][1], inter[0][0]], 1)).abs().max().item() <= 1e-4
    avg = extract(model, good(files), layers=[1], pool="avg")["layer_1"]
    assert (avg - expected["avg"]).abs().max().item() <= 1e-4  # the last block, final-normed, is the final output
    assert (extract(model, x) - expected["token"]).abs().max().item() <= 1e-4  # preprocessed tensors pass through
    with pytest.raises(vitzoo.ConfigError, match="pre_logits"):
        extract(model, x, layers=[0], pool="pre_logits")
    with pytest.raises(vitzoo.ConfigError, match="pool must be one of"):
        extract(model, x, pool="max")


def test_pool_tokens_is_what_forward_head_pools():
    assert FEATURE_POOLS[: len(POOLS)] == POOLS  # the feature pools extend the global ones
    tokens = torch.randn(2, 197, 192, generator=torch.Generator().manual_seed(0))  # (B, 1 + N, D)
    for global_pool in ("token", "avg"):  # "map" is a module (SigLIP's attention pool), tested in test_families
        model = vitzoo.create_model("vit_tiny_patch16_224", depth=1, num_classes=0, global_pool=global_pool)
        assert torch.equal(model.forward_head(tokens), pool_tokens(tokens, global_pool, 1))
    with pytest.raises(vitzoo.ConfigError, match="needs a class token"):
        pool_tokens(tokens, "token", 0)


def test_unreadable_images_raise_or_are_skipped_and_on_error_is_checked(saved_model, files):
    model, _ = saved_model
    with pytest.raises(vitzoo.ImageError, match=r"d_corrupt\.jpg"):
        extract(model, [files["d_corrupt.jpg"]])
    assert extract(model, [files["d_corrupt.jpg"], files["a_photo.jpg"]], on_error="skip").shape == (1, 192)
    with pytest.raises(vitzoo.ImageError, match="none of the 1 inputs"):
        extract(model, [files["d_corrupt.jpg"]], on_error="skip")
    with pytest.raises(vitzoo.ConfigError, match=r"on_error must be 'raise' .* or 'skip'.*'ignore'"):
        extract(model, [files["a_photo.jpg"]], on_error="ignore")
    with pytest.raises(vitzoo.VitzooError, match="no images in the inputs"):
        extract(model, [])


def test_string_dtypes(saved_model, files):
    model, _ = saved_model
    fp32 = extract(model, good(files))
    low = copy.deepcopy(model)
    bf16 = extract(low, good(files), dtype="bf16")
    assert next(low.parameters()).dtype == torch.bfloat16 and bf16.dtype == torch.float32
    assert 0 < (bf16 - fp32).norm() / fp32.norm() <= BF16_TOL
    for bad in ("bf17", "int4", 16):
        with pytest.raises(vitzoo.ConfigError, match="dtype must be one of fp32, float32, bf16"):
            extract(low, good(files), dtype=bad)


def test_progress_bar_honours_progress_and_the_hub_switch(saved_model, capsys):
    from huggingface_hub import constants
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    if constants.HF_HUB_DISABLE_PROGRESS_BARS:
        pytest.skip("HF_HUB_DISABLE_PROGRESS_BARS is set in this environment")
    model, _ = saved_model
    x = torch.zeros(2, 3, 224, 224)
    vitzoo.extract_features(model, x, num_workers=0)
    assert "2/2" in capsys.readouterr().err
    extract(model, x)
    disable_progress_bars("vitzoo")
    try:
        vitzoo.extract_features(model, x, num_workers=0)
    finally:
        enable_progress_bars("vitzoo")
    assert capsys.readouterr().err == ""


def test_inputs_are_expanded_once(files, tmp_path):
    listing = tmp_path / "list.lst"
    listing.write_text(f"{files['a_photo.jpg'].parent}\n")  # a listed folder is an input, not expanded again
    items = expand_inputs([listing])
    assert items == [str(files["a_photo.jpg"].parent)] and expand_inputs(items) is items
    assert expand_inputs(files["a_photo.jpg"].parent) == [str(p) for p in files.values()]


def test_predict_takes_only_its_keywords(saved_model):
    model, _ = saved_model
    with pytest.raises(TypeError, match="batch_sise"):
        vitzoo.predict(model, torch.zeros(1, 3, 224, 224), batch_sise=2)


def test_predict_cli_uses_shipped_imagenet_names(saved_model, files, capsys):
    model, name = saved_model
    path = files["a_photo.jpg"]
    assert vitzoo.cli.main(["predict", name, str(path), "--json", "--topk", "3", "--workers", "0"]) == 0
    top = json.loads(capsys.readouterr().out)[0]["top"]
    with torch.no_grad():
        probs = model(preprocess(model, [path])).softmax(-1)[0]
    names = (Path(vitzoo.__file__).parent / "data" / "imagenet1k_labels.txt").read_text().splitlines()
    assert [t["index"] for t in top] == probs.topk(3).indices.tolist()
    assert top[0]["label"] == names[top[0]["index"]] and abs(top[0]["prob"] - probs.max().item()) <= 1e-5
    assert vitzoo.cli.main(["predict", name, str(path), "--workers", "0", "--dtype", "bf16"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == str(path)


def test_predict_skips_unreadable_images_in_place_when_asked(saved_model, files):
    model, _ = saved_model
    inputs = [files["d_corrupt.jpg"], files["a_photo.jpg"]]
    with pytest.raises(vitzoo.ImageError, match=r"d_corrupt\.jpg"):
        vitzoo.predict(model, inputs, num_workers=0)
    ref = vitzoo.predict(model, [files["a_photo.jpg"]], topk=2, num_workers=0)[0]
    assert vitzoo.predict(model, inputs, topk=2, num_workers=0, on_error="skip") == [[], ref]
    seen = []
    got = vitzoo.predict(model, inputs, topk=2, num_workers=0, on_error=lambda item, why: seen.append((item, why)))
    assert got == [[], ref] and [item for item, _ in seen] == [str(files["d_corrupt.jpg"])]
    assert "d_corrupt.jpg" in seen[0][1] and "cannot read" in seen[0][1]
    with pytest.raises(vitzoo.ImageError, match=r"none of the 1 inputs could be read, e\.g\. .*d_corrupt\.jpg"):
        vitzoo.predict(model, [files["d_corrupt.jpg"]], num_workers=0, on_error="skip")


def test_predict_cli_lists_unreadable_images_on_stderr_and_shows_progress(saved_model, files):
    """Like embed: an unreadable image is skipped and named with the reason (exit 0 while one image was read); none
    readable is an error. Without --quiet a progress bar goes to stderr."""
    _, name = saved_model
    args = ("predict", name, files["d_corrupt.jpg"], files["a_photo.jpg"], "--topk", "1", "--workers", "0")
    res = cli(*args, "--json")
    assert res.returncode == 0, res.stderr
    assert [row["input"] for row in json.loads(res.stdout)] == [str(files["a_photo.jpg"])]
    skipped = [line for line in res.stderr.splitlines() if line.startswith("vitzoo: skipped")]
    assert len(skipped) == 1 and "d_corrupt.jpg: cannot read the image" in skipped[0], res.stderr
    assert "2/2 [" in res.stderr and "img/s" in res.stderr, res.stderr  # the progress bar, over both images
    quiet = cli(*args, "--quiet")
    assert quiet.returncode == 0 and quiet.stdout.splitlines()[0] == str(files["a_photo.jpg"])
    assert quiet.stderr == skipped[0] + "\n"
    one_line_error(cli("predict", name, files["d_corrupt.jpg"], "--workers", "0", "--quiet"), "d_corrupt.jpg")
