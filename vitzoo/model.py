"""The Vision Transformer of Dosovitskiy et al., "An Image is Worth 16x16 Words" (ICLR 2021), Eq. 1-4.

    z0 = [x_cls; x_p^1 E; ...; x_p^N E] + E_pos          (patch embedding, class token, position embedding)
    z'_l = MSA(LN(z_{l-1})) + z_{l-1}                       (pre-norm attention block)
    z_l  = MLP(LN(z'_l)) + z'_l                             (pre-norm MLP block, GELU)
    y    = LN(z_L)[:, 0]                                    (class token; or the mean of the patch tokens)

Parameter names equal timm's ``VisionTransformer`` so its state dicts load with no renames.
Shapes: B batch, C channels, H x W image, h x w patch grid, N = h * w patches, P prefix tokens, D width.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .config import POOLS, ViTConfig, nearest_multiples, to_pair
from .errors import ConfigError, InputError
from .hybrid import HybridEmbed
from .pos_embed import resample_patch_embed, resample_pos_embed

if TYPE_CHECKING:
    from .pretrained_cfg import LoadReport, PretrainedCfg

_POS_CACHE_SIZE = 16  # resampled position tables kept per model (one per input grid seen)

# What feature extraction can return: the global pools (config.POOLS, what forward_head pools), every token,
# or what the head sees (forward_head(..., pre_logits=True)).
FEATURE_POOLS: tuple[str, ...] = (*POOLS, "tokens", "pre_logits")


class PatchEmbed(nn.Module):
    """Non-overlapping patches, each linearly embedded: a Conv2d with kernel = stride = patch size."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)  # (B, C, H, W) -> (B, D, h, w)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection and PyTorch's fused SDPA kernel."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.num_heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.attn_drop = cfg.attn_drop_rate
        self.qkv = nn.Linear(cfg.embed_dim, 3 * cfg.embed_dim, bias=cfg.qkv_bias)
        self.proj = nn.Linear(cfg.embed_dim, cfg.embed_dim)
        self.proj_drop = nn.Dropout(cfg.drop_rate)
        self.record: Callable[[torch.Tensor], None] | None = None  # set by vitzoo.capture_attention

    def forward(self, x: torch.Tensor, num_queries: int | None = None) -> torch.Tensor:
        """(B, L, D) -> (B, L, D); with ``num_queries`` only the first n rows are computed (keys/values use all L)."""
        B, L, D = x.shape
        H, hd = self.num_heads, self.head_dim
        if num_queries is None:
            qkv = self.qkv(x).reshape(B, L, 3, H, hd).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)  # each (B, H, L, hd)
        else:  # split the fused weight: queries for the first rows only
            w, b = self.qkv.weight, self.qkv.bias
            q = F.linear(x[:, :num_queries], w[:D], None if b is None else b[:D])
            q = q.reshape(B, num_queries, H, hd).transpose(1, 2)  # (B, H, n, hd)
            kv = F.linear(x, w[D:], None if b is None else b[D:]).reshape(B, L, 2, H, hd).permute(2, 0, 3, 1, 4)
            k, v = kv.unbind(0)  # each (B, H, L, hd)
        if self.record is None:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        else:  # explicit attention, so its probabilities can be recorded (analysis only)
            probs = ((q * self.head_dim**-0.5) @ k.transpose(-2, -1)).float().softmax(dim=-1).to(q.dtype)
            self.record(probs)  # (B, H, n, L)
            x = F.dropout(probs, self.attn_drop, self.training) @ v
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(B, q.shape[2], D)))


class Mlp(nn.Module):
    """Two linear layers with the exact (erf) GELU between them."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(cfg.embed_dim, cfg.mlp_dim)
        self.fc2 = nn.Linear(cfg.mlp_dim, cfg.embed_dim)
        self.drop = nn.Dropout(cfg.drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm Transformer block: residual attention, then residual MLP (with optional stochastic depth)."""

    def __init__(self, cfg: ViTConfig, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.attn = Attention(cfg)
        self.norm2 = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.mlp = Mlp(cfg)
        self.drop_path = drop_path

    def _residual(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        if self.drop_path and self.training:  # stochastic depth: drop the whole branch per sample
            keep = 1.0 - self.drop_path
            mask = x.new_empty((x.shape[0], 1, 1)).bernoulli_(keep).div_(keep)
            branch = branch * mask
        return x + branch

    def forward(self, x: torch.Tensor, num_queries: int | None = None) -> torch.Tensor:
        """(B, L, D) -> (B, L, D), or (B, n, D) for the first ``num_queries`` tokens only."""
        branch = self.attn(self.norm1(x), num_queries)
        x = self._residual(x if num_queries is None else x[:, :num_queries], branch)
        return self._residual(x, self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    """ViT with timm's parameter names. Build it with ``vitzoo.create_model``; see ``ViTConfig`` for the knobs."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        cfg = self.config = config
        self.patch_embed: PatchEmbed | HybridEmbed = HybridEmbed(cfg) if cfg.hybrid_layers else PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim)) if cfg.class_token else None
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.num_tokens, cfg.embed_dim))  # (1, P + N, D)
        self.pos_drop = nn.Dropout(cfg.drop_rate)
        rates = [cfg.drop_path_rate * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]  # stochastic depth
        self.blocks = nn.Sequential(*(Block(cfg, rate) for rate in rates))
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.pre_logits: nn.Module = nn.Identity()
        if cfg.representation_size:  # paper §3.1: "MLP with one hidden layer at pre-training time"
            fc = nn.Linear(cfg.embed_dim, cfg.representation_size)
            self.pre_logits = nn.Sequential(OrderedDict(fc=fc, act=nn.Tanh()))
        self.head = nn.Linear(self.head_hidden_size, cfg.num_classes) if cfg.num_classes else nn.Identity()
        self.grad_checkpointing = False
        self.pretrained_cfg: PretrainedCfg | None = None  # facts of the loaded checkpoint (set by create_model)
        self.load_report: LoadReport | None = None  # what loading did (set by create_model)
        if not self.pos_embed.is_meta:  # on the meta device weights are about to be assigned from a checkpoint
            self.init_weights()

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
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def no_weight_decay(self) -> set[str]:
        """Parameter names that optimisers conventionally exclude from weight decay."""
        return {"pos_embed", "cls_token"}

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
        size = (int(x.shape[2]), int(x.shape[3]))
        pad = tuple((-s) % p if cfg.dynamic_img_pad else 0 for s, p in zip(size, cfg.patch_size, strict=True))
        for axis, s, p, extra in zip(("height", "width"), size, cfg.patch_size, pad, strict=True):
            if (s + extra) % p:
                raise InputError(
                    f"input {axis} {s} is not divisible by the patch size {p}; nearest valid sizes: "
                    f"{nearest_multiples(s, p)} (or create the model with dynamic_img_pad=True to zero-pad)"
                )
        grid = ((size[0] + pad[0]) // cfg.patch_size[0], (size[1] + pad[1]) // cfg.patch_size[1])
        if grid != cfg.grid_size and not cfg.dynamic_img_size:
            raise InputError(
                f"input size {size} does not match the model's img_size {cfg.img_size}; resize the input, create "
                "the model with img_size=(h, w) or dynamic_img_size=True, or call model.set_input_size((h, w))"
            )
        return grid, (pad[0], pad[1])

    # --------------------------------------------------------------------------------- position tables
    def _resample(self, pos_embed: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        cfg = self.config
        return resample_pos_embed(
            pos_embed, grid, cfg.grid_size, cfg.num_prefix_tokens, cfg.pos_embed_interpolation, cfg.pos_embed_antialias
        )

    def _pos_embed_for(self, grid: tuple[int, int]) -> torch.Tensor:
        """The position table for ``grid``: the parameter itself, or (dynamic sizes) a copy resampled for it.

        Resampled on every call, like timm: caching per grid saved at most 0.8% at batch 1 (docs/performance.md),
        and an uncached table always follows the parameter (optimizer steps, loading) and its gradient.
        """
        if grid == self.config.grid_size:
            return self.pos_embed
        return self._resample(self.pos_embed, grid)

    # ------------------------------------------------------------------------------------------ forward
    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Images to the token sequence with position embeddings: (B, C, H, W) -> (B, P + N, D), and (h, w)."""
        grid, (pad_h, pad_w) = self._input_grid(x)
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + N, D)
        return self.pos_drop(x + self._pos_embed_for(grid)), grid

    def _block(self, block: nn.Module, x: torch.Tensor, num_queries: int | None = None) -> torch.Tensor:
        if self.grad_checkpointing and torch.is_grad_enabled():
            return checkpoint(block, x, num_queries, use_reentrant=False)
        return block(x, num_queries)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images to final-normed tokens: (B, C, H, W) -> (B, P + N, D), class token first."""
        x, _ = self._embed(x)
        for block in self.blocks:
            x = self._block(block, x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool normed tokens (B, P + N, D) and apply the head; ``pre_logits=True`` stops at the pooled (B, D)."""
        x = pool_tokens(x, self.config.global_pool, self.num_prefix_tokens)
        x = self.pre_logits(x)
        return x if pre_logits else self.head(x)

    def forward_cls(self, x: torch.Tensor) -> torch.Tensor:
        """Images to the final-normed class token (B, D), computing only the class token's row in the last block.

        The last block's keys and values still see every token, so this equals ``forward_features(x)[:, 0]`` up to
        float rounding, with about 1/depth less work.
        """
        if self.cls_token is None:
            raise ConfigError("this model has no class token (class_token=False); use forward_features")
        if (
            cast(Block, self.blocks[-1]).attn.record is not None
        ):  # attention is being captured: keep every row of the last block
            return self.forward_features(x)[:, 0]
        x, _ = self._embed(x)
        for block in self.blocks[:-1]:
            x = self._block(block, x)
        x = self._block(self.blocks[-1], x, num_queries=1)  # (B, 1, D)
        return self.norm(x[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) to logits (B, num_classes), or pooled features when num_classes=0.

        Equal to ``forward_head(forward_features(x))``; with class-token pooling it goes through ``forward_cls``.
        """
        if self.config.global_pool != "token":
            return self.forward_head(self.forward_features(x))
        return self.head(self.pre_logits(self.forward_cls(x)))

    def forward_backbone(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Hybrid only: the CNN's stem and stage outputs (NCHW, strides 4, 4, 8, 16) for dense heads."""
        if not self.config.hybrid_layers:
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
        x, (h, w) = self._embed(x)
        P = self.num_prefix_tokens
        outs: list[Any] = []
        last = len(self.blocks) - 1 if not intermediates_only else max(take)
        for i, block in enumerate(self.blocks[: last + 1]):
            x = self._block(block, x)
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
        """Replace the head with a fresh ``num_classes``-way Linear (0 removes it); optionally change pooling."""
        changes: dict[str, Any] = {"num_classes": num_classes}
        if global_pool is not None:
            changes["global_pool"] = global_pool
        self.config = self.config.replace(**changes)
        old = next(self.head.parameters(), self.norm.weight)
        self.head = nn.Identity()
        if num_classes:
            self.head = nn.Linear(self.head_hidden_size, num_classes, device=old.device, dtype=old.dtype)
            with torch.no_grad():
                nn.init.trunc_normal_(self.head.weight, std=0.02)
                nn.init.zeros_(self.head.bias)

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
                    device=old.weight.device,
                    dtype=old.weight.dtype,
                )
                proj.weight.copy_(resample_patch_embed(old.weight, new.patch_size))
                assert proj.bias is not None and old.bias is not None
                proj.bias.copy_(old.bias)
                proj.requires_grad_(old.weight.requires_grad)
                self.patch_embed.proj = proj
            if new.grid_size != cfg.grid_size:
                table = self._resample(self.pos_embed, new.grid_size)
                self.pos_embed = nn.Parameter(table, requires_grad=self.pos_embed.requires_grad)
        self.config = new


def pool_tokens(tokens: torch.Tensor, pool: str, num_prefix_tokens: int) -> torch.Tensor:
    """Pool normed tokens (B, P + N, D): ``"token"`` is the class token (B, D), ``"avg"`` the mean of the patch
    tokens (B, D), ``"tokens"`` every token unchanged (B, P + N, D).

    The one place tokens are pooled: ``forward_head`` (with ``config.global_pool``) and feature extraction use it.
    """
    if pool == "token":
        if not num_prefix_tokens:
            raise ConfigError("pool='token' needs a class token; this model has none, use pool='avg'")
        return tokens[:, 0]
    if pool == "avg":
        return tokens[:, num_prefix_tokens:].mean(dim=1)
    if pool == "tokens":
        return tokens
    raise ConfigError(f"pool must be one of {(*POOLS, 'tokens')}, got {pool!r}")


def take_indices(num_blocks: int, indices: int | Sequence[int] | None) -> list[int]:
    """Normalise ``indices`` (None = all, n = last n, list with negatives) to sorted absolute block numbers.

    The one place block indices are interpreted: ``forward_intermediates``, feature extraction and attention capture
    all use it, so the same index means the same block everywhere and out-of-range indices raise the same error.
    """
    if indices is None:
        return list(range(num_blocks))
    if isinstance(indices, int):
        if not 0 < indices <= num_blocks:
            raise ConfigError(f"indices={indices} asks for the last {indices} blocks; the model has {num_blocks}")
        return list(range(num_blocks - indices, num_blocks))
    take = set()
    for i in indices:
        if not -num_blocks <= i < num_blocks:
            raise ConfigError(f"block index {i} is out of range for {num_blocks} blocks (valid: 0..{num_blocks - 1})")
        take.add(i % num_blocks)
    if not take:
        raise ConfigError("indices is an empty list; pass None for every block")
    return sorted(take)
