"""Images to model inputs with exactly the preprocessing each checkpoint was trained with (PIL + numpy + torch).

Eval recipe (timm's ``transforms_imagenet_eval``, same numbers): resize to ``floor(size / crop_pct)`` with the
checkpoint's PIL filter (``center``: shorter side; ``squash``: both sides; ``border``: longer side, then pad with
the mean colour), center crop to ``size``, scale to [0, 1], normalise with the checkpoint's mean/std.

transformers repos (``processor="transformers"``) keep those sizes but prepare the pixels as transformers 5's default
image processors (torchvision backend) do: the 8-bit image is resized as a torch tensor (``interpolate`` with
antialiasing: one horizontal then one vertical pass, where PIL may take them in the other order, several levels
apart after a bicubic resize) and the crop offset is floored, not rounded. ``processor="transformers_float"``
rescales to [0, 1] before the resize, without 8-bit rounding or clipping (``DINOv3ViTImageProcessor``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Literal, overload

import numpy as np
import torch
import torch.nn.functional as F
from PIL import ExifTags, Image, ImageOps

from ..errors import ConfigError, ImageError, VitzooError
from ..models.image_text import ImageTextModel
from ..models.pretrained_cfg import PretrainedCfg, eval_size
from ..models.vit import VisionTransformer
from ..weights.source import Source, default_checkpoint, resolve

_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
_TORCH_MODES = {"nearest": "nearest-exact", "bilinear": "bilinear", "bicubic": "bicubic"}  # transformers' mapping
PROCESSORS = ("timm", "transformers", "transformers_float")
MAX_PIXELS = 178_956_970  # PIL's own hard limit (2 x Image.MAX_IMAGE_PIXELS); larger images are refused
DRAFT_MARGIN = 2  # a fast-decoded JPEG keeps at least twice the resize target per side, so the resize still filters
_TRANSPOSED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class DataConfig:
    """How a checkpoint's eval images were prepared (timm's data config)."""

    input_size: tuple[int, int, int] = (3, 224, 224)  # (C, H, W)
    interpolation: str = "bicubic"
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    crop_pct: float = 0.9
    crop_mode: str = "center"  # "center" | "squash" | "border"
    processor: str = "timm"  # whose pixels: "timm" | "transformers" | "transformers_float" (vitzoo only)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict: timm's data-config keys, and ``processor`` when it is not timm's, so that
        ``timm.data.create_transform(**cfg.to_dict())`` refuses a recipe timm would prepare differently."""
        keys = [k for k in self.__dataclass_fields__ if k != "processor" or self.processor != "timm"]
        return {k: getattr(self, k) for k in keys}


def resolve_data_config(
    model_or_name: VisionTransformer | ImageTextModel | DataConfig | Source | str,
) -> DataConfig:
    """The eval data config of a model (its checkpoint's facts at the model's ``img_size``; an image-text model's is
    its image tower's, ``.visual``), or of a pretrained tag / ``hf-hub:`` id / ``local-dir:`` folder without building
    the model (only a ``config.json`` is read)."""
    if isinstance(model_or_name, DataConfig):
        return model_or_name
    if isinstance(model_or_name, ImageTextModel):
        model_or_name = model_or_name.visual
    if isinstance(model_or_name, (str, Source)):
        src = default_checkpoint(resolve(model_or_name) if isinstance(model_or_name, str) else model_or_name)
        facts = src.facts
        if facts is None and src.config is not None:  # an arch without checkpoints: the defaults at its size
            return DataConfig(input_size=(src.config.in_chans, *src.config.img_size))
        if facts is None:
            raise ConfigError(
                f"{src.name} carries no preprocessing facts: pass a pretrained tag, an hf-hub:/local-dir: source with "
                "a config.json, or a model"
            )
        return data_config(facts, facts.img_size, facts.input_size[0])
    cfg = model_or_name.config
    facts = model_or_name.pretrained_cfg
    if facts is None:
        return DataConfig(input_size=(cfg.in_chans, *cfg.img_size))
    return data_config(facts, eval_size(cfg, facts), cfg.in_chans)


def data_config(facts: PretrainedCfg, img_size: tuple[int, int], in_chans: int = 3) -> DataConfig:
    """A checkpoint's preprocessing at ``img_size``; ``ConfigError`` when vitzoo cannot reproduce it."""
    if facts.processor == "unsupported":  # the repo's image processor (a NaFlex one, say): see facts.description
        raise ConfigError(
            f"{facts.name}: vitzoo does not reproduce this checkpoint's image processor ({facts.description}); "
            "prepare the images with it yourself and pass tensors"
        )
    return DataConfig(
        input_size=(in_chans, *img_size),
        interpolation=facts.interpolation,
        mean=tuple(facts.mean),
        std=tuple(facts.std),
        crop_pct=facts.crop_pct,
        crop_mode=facts.crop_mode,
        processor=facts.processor,
    )


# ------------------------------------------------------------------------------------------------ images
def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to RGB: palette and LA/RGBA drop alpha as timm's ``convert('RGB')`` does; 16-bit greys
    (I;16, I) are scaled to 8 bits first instead of being clipped."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8), mode="L")
    return img.convert("RGB")


def load_image(
    path: str | Path | IO[bytes],
    max_pixels: int | None = MAX_PIXELS,
    *,
    name: str | None = None,
    draft: Callable[[int, int], tuple[int, int]] | None = None,
) -> Image.Image:
    """Open an image file (or a binary file object, ``name`` for messages): EXIF orientation applied, converted
    to RGB, size checked before decoding.

    ``draft`` (fast decode, JPEG only): maps the image's (width, height), as displayed, to the smallest
    (width, height) the caller needs; libjpeg then decodes at 1/2, 1/4 or 1/8 scale in the DCT domain (PIL's
    ``draft``) where the result stays at least that large. ``EvalTransform.draft_size`` is such a function."""
    label = str(path) if name is None else name
    try:
        with Image.open(path) as img:
            w, h = img.size
            if max_pixels is not None and w * h > max_pixels:
                raise ImageError(
                    f"{label}: {w}x{h} = {w * h:,} pixels is over the limit of {max_pixels:,} (a decompression "
                    "bomb guard); pass max_pixels=None if you trust this file"
                )
            if draft is not None and img.format == "JPEG":
                swap = img.getexif().get(ExifTags.Base.Orientation) in _TRANSPOSED
                need_w, need_h = draft(h, w) if swap else draft(w, h)
                img.draft(img.mode, (need_h, need_w) if swap else (need_w, need_h))
            img.load()
            return to_rgb(ImageOps.exif_transpose(img))
    except ImageError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as err:
        raise ImageError(f"{label}: cannot read the image ({err})") from err


# --------------------------------------------------------------------------------------------- transforms
def _resize(img: Image.Image, size_hw: tuple[int, int], interpolation: str) -> Image.Image:
    if (img.height, img.width) == size_hw:
        return img
    return img.resize((size_hw[1], size_hw[0]), _FILTERS[interpolation])


def _resize_tensor(x: torch.Tensor, size_hw: tuple[int, int], interpolation: str) -> torch.Tensor:
    """torchvision's ``resize`` of a (C, H, W) uint8 or float tensor, as transformers' image processors call it."""
    if tuple(x.shape[-2:]) == size_hw:
        return x
    mode = _TORCH_MODES[interpolation]
    return F.interpolate(x[None], size=size_hw, mode=mode, antialias=mode != "nearest-exact")[0]


def _shorter_side(w: int, h: int, size: int) -> tuple[int, int]:
    """torchvision's ``Resize(int)`` output size (h, w); transformers' ``shortest_edge`` is the same."""
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    return (new_long, size) if w <= h else (size, new_long)


def _keep_ratio(w: int, h: int, target_hw: tuple[int, int], longest: float) -> tuple[int, int]:
    """timm's ``ResizeKeepRatio`` output size (h, w)."""
    ratio_h, ratio_w = h / target_hw[0], w / target_hw[1]
    ratio = max(ratio_h, ratio_w) * longest + min(ratio_h, ratio_w) * (1.0 - longest)
    return (round(h / ratio), round(w / ratio))


def _center_crop_or_pad(x: torch.Tensor, size_hw: tuple[int, int], fill: torch.Tensor, floor: bool) -> torch.Tensor:
    """Pad a (C, H, W) tensor with ``fill`` (C values) where it is smaller, then crop the center: the offset of an
    odd margin is rounded half to even as torchvision's ``CenterCrop`` does, or floored as transformers' is."""
    ch, cw = size_hw
    h, w = x.shape[-2:]
    if cw > w or ch > h:
        canvas = fill.to(x.dtype).view(-1, 1, 1).repeat(1, max(ch, h), max(cw, w))
        top, left = max(ch - h, 0) // 2, max(cw - w, 0) // 2
        canvas[:, top : top + h, left : left + w] = x
        x, h, w = canvas, canvas.shape[-2], canvas.shape[-1]
    top = (h - ch) // 2 if floor else round((h - ch) / 2.0)
    left = (w - cw) // 2 if floor else round((w - cw) / 2.0)
    return x[:, top : top + ch, left : left + cw]


class EvalTransform:
    """PIL image -> normalised float32 tensor (C, H, W), following ``DataConfig`` (timm's eval transform, or the
    transformers image processor the config names)."""

    def __init__(self, config: DataConfig) -> None:
        if config.interpolation not in _FILTERS:
            raise VitzooError(f"interpolation {config.interpolation!r} is not one of {sorted(_FILTERS)}")
        if config.crop_mode not in ("center", "squash", "border"):
            raise VitzooError(f"crop_mode {config.crop_mode!r} is not one of center, squash, border")
        if config.processor not in PROCESSORS:
            raise VitzooError(f"processor {config.processor!r} is not one of {', '.join(PROCESSORS)}")
        if config.processor != "timm" and config.interpolation not in _TORCH_MODES:
            raise VitzooError(
                f"interpolation {config.interpolation!r} with processor={config.processor!r}: transformers' "
                f"torchvision backend resizes with {', '.join(_TORCH_MODES)} only"
            )
        self.config = config
        self.mean = torch.tensor(config.mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(config.std, dtype=torch.float32).view(-1, 1, 1)

    def __repr__(self) -> str:
        return f"EvalTransform({self.config})"

    def _resized_size(self, w: int, h: int) -> tuple[int, int]:
        """(H, W) a ``w`` x ``h`` image is resized to before the center crop."""
        cfg = self.config
        crop_pct = cfg.crop_pct or 0.875
        scale = (math.floor(cfg.input_size[1] / crop_pct), math.floor(cfg.input_size[2] / crop_pct))
        if cfg.crop_mode == "squash":
            return scale
        if cfg.crop_mode == "border":
            return _keep_ratio(w, h, scale, longest=1.0)
        if scale[0] == scale[1]:
            return _shorter_side(w, h, scale[0])
        return _keep_ratio(w, h, scale, longest=0.0)

    def draft_size(self, w: int, h: int) -> tuple[int, int]:
        """The smallest (width, height) a ``w`` x ``h`` image may be decoded at for the fast path
        (``load_image(draft=...)``): ``DRAFT_MARGIN`` times the size this transform resizes it to."""
        rh, rw = self._resized_size(w, h)
        return DRAFT_MARGIN * rw, DRAFT_MARGIN * rh

    def __call__(self, img: Image.Image) -> torch.Tensor:
        cfg = self.config
        img = to_rgb(img)
        size = (cfg.input_size[1], cfg.input_size[2])
        resized = self._resized_size(img.width, img.height)
        fill = torch.tensor([round(255 * m) if cfg.crop_mode == "border" else 0 for m in cfg.mean], dtype=torch.float32)
        if cfg.processor == "timm":
            x = to_tensor(_resize(img, resized, cfg.interpolation))
        elif cfg.processor == "transformers":
            x = _resize_tensor(to_tensor(img), resized, cfg.interpolation)
        else:  # transformers_float: rescale, then resize without rounding to 8 bits
            x = _resize_tensor(to_tensor(img) * (1 / 255), resized, cfg.interpolation)
            fill = fill / 255
        x = _center_crop_or_pad(x, size, fill, floor=cfg.processor != "timm")
        x = x.float() / 255 if x.dtype == torch.uint8 else x
        return (x - self.mean) / self.std


def to_tensor(img: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a (3, H, W) uint8 tensor."""
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous()


def normalize(img: Image.Image, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    x = to_tensor(img).float().div(255)  # (3, H, W) in [0, 1]
    return x.sub_(mean).div_(std)


class TrainTransform:
    """A simple fine-tuning recipe: random resized crop (scale 0.08-1, ratio 3/4-4/3), horizontal flip, normalise."""

    def __init__(self, config: DataConfig, scale: tuple[float, float] = (0.08, 1.0), seed: int | None = None) -> None:
        self.config = config
        self.scale = scale
        self.rng = random.Random(seed)
        self.mean = torch.tensor(config.mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(config.std, dtype=torch.float32).view(-1, 1, 1)

    def _box(self, w: int, h: int) -> tuple[int, int, int, int]:
        area = w * h
        for _ in range(10):
            target = area * self.rng.uniform(*self.scale)
            ratio = math.exp(self.rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            cw, ch = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
            if 0 < cw <= w and 0 < ch <= h:
                left, top = self.rng.randint(0, w - cw), self.rng.randint(0, h - ch)
                return left, top, left + cw, top + ch
        side = min(w, h)  # fallback: central square
        return (w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side

    def __call__(self, img: Image.Image) -> torch.Tensor:
        img = to_rgb(img)
        size = (self.config.input_size[1], self.config.input_size[2])
        box = self._box(*img.size)
        # crop, then resize (torchvision's resized_crop): a resize with box= would filter in pixels beyond the box
        img = img.crop(box).resize((size[1], size[0]), _FILTERS[self.config.interpolation])
        if self.rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return normalize(img, self.mean, self.std)


@overload
def create_transform(
    model_or_config: Any, train: Literal[False] = False, *, img_size: int | tuple[int, int] | None = None
) -> EvalTransform: ...
@overload
def create_transform(
    model_or_config: Any, train: Literal[True], *, img_size: int | tuple[int, int] | None = None
) -> TrainTransform: ...
@overload
def create_transform(
    model_or_config: Any, train: bool, *, img_size: int | tuple[int, int] | None = None
) -> EvalTransform | TrainTransform: ...
def create_transform(
    model_or_config: Any, train: bool = False, *, img_size: int | tuple[int, int] | None = None
) -> EvalTransform | TrainTransform:
    """The eval (or ``train=True``: fine-tuning) transform of a model, tag, hub id or ``DataConfig``; an image-text
    model's (CLIP, SigLIP) is its image tower's."""
    config = resolve_data_config(model_or_config)
    if img_size is not None:
        h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
        config = replace(config, input_size=(config.input_size[0], h, w))
    return TrainTransform(config) if train else EvalTransform(config)
