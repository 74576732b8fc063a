"""timm ``VisionTransformer`` state dicts: vitzoo's own names. Only wrappers need removing."""

from __future__ import annotations

import torch

from .base import Converted

_WRAPPERS = ("module.", "model.", "_orig_mod.")  # DDP, some training scripts, torch.compile


def from_timm(state_dict: dict[str, torch.Tensor]) -> Converted:
    """Strip DDP / trainer / torch.compile prefixes (and report it); names are otherwise used verbatim."""
    notes = []
    for prefix in _WRAPPERS:
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix) :]: v for k, v in state_dict.items()}
            notes.append(f"stripped the {prefix!r} prefix from every key")
    return Converted("timm", dict(state_dict), notes)
