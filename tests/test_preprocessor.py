"""A transformers repo's ``preprocessor_config.json`` is its eval recipe: vitzoo prepares images as that processor.

Before, it was ignored (repos whose processor says ImageNet mean/std and bicubic got ViTImageProcessor's 0.5 and
bilinear), and then shortest-edge resizes (CLIP, DINOv2) were refused. The processors below are transformers' own
classes with the values of the Hub repos, saved by transformers; the reference is what
``AutoImageProcessor.from_pretrained(folder)`` gives (transformers 5's default, torchvision backend).

Pixels are compared un-normalised: ``max |ours - theirs| * std``, in [0, 1] units, must be at most 1/255 (one 8-bit
level). Measured on these images (transformers 5.24, torch 2.14, CPU): at most 1.2e-7 (CLIP), 0 for DINOv3, i.e.
equal up to float rounding. timm's recipe on the same facts fails the bound: its single PIL resize is 7/255 off
after a bicubic resize (PIL may take the vertical pass first, torch always the horizontal one), and its rounded crop
offset shifts the crop by a pixel where the margin is 3 mod 4 (115/255 for DINOv2, 139/255 for CLIP). After a
bilinear resize (ViT, DINOv3) it is only 1/255 off: there the facts, not the bound, tell the recipes apart.
"""

from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np
import pytest
import timm
import torch
import transformers
from PIL import Image
from transformers import AutoImageProcessor

import vitzoo
from conftest import TOL, cli, folder_files, maxdiff, randomize_
from vitzoo.weights.configs.processors import processor_facts

PIXEL_TOL = 1 / 255
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
# (w, h): landscape and portrait photos, odd margins, exact size, smaller than the crop, a long strip
SIZES = [(500, 375), (333, 500), (640, 427), (224, 224), (97, 301), (1000, 257)]

PROCESSORS = {
    # google/vit-*: squash to 224 x 224, bilinear, mean/std 0.5
    "vit": transformers.ViTImageProcessor,
    # facebook/dino-vitb16, facebook/vit-mae-*: the same, bicubic, ImageNet statistics
    "dino": lambda: transformers.ViTImageProcessor(resample=3, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD),
    # facebook/deit-*: squash to 256 x 256, center-crop 224, bicubic, ImageNet statistics
    "deit": lambda: transformers.DeiTImageProcessor(image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD),
    # openai/clip-vit-*: shortest edge 224, center-crop 224, bicubic, CLIP statistics (the class defaults)
    "clip": transformers.CLIPImageProcessor,
    # facebook/dinov2-*: shortest edge 256, center-crop 224, bicubic, ImageNet statistics
    "dinov2": lambda: transformers.BitImageProcessor(
        size={"shortest_edge": 256},
        crop_size={"height": 224, "width": 224},
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
        resample=3,
    ),
    # google/siglip-*: squash, no crop, bicubic, 0.5
    "siglip": lambda: transformers.SiglipImageProcessor(size={"height": 256, "width": 256}),
    # facebook/dinov3-*: squash to 224 x 224, bilinear, ImageNet statistics; rescaled to [0, 1] before the resize
    "dinov3": transformers.DINOv3ViTImageProcessor,
}
# Not Hub values: a crop larger than the resize (padded with zeros), an odd margin on a squash (floored offset), the
# nearest filter (torch's nearest-exact), a non-square squash
EDGES = {
    "pad": lambda: transformers.CLIPImageProcessor(size={"shortest_edge": 200}),
    "odd": lambda: transformers.DeiTImageProcessor(size={"height": 259, "width": 259}, resample=0),
    "wide": lambda: transformers.SiglipImageProcessor(size={"height": 192, "width": 320}),
}
# Files of older repos, written by transformers 4's feature extractors: int sizes, which the class reads
LEGACY = {
    # openai/clip-vit-base-patch16: an int size is the shortest edge for CLIP (default_to_square=False)
    "clip": {
        "feature_extractor_type": "CLIPFeatureExtractor",
        "size": 224,
        "crop_size": 224,
        "do_center_crop": True,
        "do_normalize": True,
        "do_resize": True,
        "resample": 3,
        "image_mean": CLIP_MEAN,
        "image_std": CLIP_STD,
    },
    # facebook/deit-base-distilled-patch16-224: an int size is both sides for DeiT
    "deit": {
        "feature_extractor_type": "DeiTFeatureExtractor",
        "size": 256,
        "crop_size": 224,
        "do_center_crop": True,
        "do_normalize": True,
        "do_resize": True,
        "resample": 3,
        "image_mean": IMAGENET_MEAN,
        "image_std": IMAGENET_STD,
    },
}


@functools.cache  # the tests only read the images, the same six in each test
def _photo(w: int, h: int, seed: int = 0) -> Image.Image:
    """Like a photo: smooth gradients and shading, hard edges (a block pattern) and noise, so resampling shows."""
    rng = np.random.default_rng(seed + w + 7 * h)
    yy, xx = np.mgrid[0:h, 0:w]
    shade = 128 + 100 * np.sin(xx / 7.0) * np.cos(yy / 5.0)
    rgb = np.stack([xx * 255 / max(w - 1, 1), yy * 255 / max(h - 1, 1), shade], -1) + rng.normal(0, 20, (h, w, 3))
    rgb[(xx // 40 + yy // 30) % 2 == 0] *= 0.5
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def _repo(tmp_path, processor, name: str = "repo"):
    """A tiny transformers ViTModel saved with its processor, as transformers writes a Hub repo."""
    torch.manual_seed(0)
    config = transformers.ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    model = randomize_(transformers.ViTModel(config, add_pooling_layer=False)).eval()
    folder = tmp_path / name
    model.save_pretrained(folder)
    if isinstance(processor, dict):
        (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    else:
        processor.save_pretrained(folder)
    return model, folder


def _pixel_diff(ours: torch.Tensor, theirs: torch.Tensor, std: list[float]) -> float:
    """Max abs difference of the un-normalised pixels, in [0, 1] units."""
    return maxdiff(ours * torch.tensor(std).view(-1, 1, 1), theirs * torch.tensor(std).view(-1, 1, 1))


def _check_against_processor(folder) -> float:
    reference = AutoImageProcessor.from_pretrained(folder)
    assert reference.backend == "torchvision"  # transformers 5's default
    cfg = vitzoo.resolve_data_config(f"local-dir:{folder}")
    out = reference.crop_size if reference.do_center_crop else reference.size
    assert cfg.input_size == (3, out.height, out.width)
    assert (cfg.mean, cfg.std) == (tuple(reference.image_mean), tuple(reference.image_std))
    assert cfg.interpolation == {0: "nearest", 2: "bilinear", 3: "bicubic"}[reference.resample]
    ours = vitzoo.create_transform(f"local-dir:{folder}")
    images = [_photo(w, h) for w, h in SIZES]
    theirs = reference(images, return_tensors="pt").pixel_values
    worst = 0.0
    for img, ref in zip(images, theirs, strict=True):
        diff = _pixel_diff(ours(img), ref, list(cfg.std))
        assert diff <= PIXEL_TOL, (img.size, diff)
        worst = max(worst, diff)
    return worst


@pytest.mark.parametrize("kind", [*PROCESSORS, *EDGES])
def test_local_repo_transform_equals_its_processor(kind, tmp_path):
    _, folder = _repo(tmp_path, {**PROCESSORS, **EDGES}[kind]())
    _check_against_processor(folder)


@pytest.mark.parametrize("kind", list(LEGACY))
def test_legacy_int_sizes_are_read_as_the_class_reads_them(kind, tmp_path):
    _, folder = _repo(tmp_path, LEGACY[kind])
    _check_against_processor(folder)
    facts = processor_facts(LEGACY[kind], kind)
    assert facts["crop_mode"] == {"clip": "center", "deit": "squash"}[kind]


def test_processor_facts_are_timm_fields_plus_the_processor():
    """DINOv2's 256 -> 224 is timm's center crop_pct 0.875 (timm reads the saved config.json); only the pixel arithmetic
    is transformers'. DINOv3 rescales first; without do_rescale it resizes the 8-bit image."""
    facts = processor_facts(json.loads(PROCESSORS["dinov2"]().to_json_string()), "dinov2")
    assert facts == {
        "input_size": (3, 224, 224),
        "crop_pct": 0.875,
        "crop_mode": "center",
        "interpolation": "bicubic",
        "mean": tuple(IMAGENET_MEAN),
        "std": tuple(IMAGENET_STD),
        "processor": "transformers",
    }
    dinov3 = json.loads(PROCESSORS["dinov3"]().to_json_string())
    assert processor_facts(dinov3, "dinov3")["processor"] == "transformers_float"
    assert processor_facts({**dinov3, "do_rescale": False}, "dinov3")["processor"] == "transformers"


def test_processor_survives_save_pretrained(tmp_path):
    """The saved config.json keeps the recipe: timm's pretrained_cfg gets timm's fields, vitzoo's every field. The data
    config's dict names the processor, so timm's create_transform refuses it instead of preparing other pixels."""
    _, folder = _repo(tmp_path, PROCESSORS["dinov2"]())
    cfg = vitzoo.resolve_data_config(f"local-dir:{folder}")
    with pytest.raises(TypeError, match="processor"):
        timm.data.create_transform(**cfg.to_dict())
    timm.data.create_transform(**dataclasses.replace(cfg, processor="timm").to_dict())
    model = vitzoo.create_model(f"local-dir:{folder}", pretrained=True)
    saved = vitzoo.save_pretrained(model, tmp_path / "saved")
    config = json.loads((saved / "config.json").read_text())
    assert "processor" not in config["pretrained_cfg"]
    assert config["vitzoo_pretrained_cfg"]["processor"] == "transformers"
    assert vitzoo.resolve_data_config(f"local-dir:{saved}") == cfg


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
    assert _pixel_diff(x[0], pixels[0], IMAGENET_STD) <= PIXEL_TOL
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
        ({"size": {"shortest_edge": 224}}, "shortest-edge resize without a crop"),  # output size varies per image
        ({"size": {"shortest_edge": 256}, "do_center_crop": True, "crop_size": {"height": 224, "width": 192}}, "crop"),
        ({"size": {"height": 256, "width": 320}, "do_center_crop": True, "crop_size": 224}, "crop of a"),
        ({"rescale_factor": 1 / 127.5}, "rescale_factor"),
        ({"resample": 1}, "resample=1"),  # lanczos: not a torchvision tensor filter vitzoo mirrors
        ({"image_processor_type": "ConvNextImageProcessor"}, "ConvNextImageProcessor"),
    ],
)
def test_processor_vitzoo_cannot_reproduce_is_refused(change, named, tmp_path):
    """Rather than prepare images unlike the processor, vitzoo refuses and says what to do."""
    _, folder = _repo(tmp_path, transformers.ViTImageProcessor())
    path = folder / "preprocessor_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(vitzoo.ConfigError, match=rf"preprocessor_config\.json .*{named}.*pass tensors"):
        vitzoo.resolve_data_config(f"local-dir:{folder}")


def test_variable_resolution_processor_is_refused(tmp_path):
    """Siglip2ImageProcessor (NaFlex) resizes each image to its own patch grid: no fixed-size transform matches it."""
    _, folder = _repo(tmp_path, transformers.Siglip2ImageProcessor())
    with pytest.raises(vitzoo.ConfigError, match=r"Siglip2ImageProcessor \(NaFlex: variable resolution"):
        vitzoo.resolve_data_config(f"local-dir:{folder}")


def test_download_fetches_the_processor_for_offline_use(hub, tmp_path, monkeypatch):
    _, folder = _repo(tmp_path, PROCESSORS["deit"]())
    hub.add_commit("facebook/deit-like", folder_files(folder))
    out = cli("download", "hf-hub:facebook/deit-like")
    assert out.returncode == 0 and "preprocessor_config.json" in out.stderr, out.stderr
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = vitzoo.resolve_data_config("hf-hub:facebook/deit-like")
    assert (cfg.crop_pct, cfg.crop_mode, cfg.input_size) == (224 / 256, "squash", (3, 224, 224))
