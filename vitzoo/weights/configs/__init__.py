"""A checkpoint's config file to vitzoo's config and facts, by who wrote it: timm or vitzoo (``config.json`` with an
``architecture``, ``timm.py``), transformers (``config.json`` with a ``model_type``, ``transformers.py``) or open_clip
(``open_clip_config.json``, ``open_clip.py``). ``parse`` picks the reader; ``timm.to_json`` writes vitzoo's folders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...models.config import ViTConfig
from ...models.pretrained_cfg import PretrainedCfg
from .open_clip import from_open_clip
from .timm import from_timm
from .transformers import MODEL_TYPES, from_transformers


def is_transformers(config: Mapping[str, Any]) -> bool:
    """A transformers ``config.json``: a ``model_type`` vitzoo reads, or any with transformers' ``hidden_size``."""
    return config.get("model_type") in MODEL_TYPES or "hidden_size" in config


def is_open_clip(config: Mapping[str, Any]) -> bool:
    """An ``open_clip_config.json``, or a bare open_clip model config."""
    return "model_cfg" in config or "vision_cfg" in config


def parse(
    config: Mapping[str, Any],
    name: str,
    keys: set[str],
    repo_id: str | None = None,
    processor: Mapping[str, Any] | None = None,
) -> tuple[ViTConfig, PretrainedCfg]:
    """The model config and checkpoint facts a ``config.json`` describes.

    ``name`` names the checkpoint in the facts unless the config names it; ``keys`` are the checkpoint's tensor
    names (empty when only the config was read); ``repo_id`` is the Hub repo it came from, if any; ``processor`` is
    a transformers repo's ``preprocessor_config.json``, whose eval recipe then replaces the defaults of the
    family's image-processor class.
    """
    if is_open_clip(config):
        return from_open_clip(config, name, repo_id)
    if is_transformers(config):
        return from_transformers(config, name, keys, repo_id, processor)
    return from_timm(config, name)


__all__ = ["from_open_clip", "from_timm", "from_transformers", "is_open_clip", "is_transformers", "parse"]
