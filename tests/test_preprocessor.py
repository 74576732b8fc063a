"""A transformers repo's ``preprocessor_config.json`` is its eval recipe: vitzoo prepares images as that processor.

Before, it was ignored: a repo whose processor says ImageNet mean/std and bicubic (facebook/dino-vitb16, deit-*,
vit-mae-*) got ViTImageProcessor's defaults (0.5 mean/std, bilinear), so features were wrong without a warning. The
processors below are transformers' own classes, saved by transformers (PIL backend, the reference recipe); pixels
must agree within 1/255, the bound of one 8-bit level.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers
from PIL import Image

import vitzoo
from conftest import TOL, cli, folder_files, maxdiff, randomize_

PIXEL_TOL = 1 / 255
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
SIZES = [(500, 375), (375, 500), (224, 224), (97, 301)]  # landscape, portrait, exact, smaller than the crop

PROCESSORS = {
    # facebook/dino-vitb16, facebook/vit-mae-*: squash to 224 x 224, bicubic, ImageNet statistics
    "dino": lambda: transformers.ViTImageProcessorPil(resample=3, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD),
    # facebook/deit-*: squash to 256 x 256, center-crop 224, bicubic
    "deit": transformers.DeiTImageProcessorPil,
}


def _photo(w: int, h: int, seed: int = 0) -> Image.Image:
    """Smooth gradients plus noise, like a photo's edges and textures: resampling differences show."""
    rng = np.random.default_rng(seed + w + 7 * h)
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), rng.integers(0, 256, (h, w))], -1)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def _repo(tmp_path, processor, name: str = "repo"):
    """A tiny transformers ViTModel saved with its processor, as transformers writes a Hub repo."""
    torch.manual_seed(0)
    config = transformers.ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    model = randomize_(transformers.ViTModel(config, add_pooling_layer=False)).eval()
    folder = tmp_path / name
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model, folder


@pytest.mark.parametrize("kind", list(PROCESSORS))
def test_local_repo_transform_equals_its_processor(kind, tmp_path):
    processor = PROCESSORS[kind]()
    _, folder = _repo(tmp_path, processor)
    ours = vitzoo.create_transform(f"local-dir:{folder}")
    for w, h in SIZES:
        img = _photo(w, h)
        ref = processor(images=img, return_tensors="pt")["pixel_values"][0]
        assert ours(img).shape == ref.shape and maxdiff(ours(img), ref) <= PIXEL_TOL, (kind, w, h)


def test_hub_repo_model_carries_the_processor_recipe(hub, tmp_path):
    processor = PROCESSORS["dino"]()
    ref, folder = _repo(tmp_path, processor)
    hub.add_commit("facebook/dino-like", folder_files(folder))
    cfg = vitzoo.resolve_data_config("hf-hub:facebook/dino-like")
    assert (cfg.mean, cfg.std, cfg.interpolation) == (tuple(IMAGENET_MEAN), tuple(IMAGENET_STD), "bicubic")
    assert hub.count("facebook/dino-like/resolve/main/model.safetensors") == 0  # the recipe needs no weights
    model = vitzoo.create_model("hf-hub:facebook/dino-like", pretrained=True).eval()
    assert hub.count("facebook/dino-like/resolve/main/model.safetensors") >= 1  # (the count does see weights)
    img = _photo(500, 375)
    x = vitzoo.create_transform(model)(img).unsqueeze(0)
    pixels = processor(images=img, return_tensors="pt")["pixel_values"]
    assert maxdiff(x, pixels) <= PIXEL_TOL
    with torch.no_grad():  # the same features as transformers on its own processor's pixels
        theirs = ref(pixel_values=pixels).last_hidden_state
        assert maxdiff(model.forward_features(x), theirs) <= TOL


def test_repo_without_processor_keeps_vit_image_processor_defaults(tmp_path):
    transformers.ViTConfig(image_size=224).save_pretrained(tmp_path / "bare")
    cfg = vitzoo.resolve_data_config(f"local-dir:{tmp_path / 'bare'}")
    assert (cfg.mean, cfg.interpolation, cfg.crop_mode) == ((0.5, 0.5, 0.5), "bilinear", "squash")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"size": {"longest_edge": 224}}, "size="),
        ({"size": {"shortest_edge": 224}, "do_center_crop": True, "crop_size": 224}, "shortest-edge"),  # CLIP's
        ({"size": {"height": 256, "width": 256}, "do_center_crop": True, "crop_size": 225}, "crop of a"),  # odd margin
        ({"rescale_factor": 1 / 127.5}, "rescale_factor"),
    ],
)
def test_processor_vitzoo_cannot_reproduce_is_refused(change, named, tmp_path):
    """Rather than prepare images unlike the processor (a shortest-edge resize floors its crop offset where vitzoo's
    recipe rounds it, shifting odd margins by a row), vitzoo refuses and says what to do."""
    _, folder = _repo(tmp_path, transformers.ViTImageProcessorPil())
    path = folder / "preprocessor_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(vitzoo.ConfigError, match=rf"preprocessor_config\.json asks for .*{named}.*pass tensors"):
        vitzoo.resolve_data_config(f"local-dir:{folder}")


def test_download_fetches_the_processor_for_offline_use(hub, tmp_path, monkeypatch):
    _, folder = _repo(tmp_path, PROCESSORS["deit"]())
    hub.add_commit("facebook/deit-like", folder_files(folder))
    out = cli("download", "hf-hub:facebook/deit-like")
    assert out.returncode == 0 and "preprocessor_config.json" in out.stderr, out.stderr
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = vitzoo.resolve_data_config("hf-hub:facebook/deit-like")
    assert (cfg.crop_pct, cfg.crop_mode, cfg.input_size) == (224 / 256, "squash", (3, 224, 224))
