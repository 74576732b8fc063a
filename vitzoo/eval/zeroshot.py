"""Zero-shot classification with an image-text model: class embeddings made from prompts.

``zero_shot_classifier`` computes what open_clip's ``build_zero_shot_classifier`` does: per class, every template
filled with the class name is encoded, each embedding L2-normalised, their mean taken and normalised again. Image
embeddings (normalised) times the transposed result are cosine logits; ``model.logits`` scales them as the model
was trained.

Default prompts are the family's published ones: OpenAI's 80 ImageNet templates for CLIP (``vitzoo/data/
openai_imagenet_templates.txt``, copied from open_clip), SigLIP's single ``"This is a photo of {}."``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources

import torch
import torch.nn.functional as F

from ..errors import ConfigError
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
