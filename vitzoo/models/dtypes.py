"""The floating-point precisions a model runs in, by the names commands and functions take them."""

from __future__ import annotations

import torch

from ..errors import ConfigError

DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """``"fp32"``/``"bf16"``/``"fp16"`` (or ``float32``/``bfloat16``/``float16``, or a torch dtype) to a torch
    dtype; None stays None; anything else is a ``ConfigError`` listing the names."""
    if dtype is None:
        return None
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ConfigError(f"dtype must be one of {', '.join(DTYPES)} (or that torch dtype), got {dtype!r}")
