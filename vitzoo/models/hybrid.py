"""The hybrid of the ViT paper (§3.1, §4.1): a BiT ResNet50 whose stage-3 map (stride 16) feeds ViT as 1x1 patches.

"R50x1+ViT-B/16": ResNet v1.5 bottlenecks with GroupNorm(32) and weight-standardised convolutions, stage 4's
blocks moved into stage 3 ([3, 4, 9]), so the map has 1024 channels at stride 16; a 1x1 convolution embeds it to
D. Names and numerics follow timm's ``ResNetV2(preact=False, stem_type="same")`` + ``HybridEmbed``:
``patch_embed.backbone.stem.{conv,norm}``, ``patch_embed.backbone.stages.{s}.blocks.{b}.{conv,norm}{1,2,3}``,
``downsample.{conv,norm}``, ``patch_embed.proj``. The same code builds AugReg's hybrids with all four stages
(R26 (2, 2, 2, 2) and R50 (3, 4, 6, 3), stride 32, 2048 channels).

Weight standardisation is timm's ``(w - mean) / sqrt(var + 1e-8)``; the JAX code uses ``(w - mean) / (std + 1e-5)``,
a difference far below the weights' scale. Convolutions with stride 2 and the stem's max-pool pad TF-style ("SAME":
the extra pixel goes bottom/right), which changes numbers on even input sizes compared to symmetric padding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ViTConfig


def pad_same(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """TF "SAME" padding: output = ceil(input / stride); the odd pixel goes to the bottom/right."""
    ih, iw = x.shape[-2:]
    ph = max((math.ceil(ih / stride) - 1) * stride + kernel - ih, 0)
    pw = max((math.ceil(iw / stride) - 1) * stride + kernel - iw, 0)
    if ph or pw:
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2], value=value)
    return x


class StdConv2dSame(nn.Conv2d):
    """Conv2d (no bias) with weight standardisation and TF "SAME" padding."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, eps: float = 1e-8) -> None:
        static = stride == 1 and kernel % 2 == 1  # "SAME" is then a fixed symmetric pad
        super().__init__(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2 if static else 0, bias=False)
        self.dynamic_pad, self.eps = not static, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic_pad:
            x = pad_same(x, self.kernel_size[0], self.stride[0])
        w = F.batch_norm(
            self.weight.reshape(1, self.out_channels, -1), None, None, training=True, momentum=0.0, eps=self.eps
        ).reshape_as(self.weight)
        return F.conv2d(x, w, None, self.stride, self.padding)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-5)


class Downsample(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv = StdConv2dSame(cin, cout, 1, stride)
        self.norm = _norm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (carries the stride) -> 1x1 (x4 channels), GroupNorm after each, ReLU after the residual add."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        mid = cout // 4
        self.downsample = Downsample(cin, cout, stride) if (cin != cout or stride != 1) else None
        self.conv1, self.norm1 = StdConv2dSame(cin, mid, 1), _norm(mid)
        self.conv2, self.norm2 = StdConv2dSame(mid, mid, 3, stride), _norm(mid)
        self.conv3, self.norm3 = StdConv2dSame(mid, cout, 1), _norm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = F.relu(self.norm1(self.conv1(x)))
        x = F.relu(self.norm2(self.conv2(x)))
        return F.relu(self.norm3(self.conv3(x)) + shortcut)


class Stage(nn.Module):
    def __init__(self, cin: int, cout: int, depth: int, stride: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *(Bottleneck(cin if i == 0 else cout, cout, stride if i == 0 else 1) for i in range(depth))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class Stem(nn.Module):
    """7x7 stride-2 conv, GroupNorm + ReLU, 3x3 stride-2 max-pool ("SAME"): stride 4, 64 channels."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.conv = StdConv2dSame(cin, 64, 7, 2)
        self.norm = _norm(64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm(self.conv(x)))
        return F.max_pool2d(pad_same(x, 3, 2, value=float("-inf")), 3, 2)

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The stem's output, stride 4 (a stem-only hybrid has no stages)."""
        return [self(x)]


class ResNetBackbone(nn.Module):
    """Stem plus len(layers) stages of 256, 512, 1024, ... channels; the first stage keeps the stem's stride."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.stem = Stem(cfg.in_chans)
        chans = [256 * 2**i for i in range(len(cfg.hybrid_layers))]
        self.stages = nn.Sequential(
            *(
                Stage(64 if i == 0 else chans[i - 1], chans[i], depth, 1 if i == 0 else 2)
                for i, depth in enumerate(cfg.hybrid_layers)
            )
        )
        self.num_features = chans[-1]

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The stem output and each stage's output (NCHW), for dense heads: strides 4, 4, 8, 16 (and 32)."""
        outs = [self.stem(x)]
        for stage in self.stages:
            outs.append(stage(outs[-1]))
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class HybridEmbed(nn.Module):
    """CNN feature map -> conv "patches" of width D: (B, C, H, W) -> (B, D, H/16, W/16) with the R50's 1x1 patches;
    a stem-only hybrid (``hybrid_stem_only``, timm's ``vit_tiny_r_s16_p8``) cuts its stride-4 map into
    ``patch_size / 4`` patches (``patch_embed.backbone.{conv,norm}``, no stages)."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.backbone: ResNetBackbone | Stem
        if cfg.hybrid_stem_only:
            self.backbone, chans = Stem(cfg.in_chans), 64
        else:
            net = ResNetBackbone(cfg)
            self.backbone, chans = net, net.num_features
        kernel = (cfg.patch_size[0] // 4, cfg.patch_size[1] // 4) if cfg.hybrid_stem_only else (1, 1)
        self.proj = nn.Conv2d(chans, cfg.embed_dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.backbone(x))
