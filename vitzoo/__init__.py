"""vitzoo: the Vision Transformer family of Dosovitskiy et al. (ICLR 2021) for PyTorch."""

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
from .eval.attention import capture_attention
from .eval.fewshot import fewshot_eval
from .eval.probes import knn_eval, linear_probe
from .export import export_onnx, export_program
from .factory import create_model, load_pretrained, save_pretrained
from .features.extract import extract_features, predict
from .features.ray import BatchEmbedder
from .features.store import Embeddings, open_embeddings
from .features.transforms import DataConfig, create_transform, resolve_data_config
from .models.archs import list_models
from .models.config import ViTConfig
from .models.pos_embed import resample_patch_embed, resample_pos_embed
from .models.pretrained_cfg import LoadReport, PretrainedCfg
from .models.vit import VisionTransformer
from .train.param_groups import freeze, param_groups, unfreeze
from .weights.pretrained import list_pretrained
from .weights.source import get_pretrained_cfg

__all__ = [
    "BatchEmbedder",
    "CheckpointError",
    "ConfigError",
    "DataConfig",
    "Embeddings",
    "FormatError",
    "HubError",
    "ImageError",
    "InputError",
    "LoadReport",
    "PretrainedCfg",
    "UnknownModelError",
    "ViTConfig",
    "VisionTransformer",
    "VitzooError",
    "__version__",
    "capture_attention",
    "create_model",
    "create_transform",
    "export_onnx",
    "export_program",
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
    "unfreeze",
]
