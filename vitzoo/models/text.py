"""The text towers of CLIP and SigLIP, as each checkpoint was trained: token and position embeddings, pre-norm
blocks (``vitzoo.models.layers.Block``), a final LayerNorm, one token pooled and projected into the joint
image-text embedding.

* CLIP (OpenAI, LAION, DataComp, DFN, MetaCLIP): causal attention (a token sees itself and the tokens before it),
  the end-of-text token pooled, QuickGELU for OpenAI's weights (GELU for most others), LayerNorm eps 1e-5, a
  projection without bias.
* SigLIP and SigLIP 2: bidirectional attention over every position, padding included (the tower was trained so), the
  last position pooled, GELU (SigLIP 2 and transformers: the tanh approximation), LayerNorm eps 1e-6, a projection
  with bias.

Where the end-of-text token is, is the checkpoint's rule: open_clip and transformers configs with the legacy
``eos_token_id == 2`` take the highest id of each row (``argmax``: CLIP's ``<|endoftext|>`` is the last id of its
vocabulary), newer transformers configs the first position of ``eos_token_id`` (``eos``).

Shapes: B batch, L sequence length (at most ``context_length``), W width, E joint embedding width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import ConfigError, InputError
from .config import ACTIVATIONS, ViTConfig
from .layers import Block

if TYPE_CHECKING:
    from .pretrained_cfg import LoadReport

TEXT_POOLS = ("argmax", "eos", "last")  # which token is pooled (see the module docstring)


@dataclass(frozen=True)
class TextConfig:
    """Shape and numerics of one text tower. Immutable; checked when made."""

    vocab_size: int = 49408
    context_length: int = 77  # rows of the position table: the longest input
    width: int = 512
    depth: int = 12
    num_heads: int = 8
    mlp_dim: int = 2048
    embed_dim: int = 512  # E, the joint embedding; 0 = no projection (the pooled token itself)
    causal: bool = True
    pool: str = "argmax"
    eos_id: int | None = None  # the end-of-text id ``pool="eos"`` looks for
    act_layer: str = "gelu"
    layer_norm_eps: float = 1e-5
    proj_bias: bool = False
    init_values: float | None = None  # layer scale (open_clip's ls_init_value)

    def __post_init__(self) -> None:
        sizes = ("vocab_size", "context_length", "width", "depth", "num_heads", "mlp_dim")
        bad = [f"{name}={getattr(self, name)}" for name in sizes if getattr(self, name) <= 0]
        if self.embed_dim < 0:
            bad.append(f"embed_dim={self.embed_dim}")
        if bad:
            raise ConfigError(f"text tower sizes must be positive: {', '.join(bad)}")
        if self.width % self.num_heads:
            raise ConfigError(f"text width {self.width} is not divisible by num_heads={self.num_heads}")
        if self.pool not in TEXT_POOLS:
            raise ConfigError(f"text pool must be one of {', '.join(TEXT_POOLS)}, got {self.pool!r}")
        if self.pool == "eos" and self.eos_id is None:
            raise ConfigError("text pool='eos' needs the end-of-text id: pass eos_id")
        if self.act_layer not in ACTIVATIONS:
            raise ConfigError(f"text act_layer must be one of {', '.join(ACTIVATIONS)}, got {self.act_layer!r}")

    def block_config(self) -> ViTConfig:
        """The ``ViTConfig`` the shared ``Block`` reads (width, heads, MLP, activation, eps, layer scale)."""
        return ViTConfig(
            embed_dim=self.width,
            depth=self.depth,
            num_heads=self.num_heads,
            mlp_dim=self.mlp_dim,
            num_classes=0,
            act_layer=self.act_layer,
            layer_norm_eps=self.layer_norm_eps,
            init_values=self.init_values,
        )


class TextTransformer(nn.Module):
    """Token ids (B, L) -> text embedding (B, E). Parameter names follow the image tower's: ``token_embed``,
    ``pos_embed`` (1, context, W), ``blocks.{i}`` (``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``, ``mlp.fc1``,
    ``mlp.fc2``), ``norm``, ``head`` (the projection)."""

    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        cfg = self.config = config
        W = cfg.width
        self.token_embed = nn.Embedding(cfg.vocab_size, W)
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.context_length, W))
        block_cfg = cfg.block_config()
        self.blocks = nn.ModuleList(Block(block_cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(W, eps=cfg.layer_norm_eps)
        self.head: nn.Module = nn.Linear(W, cfg.embed_dim, bias=cfg.proj_bias) if cfg.embed_dim else nn.Identity()
        self.load_report: LoadReport | None = None
        if not self.pos_embed.is_meta:  # on the meta device weights are about to be assigned
            self.init_weights()

    @property
    def output_dim(self) -> int:
        """E, the width of ``forward``'s output."""
        return self.config.embed_dim or self.config.width

    @torch.no_grad()
    def init_weights(self) -> None:
        """open_clip's init: token embeddings normal(0.02), positions normal(0.01), Linear weights normal(0.02)."""
        nn.init.normal_(self.token_embed.weight, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.01)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def _check(self, ids: torch.Tensor) -> None:
        if ids.ndim != 2 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise InputError(f"expected token ids as an integer (B, L) tensor, got {ids.dtype} {tuple(ids.shape)}")
        if not 0 < ids.shape[1] <= self.config.context_length:
            raise InputError(
                f"{ids.shape[1]} tokens per text; this tower takes 1 to {self.config.context_length} (its context)"
            )

    def forward_features(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids (B, L) -> final-normed tokens (B, L, W)."""
        self._check(ids)
        x = self.token_embed(ids) + self.pos_embed[:, : ids.shape[1]]
        for block in self.blocks:
            x = block(x, causal=self.config.causal)
        return self.norm(x)

    def pool(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Normed tokens (B, L, W) -> the pooled token (B, W) of ``config.pool``."""
        if self.config.pool == "last":
            return x[:, -1]
        ints = ids.to(torch.int32)  # ONNX Runtime's ArgMax takes int32, not int64 (as transformers casts)
        if self.config.eos_id is not None and self.config.pool == "eos":
            ints = ints.eq(self.config.eos_id).to(torch.int32)  # argmax: the first end-of-text token
        index = ints.argmax(dim=-1)
        return x[torch.arange(x.shape[0], device=x.device), index]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids (B, L) -> the text embedding (B, E), not normalised."""
        return self.head(self.pool(self.forward_features(ids), ids))
