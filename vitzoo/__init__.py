"""vitzoo: the Vision Transformer family of Dosovitskiy et al. (ICLR 2021) for PyTorch.

The public names are imported on first use (PEP 562): ``import vitzoo`` alone imports no torch, so ``vitzoo --help``
answers at once. ``from vitzoo import create_model`` and ``vitzoo.create_model`` work as for any module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    CheckpointError,
    ConfigError,
    FormatError,
    HubError,
    ImageError,
    InputError,
    UnknownModelError,
    VitzooError,
)

if TYPE_CHECKING:  # what __getattr__ imports, for type checkers and IDEs
    from .eval.attention import capture_attention
    from .eval.fewshot import fewshot_eval
    from .eval.probes import knn_eval, linear_probe
    from .eval.search import SearchResult, search_embeddings
    from .eval.zeroshot import zero_shot_classifier, zero_shot_predict
    from .export import export_onnx, export_program, export_text_onnx
    from .factory import create_image_text_model, create_model, load_pretrained, save_pretrained
    from .features.extract import extract_features, predict
    from .features.ray import BatchEmbedder
    from .features.store import Embeddings, open_embeddings
    from .features.transforms import DataConfig, create_transform, resolve_data_config
    from .models.config import ViTConfig
    from .models.image_text import ImageTextModel
    from .models.pos_embed import resample_patch_embed, resample_pos_embed
    from .models.pretrained_cfg import LoadReport, PretrainedCfg
    from .models.text import TextConfig, TextTransformer
    from .models.vit import VisionTransformer
    from .train.param_groups import freeze, param_groups, unfreeze
    from .weights.pretrained import list_models, list_pretrained
    from .weights.source import get_pretrained_cfg

# public name -> the module (below vitzoo) that defines it
_LAZY = {
    "capture_attention": "eval.attention",
    "fewshot_eval": "eval.fewshot",
    "knn_eval": "eval.probes",
    "linear_probe": "eval.probes",
    "SearchResult": "eval.search",
    "search_embeddings": "eval.search",
    "zero_shot_classifier": "eval.zeroshot",
    "zero_shot_predict": "eval.zeroshot",
    "export_onnx": "export",
    "export_program": "export",
    "export_text_onnx": "export",
    "create_image_text_model": "factory",
    "create_model": "factory",
    "load_pretrained": "factory",
    "save_pretrained": "factory",
    "extract_features": "features.extract",
    "predict": "features.extract",
    "BatchEmbedder": "features.ray",
    "Embeddings": "features.store",
    "open_embeddings": "features.store",
    "DataConfig": "features.transforms",
    "create_transform": "features.transforms",
    "resolve_data_config": "features.transforms",
    "ViTConfig": "models.config",
    "ImageTextModel": "models.image_text",
    "resample_patch_embed": "models.pos_embed",
    "resample_pos_embed": "models.pos_embed",
    "LoadReport": "models.pretrained_cfg",
    "PretrainedCfg": "models.pretrained_cfg",
    "TextConfig": "models.text",
    "TextTransformer": "models.text",
    "VisionTransformer": "models.vit",
    "freeze": "train.param_groups",
    "param_groups": "train.param_groups",
    "unfreeze": "train.param_groups",
    "list_models": "weights.pretrained",
    "list_pretrained": "weights.pretrained",
    "get_pretrained_cfg": "weights.source",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vitzoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "BatchEmbedder",
    "CheckpointError",
    "ConfigError",
    "DataConfig",
    "Embeddings",
    "FormatError",
    "HubError",
    "ImageError",
    "ImageTextModel",
    "InputError",
    "LoadReport",
    "PretrainedCfg",
    "SearchResult",
    "TextConfig",
    "TextTransformer",
    "UnknownModelError",
    "ViTConfig",
    "VisionTransformer",
    "VitzooError",
    "__version__",
    "capture_attention",
    "create_image_text_model",
    "create_model",
    "create_transform",
    "export_onnx",
    "export_program",
    "export_text_onnx",
    "extract_features",
    "fewshot_eval",
    "freeze",
    "get_pretrained_cfg",
    "knn_eval",
    "linear_probe",
    "list_models",
    "list_pretrained",
    "load_pretrained",
    "open_embeddings",
    "param_groups",
    "predict",
    "resample_patch_embed",
    "resample_pos_embed",
    "resolve_data_config",
    "save_pretrained",
    "search_embeddings",
    "unfreeze",
    "zero_shot_classifier",
    "zero_shot_predict",
]
