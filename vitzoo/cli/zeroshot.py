"""``vitzoo zeroshot``: the labels of images by an image-text model (CLIP, SigLIP), labels given as text."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import ConfigError
from . import options
from .options import command, positive_int
from .output import note
from .predict import skipped_line


def add_parser(subparsers: Any) -> None:
    p = command(
        subparsers,
        "zeroshot",
        help="zero-shot labels of images with CLIP or SigLIP, labels given as text",
        description="Classify images (stdout) among labels given as text, with an image-text model: each label's "
        "prompts (templates filled with it) are embedded by the text tower and compared with the image embedding. "
        "Probabilities are the model's own: CLIP's a softmax over the labels (they sum to 1), SigLIP's a sigmoid "
        "per label (each independent: they need not sum to 1); the output says which. Unreadable images are "
        "skipped and named on stderr; none readable is an error.",
    )
    p.add_argument(
        "name", help="an image-text checkpoint (hf-hub:openai/clip-vit-base-patch32, a CLIP tag, local-dir:...)"
    )
    p.add_argument("images", nargs="+", help="image files, folders or a .txt list of paths")
    p.add_argument("--labels", nargs="+", metavar="L", help="the labels (give this or --labels-file)")
    p.add_argument("--labels-file", metavar="FILE", help="a text file of labels, one a line; blank lines are skipped")
    p.add_argument(
        "--templates-file",
        metavar="FILE",
        help="prompt templates, one a line, each with one {} for the label (default: the model family's: OpenAI's "
        "80 ImageNet templates for CLIP, 'This is a photo of {}.' for SigLIP)",
    )
    p.add_argument("--top", type=positive_int, default=5, metavar="K", help="labels per image, at most all of them")
    options.json_output(p)
    options.quiet(p)
    options.revision(p)
    options.random_weights(p)
    options.inference(p)
    p.set_defaults(func=run)


def stripped_lines(path: str, option: str, what: str) -> list[str]:
    """The lines of a UTF-8 file (``features.texts.read_lines``), each stripped of surrounding whitespace (a blank
    line is left empty, so the others keep their numbers); only blank lines is an error."""
    from ..features.texts import read_lines

    lines = [line.strip() for line in read_lines(path, option, what)]
    if not any(lines):
        raise ConfigError(f"{path} holds no {what}s: write one a line")
    return lines


def labels_of(args: argparse.Namespace) -> list[str]:
    """``--labels`` or the lines of ``--labels-file``: exactly one of the two."""
    if (args.labels is None) == (args.labels_file is None):
        given = "both" if args.labels is not None else "neither"
        raise ConfigError(
            f"give the labels with --labels L [L ...] or --labels-file FILE, one of the two ({given} given)"
        )
    if args.labels is not None:
        return list(args.labels)
    return [line for line in stripped_lines(args.labels_file, "--labels-file", "label") if line]


def templates_of(args: argparse.Namespace) -> list[str] | None:
    """The lines of ``--templates-file`` (None: the family's), each checked for its one ``{}``."""
    if args.templates_file is None:
        return None
    templates = []
    for number, line in enumerate(stripped_lines(args.templates_file, "--templates-file", "template"), 1):
        if not line:
            continue
        if line.count("{}") != 1:
            raise ConfigError(
                f"{args.templates_file}:{number}: a template holds one {{}} where the label goes, got {line!r}"
            )
        templates.append(line)
    return templates


def run(args: argparse.Namespace) -> int:
    from ..eval.zeroshot import probabilities, zero_shot_predict
    from ..factory import create_image_text_model
    from ..features.batches import require_inputs

    items = require_inputs(args.images)  # expanded once, before the model loads
    labels, templates = labels_of(args), templates_of(args)  # checked before the model loads (or downloads)
    model = create_image_text_model(
        args.name, not args.random_weights, revision=args.revision, dtype=args.dtype, device=args.device
    )
    skipped: list[str] = []
    results = zero_shot_predict(
        model,
        items,
        labels,
        templates,
        args.top,
        dtype=args.dtype,
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.workers,
        progress=not args.quiet,
        exact_decode=args.exact_decode,
        on_error=lambda item, reason: skipped.append(skipped_line(item, reason)),
    )
    for line in skipped:
        note(line)
    index = {label: i for i, label in enumerate(labels)}
    probs = probabilities(model)
    read = [(item, top) for item, top in zip(items, results, strict=True) if top]
    if args.json:
        rows = [
            {
                "input": str(item),
                "probabilities": probs,
                "top": [{"label": label, "index": index[label], "prob": round(p, 6)} for label, p in top],
            }
            for item, top in read
        ]
        print(json.dumps(rows, indent=1))
        return 0
    print(f"# {model.family}: {probs}" + (" (they sum to 1)" if model.family == "clip" else " (each independent)"))
    for item, top in read:
        print(item)
        for label, p in top:
            print(f"  {p:7.2%}  {label}")
    return 0
