"""What every format converter returns, and the error it raises."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import VitzooError


class FormatError(VitzooError, ValueError):
    """A checkpoint whose keys do not fit the format it was handed to."""


@dataclass
class Converted:
    """A state dict under vitzoo (timm) names, plus what the conversion did that a user should hear about."""

    format: str
    state_dict: dict[str, torch.Tensor]
    notes: list[str] = field(default_factory=list)  # e.g. "stripped 'module.' prefix", "fused q/k/v"
