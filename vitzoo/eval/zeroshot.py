"""Zero-shot classification with an image-text model: class embeddings made from prompts.

``zero_shot_classifier`` computes what open_clip's ``build_zero_shot_classifier`` does: per class, every template
filled with the class name is encoded, each embedding L2-normalised, their mean taken and normalised again. Image
embeddings (normalised) times the transposed result are cosine logits; ``model.logits`` scales them as the model
was trained.

``zero_shot_predict`` classifies images with it: the top labels of each image with the model's own probabilities
(CLIP: a softmax over the labels; SigLIP: a sigmoid per label), what ``vitzoo zeroshot`` prints.

Default prompts are the family's published ones: OpenAI's 80 ImageNet templates for CLIP (``vitzoo/data/
openai_imagenet_templates.txt``, copied from open_clip), SigLIP's single ``"This is a photo of {}."``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..features.batches import EXACT_DECODE, prepare_model, require_inputs
from ..features.extract import top_k_rows
from ..models.image_text import ImageTextModel

SIGLIP_TEMPLATES = ("This is a photo of {}.",)  # the SigLIP paper's and big_vision's zero-shot prompt


@cache
def openai_imagenet_templates() -> tuple[str, ...]:
    """OpenAI CLIP's 80 ImageNet prompt templates (``{}`` is the class name)."""
    text = (resources.files("vitzoo") / "data" / "openai_imagenet_templates.txt").read_text()
    return tuple(line for line in text.splitlines() if line and not line.startswith("#"))


def default_templates(model: ImageTextModel) -> tuple[str, ...]:
    """The published prompts of the model's family: SigLIP's one, or OpenAI's 80 for CLIP."""
    return SIGLIP_TEMPLATES if model.family == "siglip" else openai_imagenet_templates()


@torch.no_grad()
def zero_shot_classifier(
    model: ImageTextModel,
    classnames: Sequence[str],
    templates: Sequence[str] | None = None,
    *,
    batch_size: int = 256,
) -> torch.Tensor:
    """Unit-norm class embeddings (C, D): for each class the normalised mean of its normalised prompt embeddings.

    ``templates``: format strings with one ``{}`` for the class name (default: the family's, ``default_templates``).
    ``batch_size`` texts are encoded at a time. Classify with ``F.normalize(model.encode_image(x)) @ weights.T``.
    """
    if isinstance(classnames, str) or not classnames:
        raise ConfigError("classnames must be a non-empty sequence of class names")
    if isinstance(templates, str):
        raise ConfigError("templates must be a sequence of strings, not one string: wrap it in a list")
    prompts = default_templates(model) if templates is None else tuple(templates)
    if not prompts or any(t.count("{}") != 1 for t in prompts):
        raise ConfigError("templates must be a non-empty sequence of strings, each with one '{}' for the class name")
    texts = [t.format(name) for name in classnames for t in prompts]
    embeds = torch.cat([model.encode_text(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)])
    per_prompt = F.normalize(embeds.float(), dim=-1).reshape(len(classnames), len(prompts), -1)
    return F.normalize(per_prompt.mean(dim=1), dim=-1).to(embeds.dtype)  # averaged in float32


def zero_shot_predict(
    model: ImageTextModel,
    inputs: Any,
    labels: Sequence[str],
    templates: Sequence[str] | None = None,
    top: int = 5,
    *,
    batch_size: int = 32,
    num_workers: int | None = None,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    on_error: str | Callable[[Any, str], None] = "raise",
    exact_decode: bool = EXACT_DECODE,
) -> list[list[tuple[str, float]]]:
    """The ``top`` most probable of ``labels`` for each input image, best first, as ``(label, probability)`` pairs.

    Each label's class embedding is ``zero_shot_classifier(model, labels, templates)``; an image's logits are the
    model's: ``exp(logit_scale) * cos`` (+ ``logit_bias``). The probabilities are the model's own (``probabilities``):
    CLIP's a softmax over the labels (they sum to 1), SigLIP's a sigmoid per label (each independent, as the model was
    trained with the sigmoid loss: they need not sum to 1). ``top`` is capped at the number of labels.

    Inputs are those of ``extract_features``, prepared with the image tower's transform (``create_transform(model)``).
    An unreadable image raises ``ImageError``; with ``on_error="skip"`` it gets an empty list (the results stay one per
    input) and a logged warning; ``on_error`` may also be a function, called with the input and the reason instead.
    None readable raises ``ImageError``. ``dtype`` and ``device`` move the model.
    """
    if top < 1:
        raise ConfigError(f"top must be >= 1, got {top}")
    names = list(labels) if not isinstance(labels, str) else []
    if not names:
        raise ConfigError("labels must be a non-empty sequence of class names")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"labels must be distinct: {', '.join(map(repr, repeated))} given more than once")
    items = require_inputs(inputs)
    prepare_model(model, dtype, device)
    weights = zero_shot_classifier(model, names, templates).float()  # (C, D), unit norm
    scale = model.logit_scale.detach().float().exp()
    bias = None if model.logit_bias is None else model.logit_bias.detach().float()

    def probs(x: torch.Tensor) -> torch.Tensor:
        logits = F.normalize(model.encode_image(x).float(), dim=-1) @ weights.T * scale
        return logits.softmax(dim=-1) if bias is None else torch.sigmoid(logits + bias)

    k = min(top, len(names))
    rows = top_k_rows(model.visual, items, probs, k, batch_size, num_workers, on_error, progress, exact_decode)
    return [[(names[i], p) for p, i in row] for row in rows]


def probabilities(model: ImageTextModel) -> str:
    """How ``zero_shot_predict`` turns the model's logits into probabilities, in words: ``"softmax over the labels"``
    (CLIP) or ``"sigmoid per label"`` (SigLIP)."""
    return "softmax over the labels" if model.logit_bias is None else "sigmoid per label"
