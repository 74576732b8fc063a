"""The facts a pretrained checkpoint carries: where it lives, its head, and how its images were prepared."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


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
    labels: str | None = None  # label set of the head: "imagenet-1k", "imagenet-21k", ...
    label_names: tuple[str, ...] | None = None  # class names when the checkpoint carries its own (id2label)
    license: str | None = None
    top1: float | None = None  # published ImageNet-1k top-1 (timm's results-imagenet.csv)
    top5: float | None = None
    description: str = ""
    filenames: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")  # preference order
    source_format: str = "timm"

    @property
    def arch(self) -> str:
        return self.name.partition(".")[0]

    @property
    def tag(self) -> str:
        return self.name.partition(".")[2]

    @property
    def img_size(self) -> tuple[int, int]:
        return (self.input_size[1], self.input_size[2])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def class_names(self) -> list[str]:
        """Names of the head's classes: the checkpoint's own, the shipped ImageNet-1k/21k names, or class_<i>."""
        if self.label_names:
            return list(self.label_names)
        if self.labels in ("imagenet-1k", "imagenet-21k"):
            from importlib import resources

            text = (resources.files("vitzoo") / "data" / f"{self.labels.replace('-', '')}_labels.txt").read_text()
            names = text.splitlines()
            if len(names) == self.num_classes:
                return names
        return [f"class_{i}" for i in range(self.num_classes)]
