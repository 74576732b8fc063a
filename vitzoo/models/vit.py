"""The Vision Transformer of Dosovitskiy et al., "An Image is Worth 16x16 Words" (ICLR 2021), Eq. 1-4.

    z0 = [x_cls; x_p^1 E; ...; x_p^N E] + E_pos          (patch embedding, class token, position embedding)
    z'_l = MSA(LN(z_{l-1})) + z_{l-1}                       (pre-norm attention block)
    z_l  = MLP(LN(z'_l)) + z'_l                             (pre-norm MLP block, GELU)
    y    = LN(z_L)[:, 0]                                    (class token; or the mean of the patch tokens)

The later families are this network plus a few ``ViTConfig`` flags (docs/families.md): layer scale (DeiT-III,
DINOv2, DINOv3), register tokens (DINOv2-reg, DINOv3), a distillation token and head (DeiT), pre-norm without a
patch bias (CLIP), an attention-pool head (SigLIP), SwiGLU MLPs (DINOv2-g, DINOv3 S+/H+), q and v biases without a k
bias (DINOv3) and 2-D RoPE instead of E_pos (DINOv3). The layers are in ``vitzoo.models.layers``.

Parameter names are timm's ``VisionTransformer``'s (the q and v biases: its ``Eva``'s), so timm state dicts load
with no renames; other layouts, timm's ``Eva`` names of DINOv3 included, are mapped by ``vitzoo.weights.formats``.
Shapes: B batch, C channels, H x W image, h x w patch grid, N = h * w patches, P prefix tokens, D width.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..choices import POOLS
from ..errors import ConfigError, InputError
from .config import ViTConfig, nearest_multiples, to_pair
from .hybrid import HybridEmbed
from .layers import AttentionPool, Block, PatchEmbed, Positions, RelPos, RopeFreqs, make_norm, make_rel_pos
from .parallel_block import ParallelBlock
from .pos_embed import (
    rel_pos_log_coords,
    resample_patch_embed,
    resample_pos_embed,
    rope_embed,
    rope_embed_eva,
    rope_embed_mixed,
)
from .timm_api import TimmApi, feature_take_indices

if TYPE_CHECKING:
    from .pretrained_cfg import LoadReport, PretrainedCfg


class VisionTransformer(TimmApi, nn.Module):
    """ViT with timm's parameter names. Build it with ``vitzoo.create_model``; see ``ViTConfig`` for the knobs.

    timm's attributes and methods (``num_classes``, ``get_classifier``, ``group_matcher``, ...) are ``TimmApi``'s."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        cfg = self.config = config
        D = cfg.embed_dim
        self.patch_embed: PatchEmbed | HybridEmbed = HybridEmbed(cfg) if cfg.is_hybrid else PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D)) if cfg.class_token else None
        self.dist_token = nn.Parameter(torch.zeros(1, 1, D)) if cfg.distilled else None  # DeiT
        self.reg_token = nn.Parameter(torch.zeros(1, cfg.reg_tokens, D)) if cfg.reg_tokens else None  # (1, R, D)
        self.pos_embed = nn.Parameter(torch.zeros(1, self._pos_len(cfg.grid_size), D)) if cfg.abs_pos_embed else None
        self.pos_drop = nn.Dropout(cfg.drop_rate)
        self.norm_pre: nn.Module = make_norm(cfg, D) if cfg.pre_norm else nn.Identity()
        self.shared_rel_pos = make_rel_pos(cfg) if cfg.rel_pos and cfg.rel_pos_shared else None
        self.rope = RopeFreqs(cfg) if cfg.rope and cfg.rope_type == "mixed" else None  # learned per block
        rates = [cfg.drop_path_rate * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]  # stochastic depth
        block = ParallelBlock if cfg.block_type == "parallel" else Block  # index i: differential attention's lambda
        self.blocks = nn.Sequential(*(block(cfg, rate, i) for i, rate in enumerate(rates)))
        final = cfg.final_norm and not cfg.fc_norm  # the norm on every token, or (fc_norm) on the pooled vector
        self.norm: nn.Module = make_norm(cfg, D) if final else nn.Identity()
        self.attn_pool = AttentionPool(cfg) if cfg.global_pool == "map" else None
        fc_norm = cfg.final_norm and cfg.fc_norm
        self.fc_norm: nn.Module = make_norm(cfg, D) if fc_norm else nn.Identity()
        self.pre_logits: nn.Module = nn.Identity()
        if cfg.representation_size:  # paper §3.1: "MLP with one hidden layer at pre-training time"
            fc = nn.Linear(D, cfg.representation_size)
            self.pre_logits = nn.Sequential(OrderedDict(fc=fc, act=nn.Tanh()))
        self.head: nn.Module = nn.Linear(self.head_hidden_size, cfg.num_classes) if cfg.num_classes else nn.Identity()
        self.head_dist: nn.Module | None = None
        if cfg.distilled:  # DeiT: a second head reads the distillation token
            self.head_dist = nn.Linear(D, cfg.num_classes) if cfg.num_classes else nn.Identity()
        self.grad_checkpointing = False
        self.pretrained_cfg: PretrainedCfg | None = None  # facts of the loaded checkpoint (set by create_model)
        self.load_report: LoadReport | None = None  # what loading did (set by create_model)
        if not next(self.parameters()).is_meta:  # on the meta device weights are about to be assigned
            self.init_weights()

    def _pos_len(self, grid: tuple[int, int]) -> int:
        """Rows of the position table for ``grid``: the prefix slots (unless ``no_embed_class``) plus h * w."""
        return self.config.pos_embed_prefix_tokens + grid[0] * grid[1]

    # ----------------------------------------------------------------------------------------- properties
    @property
    def num_features(self) -> int:
        """Token width D (what forward_features returns per token)."""
        return self.config.embed_dim

    @property
    def head_hidden_size(self) -> int:
        """Width of ``forward_head(..., pre_logits=True)``: D, or ``representation_size`` when set."""
        return self.config.representation_size or self.config.embed_dim

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patch tokens (1 with a class token, else 0)."""
        return self.config.num_prefix_tokens

    @property
    def patch_size(self) -> tuple[int, int]:
        """Patch (height, width) in pixels."""
        return self.config.patch_size

    @property
    def grid_size(self) -> tuple[int, int]:
        """Patch grid (h, w) at the configured ``img_size``."""
        return self.config.grid_size

    # --------------------------------------------------------------------------------------------- init
    @torch.no_grad()
    def init_weights(self) -> None:
        """timm's default init: truncated normal(0.02) for pos-embed and Linear weights, zero biases."""
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for token in (self.cls_token, self.reg_token):
            if token is not None:
                nn.init.normal_(token, std=1e-6)
        if self.dist_token is not None:
            nn.init.trunc_normal_(self.dist_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        if self.attn_pool is not None:
            nn.init.trunc_normal_(self.attn_pool.latent, std=self.config.embed_dim**-0.5)

    def no_weight_decay(self) -> set[str]:
        """Parameter names that optimisers conventionally exclude from weight decay."""
        return {"pos_embed", "cls_token", "dist_token", "reg_token"} | (
            {"rope.freqs"} if self.rope is not None else set()
        )

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block in backward instead of storing its activations (all forward paths honour it)."""
        self.grad_checkpointing = enable

    # ------------------------------------------------------------------------------------ input checks
    def _input_grid(self, x: torch.Tensor) -> tuple[tuple[int, int], tuple[int, int]]:
        """Validate ``x`` before any compute; return its patch grid and the (bottom, right) zero padding."""
        cfg = self.config
        if x.ndim != 4:
            hint = " (add a batch dimension: x.unsqueeze(0))" if x.ndim == 3 else ""
            raise InputError(f"expected a 4-D image batch (B, C, H, W), got shape {tuple(x.shape)}{hint}")
        if x.shape[1] != cfg.in_chans:
            raise InputError(
                f"expected {cfg.in_chans} input channels, got {x.shape[1]} (input shape {tuple(x.shape)}); "
                "convert the images or build the model with in_chans=" + str(x.shape[1])
            )
        size = (x.shape[2], x.shape[3])  # no int(): under torch.export the sizes stay symbolic
        pad = tuple((-s) % p if cfg.dynamic_img_pad else 0 for s, p in zip(size, cfg.patch_size, strict=True))
        for axis, s, p, extra in zip(("height", "width"), size, cfg.patch_size, pad, strict=True):
            if (s + extra) % p and not cfg.drop_remainder:
                raise InputError(
                    f"input {axis} {s} is not divisible by the patch size {p}; nearest valid sizes: "
                    f"{nearest_multiples(s, p)} (or create the model with dynamic_img_pad=True to zero-pad)"
                )
        grid = ((size[0] + pad[0]) // cfg.patch_size[0], (size[1] + pad[1]) // cfg.patch_size[1])
        if not cfg.dynamic_img_size and grid != cfg.grid_size:
            raise InputError(
                f"input size {size} does not match the model's img_size {cfg.img_size}; resize the input, create "
                "the model with img_size=(h, w) or dynamic_img_size=True, or call model.set_input_size((h, w))"
            )
        return grid, (pad[0], pad[1])

    # --------------------------------------------------------------------------------- position tables
    def _resample(self, pos_embed: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        cfg = self.config
        return resample_pos_embed(
            pos_embed,
            grid,
            cfg.grid_size,
            cfg.pos_embed_prefix_tokens,
            cfg.pos_embed_interpolation,
            cfg.pos_embed_antialias,
        )

    def _pos_embed_for(self, grid: tuple[int, int]) -> torch.Tensor:
        """The position table for ``grid``: the parameter itself, or (dynamic sizes) a copy resampled for it.

        Resampled on every call, like timm: caching per grid saved at most 0.8% at batch 1 (docs/performance.md),
        and an uncached table always follows the parameter (optimizer steps, loading) and its gradient.
        """
        assert self.pos_embed is not None
        if not torch.compiler.is_exporting() and grid == self.config.grid_size:  # exporting: any grid, one graph
            return self.pos_embed
        return self._resample(self.pos_embed, grid)

    # ------------------------------------------------------------------------------------------ forward
    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int], Positions]:
        """Images to the token sequence: (B, C, H, W) -> (B, P + N, D), the grid (h, w), and the positions the
        blocks apply (RoPE's (N, 2 hd), relative position offsets).

        Token order is [class, distillation or registers, patches]. The learned position table is added to every
        token, or (``no_embed_class``) to the patches before the prefix tokens are prepended (unless the model has
        none, ``abs_pos_embed=False``); with ``rope`` the rotary embedding of the grid, and with ``rel_pos`` its
        relative offsets (and the shared MLP's bias), are returned for the blocks.
        """
        cfg = self.config
        grid, (pad_h, pad_w) = self._input_grid(x)
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
        B = x.shape[0]
        prefix = [t.expand(B, -1, -1) for t in (self.cls_token, self.dist_token, self.reg_token) if t is not None]
        rope = None
        if cfg.rope and cfg.rope_type == "eva":
            xy = cfg.rope_grid_indexing == "xy"
            rope = rope_embed_eva(
                grid, cfg.head_dim, cfg.rope_temperature, cfg.rope_ref_grid, cfg.rope_grid_offset, xy, x.device
            )
        elif self.rope is not None:
            rope = rope_embed_mixed(grid, self.rope.freqs, cfg.rope_grid_indexing == "xy")  # (depth, H, N, 2 hd)
        elif cfg.rope:
            rope = rope_embed(grid, cfg.head_dim, cfg.rope_temperature, x.device)
        if cfg.abs_pos_embed and cfg.no_embed_class:
            x = x + self._pos_embed_for(grid)
        if prefix:
            x = torch.cat([*prefix, x], dim=1)  # (B, P + N, D)
        if cfg.abs_pos_embed and not cfg.no_embed_class:
            x = x + self._pos_embed_for(grid)
        rel = None
        if cfg.rel_pos:
            coords, index = rel_pos_log_coords(grid, x.device)
            shared = self.shared_rel_pos(coords, index) if self.shared_rel_pos is not None else None
            rel = RelPos(coords, index, shared)
        return self.norm_pre(self.pos_drop(x)), grid, Positions(rope, rel)

    def _block(self, i: int, x: torch.Tensor, pos: Positions, num_queries: int | None = None) -> torch.Tensor:
        """Block ``i`` on ``x`` with the grid's positions (RoPE-Mixed: block i's own rotary embedding)."""
        block, rope = self.blocks[i], pos.rope
        if self.rope is not None and rope is not None:
            rope = rope[i]
        if self.grad_checkpointing and torch.is_grad_enabled():
            return checkpoint(block, x, num_queries, rope, False, pos.rel, use_reentrant=False)
        return block(x, num_queries, rope, False, pos.rel)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images to final-normed tokens: (B, C, H, W) -> (B, P + N, D), prefix tokens first."""
        x, _, pos = self._embed(x)
        for i in range(len(self.blocks)):
            x = self._block(i, x, pos)
        return self.norm(x)

    def attention_pool(self, x: torch.Tensor) -> torch.Tensor:
        """Normed tokens (B, P + N, D) to the "map" pool's (B, D): over the patch tokens, or every token with
        ``pool_include_prefix`` (the Perception Encoder's class token)."""
        assert self.attn_pool is not None
        return self.attn_pool(x if self.config.pool_include_prefix else x[:, self.num_prefix_tokens :])

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """Normed tokens (B, P + N, D) to the pooled (B, D) of ``config.global_pool``, after ``fc_norm``.

        ``token``: the class token (DeiT distilled: the mean of the class and distillation tokens); ``avg``: the
        mean of the patch tokens (never the prefix tokens); ``map``: ``attention_pool``.
        """
        cfg = self.config
        if self.attn_pool is not None:
            x = self.attention_pool(x)
        elif cfg.distilled:
            x = (x[:, 0] + x[:, 1]) / 2
        else:
            x = pool_tokens(x, cfg.global_pool, self.num_prefix_tokens)
        return self.pre_logits(self.fc_norm(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool normed tokens (B, P + N, D) and apply the head; ``pre_logits=True`` stops at the pooled (B, D).

        DeiT distilled: the mean of the class head on the class token and the distillation head on the
        distillation token (timm's and DeiT's eval output).
        """
        if self.head_dist is not None and not pre_logits:
            return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2
        x = self.pool(x)
        return x if pre_logits else self.head(x)

    def forward_cls(self, x: torch.Tensor) -> torch.Tensor:
        """Images to the final-normed class token (B, D), computing only the class token's row in the last block.

        The last block's keys and values still see every token, so this equals ``forward_features(x)[:, 0]`` up to
        float rounding, with about 1/depth less work.
        """
        return self._forward_prefix(x, 1)[:, 0]

    def _forward_prefix(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """Final-normed first ``n`` tokens (B, n, D), computing only their rows in the last block."""
        if self.cls_token is None:
            raise ConfigError("this model has no class token (class_token=False); use forward_features")
        last_block = self.blocks[-1]
        recorder = last_block if isinstance(last_block, ParallelBlock) else cast(Block, last_block).attn
        if recorder.record is not None:  # attention captured: keep every row
            return self.forward_features(x)[:, :n]
        x, _, pos = self._embed(x)
        last = len(self.blocks) - 1
        for i in range(last):
            x = self._block(i, x, pos)
        x = self._block(last, x, pos, num_queries=n)  # (B, n, D)
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) to logits (B, num_classes), or pooled features when num_classes=0.

        Equal to ``forward_head(forward_features(x))``; with class-token pooling only the class (and distillation)
        token rows are computed in the last block.
        """
        if self.config.global_pool != "token":
            return self.forward_head(self.forward_features(x))
        return self.forward_head(self._forward_prefix(x, 1 + int(self.config.distilled)))

    def forward_backbone(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Hybrid only: the CNN's stem and stage outputs (NCHW, strides 4, 4, 8, 16 and, with four stages, 32)."""
        if not self.config.is_hybrid:
            raise ConfigError("forward_backbone is for hybrid models (R50+ViT); use forward_intermediates")
        self._input_grid(x)
        assert isinstance(self.patch_embed, HybridEmbed)
        return self.patch_embed.backbone.forward_stages(x)

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        output_fmt: Literal["NCHW", "NLC"] = "NCHW",
        return_prefix_tokens: bool = False,
        intermediates_only: bool = False,
    ) -> list[Any] | tuple[torch.Tensor, list[Any]]:
        """Outputs of selected blocks, for dense heads and probes (timm's signature and semantics).

        ``indices``: None = every block, an int n = the last n blocks, or a list of block indices (negative from
        the end). ``norm`` applies the final LayerNorm to each. ``output_fmt="NCHW"`` gives patch tokens as
        (B, D, h, w); ``"NLC"`` as (B, N, D). With ``return_prefix_tokens`` each item is (patch_tokens,
        prefix (B, P, D)). Returns ``(final normed tokens, intermediates)``, or only the list with
        ``intermediates_only`` (then blocks after the last requested one are not run).
        """
        if output_fmt not in ("NCHW", "NLC"):
            raise ConfigError(f"output_fmt must be 'NCHW' or 'NLC', got {output_fmt!r}")
        take = set(take_indices(len(self.blocks), indices))
        x, (h, w), pos = self._embed(x)
        P = self.num_prefix_tokens
        outs: list[Any] = []
        last = len(self.blocks) - 1 if not intermediates_only else max(take)
        for i in range(last + 1):
            x = self._block(i, x, pos)
            if i in take:
                y = self.norm(x) if norm else x
                patches = y[:, P:]  # (B, N, D)
                if output_fmt == "NCHW":
                    patches = patches.reshape(y.shape[0], h, w, -1).permute(0, 3, 1, 2).contiguous()  # (B, D, h, w)
                outs.append((patches, y[:, :P]) if return_prefix_tokens else patches)
        if intermediates_only:
            return outs
        return self.norm(x), outs

    # ----------------------------------------------------------------------------------- adaptation
    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the head (and DeiT's distillation head) with fresh ``num_classes``-way Linears (0 removes them);
        optionally change pooling (to ``"map"``: a new attention pool; away from it: the pool is removed)."""
        changes: dict[str, Any] = {"num_classes": num_classes}
        if global_pool is not None:
            changes["global_pool"] = global_pool
        self.config = cfg = self.config.replace(**changes)
        old = next(self.parameters())
        like: dict[str, Any] = {"device": old.device, "dtype": old.dtype}
        if cfg.global_pool != "map":
            self.attn_pool = None
        elif self.attn_pool is None:
            self.attn_pool = AttentionPool(cfg).to(**like)
            nn.init.trunc_normal_(self.attn_pool.latent, std=cfg.embed_dim**-0.5)
        self.head = self._new_head(num_classes, self.head_hidden_size, like)
        if self.head_dist is not None:
            self.head_dist = self._new_head(num_classes, cfg.embed_dim, like)

    @staticmethod
    def _new_head(num_classes: int, width: int, like: dict[str, Any]) -> nn.Module:
        if not num_classes:
            return nn.Identity()
        head = nn.Linear(width, num_classes, **like)
        with torch.no_grad():
            nn.init.trunc_normal_(head.weight, std=0.02)
            nn.init.zeros_(head.bias)
        return head

    def set_input_size(
        self, img_size: int | tuple[int, int] | None = None, patch_size: int | tuple[int, int] | None = None
    ) -> None:
        """Rebuild for another input size and/or patch size, resampling the learned tables in place.

        The position embeddings are interpolated to the new grid with the config's interpolation; a new patch
        size resamples the patch-embedding kernel with ``resample_patch_embed`` (FlexiViT).
        """
        cfg = self.config
        new = cfg.replace(
            img_size=to_pair(img_size, "img_size") if img_size is not None else cfg.img_size,
            patch_size=to_pair(patch_size, "patch_size") if patch_size is not None else cfg.patch_size,
        )
        with torch.no_grad():
            if new.patch_size != cfg.patch_size:
                old = self.patch_embed.proj
                proj = nn.Conv2d(
                    cfg.in_chans,
                    cfg.embed_dim,
                    new.patch_size,
                    new.patch_size,
                    bias=old.bias is not None,
                    device=old.weight.device,
                    dtype=old.weight.dtype,
                )
                proj.weight.copy_(resample_patch_embed(old.weight, new.patch_size))
                if proj.bias is not None and old.bias is not None:
                    proj.bias.copy_(old.bias)
                proj.requires_grad_(old.weight.requires_grad)
                self.patch_embed.proj = proj
            if new.grid_size != cfg.grid_size and self.pos_embed is not None:  # DINOv3 has no table
                table = self._resample(self.pos_embed, new.grid_size)
                self.pos_embed = nn.Parameter(table, requires_grad=self.pos_embed.requires_grad)
        self.config = new
        if self.pretrained_cfg is not None:  # the eval transform prepares the new size
            self.pretrained_cfg = dataclasses.replace(self.pretrained_cfg, input_size=(new.in_chans, *new.img_size))


def pool_tokens(tokens: torch.Tensor, pool: str, num_prefix_tokens: int) -> torch.Tensor:
    """Pool normed tokens (B, P + N, D): ``"token"`` is the class token (B, D), ``"avg"`` the mean of the patch
    tokens (B, D), ``"tokens"`` (or ``""``, timm's no pooling) every token unchanged (B, P + N, D).

    The one place tokens are pooled: ``forward_head`` (with ``config.global_pool``) and feature extraction use it.
    """
    if pool == "token":
        if not num_prefix_tokens:
            raise ConfigError("pool='token' needs a class token; this model has none, use pool='avg'")
        return tokens[:, 0]
    if pool == "avg":
        return tokens[:, num_prefix_tokens:].mean(dim=1)
    if pool in ("tokens", ""):
        return tokens
    raise ConfigError(f"pool must be one of {(*POOLS, 'tokens')}, got {pool!r}")


def take_indices(num_blocks: int, indices: int | Sequence[int] | None) -> list[int]:
    """Normalise ``indices`` (None = all, n = last n, list with negatives) to sorted absolute block numbers.

    ``feature_take_indices`` (timm's reading) sorted and deduplicated: ``forward_intermediates``, feature extraction
    and attention capture all use it, so the same index means the same block everywhere and out-of-range indices
    raise the same error.
    """
    return sorted(set(feature_take_indices(num_blocks, indices)))
