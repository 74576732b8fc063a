"""The job behind ``vitzoo probe``: labelled images in, one row of metrics per (model, layer, pool) out.

Each (model, pool, split) is embedded once with the embed job (``embed_to_file``: every requested layer comes from
the same forward) into a cache folder, under a name that digests the ``EmbedMeta`` the embedding records
(``planned_meta``: the model, its config, preprocessing and weights, the pool, layers, dtype and decode, the vitzoo
version), worked out without loading the weights, and the input list with each file's size and modification time.
A later run with the same key reads the file and builds no model. The features of each layer then go through the
weighted k-NN, the linear probe (``vitzoo.eval.probes``) and the paper's few-shot regression
(``vitzoo.eval.fewshot``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..atomic import atomic_path, atomic_write_text
from ..choices import FEWSHOT_SHOTS, INT8, KNN_K
from ..errors import ConfigError, VitzooError
from ..factory import create_model
from ..features.batches import EXACT_DECODE
from ..features.embed_job import embed_to_file
from ..features.extract import resolve_pool
from ..features.fingerprint import EmbedMeta
from ..features.labelled import LabelledImages, index_classes, labels_of
from ..features.outputs import OUTPUT_SUFFIXES
from ..features.runtimes import model_dtype
from ..features.shards import INDEX
from ..features.store import LoadedEmbeddings, read_embeddings
from ..models.dtypes import resolve_dtype
from ..models.vit import VisionTransformer
from ..weights.source import local_weights_digest, resolve
from .fewshot import fewshot_from_features
from .probes import knn_eval, linear_probe


# ------------------------------------------------------------------------------------------------- inputs
def is_embeddings_file(spec: str | Path) -> bool:
    """Whether ``spec`` names an output of ``vitzoo embed``: a file by its suffix, or a dataset directory."""
    return Path(spec).suffix in OUTPUT_SUFFIXES or (Path(spec) / INDEX).is_file()


# ------------------------------------------------------------------------------------------------- results
@dataclass
class ProbeSettings:
    """The protocols' knobs: k-NN ``k`` and ``temperature``; linear probe ``C`` (None: the validation sweep);
    few-shot ``shots`` and ``l2_reg``; ``seed`` for the validation split and the shots; ``device`` for the fits."""

    k: tuple[int, ...] = KNN_K
    temperature: float = 0.07
    C: float | None = None
    shots: tuple[int, ...] = FEWSHOT_SHOTS
    l2_reg: float = 1.0
    seed: int = 0
    device: str | None = None


@dataclass
class ProbeRow:
    """The metrics of one (model, layer, pool): accuracies in [0, 1], None where a protocol could not run (more
    shots than the smallest class holds)."""

    model: str
    layer: str  # "final", or the block index
    pool: str
    train: int  # rows
    test: int
    metrics: dict[str, float | None] = field(default_factory=dict)


def evaluate(
    train_x: torch.Tensor, train_y: Sequence[str], test_x: torch.Tensor, test_y: Sequence[str], settings: ProbeSettings
) -> dict[str, float | None]:
    """k-NN top-1/top-5 for each k, the linear probe and its C, and few-shot accuracy for each number of shots."""
    if train_x.ndim != 2:
        raise ConfigError(f"the probes need one vector per image, got features of shape {tuple(train_x.shape)}")
    _, ytr, yte = index_classes(train_y, test_y)
    metrics: dict[str, float | None] = {}
    for k, acc in knn_eval(train_x, ytr, test_x, yte, settings.k, settings.temperature, device=settings.device).items():
        metrics[f"knn{k}_top1"], metrics[f"knn{k}_top5"] = acc["top1"], acc["top5"]
    linear = linear_probe(train_x, ytr, test_x, yte, C=settings.C, seed=settings.seed, device=settings.device)
    metrics["linear_top1"], metrics["linear_C"] = linear.accuracy, linear.C
    smallest = int(torch.bincount(ytr).min())
    possible = [s for s in settings.shots if s <= smallest]
    fewshot = fewshot_from_features(train_x, ytr, test_x, yte, possible, settings.l2_reg, settings.seed)
    for s in settings.shots:
        metrics[f"{s}shot"] = fewshot.get(s)
    return metrics


def _layer_name(key: str) -> str:
    return "final" if key == "features" else key.removeprefix("layer_")


def _layer_keys(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    return sorted(tensors, key=lambda k: (k != "features", int(k.removeprefix("layer_")) if k != "features" else 0))


def probe_pair(
    model: str,
    train: LoadedEmbeddings,
    test: LoadedEmbeddings,
    train_labels: Sequence[str],
    test_labels: Sequence[str],
    settings: ProbeSettings,
    log: Callable[[str], None],
) -> list[ProbeRow]:
    """One row per layer of a train/test pair of embeddings files (the same model and pool)."""
    pool = str(train.meta.get("pool", "-"))
    rows = []
    for key in _layer_keys(train.tensors):
        if key not in test.tensors:
            raise VitzooError(f"the test embeddings have no {key!r} (they hold {', '.join(sorted(test.tensors))})")
        row = ProbeRow(model, _layer_name(key), pool, len(train_labels), len(test_labels))
        log(f"{model} | layer {row.layer} | pool {pool}: k-NN, linear probe, few-shot")
        row.metrics = evaluate(train.tensors[key], train_labels, test.tensors[key], test_labels, settings)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------- cache
def _inputs_digest(paths: Sequence[str]) -> str:
    """SHA-256 of the input list with each file's size and modification time (a changed file changes the key)."""
    h = hashlib.sha256()
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}\tmissing\n".encode())
    return h.hexdigest()


def planned_meta(name: str, pool: str | None, options: EmbedOptions) -> EmbedMeta:
    """The ``EmbedMeta`` embedding with ``name`` will record, worked out without its weights: the model is built on
    the meta device from its config, and a local checkpoint's weights file is hashed (a Hub checkpoint is named by
    its id and revision). The cache key, so a cached file and a fresh run can never disagree on what they hold."""
    model = create_model(name, device="meta", revision=options.revision, img_size=options.img_size)
    dtype = resolve_dtype(model_dtype(options.dtype))
    model = model.to(dtype) if dtype is not None else model
    weights = "random" if options.random_weights else local_weights_digest(resolve(name, revision=options.revision))
    return EmbedMeta.of(
        model,
        name=name,
        revision=options.revision,
        pool=resolve_pool(model, pool, options.layers),
        layers=options.layers,
        exact_decode=options.exact_decode,
        weights=weights or "named by its Hub id and revision",
        runtime=options.runtime,
        int8=options.dtype == INT8,
    )


def cache_path(cache_dir: Path, split: str, paths: Sequence[str], meta: EmbedMeta) -> Path:
    """Where the embeddings of ``paths`` made as ``meta`` says live in ``cache_dir``: named by a digest of ``meta``
    and of the input list with each file's size and modification time."""
    key = json.dumps({**meta.encode(), "inputs": _inputs_digest(paths)}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", str(meta.model))[-60:]
    return cache_dir / f"{slug}-{meta.pool}-{split}-{digest}.safetensors"


@dataclass
class EmbedOptions:
    """How ``vitzoo probe`` builds its models and embeds (the embed job's options); with the pool, what the cache
    key (``planned_meta``) is worked out from."""

    layers: list[int] | None = None
    revision: str | None = None
    img_size: int | tuple[int, int] | None = None
    random_weights: bool = False
    dtype: str | None = None
    device: str | None = None
    batch_size: int = 64
    num_workers: int | None = None
    progress: bool = True
    exact_decode: bool = EXACT_DECODE
    runtime: str = "torch"  # vitzoo.features.runtimes: torch, compile, onnxruntime, auto


def probe_models(
    models: Sequence[str],
    train: LabelledImages,
    test: LabelledImages,
    *,
    cache_dir: str | Path,
    pools: Sequence[str | None] = (None,),
    options: EmbedOptions | None = None,
    settings: ProbeSettings | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> list[ProbeRow]:
    """Embed ``train``/``test`` with each model and pool (cached), then probe every layer: one row each.

    A model is loaded only when some of its embeddings are not cached (``planned_meta`` names the cached files).
    """
    options = options or EmbedOptions()
    settings = settings or ProbeSettings()
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    rows: list[ProbeRow] = []
    for name in models:
        loaded: VisionTransformer | None = None
        for pool in pools:
            meta = planned_meta(name, pool, options)
            files: dict[str, LoadedEmbeddings] = {}
            for split, images in (("train", train), ("test", test)):
                path = cache_path(cache, split, images.paths, meta)
                if path.is_file():
                    log(f"{name} | pool {meta.pool} | {split}: cached in {path}")
                else:
                    log(f"{name} | pool {meta.pool} | {split}: embedding {len(images.paths)} images")
                    if loaded is None:
                        loaded = create_model(
                            name,
                            pretrained=not options.random_weights,
                            revision=options.revision,
                            img_size=options.img_size,
                        )
                    embed_to_file(
                        loaded,
                        images.paths,
                        path,
                        name=name,
                        revision=options.revision,
                        pool=pool,
                        layers=options.layers,
                        batch_size=options.batch_size,
                        num_workers=options.num_workers,
                        dtype=options.dtype,
                        device=options.device,
                        progress=options.progress,
                        exact_decode=options.exact_decode,
                        runtime=options.runtime,
                    )
                files[split] = read_embeddings(path)
            rows += probe_pair(
                name,
                files["train"],
                files["test"],
                labels_of(files["train"].paths, dict(zip(train.paths, train.labels, strict=True))),
                labels_of(files["test"].paths, dict(zip(test.paths, test.labels, strict=True))),
                settings,
                log,
            )  # labels of the rows in the files: an unreadable image is in neither
    return rows


def probe_files(
    pairs: Sequence[tuple[str | Path, str | Path]],
    *,
    labels: Mapping[str, str] | None = None,
    settings: ProbeSettings | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> list[ProbeRow]:
    """Probe existing ``vitzoo embed`` outputs, one (train file, test file) pair per model: one row per layer.

    Labels are the parent folder of each recorded path (ImageFolder), or ``labels`` (path -> class) when given.
    """
    settings = settings or ProbeSettings()
    rows: list[ProbeRow] = []
    for train_path, test_path in pairs:
        train, test = read_embeddings(train_path), read_embeddings(test_path)
        differ = [k for k in ("model", "pool", "layers", "img_size") if train.meta.get(k) != test.meta.get(k)]
        if differ:
            raise ConfigError(f"{train_path} and {test_path} were embedded differently: {', '.join(differ)} differ")
        model = str(train.meta.get("model") or Path(train_path).stem)
        rows += probe_pair(
            model, train, test, labels_of(train.paths, labels), labels_of(test.paths, labels), settings, log
        )
    return rows


# ------------------------------------------------------------------------------------------------- output
def metric_names(settings: ProbeSettings) -> list[str]:
    """The metric keys of a row, in table order."""
    names = [f"knn{k}_top1" for k in settings.k] + [f"knn{k}_top5" for k in settings.k]
    return [*names, "linear_top1", "linear_C", *(f"{s}shot" for s in settings.shots)]


def write_results(rows: Sequence[ProbeRow], out_dir: str | Path, settings: ProbeSettings) -> tuple[Path, Path]:
    """``results.json`` (the settings and one object per row) and ``results.csv`` (one line per row and metric:
    model, layer, pool, metric, value) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = out / "results.json", out / "results.csv"
    atomic_write_text(
        json_path, json.dumps({"settings": asdict(settings), "rows": [asdict(r) for r in rows]}, indent=1)
    )
    with atomic_path(csv_path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "layer", "pool", "metric", "value"])
        for r in rows:
            for name in metric_names(settings):
                value = r.metrics.get(name)
                writer.writerow([r.model, r.layer, r.pool, name, "" if value is None else repr(value)])
    return json_path, csv_path
