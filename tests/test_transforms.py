"""vitzoo's transforms give the same tensors as timm's and transformers' on the same PIL images (<= 1e-5); the
train transform follows torchvision's RandomResizedCrop(scale=(0.08, 1), ratio=(3/4, 4/3)) + RandomHorizontalFlip."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import timm
import torch
import transformers
from PIL import Image

import vitzoo
from conftest import fast_first, maxdiff, save_safetensors, save_tiny_clip
from vitzoo.features.transforms import DataConfig, ImageError, create_transform, load_image, resolve_data_config

SIZES = [(500, 375), (375, 500), (100, 60), (640, 640), (223, 301)]  # (w, h)
MODES = ["RGB", "L", "LA", "P", "RGBA", "CMYK"]


@functools.cache  # the tests only read the images; a palette ("P") image takes PIL 0.15 s to quantise
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


@pytest.mark.parametrize(("name", "kw"), fast_first(CASES, [CASES[0], CASES[3]]), ids=str)
def test_eval_transform_matches_timm(name, kw):
    ours_model = vitzoo.create_model(name, device="meta", **kw)
    with torch.device("meta"):  # timm's data config comes from the model's pretrained_cfg: no weights needed
        ref_model = timm.create_model(name, pretrained=False, **kw)
    transform = create_transform(ours_model)
    for (w, h), mode in zip(SIZES * 2, MODES + MODES[:4], strict=True):
        img = _image(w, h, mode)
        # timm keeps the checkpoint's input_size in its data config; vitzoo uses the model's img_size
        args = {"input_size": (3, *kw["img_size"])} if "img_size" in kw else None
        ours, ref = transform(img), _timm_tensor(ref_model, img, args)
        assert ours.shape == ref.shape, (w, h, mode)
        assert (ours - ref).abs().max().item() <= 1e-5, (w, h, mode)
    if not kw:
        assert resolve_data_config(name) == resolve_data_config(vitzoo.create_model(name, device="meta"))


@pytest.mark.parametrize(
    "arch", fast_first(["vit_small_patch16_dinov3", "vit_small_patch14_dinov2", "vit_base_patch16_clip_224"])
)
def test_an_arch_with_weights_from_a_file_is_prepared_as_timm_prepares_it(arch, tmp_path):
    """A bare weights file carries no preprocessing: timm gives the model its arch's default checkpoint's data config
    (not the 0.5 / 0.9 defaults), and so does vitzoo, whichever way the file is loaded. The facts claim nothing else
    of that checkpoint."""
    with torch.device("meta"):
        want = timm.data.resolve_data_config({}, model=timm.create_model(arch, pretrained=False))
    file = save_safetensors(vitzoo.create_model(arch, depth=1).state_dict(), tmp_path / "weights.safetensors")
    loaded_later = vitzoo.create_model(arch, depth=1)
    vitzoo.load_pretrained(loaded_later, file)
    for model in (vitzoo.create_model(arch, depth=1, pretrained=file), loaded_later):
        got = resolve_data_config(model).to_dict()
        assert got == want and model.pretrained_cfg.name == arch, (got, want)
        assert model.pretrained_cfg.hf_hub_id is None and model.pretrained_cfg.license is None
    model = vitzoo.create_model(arch, depth=1, img_size=448, patch_size=16, pretrained=file)  # another size asked for
    assert resolve_data_config(model).input_size == (3, 448, 448)
    assert resolve_data_config(model).mean == want["mean"]


@pytest.mark.parametrize("crop_mode", ["squash", "border", "center"])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest"])
def test_crop_modes_and_filters_match_timm(crop_mode, interpolation):
    cfg = DataConfig(
        input_size=(3, 224, 192),
        interpolation=interpolation,
        crop_pct=0.875,
        crop_mode=crop_mode,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
    )
    ref = timm.data.create_transform(
        input_size=cfg.input_size,
        interpolation=interpolation,
        crop_pct=0.875,
        crop_mode=crop_mode,
        mean=cfg.mean,
        std=cfg.std,
    )
    ours = create_transform(cfg)
    for w, h in SIZES:
        img = _image(w, h, "RGB")
        assert (ours(img) - ref(img)).abs().max().item() <= 1e-5, (w, h)


def test_google_repo_recipe_matches_vit_image_processor(tmp_path):
    """google/vit-*: resize straight to size x size, bilinear, mean/std 0.5, as transformers 5's default
    ViTImageProcessor (torchvision backend) does at the model's size, read from the config.json transformers writes
    (no weights, no preprocessor_config.json)."""
    transformers.ViTConfig(image_size=384).save_pretrained(tmp_path / "google-vit-384")
    tf = create_transform(f"local-dir:{tmp_path / 'google-vit-384'}")
    assert tf(_image(500, 375, "RGB")).shape == (3, 384, 384)
    proc = transformers.ViTImageProcessor(size={"height": 384, "width": 384})
    for w, h in SIZES:
        img = _image(w, h, "RGB")
        ref = proc(images=img, return_tensors="pt")["pixel_values"][0]
        assert (tf(img) - ref).abs().max().item() <= 1e-5, (w, h)


@pytest.mark.parametrize(("resize_mode", "crop_mode"), [("shortest", "center"), ("squash", "squash")])
@pytest.mark.parametrize("size", [224, (256, 192)])
def test_open_clip_recipe_matches_open_clip_image_transform(resize_mode, crop_mode, size):
    """open_clip's val transform (``PreprocessCfg.resize_mode``) is timm's recipe at crop_pct 1.0: 'shortest' resizes
    the shorter side and center-crops ("center"), 'squash' resizes both sides ("squash"). Measured: equal (0.0)."""
    from open_clip.transform import PreprocessCfg, image_transform_v2

    clip = dict(mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711))
    pcfg = PreprocessCfg(size=size, resize_mode=resize_mode, interpolation="bicubic", **clip)
    ref = image_transform_v2(pcfg, is_train=False)
    hw = (size, size) if isinstance(size, int) else size
    ours = create_transform(DataConfig((3, *hw), "bicubic", crop_pct=1.0, crop_mode=crop_mode, **clip))
    for w, h in SIZES:
        img = _image(w, h, "RGB")
        assert maxdiff(ours(img), ref(img)) <= 1 / 255, (w, h)  # normalised values; std < 1, so pixels are closer


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
    with pytest.raises(ImageError, match=r"over the limit .*max_pixels=None"):
        load_image(path, max_pixels=1000)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(ImageError, match=r"broken.jpg: cannot read"):
        load_image(tmp_path / "broken.jpg")


def test_train_transform_is_random_but_seeded():
    cfg = resolve_data_config("vit_base_patch16_224.augreg2_in21k_ft_in1k")
    img = _image(500, 375, "RGB")
    a = vitzoo.features.transforms.TrainTransform(cfg, seed=0)
    b = vitzoo.features.transforms.TrainTransform(cfg, seed=0)
    first = a(img)
    assert first.shape == (3, 224, 224) and torch.equal(first, b(img))
    assert not torch.equal(a(img), first)


# ------------------------------------------------------------------------------------------- train transform
IMAGENET = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
W, H = 200, 150  # smaller than the output: every source pixel of a crop shows up in its nearest-neighbour resize
OUT = (224, 192)  # (h, w), not square: height and width must not be swapped anywhere


def _coordinate_image() -> Image.Image:
    """Red = x, green = y (so a crop's box can be read back from its pixels), blue = noise (so flips show)."""
    yy, xx = np.mgrid[0:H, 0:W]
    noise = np.random.default_rng(1).integers(0, 256, (H, W))
    return Image.fromarray(np.stack([xx, yy, noise], -1).astype(np.uint8), "RGB")


def _torchvision_crop(img: Image.Image, box: tuple[int, int, int, int], flip: bool) -> torch.Tensor:
    """torchvision's recipe on a given box (left, top, right, bottom): crop + resize, flip, ToTensor + Normalize."""
    import torchvision.transforms.functional as TF
    from torchvision.transforms import InterpolationMode

    left, top, right, bottom = box
    out = TF.resized_crop(img, top, left, bottom - top, right - left, list(OUT), InterpolationMode.NEAREST)
    out = TF.hflip(out) if flip else out
    return TF.normalize(TF.to_tensor(out), IMAGENET["mean"], IMAGENET["std"])


def test_train_transform_crops_like_torchvision_random_resized_crop():
    """Each output is torchvision's crop + resize (+ flip) + ToTensor + Normalize of the box it took; the boxes' area
    fractions lie in [0.08, 1] and aspect ratios in [3/4, 4/3], and their distribution is torchvision's.

    Nearest-neighbour sampling is used so the box can be read back from the pixels; both crop first and then resize,
    so every output pixel is torchvision's.

    The draws are seeded, so the run is reproducible; the thresholds are ones a correct implementation would miss
    about once in a million seeds (two-sample Kolmogorov-Smirnov p < 1e-6; the flip rate more than 5 standard
    deviations from 1/2). Rounding a box side to whole pixels moves the area fraction by
    < 0.005 and the ratio by < 3% at the smallest boxes, hence the slack on the bounds.
    """
    import scipy.stats
    from torchvision.transforms import RandomResizedCrop

    cfg = DataConfig(input_size=(3, *OUT), interpolation="nearest", **IMAGENET)
    tf = vitzoo.create_transform(cfg, train=True)
    tf.rng.seed(0)  # deterministic draws, so the statistical checks below give the same verdict on every run
    img = _coordinate_image()
    mean, std = torch.tensor(IMAGENET["mean"]).view(3, 1, 1), torch.tensor(IMAGENET["std"]).view(3, 1, 1)

    def pixels(t: torch.Tensor) -> torch.Tensor:
        return (t * std + mean).mul(255).round()

    n, areas, ratios, centres, flips = 300, [], [], [], 0
    for _ in range(n):
        out = tf(img)
        assert out.shape == (3, *OUT) and out.dtype == torch.float32
        raw = pixels(out)
        box = (int(raw[0].min()), int(raw[1].min()), int(raw[0].max()) + 1, int(raw[1].max()) + 1)
        refs = [_torchvision_crop(img, box, flip) for flip in (False, True)]
        off = [(raw[:2] - pixels(ref)[:2]).abs().max().item() for ref in refs]  # source x, y: pixels apart
        flip = off[1] < off[0]
        assert off[flip] == 0 < off[not flip], (box, off)  # the same source pixel everywhere
        assert maxdiff(out, refs[flip]) <= 1e-6  # and the same colours
        flips += flip
        w, h = box[2] - box[0], box[3] - box[1]
        areas.append(w * h / (W * H))
        ratios.append(w / h)
        centres.append((box[0] + box[2]) / 2 / W)
    assert min(areas) >= 0.08 - 0.005 and max(areas) <= 1.0
    assert min(ratios) >= 3 / 4 / 1.03 and max(ratios) <= 4 / 3 * 1.03
    assert abs(flips / n - 0.5) <= 5 * (0.25 / n) ** 0.5

    torch.manual_seed(0)
    ref = [RandomResizedCrop.get_params(img, scale=[0.08, 1.0], ratio=[3 / 4, 4 / 3]) for _ in range(3000)]
    ref_areas = [bw * bh / (W * H) for _, _, bh, bw in ref]
    ref_ratios = [bw / bh for _, _, bh, bw in ref]
    ref_centres = [(j + bw / 2) / W for _, j, _, bw in ref]
    for ours, theirs in ((areas, ref_areas), (ratios, ref_ratios), (centres, ref_centres)):
        assert scipy.stats.ks_2samp(ours, theirs).pvalue > 1e-6


def test_train_transform_of_a_model_uses_its_checkpoint_normalisation_and_size():
    """A flat image stays flat under any crop, resize and flip: the output is torchvision's ToTensor + Normalize of
    that colour with the mean/std timm records for the checkpoint, at the model's size."""
    import torchvision.transforms.functional as TF
    from timm.models import get_pretrained_cfg

    name = "vit_base_patch16_224.mae"  # ImageNet mean/std, not 0.5
    facts = get_pretrained_cfg(name).to_dict()
    flat = Image.new("RGB", (300, 200), (10, 128, 250))
    for kw, size in (({}, (224, 224)), ({"img_size": (320, 448)}, (320, 448))):
        tf = vitzoo.create_transform(vitzoo.create_model(name, device="meta", **kw), train=True)
        ref = TF.normalize(TF.to_tensor(Image.new("RGB", size[::-1], (10, 128, 250))), facts["mean"], facts["std"])
        for _ in range(3):
            assert maxdiff(tf(flat), ref) <= 1e-6


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_train_transform_filters_only_inside_its_crop(interpolation, monkeypatch):
    """With a smooth filter the crop's edge pixels must come from inside the box, as torchvision's crop-then-resize;
    resizing with PIL's ``box=`` would blend in the pixels just outside it (up to 65/255 off at the edges)."""
    import torchvision.transforms.functional as TF
    from torchvision.transforms import InterpolationMode

    cfg = DataConfig(input_size=(3, *OUT), interpolation=interpolation, **IMAGENET)
    tf = vitzoo.create_transform(cfg, train=True)
    left, top, right, bottom = box = (30, 20, 130, 140)
    monkeypatch.setattr(tf, "_box", lambda w, h: box)  # a known crop; the flip is decided by the next random draw
    monkeypatch.setattr(tf.rng, "random", lambda: 0.9)  # >= 0.5: no flip
    img = _coordinate_image()
    mode = InterpolationMode.BILINEAR if interpolation == "bilinear" else InterpolationMode.BICUBIC
    ref = TF.resized_crop(img, top, left, bottom - top, right - left, list(OUT), mode)
    ref = TF.normalize(TF.to_tensor(ref), IMAGENET["mean"], IMAGENET["std"])
    assert maxdiff(tf(img), ref) <= 1e-6


# ------------------------------------------------------------------------------------------- fast decode
def _photo_jpeg(path, w: int, h: int, orientation: int | None = None) -> None:
    """A camera-like JPEG: smooth gradients with grain (as _image) at quality 92 and 4:2:0 chroma."""
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    _image(w, h, "RGB").save(path, quality=92, subsampling=2, exif=exif.tobytes())


def test_fast_decode_reduces_large_jpegs_and_stays_close(tmp_path):
    tf = create_transform(DataConfig(input_size=(3, 64, 64), crop_pct=1.0))
    _photo_jpeg(tmp_path / "big.jpg", 1200, 900)
    # resized to 85x64; at least twice that (170x128) is kept: libjpeg's 1/4 scale, 300x225 (1/8 would be 150x113)
    assert tf.draft_size(1200, 900) == (170, 128)
    fast, exact = load_image(tmp_path / "big.jpg", draft=tf.draft_size), load_image(tmp_path / "big.jpg")
    assert fast.size == (300, 225) and exact.size == (1200, 900)
    x_fast, x_exact = tf(fast), tf(exact)
    assert x_fast.shape == x_exact.shape == (3, 64, 64)
    # DCT-domain downscaling then the exact bicubic: about one 8-bit level apart (normalised units: 2/255 a level)
    assert maxdiff(x_fast, x_exact) <= 0.1 and (x_fast - x_exact).pow(2).mean().sqrt().item() <= 0.02
    assert torch.nn.functional.cosine_similarity(x_fast.flatten(), x_exact.flatten(), dim=0).item() > 0.9999
    # a JPEG under twice the target, and any other format, decode every pixel: the exact tensor
    _photo_jpeg(tmp_path / "small.jpg", 160, 120)
    _image(1200, 900, "RGB").save(tmp_path / "big.png")
    for name in ("small.jpg", "big.png"):
        fast, exact = load_image(tmp_path / name, draft=tf.draft_size), load_image(tmp_path / name)
        assert fast.size == exact.size and torch.equal(tf(fast), tf(exact))


def test_fast_decode_sizes_by_the_displayed_orientation(tmp_path):
    # squash to 32x128 (h x w): a wide image needs 256x64 (w x h) as displayed
    tf = create_transform(DataConfig(input_size=(3, 32, 128), crop_pct=1.0, crop_mode="squash"))
    _photo_jpeg(tmp_path / "turned.jpg", 600, 1200, orientation=6)  # stored 600x1200, displayed 1200x600
    img = load_image(tmp_path / "turned.jpg", draft=tf.draft_size)
    # stored needs 64x256: 1/4 scale, 150x300, displayed 300x150 (ignoring the EXIF turn would give 1/2, 300x600)
    assert img.size == (300, 150)
    exact = load_image(tmp_path / "turned.jpg")
    assert exact.size == (1200, 600) and maxdiff(tf(img), tf(exact)) <= 0.1


def test_an_image_text_models_transform_is_its_image_towers(tmp_path):
    """``create_transform(m)`` / ``resolve_data_config(m)`` of a CLIP (``ImageTextModel``) are its ``.visual``'s,
    the checkpoint's recipe (transformers' CLIPImageProcessor here), also what its name resolves to."""
    name = save_tiny_clip(tmp_path / "clip")
    model = vitzoo.create_image_text_model(name)
    cfg = resolve_data_config(model)
    assert cfg == resolve_data_config(model.visual) == resolve_data_config(name)
    assert cfg.input_size == (3, 32, 32) and cfg.processor == "transformers"
    image = _image(100, 60, "RGB")
    assert torch.equal(create_transform(model)(image), create_transform(model.visual)(image))
    assert create_transform(model, train=True).config == create_transform(model.visual, train=True).config
