"""vitzoo: the Vision Transformer family of Dosovitskiy et al. (ICLR 2021) for PyTorch."""

from .config import ViTConfig
from .errors import ConfigError, InputError, NotAvailableError, UnknownModelError, VitzooError
from .factory import create_model
from .model import VisionTransformer
from .pos_embed import resample_patch_embed, resample_pos_embed
from .registry import list_models

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "InputError",
    "NotAvailableError",
    "UnknownModelError",
    "ViTConfig",
    "VisionTransformer",
    "VitzooError",
    "create_model",
    "list_models",
    "resample_patch_embed",
    "resample_pos_embed",
]
