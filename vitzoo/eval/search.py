"""Searching an embed output: the rows most cosine-similar to query vectors (``search_embeddings``), exact and
streamed, and the checks that the queries and the output live in the same space (``check_joint_space``).

Every row is scored (no index, no approximation), a block of ``block_rows`` rows at a time read from the output as
``vitzoo.features.store.row_blocks`` yields them, so memory holds one block, its scores and the running top-k,
whatever the number of rows. Ties go to the lower row, so a result depends only on the scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..choices import SEARCH_BLOCK_ROWS, TEXT_POOL
from ..errors import ConfigError
from ..features.store import Embeddings, open_embeddings, row_blocks
from ..models.vit import VisionTransformer

_LAST = torch.iinfo(torch.int64).max  # the row number of a padding entry: after every real row on equal scores


@dataclass
class SearchResult:
    """The ``k`` best rows of each query, best first: ``scores`` (cosine similarities) and ``indices`` (rows of the
    output) are (queries, k) tensors, ``paths`` the input path of each of those rows. ``k`` is at most the number of
    rows."""

    scores: torch.Tensor
    indices: torch.Tensor
    paths: list[list[str]]

    def __len__(self) -> int:
        return len(self.paths)


def joint_space_pool(model: VisionTransformer) -> str:
    """The pool, as ``vitzoo embed --pool`` names it, whose vectors are ``model``'s image-text space: ``"map"``, the
    attention pool, for a SigLIP tower (its own pooling, what ``embed`` writes by default); ``"output"``,
    ``model(x)``, for a CLIP tower, whose head is the projection into the joint space (``embed``'s default there is
    the class token, before the projection). For another model, ``"output"`` is what its head gives."""
    return "map" if model.attn_pool is not None else "output"


def check_joint_space(meta: Mapping[str, Any], model_name: str, pool: str | None = None) -> None:
    """Refuse an output (its ``Embeddings.meta``) that ``model_name`` with ``pool`` did not make: embedded with
    another model, with ``--layers``, or with another pooling than the joint space (``pool``; None: not checked, for
    a check before the model is loaded). An output of texts (``vitzoo embed --text-file``: pool ``"text"``, the text
    tower's embeddings) is in the joint space too: image queries match captions, text queries the nearest texts.
    ``model_name`` is compared with the name ``embed`` was given (``arch.tag``, ``hf-hub:...``, ``local-dir:...``),
    as written."""
    made_by, made_with = meta.get("model"), meta.get("pool")
    redo = f"embed the images with `vitzoo embed {model_name} IMAGES --out NEW" + (f" --pool {pool}`" if pool else "`")
    if made_with == TEXT_POOL:
        redo = f"embed the texts with `vitzoo embed {model_name} --text-file FILE --out NEW`"
    if made_by is None:
        raise ConfigError(f"the output records no model (a .npy without its .json?), so it cannot be checked: {redo}")
    if made_by != model_name:
        raise ConfigError(
            f"the output was embedded with another model ({made_by}), not {model_name}: search it with {made_by}, "
            f"or {redo}"
        )
    if meta.get("layers"):
        raise ConfigError(f"the output holds block features (--layers {meta['layers']}), not the joint space: {redo}")
    if pool is not None and made_with not in (pool, TEXT_POOL):
        raise ConfigError(
            f"the output was embedded with another pooling than the joint space (pool={made_with!r}; {model_name}'s "
            f"image-text space is pool={pool!r}): {redo}"
        )


def searchable(embeddings: Embeddings, width: int | None = None) -> Any:
    """The ``features`` array of ``embeddings``, refused unless it holds one vector per image (``width`` wide)."""
    if "features" not in embeddings:
        raise ConfigError(
            f"the output holds {', '.join(embeddings.keys())} (embedded with --layers); search wants one vector per "
            "image: embed again without --layers"
        )
    features = embeddings["features"]
    if features.ndim != 2 or embeddings.meta.get("pool") == "tokens":
        raise ConfigError(
            f"the output holds per-token features {tuple(features.shape)} (pool='tokens'); search wants one vector "
            "per image: embed again with its joint-space pool (CLIP: --pool output; SigLIP: map, its default)"
        )
    if width is not None and features.shape[1] != width:
        raise ConfigError(
            f"the output's vectors are {features.shape[1]} wide and the queries {width}: they come from different "
            "models or pools; embed the queries with the model and pool that made the output"
        )
    return features


def _merge(scores: torch.Tensor, rows: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best columns of each row of ``scores``, highest first; a stable sort, so equal scores keep their
    order: that of ``rows`` when the columns come in row order among equal scores (the best so far, then a block's)."""
    by_score = scores.argsort(dim=1, descending=True, stable=True)[:, :k]
    return scores.gather(1, by_score), rows.gather(1, by_score)


def _block_best(scores: torch.Tensor, start: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best of a (queries, n) block of scores and their row numbers (``start`` + column), in row order;
    where a tie at the k-th score lets more than ``k`` in, every tied column is kept, so the lowest rows can win the
    merge (``torch.topk`` picks any of equal values). Padding, where a query has fewer, scores -inf after all rows."""
    top = scores.topk(k, dim=1)
    keep = scores >= top.values[:, -1:]  # at least k per query; more on a tie at the k-th score
    wanted = int(keep.sum(dim=1).max())
    if wanted == k:  # no such tie: the top k are the kept columns
        first = top.indices.sort(dim=1).values
        return scores.gather(1, first), first + start
    n = scores.shape[1]
    columns = torch.arange(n, device=scores.device).expand_as(scores)
    first = torch.where(keep, columns, n).topk(wanted, dim=1, largest=False).values  # kept columns, padded with n
    pad = first == n
    best = scores.gather(1, first.clamp_max(n - 1)).masked_fill(pad, float("-inf"))
    return best, (first + start).masked_fill(pad, _LAST)


def _queries(queries: Any, device: torch.device) -> torch.Tensor:
    q = torch.as_tensor(queries).detach()  # an encode_text output outside no_grad: no graph through the blocks
    if q.ndim != 2:
        raise ConfigError(f"queries must be a (queries, dim) matrix, got shape {tuple(q.shape)}; one query: q[None]")
    return F.normalize(q.to(device, torch.float32), dim=1)


def search_embeddings(
    embeddings: Embeddings | str | Path,
    queries: Any,
    k: int = 10,
    *,
    block_rows: int = SEARCH_BLOCK_ROWS,
    device: str | torch.device | None = None,
) -> SearchResult:
    """The ``k`` rows of an embed output most cosine-similar to each query: exact, best first, ties to the lower row.

    ``embeddings``: what ``open_embeddings`` opens (an ``Embeddings``, or its path: a dataset directory, a
    ``.safetensors`` or ``.npy`` file), made with one vector per image (not ``pool="tokens"`` nor ``--layers``).
    ``queries``: a (Q, D) tensor or array of query vectors, D the output's width, normalised here as the rows are.
    The output is read ``block_rows`` rows at a time and scored on ``device`` (default: the queries'), so memory
    holds one block of rows and its (Q, ``block_rows``) scores, however large the output. Check that the queries
    come from the model and pooling that made the output with ``check_joint_space``."""
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    if block_rows < 1:
        raise ConfigError(f"block_rows must be >= 1, got {block_rows}")
    opened = embeddings if isinstance(embeddings, Embeddings) else open_embeddings(embeddings)
    dev = torch.device(device) if device is not None else torch.as_tensor(queries).device
    q = _queries(queries, dev)
    features = searchable(opened, q.shape[1])
    best = torch.empty(len(q), 0, device=dev)
    rows = torch.empty(len(q), 0, dtype=torch.int64, device=dev)
    start = 0
    for block in row_blocks(features, block_rows, "float32") if len(q) else ():
        keys = torch.from_numpy(block).to(dev)  # not normalised: each row's scores are divided by its norm instead
        norms = torch.linalg.vector_norm(keys, dim=1).clamp_min_(1e-12)  # F.normalize's eps
        scores = (q @ keys.T).div_(norms).nan_to_num_(nan=float("-inf"))  # a NaN row ranks last
        new_best, new_rows = _block_best(scores, start, min(k, len(keys)))
        best, rows = _merge(torch.cat([best, new_best], dim=1), torch.cat([rows, new_rows], dim=1), k)
        start += len(keys)
    best, rows = best[:, :start].cpu(), rows[:, :start].cpu()  # k columns, or every row of a smaller output
    return SearchResult(best, rows, _paths(opened, rows))


def _paths(embeddings: Embeddings, rows: torch.Tensor) -> list[list[str]]:
    """The path of each row of ``rows``, each looked up once and in order (a dataset directory reads each shard's
    paths file once)."""
    found = {i: embeddings.paths[i] for i in sorted(set(rows.flatten().tolist()))}
    return [[found[i] for i in query] for query in rows.tolist()]
