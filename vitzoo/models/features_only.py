"""timm's ``features_only=True`` model of a ViT: the outputs of chosen blocks as NCHW maps, one per index.

``FeaturesOnly`` is timm's ``FeatureGetterNet`` over ``forward_intermediates``: the wrapped model is pruned to the
blocks it needs (no final norm, no head), held as ``.model`` (so the state-dict names are timm's, ``model.blocks.0...``)
and ``feature_info`` says each map's channels, stride and block. ``create_model(name, features_only=True,
out_indices=...)`` builds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from .pretrained_cfg import PretrainedCfg
from .vit import VisionTransformer


class FeatureInfo:
    """timm's ``FeatureInfo``: one dict per block (``module``, ``num_chs``, ``reduction``) and the chosen
    ``out_indices``; ``channels()``, ``reduction()`` and ``module_name()`` list the chosen blocks' (or ``idx``'s)."""

    def __init__(self, info: list[dict[str, Any]], out_indices: Sequence[int]) -> None:
        self.info = [{**fi, "index": i} for i, fi in enumerate(info)]
        self.out_indices = tuple(out_indices)

    def get(self, key: str, idx: int | Sequence[int] | None = None) -> Any:
        """``key`` of each output (``idx`` None), of block ``idx``, or of each block in ``idx``."""
        if idx is None:
            return [self.info[i][key] for i in self.out_indices]
        if isinstance(idx, int):
            return self.info[idx][key]
        return [self.info[i][key] for i in idx]

    def channels(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("module", idx)

    def __getitem__(self, item: int) -> dict[str, Any]:
        return self.info[item]

    def __len__(self) -> int:
        return len(self.info)


class FeaturesOnly(nn.Module):
    """Images (B, C, H, W) to a list of block outputs, patch tokens only: (B, D, h, w) each (``"NLC"``: (B, N, D)).

    ``out_indices``: an int n = the last n blocks (timm's ViT default: 3), or block indices (negative from the end).
    ``norm=True`` applies the final LayerNorm to each map (kept, not pruned).
    """

    def __init__(
        self,
        model: VisionTransformer,
        out_indices: int | Sequence[int] = 3,
        output_fmt: Literal["NCHW", "NLC"] = "NCHW",
        norm: bool = False,
    ) -> None:
        super().__init__()
        self.out_indices = model.prune_intermediate_layers(out_indices, prune_norm=not norm)
        self.feature_info = FeatureInfo(model.feature_info, self.out_indices)
        self.model = model
        self.output_fmt: Literal["NCHW", "NLC"] = output_fmt
        self.norm = norm

    @property
    def pretrained_cfg(self) -> PretrainedCfg | None:
        """The wrapped model's checkpoint facts (its preprocessing: ``vitzoo.create_transform(features.model)``)."""
        return self.model.pretrained_cfg

    default_cfg = pretrained_cfg

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = self.model.forward_intermediates(
            x, indices=self.out_indices, norm=self.norm, output_fmt=self.output_fmt, intermediates_only=True
        )
        assert isinstance(out, list)
        return out
