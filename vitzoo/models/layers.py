"""The layers of the Vision Transformer (``vitzoo.models.vit``): patch embedding, attention, MLPs, layer scale, the
pre-norm block and the attention pool. Each reads its sizes from one ``ViTConfig``; parameter names are timm's. The
text towers (``vitzoo.models.text``) reuse the block with a causal mask (CLIP) or without (SigLIP).

Shapes: B batch, C channels, H x W image, h x w patch grid, N = h * w patches, L sequence length, D width, H heads,
hd head width.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .config import ViTConfig
from .linear import Linear, linear
from .pos_embed import rope_freqs_mixed


class RMSNorm(nn.RMSNorm):
    """``nn.RMSNorm`` whose scale takes the input's dtype: under bf16 autocast the fused kernel runs, where an fp32
    scale on a bf16 input makes PyTorch fall back to unfused ops with a dtype-mismatch warning (same speed here)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.to(x.dtype)
        return F.rms_norm(x, self.normalized_shape, weight, self.eps)


def make_norm(cfg: ViTConfig, width: int) -> nn.Module:
    """The network's norm over ``width`` channels: LayerNorm, or RMSNorm (``norm_layer="rmsnorm"``)."""
    if cfg.norm_layer == "rmsnorm":
        return RMSNorm(width, eps=cfg.layer_norm_eps)
    return nn.LayerNorm(width, eps=cfg.layer_norm_eps)


class PatchEmbed(nn.Module):
    """Non-overlapping patches, each linearly embedded: a Conv2d with kernel = stride = patch size (then, with
    ``patch_norm``, a norm over each patch's channels)."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(
            cfg.in_chans, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.patch_size, bias=cfg.patch_bias
        )
        self.norm: nn.Module | None = make_norm(cfg, cfg.embed_dim) if cfg.patch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)  # (B, C, H, W) -> (B, D, h, w)
        if self.norm is not None:
            x = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """OpenAI CLIP's sigmoid approximation of GELU: ``x * sigmoid(1.702 x)``."""
    return x * torch.sigmoid(1.702 * x)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU with the tanh approximation (transformers' ``gelu_pytorch_tanh``, used by SigLIP)."""
    return F.gelu(x, approximate="tanh")


ACTIVATION_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_tanh": gelu_tanh,
    "quick_gelu": quick_gelu,
    "silu": F.silu,
}


def apply_rope(x: torch.Tensor, rope: torch.Tensor, interleaved: bool = False) -> torch.Tensor:
    """Rotate ``x`` (..., n, hd) by ``rope`` = cat(sin, cos) (n, 2 hd); fp32 math, x's dtype out.

    The half layout (DINOv3) pairs channel i with i + hd/2; the interleaved one (EVA-02) pairs 2i with 2i + 1. Each
    pair (a, b) becomes (a cos - b sin, b cos + a sin): the same numbers as ``x * cos + rotate(x) * sin`` (timm's
    form), without building the rotated copy (4 to 10 times faster on CPU).
    """
    sin, cos = rope.chunk(2, dim=-1)
    xf = x.float()
    if interleaved:  # angles repeat per pair: take one of each
        s, c = sin[..., ::2], cos[..., ::2]
        pairs = xf.reshape(*x.shape[:-1], -1, 2)
        a, b = pairs[..., 0], pairs[..., 1]
        return torch.stack([a * c - b * s, b * c + a * s], dim=-1).flatten(-2).to(x.dtype)
    h = x.shape[-1] // 2
    s, c = sin[..., :h], cos[..., :h]
    a, b = xf[..., :h], xf[..., h:]
    return torch.cat([a * c - b * s, b * c + a * s], dim=-1).to(x.dtype)


class RopeFreqs(nn.Module):
    """RoPE-Mixed's learned frequencies, (2, depth, heads, head_dim / 2) (timm's ``rope.freqs``)."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.freqs = nn.Parameter(rope_freqs_mixed(cfg.head_dim, cfg.depth, cfg.num_heads, cfg.rope_temperature))


class RelPos(NamedTuple):
    """What the blocks need for relative position biases at one grid: ``rel_pos_log_coords``'s offsets and index,
    and the bias of a model-wide MLP (``rel_pos_shared``), computed once per forward."""

    coords: torch.Tensor  # (2h - 1, 2w - 1, 2)
    pairs: torch.Tensor  # (N * N,): each query-key pair's row of coords
    shared: torch.Tensor | None  # (1, H, L, L)


class Positions(NamedTuple):
    """The positions the blocks apply at one grid (``VisionTransformer._embed``): RoPE's (N, 2 hd), relative biases."""

    rope: torch.Tensor | None  # (N, 2 hd); RoPE-Mixed: (depth, H, N, 2 hd), one per block
    rel: RelPos | None


class RelPosMlp(nn.Module):
    """A relative position bias from a 2-layer MLP of log-spaced patch offsets (timm's ``RelPosMlp``, mode ``cr``,
    after Swin-V2): (dy, dx) -> one logit bias per head; prefix tokens get none. Names ``mlp.fc1``, ``mlp.fc2``."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.num_heads, self.num_prefix_tokens = cfg.num_heads, cfg.num_prefix_tokens
        self.mlp = nn.ModuleDict({"fc1": Linear(2, cfg.rel_pos_dim), "fc2": Linear(cfg.rel_pos_dim, cfg.num_heads)})

    def forward(self, coords: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Offsets (2h - 1, 2w - 1, 2) and pair index (N * N,) -> the attention bias (1, H, L, L), L = P + N."""
        table = self.mlp["fc2"](F.relu(self.mlp["fc1"](coords.to(next(self.parameters()).dtype))))
        n = (coords.shape[0] + 1) // 2 * ((coords.shape[1] + 1) // 2)  # N = h * w
        bias = table.reshape(-1, self.num_heads)[index].reshape(n, n, self.num_heads).permute(2, 0, 1)  # (H, N, N)
        P = self.num_prefix_tokens
        return F.pad(bias, [P, 0, P, 0]).unsqueeze(0) if P else bias.unsqueeze(0)


class RelPosBias(nn.Module):
    """A learned relative position bias per head and (dy, dx) offset of the built grid (timm's ``RelPosBias``, after
    Swin-V1 and BEiT; ``rel_pos_type="bias"``); with a class token three more rows: class to patch, patch to class,
    class to class. Name ``relative_position_bias_table``, ((2h - 1)(2w - 1) + 3P, H)."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        (h, w), P = cfg.grid_size, cfg.num_prefix_tokens
        self.grid, self.num_heads, self.num_prefix_tokens = (h, w), cfg.num_heads, P
        self.relative_position_bias_table = nn.Parameter(torch.empty((2 * h - 1) * (2 * w - 1) + 3 * P, cfg.num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, coords: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Offsets (2h - 1, 2w - 1, 2) (only their shape is read) and pair index (N * N,) -> bias (1, H, L, L)."""
        h, w = (coords.shape[0] + 1) // 2, (coords.shape[1] + 1) // 2
        if (h, w) != self.grid:
            raise InputError(
                f"rel_pos_type='bias' holds offsets for a {self.grid[0]}x{self.grid[1]} patch grid, this input is "
                f"{h}x{w}: resize the input, or build the model at this size (img_size=...)"
            )
        n, distances = h * w, (2 * h - 1) * (2 * w - 1)
        index = index.reshape(n, n)
        if self.num_prefix_tokens:  # as timm's gen_relative_position_index(class_token=True)
            index = F.pad(index, [1, 0, 1, 0])
            index[0, :] = distances
            index[:, 0] = distances + 1
            index[0, 0] = distances + 2
        L = index.shape[0]
        bias = self.relative_position_bias_table[index.flatten()].reshape(L, L, self.num_heads)
        return bias.permute(2, 0, 1).unsqueeze(0)


def make_rel_pos(cfg: ViTConfig) -> nn.Module:
    """The relative position bias ``cfg.rel_pos_type`` names: ``RelPosMlp`` or ``RelPosBias``."""
    return RelPosBias(cfg) if cfg.rel_pos_type == "bias" else RelPosMlp(cfg)


Recorder = Callable[[torch.Tensor], None]  # takes attention probabilities (B, H, n, L): vitzoo.capture_attention


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    dropout: float = 0.0,
    record: Recorder | None = None,
    bias: torch.Tensor | None = None,
    causal: bool = False,
) -> torch.Tensor:
    """Scaled dot-product attention of q (B, H, n, hd) over k, v (B, H, L, hd) -> (B, H, n, hd): PyTorch's fused
    kernel, or with ``record`` the same computed explicitly, its probabilities handed to ``record`` (analysis only).
    ``bias``: added to the logits; ``causal``: each query sees itself and the keys before it."""
    if record is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout, is_causal=causal)
    scores = ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).float()
    if bias is not None:
        scores = scores + bias.float()
    if causal:
        scores = scores.masked_fill(torch.ones_like(scores, dtype=torch.bool).triu(1), float("-inf"))
    probs = scores.softmax(dim=-1).to(q.dtype)
    record(probs)  # (B, H, n, L)
    return F.dropout(probs, dropout) @ v


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection and PyTorch's fused SDPA kernel."""

    def __init__(self, cfg: ViTConfig, kv_heads: int | None = None) -> None:
        super().__init__()
        self.num_heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.kv_heads = kv_heads or cfg.num_heads  # fewer: grouped-query attention (cfg.num_kv_heads)
        self.num_prefix_tokens = cfg.num_prefix_tokens  # tokens RoPE leaves unrotated
        self.rope_interleaved = cfg.rope_type in ("eva", "mixed")
        self.attn_drop = cfg.attn_drop_rate
        D, KV = cfg.embed_dim, self.kv_heads * cfg.head_dim
        qv = cfg.qkv_bias and cfg.qkv_bias_mode == "qv"  # learned q and v biases, the k bias is zero (BEiT, DINOv3)
        self.qkv = Linear(D, D + 2 * KV, bias=cfg.qkv_bias and not qv)  # rows [q; k; v]
        self.q_bias = nn.Parameter(torch.zeros(D)) if qv else None
        self.v_bias = nn.Parameter(torch.zeros(D)) if qv else None
        self.q_norm: nn.Module = make_norm(cfg, cfg.head_dim) if cfg.qk_norm else nn.Identity()
        self.k_norm: nn.Module = make_norm(cfg, cfg.head_dim) if cfg.qk_norm else nn.Identity()
        self.norm: nn.Module = make_norm(cfg, D) if cfg.attn_norm else nn.Identity()
        self.rel_pos = make_rel_pos(cfg) if cfg.rel_pos and not cfg.rel_pos_shared else None
        self.proj = Linear(D, D, bias=cfg.proj_bias)
        self.proj_drop = nn.Dropout(cfg.drop_rate)
        self.record: Recorder | None = None  # set by vitzoo.capture_attention

    def qkv_bias(self) -> torch.Tensor | None:
        """The bias of the fused projection, rows [q; k; v] (None without one)."""
        if self.q_bias is not None and self.v_bias is not None:
            return torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
        return self.qkv.bias

    def forward(
        self,
        x: torch.Tensor,
        num_queries: int | None = None,
        rope: torch.Tensor | None = None,
        causal: bool = False,
        rel: RelPos | None = None,
    ) -> torch.Tensor:
        """(B, L, D) -> (B, L, D); with ``num_queries`` only the first n rows are computed (keys/values use all L).

        ``rope`` (N, 2 hd): rotary sin/cos for the N patch tokens (DINOv3); prefix tokens are not rotated.
        ``causal``: each token attends to itself and the tokens before it only (CLIP's text tower).
        ``rel``: the grid's relative offsets, for this layer's ``rel_pos`` MLP or the model's shared bias.
        """
        B, L, D = x.shape
        H, KV, hd = self.num_heads, self.kv_heads, self.head_dim
        w, b = self.qkv.weight, self.qkv_bias()
        if num_queries is None and KV == H:
            qkv = linear(x, w, b).reshape(B, L, 3, H, hd).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)  # each (B, H, L, hd)
        else:  # split the fused weight: queries (for the first n rows only), then keys and values
            n = L if num_queries is None else num_queries
            q = linear(x[:, :n], w[:D], None if b is None else b[:D])
            q = q.reshape(B, n, H, hd).transpose(1, 2)  # (B, H, n, hd)
            kv = linear(x, w[D:], None if b is None else b[D:]).reshape(B, L, 2, KV, hd).permute(2, 0, 3, 1, 4)
            k, v = kv.unbind(0)  # each (B, KV, L, hd)
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            P, inter = self.num_prefix_tokens, self.rope_interleaved
            k = torch.cat([k[:, :, :P], apply_rope(k[:, :, P:], rope, inter)], dim=2)
            if q.shape[2] > P:
                q = torch.cat([q[:, :, :P], apply_rope(q[:, :, P:], rope, inter)], dim=2)
        if KV < H:  # grouped-query attention: query head h reads key/value head h // (H / KV)
            k, v = k.repeat_interleave(H // KV, dim=1), v.repeat_interleave(H // KV, dim=1)
        bias = None
        if rel is not None:
            bias = self.rel_pos(rel.coords, rel.pairs) if self.rel_pos is not None else rel.shared
            bias = None if bias is None else bias[:, :, : q.shape[2]].to(q.dtype)  # (1, H, n, L)
        p = self.attn_drop if self.training else 0.0
        x = attend(q, k, v, p, self.record, bias, causal)
        return self.proj_drop(self.proj(self.norm(x.transpose(1, 2).reshape(B, q.shape[2], D))))


def init_differential(module: Any, head_dim: int, index: int) -> None:
    """Give ``module`` differential attention's parameters (timm's names): ``lambda_q1``, ``lambda_k1``,
    ``lambda_q2``, ``lambda_k2`` (each half a head wide), the per-head ``sub_norm`` and ``lambda_init`` for block
    ``index``."""
    for name in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"):
        setattr(module, name, nn.Parameter(torch.randn(head_dim // 2) * 0.1))
    module.sub_norm = RMSNorm(head_dim, eps=1e-5)
    module.lambda_init = 0.8 - 0.6 * math.exp(-0.3 * index)


def differential(module: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, p: float) -> torch.Tensor:
    """Differential attention of q (B, n, D) over k, v (B, L, D) with the parameters ``init_differential`` gave
    ``module`` -> (B, n, D).

    Each head's queries and keys are two halves of the head width: softmax(q1 k1) v - lambda softmax(q2 k2) v,
    RMS-normed per head and scaled by 1 - lambda_init; lambda = exp(lambda_q1 . lambda_k1) - exp(lambda_q2 .
    lambda_k2) + lambda_init."""
    B, n, D = q.shape
    L, hd = k.shape[1], D // heads
    q1, q2 = q.reshape(B, n, heads, 2, hd // 2).permute(3, 0, 2, 1, 4)  # each (B, H, n, hd / 2)
    k1, k2 = k.reshape(B, L, heads, 2, hd // 2).permute(3, 0, 2, 1, 4)  # each (B, H, L, hd / 2)
    v = v.reshape(B, L, heads, hd).transpose(1, 2)  # (B, H, L, hd)
    lam = (
        torch.exp(torch.sum(module.lambda_q1 * module.lambda_k1).float())
        - torch.exp(torch.sum(module.lambda_q2 * module.lambda_k2).float())
        + module.lambda_init
    ).to(q.dtype)
    x = F.scaled_dot_product_attention(q1, k1, v, dropout_p=p) - lam * F.scaled_dot_product_attention(
        q2, k2, v, dropout_p=p
    )
    x = module.sub_norm(x) * (1 - module.lambda_init)  # (B, H, n, hd)
    return x.transpose(1, 2).reshape(B, n, D)


class DiffAttention(Attention):
    """Differential attention (Ye et al. 2024, "Differential Transformer"; timm's ``DiffAttention``,
    ``attn_type="diff"``; ``differential`` above), lambda_init = 0.8 - 0.6 exp(-0.3 i) for block ``i``. Names:
    timm's (``lambda_q1``, ``lambda_k1``, ``lambda_q2``, ``lambda_k2``, ``sub_norm``)."""

    def __init__(self, cfg: ViTConfig, index: int) -> None:
        super().__init__(cfg)
        init_differential(self, cfg.head_dim, index)

    def forward(
        self,
        x: torch.Tensor,
        num_queries: int | None = None,
        rope: torch.Tensor | None = None,
        causal: bool = False,
        rel: RelPos | None = None,
    ) -> torch.Tensor:
        """(B, L, D) -> (B, n, D), n = ``num_queries`` or L. RoPE, relative biases and causal masks are refused by the
        config; attention capture by ``vitzoo.capture_attention``."""
        n = x.shape[1] if num_queries is None else num_queries
        q, k, v = linear(x, self.qkv.weight, self.qkv_bias()).chunk(3, dim=-1)
        x = differential(self, q[:, :n], k, v, self.num_heads, self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(self.norm(x)))


def _hidden_norm(cfg: ViTConfig, width: int) -> nn.Module:
    """``mlp_norm``: a LayerNorm on the MLP's hidden units before fc2 (timm's ``mlp.norm``), else nothing."""
    return make_norm(cfg, width) if cfg.mlp_norm else nn.Identity()


class Mlp(nn.Module):
    """fc1, activation, fc2; ``swiglu_packed`` splits fc1's output into [gate; up]: fc2(act(gate) * up) (DINOv2-g,
    EVA-02 Ti/S)."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.act = ACTIVATION_FNS[cfg.act_layer]
        self.packed = cfg.mlp_layer == "swiglu_packed"
        hidden = cfg.mlp_dim // 2 if self.packed else cfg.mlp_dim
        self.fc1 = Linear(cfg.embed_dim, cfg.mlp_dim, bias=cfg.proj_bias)
        self.norm = _hidden_norm(cfg, hidden)
        self.fc2 = Linear(hidden, cfg.embed_dim, bias=cfg.proj_bias)
        self.drop = nn.Dropout(cfg.drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc1(x)
        if self.packed:
            gate, up = x.chunk(2, dim=-1)
            x = self.act(gate) * up
        else:
            x = self.act(x)
        return self.drop(self.fc2(self.norm(self.drop(x))))


class SwiGLU(nn.Module):
    """fc2(act(fc1_g(x)) * fc1_x(x)) with separate gate and up projections (timm's names; DINOv3 S+/H+, EVA-02 B/L
    with ``mlp_norm``)."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.act = ACTIVATION_FNS[cfg.act_layer]
        self.fc1_g = Linear(cfg.embed_dim, cfg.mlp_dim, bias=cfg.proj_bias)
        self.fc1_x = Linear(cfg.embed_dim, cfg.mlp_dim, bias=cfg.proj_bias)
        self.norm = _hidden_norm(cfg, cfg.mlp_dim)
        self.fc2 = Linear(cfg.mlp_dim, cfg.embed_dim, bias=cfg.proj_bias)
        self.drop = nn.Dropout(cfg.drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.norm(self.drop(self.act(self.fc1_g(x)) * self.fc1_x(x)))))


def make_mlp(cfg: ViTConfig) -> nn.Module:
    """The block's MLP for ``cfg.mlp_layer``."""
    return SwiGLU(cfg) if cfg.mlp_layer == "swiglu" else Mlp(cfg)


class LayerScale(nn.Module):
    """Per-channel learned scale of a residual branch (CaiT; DeiT-III, DINOv2, DINOv3): ``x * gamma``."""

    def __init__(self, dim: int, init_values: float) -> None:
        super().__init__()
        self.init_values = init_values
        self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


def add_branch(x: torch.Tensor, branch: torch.Tensor, drop_path: float, training: bool) -> torch.Tensor:
    """x + branch; training with ``drop_path`` > 0, the whole branch is dropped per sample (stochastic depth)."""
    if drop_path and training:
        keep = 1.0 - drop_path
        branch = branch * x.new_empty((x.shape[0], 1, 1)).bernoulli_(keep).div_(keep)
    return x + branch


class Block(nn.Module):
    """Pre-norm Transformer block: residual attention, then residual MLP (with optional layer scale, drop path);
    with ``res_post_norm``, each branch is normed at its output instead of its input."""

    def __init__(self, cfg: ViTConfig, drop_path: float = 0.0, index: int = 0) -> None:
        super().__init__()
        self.norm1 = make_norm(cfg, cfg.embed_dim)
        # the block's index: differential attention's lambda_init, grouped-query attention's key/value heads
        self.attn = DiffAttention(cfg, index) if cfg.attn_type == "diff" else Attention(cfg, cfg.kv_heads(index))
        self.norm2 = make_norm(cfg, cfg.embed_dim)
        self.mlp = make_mlp(cfg)
        D, init = cfg.embed_dim, cfg.init_values
        self.post_norm = cfg.res_post_norm  # the branch's initial scale is then the norms' weight, not a layer scale
        scale = None if self.post_norm else init
        self.ls1: nn.Module = LayerScale(D, scale) if scale is not None else nn.Identity()
        mlp_scale = scale if cfg.mlp_layer_scale else None  # Sapiens2: the attention branch only
        self.ls2: nn.Module = LayerScale(D, mlp_scale) if mlp_scale is not None else nn.Identity()
        if self.post_norm and init is not None:
            for norm in (self.norm1, self.norm2):
                weight = norm.weight
                assert isinstance(weight, torch.Tensor)
                nn.init.constant_(weight, init)
        self.drop_path = drop_path

    def _residual(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        return add_branch(x, branch, self.drop_path, self.training)

    def forward(
        self,
        x: torch.Tensor,
        num_queries: int | None = None,
        rope: torch.Tensor | None = None,
        causal: bool = False,
        rel: RelPos | None = None,
    ) -> torch.Tensor:
        """(B, L, D) -> (B, L, D), or (B, n, D) for the first ``num_queries`` tokens only; ``causal`` masks the
        attention to later tokens (text towers); ``rel``: relative position biases (``Attention``)."""
        if self.post_norm:  # res-post-norm (Swin-V2, timm's ResPostBlock, EVA-02 E): the branch's output is normed
            branch = self.norm1(self.attn(x, num_queries, rope, causal, rel))
            x = self._residual(x if num_queries is None else x[:, :num_queries], branch)
            return self._residual(x, self.norm2(self.mlp(x)))
        branch = self.ls1(self.attn(self.norm1(x), num_queries, rope, causal, rel))
        x = self._residual(x if num_queries is None else x[:, :num_queries], branch)
        return self._residual(x, self.ls2(self.mlp(self.norm2(x))))


class AttentionPool(nn.Module):
    """Multihead attention pooling (MAP, SigLIP): one learned query attends over the patch tokens, then an MLP.

    timm's ``AttentionPoolLatent`` names: ``latent``, ``q``, ``kv`` (rows [k; v]), ``proj``, ``norm``, ``mlp``.
    """

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        D = cfg.embed_dim
        self.num_heads = cfg.attn_pool_heads or cfg.num_heads
        self.head_dim = D // self.num_heads
        self.latent = nn.Parameter(torch.zeros(1, 1, D))
        self.q = Linear(D, D)
        self.kv = Linear(D, 2 * D)
        self.proj = Linear(D, D)
        self.norm = make_norm(cfg, D)
        self.mlp = Mlp(
            cfg.replace(mlp_layer="mlp", mlp_dim=cfg.attn_pool_mlp_dim or cfg.mlp_dim, mlp_norm=False, drop_rate=0.0)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens (B, N, D) -> pooled (B, D)."""
        B, N, D = x.shape
        H, hd = self.num_heads, self.head_dim
        q = self.q(self.latent.expand(B, -1, -1)).reshape(B, 1, H, hd).transpose(1, 2)  # (B, H, 1, hd)
        k, v = self.kv(x).reshape(B, N, 2, H, hd).permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, N, hd)
        x = self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, 1, D))
        x = x + self.mlp(self.norm(x))
        return x[:, 0]
