"""An image tower and a text tower in one joint embedding: CLIP and SigLIP.

``ImageTextModel.visual`` is the image tower (a ``VisionTransformer`` whose output is the image embedding),
``.text`` the text tower (``vitzoo.models.text``); ``logit_scale`` (stored as its log) and, for SigLIP, ``logit_bias``
turn the cosine of the two embeddings into a logit, as transformers' ``CLIPModel`` / ``SiglipModel`` and open_clip
do: ``logits_per_image = exp(logit_scale) * cos(image, text) (+ logit_bias)``, a softmax over the texts for CLIP, a
sigmoid per pair for SigLIP.

Texts are turned into ids by the model's tokenizer: any callable with the interface of
``vitzoo.weights.tokenizers.Tokenizer`` (``tokenizer(texts) -> LongTensor (N, context_length)``), held as a plain
attribute (not a module: it has no weights and is not saved).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, InputError
from .config import ViTConfig
from .text import TextConfig, TextTransformer
from .vit import VisionTransformer

if TYPE_CHECKING:
    from .pretrained_cfg import LoadReport, PretrainedCfg

Texts = str | Sequence[str]


class TextTokenizer(Protocol):
    """What the model needs of a tokenizer: texts in, ids (N, context_length) out."""

    @property
    def context_length(self) -> int: ...

    def __call__(self, texts: Texts) -> torch.Tensor: ...


class ImageTextModel(nn.Module):
    """CLIP or SigLIP: ``encode_image``, ``encode_text`` and the image-text logits of ``forward``.

    Build it with ``vitzoo.create_image_text_model``. ``family`` is ``"siglip"`` for a model with a logit bias
    (trained with the sigmoid loss), else ``"clip"``.
    """

    def __init__(
        self,
        vision: ViTConfig,
        text: TextConfig,
        *,
        logit_bias: bool = False,
        tokenizer: TextTokenizer | None = None,
    ) -> None:
        super().__init__()
        self.visual = VisionTransformer(vision)
        self.text = TextTransformer(text)
        image_dim = vision.num_classes or self.visual.head_hidden_size
        if image_dim != self.text.output_dim:
            raise ConfigError(
                f"the image embedding is {image_dim} wide and the text embedding {self.text.output_dim}: the two "
                "towers do not share a joint embedding"
            )
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's init (temperature 0.07)
        self.logit_bias = nn.Parameter(torch.tensor(-10.0)) if logit_bias else None  # SigLIP's init
        self.tokenizer = tokenizer
        self.pretrained_cfg: PretrainedCfg | None = None  # facts of the loaded checkpoint (set by the factory)
        self.load_report: LoadReport | None = None

    @property
    def family(self) -> str:
        """``"siglip"`` (sigmoid loss: a logit bias) or ``"clip"`` (softmax over the texts)."""
        return "clip" if self.logit_bias is None else "siglip"

    def tokenize(self, texts: Texts) -> torch.Tensor:
        """Texts -> token ids (N, context_length), with the model's tokenizer."""
        if self.tokenizer is None:
            raise ConfigError(
                "this model has no tokenizer: pass one (create_image_text_model(..., tokenizer=...), or set "
                "model.tokenizer), or pass token ids to encode_text"
            )
        return self.tokenizer([texts] if isinstance(texts, str) else list(texts))

    def encode_text(self, texts: Texts | torch.Tensor) -> torch.Tensor:
        """Texts, or token ids (N, L), -> text embeddings (N, E), not normalised (transformers'
        ``get_text_features``, open_clip's ``encode_text``)."""
        ids = texts if isinstance(texts, torch.Tensor) else self.tokenize(texts)
        return self.text(ids.to(self.text.pos_embed.device))

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W), prepared by the checkpoint's transform, -> image embeddings (B, E), not normalised."""
        return self.visual(pixels)

    def logits(self, image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """Embeddings (B, E) and (N, E) -> logits_per_image (B, N): scaled cosine similarities (+ the bias)."""
        if image_embeds.shape[-1] != text_embeds.shape[-1]:
            raise InputError(
                f"image embeddings are {image_embeds.shape[-1]} wide and text embeddings {text_embeds.shape[-1]}"
            )
        cosine = F.normalize(image_embeds, dim=-1) @ F.normalize(text_embeds, dim=-1).T
        logits = cosine * self.logit_scale.exp()
        return logits if self.logit_bias is None else logits + self.logit_bias

    def forward(self, pixels: torch.Tensor, texts: Texts | torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) and texts (or ids (N, L)) -> logits_per_image (B, N), as transformers' models give
        it: a softmax over the texts for CLIP, ``torch.sigmoid`` of each for SigLIP."""
        return self.logits(self.encode_image(pixels), self.encode_text(texts))
