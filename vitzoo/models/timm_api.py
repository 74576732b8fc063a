"""What timm's ``VisionTransformer`` answers that a timm user reaches for first, on vitzoo's model.

``TimmApi`` is a mixin of ``VisionTransformer``: ``num_classes``, ``embed_dim``, ``global_pool``, ``has_class_token``,
``default_cfg`` (``pretrained_cfg``), ``feature_info``, ``get_classifier``, ``group_matcher`` and
``prune_intermediate_layers``, with timm's values and semantics (tests/test_timm_api.py compares them with timm's).
``feature_take_indices`` is timm's reading of a block selection; ``TIMM_ONLY`` names, for the ``create_model``
keywords of timm that vitzoo does not take, the vitzoo way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from torch import nn

from ..errors import ConfigError

if TYPE_CHECKING:
    from .config import ViTConfig
    from .pretrained_cfg import PretrainedCfg

# create_model keywords of timm that vitzoo does not take, and what to use instead
_EXPORT = "vitzoo models are plain eager modules that export as built: vitzoo.export_onnx / vitzoo.export_program"
TIMM_ONLY: dict[str, str] = {
    "pretrained_cfg": (
        "vitzoo names a checkpoint by its tag: create_model('arch.tag', pretrained=True); its facts are "
        "vitzoo.get_pretrained_cfg('arch.tag')"
    ),
    "pretrained_cfg_overlay": (
        "load a file with pretrained=PATH (or checkpoint_path=PATH); change the preprocessing on the transform: "
        "vitzoo.create_transform(model, img_size=...), or dataclasses.replace(vitzoo.resolve_data_config(model), ...)"
    ),
    "cache_dir": (
        "vitzoo downloads through huggingface_hub's cache: set HF_HUB_CACHE, or `vitzoo download NAME --to DIR` "
        "and pass the folder (create_model('local-dir:DIR', pretrained=True))"
    ),
    "scriptable": _EXPORT,
    "exportable": _EXPORT,
    "no_jit": _EXPORT,
    "proj_drop_rate": "vitzoo has one dropout rate, drop_rate (the paper's: after the position embedding, the "
    "attention projection and the MLP layers); attn_drop_rate and drop_path_rate as timm",
    "pos_drop_rate": "vitzoo has one dropout rate, drop_rate (the paper's: after the position embedding, the "
    "attention projection and the MLP layers); attn_drop_rate and drop_path_rate as timm",
    "patch_drop_rate": "vitzoo has no patch dropout",
}


def refuse_timm_only(kwargs: Mapping[str, Any]) -> None:
    """Raise ConfigError for the first timm-only keyword in ``kwargs``, naming the vitzoo way."""
    for key in kwargs:
        if key in TIMM_ONLY:
            raise ConfigError(f"create_model does not take timm's {key}=: {TIMM_ONLY[key]}")


def feature_take_indices(num_blocks: int, indices: int | Sequence[int] | None) -> list[int]:
    """timm's ``feature_take_indices``: None = every block, an int n = the last n, a list = those blocks (negative
    from the end), as absolute block numbers in the order given. Out-of-range indices raise ``ConfigError``."""
    if indices is None:
        return list(range(num_blocks))
    if isinstance(indices, int):
        if not 0 < indices <= num_blocks:
            raise ConfigError(f"indices={indices} asks for the last {indices} blocks; the model has {num_blocks}")
        return list(range(num_blocks - indices, num_blocks))
    take = []
    for i in indices:
        if not -num_blocks <= i < num_blocks:
            raise ConfigError(f"block index {i} is out of range for {num_blocks} blocks (valid: 0..{num_blocks - 1})")
        take.append(i % num_blocks)
    if not take:
        raise ConfigError("indices is an empty list; pass None for every block")
    return take


STEM = r"^cls_token|reg_token|pos_embed|patch_embed|norm_pre"  # timm's ViT and Eva stem group


class TimmApi:
    """timm's attributes and methods of a ViT, read from the config and the modules (a mixin of VisionTransformer)."""

    if TYPE_CHECKING:
        config: ViTConfig
        blocks: nn.Sequential
        norm: nn.Module
        fc_norm: nn.Module
        pre_logits: nn.Module
        head: nn.Module
        head_dist: nn.Module | None
        pretrained_cfg: PretrainedCfg | None

        def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None: ...

    @property
    def num_classes(self) -> int:
        """Classes of the head (0: no head)."""
        return self.config.num_classes

    @property
    def embed_dim(self) -> int:
        """Token width D."""
        return self.config.embed_dim

    @property
    def global_pool(self) -> str:
        """``config.global_pool``: ``"token"``, ``"avg"``, ``"map"`` or ``""`` (none: the head sees every token)."""
        return self.config.global_pool

    @property
    def has_class_token(self) -> bool:
        """Whether the sequence starts with a class token."""
        return self.config.class_token

    @property
    def default_cfg(self) -> PretrainedCfg | None:
        """timm's older name of ``pretrained_cfg``."""
        return self.pretrained_cfg

    @property
    def feature_info(self) -> list[dict[str, Any]]:
        """timm's per-block feature facts: ``module`` (``blocks.i``), ``num_chs`` (D), ``reduction`` (the patch)."""
        reduction = self.config.patch_size[0]
        return [
            {"module": f"blocks.{i}", "num_chs": self.config.embed_dim, "reduction": reduction}
            for i in range(len(self.blocks))
        ]

    def get_classifier(self) -> nn.Module | tuple[nn.Module, nn.Module]:
        """The head; DeiT distilled: ``(head, head_dist)``, as timm's ``VisionTransformerDistilled``."""
        if self.head_dist is not None:
            return self.head, self.head_dist
        return self.head

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """timm's parameter groups (for ``timm.models.group_parameters`` and layer decay): the embeddings, then
        one group per block, the final norm with the last block. ``coarse`` changes nothing for a ViT (as timm)."""
        stem = r"^cls_token|pos_embed|patch_embed|dist_token" if self.config.distilled else STEM
        return {"stem": stem, "blocks": [(r"^blocks\.(\d+)", None), (r"^norm", (99999,))]}

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop what ``forward_intermediates(indices=...)`` does not need, as timm: the blocks after the last one
        asked for, the final norm (``prune_norm``), and the pooling and heads (``prune_head``: ``fc_norm``,
        ``pre_logits``, the attention pool and heads; ``global_pool`` becomes ``""``). Returns the absolute
        indices, in the order given (negative indices would no longer mean the same blocks)."""
        take = feature_take_indices(len(self.blocks), indices)
        keep = max(take) + 1
        self.blocks = self.blocks[:keep]
        self.config = self.config.replace(depth=keep)
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.fc_norm = nn.Identity()
            self.pre_logits = nn.Identity()
            self.reset_classifier(0, "")
        return take
