"""vitzoo: the Vision Transformer family of Dosovitskiy et al. (ICLR 2021) for PyTorch."""

from ._version import __version__
from .analysis import capture_attention, fewshot_eval
from .config import ViTConfig
from .embedder import BatchEmbedder
from .embeddings import Embeddings, open_embeddings
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
from .export import export_onnx, export_program
from .extract import extract_features, predict
from .factory import create_model, load_pretrained, save_pretrained
from .model import VisionTransformer
from .pos_embed import resample_patch_embed, resample_pos_embed
from .pretrained_cfg import LoadReport, PretrainedCfg
from .probe import knn_eval, linear_probe
from .registry import list_models, list_pretrained
from .source import get_pretrained_cfg
from .transforms import DataConfig, create_transform, resolve_data_config
from .tuning import freeze, param_groups, unfreeze

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
