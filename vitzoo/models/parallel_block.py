"""The parallel block: attention and MLP side by side from one fused input projection (``block_type="parallel"``).

Dehghani et al. 2023, "Scaling Vision Transformers to 22 Billion Parameters" (section 2): one norm, one projection
to [MLP hidden; q; k; v], both branches summed into one residual. timm's ``ParallelScalingBlock`` (``vit_pwee_*``)
and, with differential attention, ``DiffParallelScalingBlock`` (``vit_dpwee_*``), whose parameter names these are.
A separate file because its body shares no module with ``layers.Block``: no ``attn``, ``mlp``, ``norm1``/``norm2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ViTConfig
from .layers import (
    ACTIVATION_FNS,
    LayerScale,
    Recorder,
    RelPos,
    add_branch,
    attend,
    differential,
    init_differential,
    make_norm,
)
from .linear import Linear


class ParallelBlock(nn.Module):
    """x + ls(attn_out_proj(attention(q, k, v)) + mlp_out_proj(act(h))), [h; q; k; v] = in_proj(in_norm(x)).

    Without a qkv bias the MLP's bias is its own parameter (``mlp_bias``); with one it is part of ``in_proj.bias``.
    With ``attn_type="diff"`` the attention is differential (``layers.differential``: ``lambda_*``, ``sub_norm`` on
    the block) and one ``out_proj`` reads [attention; MLP], as timm's ``DiffParallelScalingBlock``.
    """

    def __init__(self, cfg: ViTConfig, drop_path: float = 0.0, index: int = 0) -> None:
        super().__init__()
        D, M = cfg.embed_dim, cfg.mlp_dim
        self.num_heads, self.head_dim, self.split = cfg.num_heads, cfg.head_dim, [M, D, D, D]
        self.in_norm = make_norm(cfg, D)
        self.in_proj = Linear(D, M + 3 * D, bias=cfg.qkv_bias)
        self.mlp_bias = None if cfg.qkv_bias else nn.Parameter(torch.zeros(M))
        self.act = ACTIVATION_FNS[cfg.act_layer]
        self.diff = cfg.attn_type == "diff"
        if self.diff:
            init_differential(self, cfg.head_dim, index)  # lambda_q1, lambda_k1, lambda_q2, lambda_k2, sub_norm
            self.out_proj = Linear(D + M, D, bias=cfg.proj_bias)
        else:
            self.attn_out_proj = Linear(D, D, bias=cfg.proj_bias)
            self.mlp_out_proj = Linear(M, D, bias=cfg.proj_bias)
        self.ls: nn.Module = LayerScale(D, cfg.init_values) if cfg.init_values is not None else nn.Identity()
        self.attn_drop, self.drop, self.drop_path = cfg.attn_drop_rate, cfg.drop_rate, drop_path
        self.record: Recorder | None = None  # set by vitzoo.capture_attention

    def forward(
        self,
        x: torch.Tensor,
        num_queries: int | None = None,
        rope: torch.Tensor | None = None,
        causal: bool = False,
        rel: RelPos | None = None,
    ) -> torch.Tensor:
        """(B, L, D) -> (B, n, D), n = ``num_queries`` or L (the first n rows; keys and values see all L). RoPE,
        relative biases and causal masks are refused by the config."""
        B, L, D = x.shape
        n = L if num_queries is None else num_queries
        h, q, k, v = self.in_proj(self.in_norm(x)).split(self.split, dim=-1)
        h, q = h[:, :n], q[:, :n]
        if self.mlp_bias is not None:
            h = h + self.mlp_bias
        p = self.attn_drop if self.training else 0.0
        if self.diff:
            a = differential(self, q, k, v, self.num_heads, p)
        else:
            H, hd = self.num_heads, self.head_dim
            q, k, v = (t.reshape(B, -1, H, hd).transpose(1, 2) for t in (q, k, v))  # (B, H, n | L, hd)
            a = attend(q, k, v, p, self.record)
            a = a.transpose(1, 2).reshape(B, n, D)
        h = F.dropout(self.act(h), self.drop, self.training)
        y = self.out_proj(torch.cat([a, h], dim=-1)) if self.diff else self.attn_out_proj(a) + self.mlp_out_proj(h)
        return add_branch(x[:, :n], self.ls(y), self.drop_path, self.training)
