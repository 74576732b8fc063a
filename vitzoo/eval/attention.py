"""Where a ViT looks (the ViT paper, Section 4.5, Figures 6-7, Appendix D.7-D.8), for any vitzoo model.

* ``capture_attention``: attention probabilities of chosen blocks, with fused SDPA left on everywhere else.
* ``attention_rollout`` (Abnar & Zuidema 2020) and ``cls_attention``: where the class token looks.
* ``mean_attention_distance``: how far each head attends, in pixels (Figure 7 right).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch

from ..errors import ConfigError
from ..models.layers import Attention, Block
from ..models.parallel_block import ParallelBlock
from ..models.vit import VisionTransformer, take_indices


@dataclass
class AttentionRecord:
    """What ``capture_attention`` saw: one (B, heads, N, N) tensor per captured block, in block order."""

    layers: list[int]
    num_prefix_tokens: int
    attentions: list[torch.Tensor] = field(default_factory=list)
    grid: tuple[int, int] | None = None  # (h, w) patch grid of the last input
    has_class_token: bool = True  # False: the prefix tokens are registers only (timm's SBB gap ViTs)

    @property
    def token_layout(self) -> str:
        h, w = self.grid or (0, 0)
        return f"{self.num_prefix_tokens} prefix token(s), then a {h}x{w} patch grid in raster order"


@contextlib.contextmanager
def capture_attention(model: VisionTransformer, layers: Sequence[int] | None = None) -> Iterator[AttentionRecord]:
    """Record attention probabilities of ``layers`` (block indices, negatives allowed; None = all) inside the block.

    Only the captured blocks compute attention explicitly (softmax(q k^T / sqrt(d)) v), only inside the context;
    the outputs are the same as with fused SDPA. Each call of the model appends its attentions.
    """
    if model.config.attn_type == "diff":
        raise ConfigError(
            "differential attention (attn_type='diff') has two attention maps per head and no single one to record; "
            "capture_attention (and the rollout and distance analyses) takes the other models"
        )
    chosen = take_indices(len(model.blocks), None if layers is None else list(layers))
    record = AttentionRecord(chosen, model.num_prefix_tokens, has_class_token=model.cls_token is not None)

    def sink(probs: torch.Tensor) -> None:
        record.attentions.append(probs.detach())

    def on_patches(_module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        record.grid = (int(output.shape[-2]), int(output.shape[-1]))

    hook = model.patch_embed.register_forward_hook(on_patches)
    # a Block records in its attention; a ParallelBlock (block_type="parallel") has no attention module of its own
    serial = model.config.block_type == "serial"
    targets: list[Attention | ParallelBlock] = [
        cast(Block, model.blocks[i]).attn if serial else cast(ParallelBlock, model.blocks[i]) for i in chosen
    ]
    for target in targets:
        target.record = sink
    try:
        yield record
    finally:
        hook.remove()
        for target in targets:
            target.record = None


def attention_rollout(
    attentions: Sequence[torch.Tensor],
    num_prefix_tokens: int,
    grid: tuple[int, int],
    has_class_token: bool = True,
) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020, §3) of the class token over the patch grid: (B, h, w).

    Per layer: average the heads, add the residual as ``0.5 * A + 0.5 * I``, renormalise rows; multiply the layers
    (first layer rightmost); take the class token's row over the patch tokens. The attention flowing through the
    other prefix tokens (DeiT's distillation token, registers) stays in the product; token 0 is the class token.
    """
    _need_class_token(num_prefix_tokens, has_class_token, "attention rollout")
    joint = None
    for attn in attentions:
        a = attn.float().mean(dim=1)  # (B, N, N): heads averaged
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        a = 0.5 * a + 0.5 * eye
        a = a / a.sum(dim=-1, keepdim=True)
        joint = a if joint is None else a @ joint
    assert joint is not None, "no attention captured"
    return joint[:, 0, num_prefix_tokens:].reshape(-1, *grid)


def _need_class_token(num_prefix_tokens: int, has_class_token: bool, what: str) -> None:
    """``has_class_token=False`` (``AttentionRecord.has_class_token``): prefix tokens that are registers only."""
    if not num_prefix_tokens or not has_class_token:
        raise ConfigError(
            f"{what} follows the class token; this model has no class token (SigLIP pools its patch tokens): use "
            "mean_attention_distance, or the captured attention maps themselves"
        )


def cls_attention(
    attention: torch.Tensor, num_prefix_tokens: int, grid: tuple[int, int], has_class_token: bool = True
) -> torch.Tensor:
    """Raw attention of the class token (token 0) to every patch, per head, in one layer: (B, heads, h, w)."""
    _need_class_token(num_prefix_tokens, has_class_token, "class-token attention")
    return attention[:, :, 0, num_prefix_tokens:].float().reshape(*attention.shape[:2], *grid)


def mean_attention_distance(
    attentions: Sequence[torch.Tensor], num_prefix_tokens: int, grid: tuple[int, int], patch_size: tuple[int, int]
) -> torch.Tensor:
    """Attention-weighted distance in pixels between query and key patches: (layers, heads).

    The paper's "attention distance" (Figure 7 right, App. D.7). Only patch tokens take part: the class token is
    dropped as a query and as a key, each query's attention over the patches is renormalised to sum to 1, and the
    distance between patches is the Euclidean distance of their centres in pixels (grid step = patch size). The
    result is averaged over query patches and images.
    """
    h, w = grid
    ys, xs = torch.meshgrid(torch.arange(h) * patch_size[0], torch.arange(w) * patch_size[1], indexing="ij")
    centres = torch.stack([ys.flatten(), xs.flatten()], dim=-1).double()  # (N, 2)
    dist = torch.cdist(centres, centres)  # (N, N) pixels
    out = []
    p = num_prefix_tokens
    for attn in attentions:
        a = attn[:, :, p:, p:].double()  # (B, heads, N, N) patch -> patch
        a = a / a.sum(dim=-1, keepdim=True)
        out.append((a * dist).sum(dim=-1).mean(dim=(0, 2)))  # (heads,)
    return torch.stack(out).float()
