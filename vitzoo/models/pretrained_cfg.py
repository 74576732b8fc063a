"""What a model knows of its checkpoint: the facts it was published with, and what loading it did.

Plain data at the bottom layer, so the model can carry both (``model.pretrained_cfg``, ``model.load_report``)
without knowing how checkpoints are loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import ViTConfig


@dataclass(frozen=True)
class PretrainedCfg:
    """One published checkpoint (``arch.tag``), after timm's ``pretrained_cfg`` and torchvision's weight metadata."""

    name: str  # "vit_base_patch16_224.augreg2_in21k_ft_in1k"
    hf_hub_id: str | None  # Hub repo holding the weights ("timm/<name>"); None for local/converted sources
    num_classes: int  # 1000, 21843, ... or 0 for a headless backbone
    input_size: tuple[int, int, int]  # (C, H, W) the checkpoint was trained/evaluated at
    crop_pct: float = 0.9
    crop_mode: str = "center"
    interpolation: str = "bicubic"
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    # vitzoo only, not in timm's pretrained_cfg: whose image processor the eval transform reproduces, "timm" (PIL
    # resize), "transformers" (8-bit torch resize, floored crop offset) or "transformers_float" (resize in [0, 1]);
    # "unsupported": a repo's processor vitzoo cannot reproduce (the description says which), no eval transform
    processor: str = "timm"
    labels: str | None = None  # label set of the head: "imagenet-1k", "imagenet-21k", ...
    label_names: tuple[str, ...] | None = None  # class names when the checkpoint carries its own (id2label)
    license: str | None = None
    top1: float | None = None  # published ImageNet-1k top-1 (timm's results-imagenet.csv)
    top5: float | None = None
    description: str = ""
    filenames: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")  # preference order

    @property
    def arch(self) -> str:
        """The architecture part of the name (``"vit_base_patch16_224"``)."""
        return self.name.partition(".")[0]

    @property
    def tag(self) -> str:
        """The tag part of the name (``"augreg2_in21k_ft_in1k"``); empty for a name without one."""
        return self.name.partition(".")[2]

    @property
    def img_size(self) -> tuple[int, int]:
        """(H, W) the checkpoint was trained or evaluated at."""
        return (self.input_size[1], self.input_size[2])

    def __getitem__(self, key: str) -> Any:
        """timm's ``pretrained_cfg`` is a dict: ``cfg["mean"]`` reads the field (a KeyError for no such field)."""
        if key not in _FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """``cfg.get("crop_pct")`` as on timm's dict (``timm.data.resolve_data_config(model=...)`` reads it so)."""
        return getattr(self, key) if key in _FIELDS else default

    def to_dict(self) -> dict[str, Any]:
        """Every field as a plain dict."""
        return asdict(self)

    def class_names(self) -> list[str]:
        """Names of the head's classes: the checkpoint's own, the shipped ImageNet-1k/21k names, or class_<i>."""
        if self.label_names:
            return list(self.label_names)
        if self.labels in ("imagenet-1k", "imagenet-21k"):
            text = (resources.files("vitzoo") / "data" / f"{self.labels.replace('-', '')}_labels.txt").read_text()
            names = text.splitlines()
            if len(names) == self.num_classes:
                return names
        return [f"class_{i}" for i in range(self.num_classes)]


_FIELDS = frozenset(f.name for f in fields(PretrainedCfg))


@dataclass
class LoadReport:
    """What ``load_pretrained`` did. Everything not listed here was loaded as it is in the checkpoint."""

    source: str
    format: str = ""
    files: list[str] = field(default_factory=list)
    loaded: int = 0  # tensors assigned from the checkpoint
    missing: list[str] = field(default_factory=list)  # in the model, not in the checkpoint (strict=False only)
    unexpected: list[str] = field(default_factory=list)  # in the checkpoint, not in the model (strict=False only)
    resized: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    reinitialized: dict[str, str] = field(default_factory=dict)  # key -> why
    dropped: dict[str, str] = field(default_factory=dict)  # key -> why
    cast: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (checkpoint dtype, model dtype)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"loaded {self.loaded} tensors from {self.source} ({self.format} format)"]
        lines += [f"  file: {f}" for f in self.files]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  resized {k}: {tuple(a)} -> {tuple(b)}" for k, (a, b) in self.resized.items()]
        lines += [f"  re-initialised {k}: {why}" for k, why in self.reinitialized.items()]
        lines += [f"  dropped {k}: {why}" for k, why in self.dropped.items()]
        if self.cast:
            pairs = sorted({f"{a} -> {b}" for a, b in self.cast.values()})
            lines.append(f"  cast {len(self.cast)} tensors: {', '.join(pairs)}")
        lines += [f"  MISSING (left initialised): {k}" for k in self.missing]
        lines += [f"  UNEXPECTED (ignored): {k}" for k in self.unexpected]
        return "\n".join(lines)


def eval_size(config: ViTConfig, facts: PretrainedCfg | None) -> tuple[int, int]:
    """The (H, W) a model's eval transform prepares: its ``img_size``, or, for a model that takes any size
    (``dynamic_img_size``), its checkpoint's eval size (a transformers DINOv2 repo's processor crops 224 for a
    table of 518). ``create_model(img_size=...)`` and ``set_input_size`` change both."""
    return facts.img_size if facts is not None and config.dynamic_img_size else config.img_size
