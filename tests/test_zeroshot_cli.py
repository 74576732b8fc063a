"""``vitzoo zeroshot`` and ``zero_shot_predict``: the probabilities equal a direct computation (the image embedding,
``zero_shot_classifier``, a softmax of the scaled cosines for CLIP, a sigmoid per label with the bias for SigLIP)
within 1e-5 on a tiny transformers CLIP; labels and templates from files; one-line refusals. Also: the transform
of an image-text model is its image tower's."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import vitzoo
from conftest import cli, one_line_error, save_tiny_clip, save_tiny_model, write_images
from vitzoo.eval.zeroshot import zero_shot_predict
from vitzoo.features.transforms import create_transform, load_image

TOL = 1e-5
LABELS = ["cat", "dog", "tractor", "a diagram"]
TEMPLATES = ["a photo of a {}.", "a drawing of a {}."]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny CLIP folder's name, its model, and a folder of 3 readable images plus a corrupt one."""
    root = tmp_path_factory.mktemp("zeroshot")
    name = save_tiny_clip(root / "clip")
    files = write_images(root / "imgs", n_plain=2)
    images = [files[n] for n in ("a_photo.jpg", "p000.jpg", "p001.jpg", "d_corrupt.jpg")]
    return name, vitzoo.create_image_text_model(name).eval(), images


@torch.no_grad()
def direct(model, paths, labels, templates):
    """The image embeddings against ``zero_shot_classifier``'s class embeddings: (images, labels) probabilities."""
    x = torch.stack([create_transform(model.visual)(load_image(p, draft=None)) for p in paths])
    weights = vitzoo.zero_shot_classifier(model, labels, templates)
    logits = model.logit_scale.exp() * F.normalize(model.encode_image(x), dim=-1) @ weights.T
    return logits.softmax(dim=-1) if model.logit_bias is None else torch.sigmoid(logits + model.logit_bias)


def write(path, text: str):
    path.write_bytes(text.encode())
    return path


def test_the_command_equals_a_direct_computation(tiny, tmp_path):
    name, model, images = tiny
    templates = write(tmp_path / "t.txt", "\n".join(TEMPLATES) + "\n")
    args = ["zeroshot", name, *images[:3], "--labels", *LABELS, "--templates-file", templates, "--workers", "0"]
    res = cli(*args, "--json", "--quiet", "--exact-decode")
    assert res.returncode == 0 and res.stderr == "", res.stderr
    rows = json.loads(res.stdout)
    want = direct(model, images[:3], LABELS, TEMPLATES)
    assert [r["input"] for r in rows] == [str(p) for p in images[:3]]
    for row, probs in zip(rows, want, strict=True):
        assert row["probabilities"] == "softmax over the labels" and len(row["top"]) == 4  # --top 5, capped at 4
        assert [t["prob"] for t in row["top"]] == sorted((t["prob"] for t in row["top"]), reverse=True)
        got = torch.zeros(len(LABELS))
        for t in row["top"]:
            assert LABELS[t["index"]] == t["label"]
            got[t["index"]] = t["prob"]
        assert (got - probs).abs().max() <= TOL
    assert len({r["top"][0]["label"] for r in rows} | {round(r["top"][0]["prob"], 3) for r in rows}) > 2  # not flat

    res = cli(*args, "--top", "2", "--quiet")  # text: the rule first, then each image's two best
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "# clip: softmax over the labels (they sum to 1)" and len(lines) == 1 + 3 * 3
    assert lines[1] == str(images[0]) and lines[2].split(maxsplit=1)[1] == rows[0]["top"][0]["label"]


def test_labels_file_default_templates_and_a_skipped_image(tiny, tmp_path):
    """Labels one a line (CRLF, blank lines and surrounding spaces dropped); the family's 80 templates; an unreadable
    image is skipped and named on stderr."""
    name, model, images = tiny
    labels = write(tmp_path / "labels.txt", "cat\r\n\r\n  dog \r\ntractor\n\n")
    res = cli(
        "zeroshot",
        name,
        images[0],
        images[3],
        "--labels-file",
        labels,
        "--json",
        "--quiet",
        "--workers",
        "0",
        "--exact-decode",
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr.startswith("vitzoo: skipped ") and "d_corrupt.jpg" in res.stderr and res.stderr.count("\n") == 1
    (row,) = json.loads(res.stdout)
    want = direct(model, images[:1], ["cat", "dog", "tractor"], None)[0]
    assert sorted(t["label"] for t in row["top"]) == ["cat", "dog", "tractor"]
    assert max(abs(t["prob"] - want[t["index"]].item()) for t in row["top"]) <= TOL


def test_refusals(tiny, tmp_path):
    name, _, images = tiny
    labels = write(tmp_path / "labels.txt", "cat\ndog\n")
    base = ("zeroshot", name, images[0])
    one_line_error(cli(*base), "--labels", "--labels-file", "neither")
    one_line_error(cli(*base, "--labels", "cat", "--labels-file", labels), "both")
    one_line_error(cli(*base, "--labels-file", write(tmp_path / "empty.txt", "\n \n")), "no labels")
    one_line_error(cli(*base, "--labels", "cat", "cat"), "distinct", "'cat'")
    bad = write(tmp_path / "bad.txt", "a photo of a {}.\n\na photo\n")
    one_line_error(cli(*base, "--labels", "cat", "--templates-file", bad), f"{bad}:3", "{}", "'a photo'")
    two = write(tmp_path / "two.txt", "a {} and a {}\n")
    one_line_error(cli(*base, "--labels", "cat", "--templates-file", two), f"{two}:1")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9\n".encode("latin-1"))
    one_line_error(cli(*base, "--labels-file", latin1), "UTF-8")
    one_line_error(cli(*base, "--labels-file", tmp_path / "none.txt"), "none.txt")
    one_line_error(cli("zeroshot", name, tmp_path / "none.jpg", "--labels", "cat", "--quiet"), "none.jpg")
    _, image_only = save_tiny_model(tmp_path)
    one_line_error(cli("zeroshot", image_only, images[0], "--labels", "cat", "dog"), "no text tower")


def test_siglip_probabilities_are_a_sigmoid_per_label(tiny):
    """A model with a logit bias (SigLIP's family) gets independent sigmoids, not a softmax."""
    name, _, images = tiny
    model = vitzoo.create_image_text_model(name).eval()
    model.logit_bias = torch.nn.Parameter(torch.tensor(-3.0))
    assert model.family == "siglip"
    (top,) = zero_shot_predict(model, images[:1], LABELS, TEMPLATES, top=10, num_workers=0, exact_decode=True)
    want = direct(model, images[:1], LABELS, TEMPLATES)[0]
    assert [label for label, _ in top] == [LABELS[i] for i in want.argsort(descending=True)]
    assert max(abs(p - want[LABELS.index(label)].item()) for label, p in top) <= TOL
    assert abs(sum(p for _, p in top) - 1) > 1e-3  # independent: not a distribution over the labels
