"""What every format converter returns, and the error it raises."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from ..errors import FormatError


@dataclass
class Converted:
    """A state dict under vitzoo (timm) names, plus what the conversion did that a user should hear about."""

    format: str
    state_dict: dict[str, torch.Tensor]
    notes: list[str] = field(default_factory=list)  # e.g. "stripped 'module.' prefix", "fused q/k/v"
    dropped: dict[str, str] = field(default_factory=dict)  # checkpoint key -> why it was left out (LoadReport.dropped)


def rename_keys(
    state_dict: Mapping[str, torch.Tensor], rules: Sequence[tuple[str, str]], what: str, strip: str = ""
) -> dict[str, torch.Tensor]:
    """Rename every key by the first rule whose regex matches the whole key (after removing ``strip``).

    A key no rule matches raises ``FormatError`` naming it, so nothing is silently dropped.
    """
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        name = key.removeprefix(strip) if strip else key
        for pattern, replacement in compiled:
            if pattern.fullmatch(name):
                out[pattern.sub(replacement, name)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise FormatError(f"keys not understood as a {what} checkpoint: {unknown[:8]}")
    return out
