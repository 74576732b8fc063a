"""vitzoo's transforms give the same tensors as timm's and transformers' on the same PIL images (<= 1e-5)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import timm
import torch
import transformers
from PIL import Image

import vitzoo
from vitzoo.transforms import DataConfig, ImageError, create_transform, load_image, resolve_data_config

SIZES = [(500, 375), (375, 500), (100, 60), (640, 640), (223, 301)]  # (w, h)
MODES = ["RGB", "L", "LA", "P", "RGBA", "CMYK"]


def _image(w: int, h: int, mode: str, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed + w * 7 + h)
    base = np.zeros((h, w, 3), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    base[..., 0] = (xx * 255 // max(w - 1, 1)).astype(np.uint8)  # smooth gradients plus noise: resampling matters
    base[..., 1] = (yy * 255 // max(h - 1, 1)).astype(np.uint8)
    base[..., 2] = rng.integers(0, 256, (h, w), dtype=np.uint8)
    img = Image.fromarray(base, "RGB")
    if mode == "RGBA":
        return Image.merge("RGBA", (*img.split(), Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8))))
    if mode == "LA":
        return img.convert("L").convert("LA")
    return img.convert(mode) if mode != "P" else img.convert("P", palette=Image.Palette.ADAPTIVE)


def _timm_tensor(timm_model, img: Image.Image, args: dict | None = None) -> torch.Tensor:
    tf = timm.data.create_transform(**timm.data.resolve_data_config(args or {}, model=timm_model))
    return tf(img.convert("RGB"))  # what timm's dataset hands to the transform


CASES = [
    ("vit_base_patch16_224.augreg2_in21k_ft_in1k", {}),  # bicubic, 0.9, mean/std 0.5
    ("vit_base_patch16_384.augreg_in21k_ft_in1k", {}),  # crop_pct 1.0
    ("vit_base_patch16_224.mae", {}),  # ImageNet mean/std
    ("vit_base_patch16_224.augreg2_in21k_ft_in1k", {"img_size": (320, 448)}),  # non-square
]


@pytest.mark.parametrize("name,kw", CASES, ids=lambda v: str(v))
def test_eval_transform_matches_timm(name, kw):
    ours_model = vitzoo.create_model(name, device="meta", **kw)
    ref_model = timm.create_model(name, pretrained=False, **kw)
    transform = create_transform(ours_model)
    for (w, h), mode in zip(SIZES * 2, MODES + MODES[:4]):
        img = _image(w, h, mode)
        # timm keeps the checkpoint's input_size in its data config; vitzoo uses the model's img_size
        args = {"input_size": (3, *kw["img_size"])} if "img_size" in kw else None
        ours, ref = transform(img), _timm_tensor(ref_model, img, args)
        assert ours.shape == ref.shape, (w, h, mode)
        assert (ours - ref).abs().max().item() <= 1e-5, (w, h, mode)
    if not kw:
        assert resolve_data_config(name) == resolve_data_config(vitzoo.create_model(name, device="meta"))


@pytest.mark.parametrize("crop_mode", ["squash", "border", "center"])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest"])
def test_crop_modes_and_filters_match_timm(crop_mode, interpolation):
    cfg = DataConfig(input_size=(3, 224, 192), interpolation=interpolation, crop_pct=0.875, crop_mode=crop_mode,
                     mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))  # fmt: skip
    ref = timm.data.create_transform(input_size=cfg.input_size, interpolation=interpolation, crop_pct=0.875,
                                     crop_mode=crop_mode, mean=cfg.mean, std=cfg.std)  # fmt: skip
    ours = create_transform(cfg)
    for w, h in SIZES:
        img = _image(w, h, "RGB")
        assert (ours(img) - ref(img)).abs().max().item() <= 1e-5, (w, h)


def test_google_repo_recipe_matches_vit_image_processor():
    """google/vit-*: resize straight to size x size, bilinear, mean/std 0.5 (transformers' PIL processor)."""
    config = transformers.ViTConfig(image_size=384)
    from vitzoo import repo_config

    facts = repo_config.parse(config.to_dict(), "hf-hub:google/vit-base-patch16-384", set())[1]
    tf = create_transform(vitzoo.transforms.data_config(facts, (384, 384), 3))
    proc = transformers.ViTImageProcessorPil(size={"height": 384, "width": 384})
    for w, h in SIZES:
        img = _image(w, h, "RGB")
        ref = proc(images=img, return_tensors="pt")["pixel_values"][0]
        assert (tf(img) - ref).abs().max().item() <= 1e-5, (w, h)


def test_image_loading_exif_sixteen_bit_and_bomb_guard(tmp_path):
    img = _image(64, 32, "RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 (camera held upright)
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif.tobytes(), quality=95)
    loaded = load_image(path)
    assert loaded.size == (32, 64) and loaded.mode == "RGB"
    deep = Image.fromarray((np.arange(64 * 32, dtype=np.uint32).reshape(32, 64) * 30).astype(np.uint16))
    assert deep.mode == "I;16"
    deep.save(tmp_path / "deep.png")
    rgb = np.asarray(load_image(tmp_path / "deep.png"))
    assert rgb.shape == (32, 64, 3) and rgb.max() > 200 and rgb[..., 0].tolist() == rgb[..., 2].tolist()
    with pytest.raises(ImageError, match="over the limit .*max_pixels=None"):
        load_image(path, max_pixels=1000)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(ImageError, match="broken.jpg: cannot read"):
        load_image(tmp_path / "broken.jpg")


def test_train_transform_is_random_but_seeded():
    cfg = resolve_data_config("vit_base_patch16_224.augreg2_in21k_ft_in1k")
    img = _image(500, 375, "RGB")
    a = vitzoo.transforms.TrainTransform(cfg, seed=0)
    b = vitzoo.transforms.TrainTransform(cfg, seed=0)
    first = a(img)
    assert first.shape == (3, 224, 224) and torch.equal(first, b(img))
    assert not torch.equal(a(img), first)
