"""Zero-shot classifiers equal open_clip's ``build_zero_shot_classifier`` (max abs diff <= 1e-5) on the same tiny
models (random weights, written by open_clip's hub export and read by both libraries) with the same prompts; the
default prompts are the families' published ones."""

from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F
from open_clip.zero_shot_classifier import build_zero_shot_classifier
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES

import vitzoo
from conftest import PeerTokenizer, batch, maxdiff, save_open_clip, tiny_timm_trunk, word_tokenizer
from vitzoo.eval.zeroshot import SIGLIP_TEMPLATES, openai_imagenet_templates

ZS_TOL = 1e-5  # unit vectors: the same function in the same order of operations, fp32 rounding only
CLASSES = ["cat", "dog", "snow", "a diagram"]
CLIP_VISION = {"image_size": 32, "layers": 1, "width": 64, "head_width": 16, "patch_size": 8}
CLIP_TEXT = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """open_clip's reading of a tiny CLIP folder, vitzoo's (with open_clip's tokenizer) and the tokenizer."""
    folder = tmp_path_factory.mktemp("zs") / "clip"
    ref = save_open_clip(folder, "ViT-B-16-quickgelu", CLIP_VISION, CLIP_TEXT, embed_dim=16)
    tokenizer = open_clip.get_tokenizer("ViT-B-16")
    model = vitzoo.create_image_text_model(f"local-dir:{folder}", tokenizer=tokenizer).eval()
    return ref, model, tokenizer


def test_the_openai_templates_are_open_clips():
    assert openai_imagenet_templates() == tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES)
    assert len(openai_imagenet_templates()) == 80


@pytest.mark.parametrize("templates", ["simple", "default"])
def test_clip_classifier_equals_open_clip(templates, clip):
    """The 7 "simple" templates, and (default) OpenAI's 80; open_clip batches 10 classes, vitzoo 256 texts."""
    ref, model, tokenizer = clip
    ours_templates = [t("{}") for t in SIMPLE_IMAGENET_TEMPLATES] if templates == "simple" else None
    theirs = SIMPLE_IMAGENET_TEMPLATES if templates == "simple" else OPENAI_IMAGENET_TEMPLATES
    weights = vitzoo.zero_shot_classifier(model, CLASSES, ours_templates)
    want = build_zero_shot_classifier(ref, tokenizer, CLASSES, theirs, num_classes_per_batch=3).T
    assert weights.shape == (len(CLASSES), 16) and maxdiff(weights, want) <= ZS_TOL
    assert maxdiff(weights.norm(dim=-1), torch.ones(len(CLASSES))) <= 1e-6


def test_small_batches_give_the_same_classifier(clip):
    _, model, _ = clip
    templates = ["a photo of a {}.", "a drawing of a {}.", "{}"]
    whole = vitzoo.zero_shot_classifier(model, CLASSES, templates)
    assert maxdiff(vitzoo.zero_shot_classifier(model, CLASSES, templates, batch_size=5), whole) <= ZS_TOL


@torch.no_grad()
def test_siglip_uses_its_published_prompt(tmp_path, monkeypatch):
    """SigLIP's default is "This is a photo of {}." (open_clip with the same tokenizer and that template)."""
    tiny_timm_trunk(monkeypatch, "vit_base_patch16_siglip_224", 32)
    vision = {
        "image_size": 32,
        "timm_model_name": "vit_base_patch16_siglip_224",
        "timm_pool": "map",
        "timm_proj": "none",
    }
    text = {**open_clip.get_model_config("ViT-B-16-SigLIP2")["text_cfg"], "context_length": 16, "vocab_size": 64}
    text.update(width=32, heads=2, layers=1)
    ref = save_open_clip(tmp_path / "siglip", "ViT-B-16-SigLIP2", vision, text, embed_dim=64)
    hf_tok = word_tokenizer(16)
    tokenizer = PeerTokenizer(
        lambda t: hf_tok(t, padding="max_length", max_length=16, return_tensors="pt").input_ids, 16
    )
    model = vitzoo.create_image_text_model(f"local-dir:{tmp_path / 'siglip'}", tokenizer=tokenizer).eval()
    classes = ["cat", "dogs", "snow"]  # words of the tiny vocabulary
    weights = vitzoo.zero_shot_classifier(model, classes)
    want = build_zero_shot_classifier(ref, tokenizer, classes, SIGLIP_TEMPLATES).T
    assert maxdiff(weights, want) <= ZS_TOL
    x = batch(32)  # classify: cosine logits, scaled and biased as the model was trained
    logits = model.logits(model.encode_image(x), weights)
    assert maxdiff(logits, ref.logit_scale.exp() * F.normalize(ref.encode_image(x)) @ want.T + ref.logit_bias) <= 1e-4


@pytest.mark.parametrize(
    ("classnames", "templates", "message"),
    [
        ([], None, "non-empty sequence of class names"),
        ("cat", None, "non-empty sequence of class names"),
        (CLASSES, "a photo of a {}.", "not one string"),
        (CLASSES, ["a photo"], r"one '\{\}' for the class name"),
    ],
)
def test_bad_classes_or_templates_are_refused(clip, classnames, templates, message):
    with pytest.raises(vitzoo.ConfigError, match=message):
        vitzoo.zero_shot_classifier(clip[1], classnames, templates)
