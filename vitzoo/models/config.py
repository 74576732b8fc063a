"""The frozen configuration of a Vision Transformer, checked once when it is made.

Every module of the network reads its sizes from one ``ViTConfig``; the variant table (paper Table 1) lives in
``vitzoo.models.archs``.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any

from ..choices import POOLS
from ..errors import ConfigError

ACTIVATIONS = ("gelu", "gelu_tanh", "quick_gelu", "silu")  # MLP activation (act_layer)
MLP_LAYERS = ("mlp", "swiglu_packed", "swiglu")  # MLP form (mlp_layer)
QKV_BIAS_MODES = ("qkv", "qv")  # the biases of the qkv projection (qkv_bias_mode): all three, or q and v only
INTERPOLATIONS = ("bicubic", "bilinear", "nearest", "area", "jax", "torchvision")
NORM_LAYERS = ("layernorm", "rmsnorm")  # every norm of the network (norm_layer)
# rotary schemes (rope_type): pos_embed.rope_embed, rope_embed_eva, rope_embed_mixed (learned per-block frequencies)
ROPE_TYPES = ("dinov3", "eva", "mixed")


def to_pair(value: int | tuple[int, int] | list[int], what: str) -> tuple[int, int]:
    """``16 -> (16, 16)``; ``(320, 448)`` stays; anything else is a ConfigError naming ``what``."""
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be an int or an (h, w) pair, got {value!r}")
    if isinstance(value, int):
        return (value, value)
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return (int(value[0]), int(value[1]))
    raise ConfigError(f"{what} must be an int or an (h, w) pair of ints, got {value!r}")


def nearest_multiples(size: int, patch: int) -> tuple[int, ...]:
    """The multiples of ``patch`` just below and just above ``size`` (for error messages)."""
    below = (size // patch) * patch
    return tuple(s for s in (below, below + patch) if s > 0)


@dataclass(frozen=True)
class ViTConfig:
    """Shape and numerics of one Vision Transformer. Immutable: derive a new one with ``dataclasses.replace``.

    ``img_size`` and ``patch_size`` are (height, width); ints are accepted and doubled. The grid is
    ``img_size // patch_size`` per axis and must divide exactly.
    """

    embed_dim: int = 768  # D, the paper's "Hidden size"
    depth: int = 12  # number of Transformer blocks ("Layers")
    num_heads: int = 12
    mlp_dim: int = 3072  # the paper's "MLP size" (4 * D for every published variant)
    patch_size: tuple[int, int] = (16, 16)
    img_size: tuple[int, int] = (224, 224)
    in_chans: int = 3
    num_classes: int = 1000  # 0 = no head: forward() returns pooled features
    global_pool: str = "token"  # "token": class token; "avg": patch mean; "map": attention pool; "": none (timm's)
    representation_size: int = 0  # >0: the paper's pre-logits layer, Linear(D, size) + tanh, before the head
    hybrid_layers: tuple[int, ...] = ()  # ResNet stage depths of the hybrid's CNN stem, e.g. (3, 4, 9); () = pixels
    hybrid_stem_only: bool = False  # the CNN is the ResNet stem alone (stride 4), cut into patch_size / 4 patches
    class_token: bool = True
    qkv_bias: bool = True  # the q, k and v projections have biases (as qkv_bias_mode lays them out)
    qkv_bias_mode: str = "qkv"  # "qkv": one fused bias attn.qkv.bias; "qv": learned attn.q_bias, attn.v_bias, no k bias
    layer_norm_eps: float = 1e-6  # timm / JAX / torchvision value; transformers' google/vit-* configs say 1e-12
    dynamic_img_size: bool = False  # accept any size divisible by the patch; resample pos-embed per grid
    dynamic_img_pad: bool = False  # zero-pad inputs on the bottom/right up to a multiple of the patch
    drop_remainder: bool = False  # the last size % patch rows/columns are never seen (timm's so400m/14 at 384 px)
    pos_embed_interpolation: str = "bicubic"  # used by dynamic_img_size and set_input_size
    pos_embed_antialias: bool = True
    drop_rate: float = 0.0  # dropout after pos-embed add, attention projection and MLP layers (paper App. B.1)
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0  # stochastic depth, linearly increasing over the blocks
    # Flags of the later families, with timm's names and meanings (docs/models.md lists which family sets which).
    init_values: float | None = None  # layer scale: blocks.N.ls1/ls2.gamma start at this value (DeiT-III, DINOv2)
    mlp_layer_scale: bool = True  # False: layer scale on the attention branch only, no ls2 (Sapiens2)
    res_post_norm: bool = False  # x + norm(attn(x)): norms after each branch (init_values: their initial weight)
    reg_tokens: int = 0  # register tokens after the class token (DINOv2-reg4; DINOv3's "storage tokens")
    no_embed_class: bool = False  # pos_embed covers the patches only, added before the prefix tokens (DeiT-III)
    pre_norm: bool = False  # LayerNorm norm_pre on the embedded sequence, before the blocks (CLIP)
    patch_bias: bool = True  # bias of the patch projection (CLIP's conv1 has none)
    fc_norm: bool = False  # the final LayerNorm runs on the pooled vector (fc_norm) instead of on every token
    act_layer: str = "gelu"  # MLP activation: gelu (erf), gelu_tanh (SigLIP 2), quick_gelu (OpenAI CLIP), silu
    mlp_layer: str = "mlp"  # "swiglu_packed": fc1 = [gate; up] (DINOv2-g); "swiglu": fc1_g, fc1_x (DINOv3 S+/H+)
    distilled: bool = False  # DeiT distillation token dist_token and second head head_dist (output: their mean)
    rope: bool = False  # 2-D rotary position embedding of the patch tokens' q and k (DINOv3, EVA-02)
    rope_type: str = "dinov3"  # "dinov3": centred coordinates in [-1, 1], half layout; "eva": EVA-02's patch indices
    rope_temperature: float = 100.0  # RoPE base period (DINOv3: 100, EVA-02: 10000)
    rope_ref_grid: tuple[int, int] | None = None  # "eva": the grid positions are scaled to (EVA-02: 16 x 16); None: own
    rope_grid_offset: float = 0.0  # "eva": added to each patch index before scaling (Perception Encoder: 1)
    rope_grid_indexing: str = "ij"  # "eva": "ij" rotates the first quarter of a head with y, "xy" with x (PE, RoPE-ViT)
    abs_pos_embed: bool = True  # the learned position table pos_embed (False: positions from RoPE alone, DINOv3)
    rel_pos: bool = False  # a bias on the attention logits from an MLP of log-spaced patch offsets (timm's relpos ViTs)
    rel_pos_dim: int = 128  # that MLP's hidden width
    rel_pos_shared: bool = False  # one MLP for every block (shared_rel_pos) instead of one per block (attn.rel_pos)
    attn_type: str = "standard"  # "diff": differential attention (timm's attn_layer='diff': SBB dwee, dlittle)
    qk_norm: bool = False  # a norm over each head's queries and keys before RoPE (attn.q_norm, attn.k_norm; Sapiens2)
    num_kv_heads: int = 0  # grouped-query attention: key/value heads, each shared by num_heads // num_kv_heads queries
    full_attn_blocks: int = 0  # with num_kv_heads: the first and last N blocks keep num_heads key/value heads
    block_type: str = "serial"  # "parallel": attention and MLP from one fused projection (timm's ParallelScalingBlock)
    rel_pos_type: str = "mlp"  # "mlp": timm's RelPosMlp; "bias": a learned table per offset of the built grid (Swin-V1)
    attn_norm: bool = False  # LayerNorm on the attention's output before its projection (EVA-CLIP: attn.norm)
    mlp_norm: bool = False  # LayerNorm on the MLP's hidden units before fc2 (EVA-02 B/L: mlp.norm)
    norm_layer: str = "layernorm"  # every norm: "layernorm", or "rmsnorm" (no mean, no bias: AIMv2)
    patch_norm: bool = False  # a norm on each embedded patch (patch_embed.norm, AIMv2)
    proj_bias: bool = True  # biases of the attention output projection and of the MLP's layers (AIMv2: none)
    final_norm: bool = True  # the LayerNorm after the blocks (norm, or fc_norm); False: none (PE lang and spatial)
    attn_pool_heads: int = 0  # heads of the "map" attention pool; 0: num_heads (PE core: 8)
    attn_pool_mlp_dim: int = 0  # hidden width of the "map" pool's MLP; 0: mlp_dim (PE core G: 6144 beside 8960)
    pool_include_prefix: bool = False  # the "map" pool attends over the prefix tokens too (PE core's class token)

    def __post_init__(self) -> None:
        object.__setattr__(self, "img_size", to_pair(self.img_size, "img_size"))
        object.__setattr__(self, "patch_size", to_pair(self.patch_size, "patch_size"))
        object.__setattr__(self, "hybrid_layers", tuple(int(d) for d in self.hybrid_layers))
        if self.hybrid_stem_only and (self.hybrid_layers or self.patch_size[0] % 4 or self.patch_size[1] % 4):
            raise ConfigError(
                f"hybrid_stem_only=True: the stem has stride 4, so patch_size must be a multiple of 4 (got "
                f"{self.patch_size}) and hybrid_layers empty (got {self.hybrid_layers})"
            )
        if self.hybrid_layers:
            stride = 4 * 2 ** (len(self.hybrid_layers) - 1)  # stem /4, then /2 per stage after the first
            if self.patch_size != (stride, stride) or min(self.hybrid_layers) < 1:
                raise ConfigError(
                    f"a hybrid with stages {self.hybrid_layers} has stride {stride}: patch_size must be {stride} "
                    f"(got {self.patch_size}); each stage needs at least one block"
                )
        for name in ("embed_dim", "depth", "num_heads", "mlp_dim", "in_chans"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if min(self.patch_size) <= 0 or min(self.img_size) <= 0:
            raise ConfigError(f"img_size {self.img_size} and patch_size {self.patch_size} must be positive")
        if not isinstance(self.representation_size, int) or self.representation_size < 0:
            raise ConfigError(f"representation_size must be an int >= 0, got {self.representation_size!r}")
        if not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise ConfigError(f"num_classes must be an int >= 0 (0 removes the head), got {self.num_classes!r}")
        if self.embed_dim % self.num_heads:
            raise ConfigError(
                f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}; "
                f"pick num_heads from {[h for h in range(1, 33) if self.embed_dim % h == 0]}"
            )
        for axis, size, patch in zip(("height", "width"), self.img_size, self.patch_size, strict=True):
            if size % patch and not self.drop_remainder:
                raise ConfigError(
                    f"img_size {axis} {size} is not divisible by patch size {patch}; "
                    f"nearest valid sizes: {nearest_multiples(size, patch)} (drop_remainder=True ignores the "
                    "last rows and columns, as timm's strided convolution does)"
                )
        if self.drop_remainder and self.dynamic_img_pad:
            raise ConfigError(
                "drop_remainder=True and dynamic_img_pad=True contradict: one drops the rest, one pads it"
            )
        if not isinstance(self.reg_tokens, int) or self.reg_tokens < 0:
            raise ConfigError(f"reg_tokens must be an int >= 0, got {self.reg_tokens!r}")
        if self.act_layer not in ACTIVATIONS:
            raise ConfigError(f"act_layer must be one of {ACTIVATIONS}, got {self.act_layer!r}")
        if self.qkv_bias_mode not in QKV_BIAS_MODES:
            raise ConfigError(f"qkv_bias_mode must be one of {QKV_BIAS_MODES}, got {self.qkv_bias_mode!r}")
        if self.mlp_layer not in MLP_LAYERS:
            raise ConfigError(f"mlp_layer must be one of {MLP_LAYERS}, got {self.mlp_layer!r}")
        if self.mlp_layer == "swiglu_packed" and self.mlp_dim % 2:
            raise ConfigError(
                f"mlp_layer='swiglu_packed' splits fc1 in two halves: mlp_dim must be even, got {self.mlp_dim}"
            )
        if self.distilled and (not self.class_token or self.reg_tokens or self.global_pool not in ("token", "")):
            raise ConfigError("distilled=True (DeiT) needs class_token=True, global_pool='token' and no reg_tokens")
        if self.rope and (self.is_hybrid or self.head_dim % 4 or self.distilled):
            raise ConfigError(
                f"rope=True needs a head width divisible by 4 (got {self.head_dim}), no hybrid stem and no "
                "distillation token"
            )
        if self.norm_layer not in NORM_LAYERS:
            raise ConfigError(f"norm_layer must be one of {NORM_LAYERS}, got {self.norm_layer!r}")
        if self.rope_type not in ROPE_TYPES:
            raise ConfigError(f"rope_type must be one of {ROPE_TYPES}, got {self.rope_type!r}")
        if self.rope_grid_indexing not in ("ij", "xy"):
            raise ConfigError(f"rope_grid_indexing must be 'ij' or 'xy', got {self.rope_grid_indexing!r}")
        if (
            not isinstance(self.attn_pool_heads, int)
            or self.attn_pool_heads < 0
            or (self.attn_pool_heads and self.embed_dim % self.attn_pool_heads)
        ):
            raise ConfigError(
                f"attn_pool_heads must be 0 or divide embed_dim {self.embed_dim}, got {self.attn_pool_heads!r}"
            )
        if not isinstance(self.attn_pool_mlp_dim, int) or self.attn_pool_mlp_dim < 0:
            raise ConfigError(f"attn_pool_mlp_dim must be an int >= 0, got {self.attn_pool_mlp_dim!r}")
        if self.rope_ref_grid is not None:
            object.__setattr__(self, "rope_ref_grid", to_pair(self.rope_ref_grid, "rope_ref_grid"))
        if not self.rope and not self.rel_pos and not self.abs_pos_embed:
            raise ConfigError("abs_pos_embed=False leaves the tokens without positions: it needs rope or rel_pos")
        if self.rel_pos and (self.is_hybrid or self.rel_pos_dim < 1):
            raise ConfigError(f"rel_pos=True needs no hybrid stem and rel_pos_dim >= 1, got {self.rel_pos_dim!r}")
        if self.attn_type not in ("standard", "diff"):
            raise ConfigError(f"attn_type must be 'standard' or 'diff', got {self.attn_type!r}")
        if self.attn_type == "diff" and (self.rope or self.rel_pos or self.embed_dim // self.num_heads % 2):
            raise ConfigError(
                "attn_type='diff' (differential attention) needs an even head width and no rope or rel_pos"
            )
        if self.num_kv_heads and (
            self.num_kv_heads < 0
            or self.num_heads % self.num_kv_heads
            or (self.qkv_bias and self.qkv_bias_mode == "qv")
        ):
            raise ConfigError(
                f"num_kv_heads must divide num_heads {self.num_heads} (0: every head has its keys and values) and "
                f"takes the qkv bias layout 'qkv', got {self.num_kv_heads!r}"
            )
        if self.full_attn_blocks < 0:
            raise ConfigError(f"full_attn_blocks must be >= 0, got {self.full_attn_blocks!r}")
        if self.attn_type == "diff" and (self.qk_norm or self.num_kv_heads):
            raise ConfigError("attn_type='diff' (differential attention) takes no qk_norm or num_kv_heads")
        if self.block_type not in ("serial", "parallel"):
            raise ConfigError(f"block_type must be 'serial' or 'parallel', got {self.block_type!r}")
        serial_only = {
            "rope": self.rope,
            "rel_pos": self.rel_pos,
            "res_post_norm": self.res_post_norm,
            "attn_norm": self.attn_norm,
            "mlp_norm": self.mlp_norm,
            f"mlp_layer={self.mlp_layer!r}": self.mlp_layer != "mlp",
            "qkv_bias_mode='qv'": self.qkv_bias and self.qkv_bias_mode == "qv",
            "qk_norm": self.qk_norm,
            "num_kv_heads": bool(self.num_kv_heads),
            "mlp_layer_scale=False": not self.mlp_layer_scale,
        }
        if self.block_type == "parallel" and (used := [name for name, on in serial_only.items() if on]):
            raise ConfigError(
                f"block_type='parallel' (timm's ParallelScalingBlock) is built without {', '.join(used)}: "
                "use block_type='serial' for those"
            )
        if self.rel_pos_type not in ("mlp", "bias"):
            raise ConfigError(f"rel_pos_type must be 'mlp' or 'bias', got {self.rel_pos_type!r}")
        if self.rel_pos and self.rel_pos_type == "bias" and (self.dynamic_img_size or self.num_prefix_tokens > 1):
            raise ConfigError(
                "rel_pos_type='bias' is a table for the built grid with at most a class token (as timm's RelPosBias): "
                "build the model at its input size (img_size=...), without dynamic_img_size or registers"
            )
        if self.global_pool not in (*POOLS, ""):
            raise ConfigError(
                f"global_pool must be one of {POOLS} or '' (no pooling: the head sees every token, as timm), "
                f"got {self.global_pool!r}"
            )
        if self.global_pool == "token" and not self.class_token:
            raise ConfigError("global_pool='token' needs class_token=True; use global_pool='avg' without one")
        if self.pos_embed_interpolation not in INTERPOLATIONS:
            raise ConfigError(
                f"pos_embed_interpolation must be one of {INTERPOLATIONS}, got {self.pos_embed_interpolation!r}"
            )
        for name in ("drop_rate", "attn_drop_rate", "drop_path_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.layer_norm_eps <= 0:
            raise ConfigError(f"layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")

    @property
    def is_hybrid(self) -> bool:
        """Whether a CNN (the ResNet stem, with or without stages) embeds the image instead of a patch projection."""
        return bool(self.hybrid_layers) or self.hybrid_stem_only

    @property
    def grid_size(self) -> tuple[int, int]:
        """Patches per (height, width) at ``img_size``."""
        return (self.img_size[0] // self.patch_size[0], self.img_size[1] // self.patch_size[1])

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patch tokens in the sequence: class, distillation and register tokens."""
        return int(self.class_token) + int(self.distilled) + self.reg_tokens

    @property
    def pos_embed_prefix_tokens(self) -> int:
        """Rows of ``pos_embed`` before its grid: the prefix tokens, or none with ``no_embed_class``."""
        return 0 if self.no_embed_class else self.num_prefix_tokens

    @property
    def num_tokens(self) -> int:
        """Sequence length at ``img_size``: prefix tokens plus the h * w patch tokens."""
        return self.num_prefix_tokens + self.grid_size[0] * self.grid_size[1]

    @property
    def head_dim(self) -> int:
        """Width of one attention head: ``embed_dim // num_heads``."""
        return self.embed_dim // self.num_heads

    def kv_heads(self, index: int) -> int:
        """Key/value heads of block ``index``: ``num_kv_heads`` except in the first and last ``full_attn_blocks``."""
        full = index < self.full_attn_blocks or index >= self.depth - self.full_attn_blocks
        return self.num_heads if not self.num_kv_heads or full else self.num_kv_heads

    def replace(self, **changes: Any) -> ViTConfig:
        """A copy with ``changes`` applied and validated; unknown field names raise with the closest valid ones."""
        unknown = [k for k in changes if k not in FIELD_NAMES]
        if unknown:
            hints = {k: difflib.get_close_matches(k, FIELD_NAMES, n=3) for k in unknown}
            raise ConfigError(
                "unknown config field(s): "
                + ", ".join(f"{k!r} (did you mean {h}?)" if h else repr(k) for k, h in hints.items())
                + f"; valid fields: {', '.join(FIELD_NAMES)}"
            )
        return dataclasses.replace(self, **changes)


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ViTConfig))
