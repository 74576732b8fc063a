"""``vitzoo search``: the rows of an embed output (images, or texts: ``embed --text-file``) nearest to a text (CLIP,
SigLIP) or an image."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .. import choices
from . import options
from .options import command, positive_int
from .output import print_table


def add_parser(subparsers: Any) -> None:
    p = command(
        subparsers,
        "search",
        help="the rows of an embed output (images, or texts) nearest to a text or an image",
        description="Search what `vitzoo embed` wrote for the rows most cosine-similar to a query, embedded by the "
        "model that made the output in its image-text space (CLIP: embed with --pool output, the projection; "
        "SigLIP: its own pool, map). Every row is scored, a block at a time: exact, in memory that does not grow "
        "with the output.",
    )
    p.add_argument("embeddings", help="what vitzoo embed wrote: a dataset directory, a .safetensors or a .npy file")
    p.add_argument(
        "--model",
        required=True,
        metavar="NAME",
        help="the model that made the output, named as vitzoo embed was given it",
    )
    query = p.add_mutually_exclusive_group(required=True)
    query.add_argument("--text", metavar="TEXT", help="a text query, embedded by the model's text tower (CLIP, SigLIP)")
    query.add_argument("--image", metavar="PATH", help="a query image file")
    p.add_argument("--top", type=positive_int, default=10, metavar="K", help="results to show")
    p.add_argument(
        "--block-rows",
        type=positive_int,
        default=choices.SEARCH_BLOCK_ROWS,
        metavar="N",
        help="rows of the output scored at a time (memory: N x width floats)",
    )
    options.json_output(p)
    options.model(p)
    options.device(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..eval.search import check_joint_space, search_embeddings, searchable
    from ..features.store import open_embeddings

    embeddings = open_embeddings(args.embeddings)
    searchable(embeddings)  # one vector per image, before any model is loaded
    check_joint_space(embeddings.meta, args.model)  # the model's name, before it is loaded (or downloaded)
    make_query = _image_query if args.text is None else _text_query
    query = make_query(args, embeddings.meta)
    found = search_embeddings(embeddings, query, args.top, block_rows=args.block_rows, device=args.device)
    hits = zip(found.scores[0].tolist(), found.indices[0].tolist(), found.paths[0], strict=True)
    if args.json:
        rows = [{"rank": r, "score": round(s, 6), "row": i, "path": p} for r, (s, i, p) in enumerate(hits, 1)]
        print(json.dumps(rows, indent=1))
        return 0
    print_table(("rank", "score", "path"), [(str(r), f"{s:.4f}", p) for r, (s, _, p) in enumerate(hits, 1)])
    return 0


def _text_query(args: argparse.Namespace, meta: Any) -> Any:
    """The text embedded by the model's text tower: (1, D), in the image tower's joint space."""
    from ..eval.search import check_joint_space, joint_space_pool
    from ..factory import create_image_text_model
    from ..features.texts import embed_texts

    pretrained = not args.random_weights
    model = create_image_text_model(args.model, pretrained, revision=args.revision, device=args.device)
    check_joint_space(meta, args.model, joint_space_pool(model.visual))
    return embed_texts(model, [args.text])


def _image_query(args: argparse.Namespace, meta: Any) -> Any:
    """The query image embedded by the image tower as the output's images were: (1, D)."""
    from ..eval.search import check_joint_space, joint_space_pool
    from ..features.extract import extract_features
    from ..features.transforms import create_transform, load_image

    model = options.load_model(args.model, args)
    pool = joint_space_pool(model)
    check_joint_space(meta, args.model, pool)
    exact = meta.get("decode") == "exact"  # the query image decoded as embed decoded the output's
    image = load_image(args.image, draft=None if exact else create_transform(model).draft_size)
    query = extract_features(model, [image], pool=pool, device=args.device, progress=False)
    assert not isinstance(query, dict)  # no layers: one tensor
    return query
