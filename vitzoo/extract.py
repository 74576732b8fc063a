"""Batched feature extraction and prediction: images decoded in parallel workers, overlapped with the forward.

``extract_features`` and ``predict`` are the Python API; ``embed_to_file`` is the resumable, shardable job behind
``vitzoo embed`` (and ``torchrun -m vitzoo embed``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ._version import __version__
from .errors import ImageError, VitzooError
from .model import take_indices
from .transforms import create_transform, load_image, to_rgb

logger = logging.getLogger("vitzoo")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
POOLS = ("token", "avg", "tokens", "pre_logits")


# --------------------------------------------------------------------------------------------------- inputs
def expand_inputs(inputs: Iterable[Any]) -> list[Any]:
    """Paths, folders (recursively, sorted), text files listing paths (``.txt``/``.lst``), PIL images, tensors."""
    out: list[Any] = []
    for item in [inputs] if isinstance(inputs, (str, Path, Image.Image, torch.Tensor)) else inputs:
        if isinstance(item, torch.Tensor) and item.ndim == 4:
            out.extend(item.unbind(0))
        elif isinstance(item, (str, Path)):
            path = Path(item)
            if path.is_dir():
                out.extend(str(p) for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES)
            elif path.suffix.lower() in (".txt", ".lst"):
                out.extend(line.strip() for line in path.read_text().splitlines() if line.strip())
            else:
                out.append(str(path))
        else:
            out.append(item)
    return out


class _Images(torch.utils.data.Dataset):
    """Item i -> (i, tensor or None, error message). Decoding failures are returned, never raised."""

    def __init__(self, items: Sequence[Any], transform: Any) -> None:
        self.items, self.transform = items, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str]:
        item = self.items[i]
        try:
            if isinstance(item, torch.Tensor):
                return i, item, ""
            img = to_rgb(item) if isinstance(item, Image.Image) else load_image(item)
            return i, self.transform(img), ""
        except (ImageError, OSError, ValueError) as err:
            return i, None, str(err)


def _collate(batch: list) -> tuple[list[int], torch.Tensor | None, list[tuple[int, str]]]:
    ok = [(i, x) for i, x, _ in batch if x is not None]
    failed = [(i, err) for i, x, err in batch if x is None]
    return [i for i, _ in ok], (torch.stack([x for _, x in ok]) if ok else None), failed


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decoding workers must not compete with the forward's threads


def default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def iter_batches(
    items: Sequence[Any], transform: Any, batch_size: int, num_workers: int | None
) -> Iterator[tuple[list[int], torch.Tensor | None, list[tuple[int, str]]]]:
    """Decode and transform in worker processes (prefetching ahead of the consumer); yield batches in order."""
    workers = default_workers() if num_workers is None else num_workers
    loader = torch.utils.data.DataLoader(
        _Images(items, transform), batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=_collate,
        worker_init_fn=_worker_init if workers else None, prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )  # fmt: skip
    yield from loader


# ------------------------------------------------------------------------------------------------- features
@torch.inference_mode()
def compute_features(
    model: torch.nn.Module, x: torch.Tensor, pool: str = "token", layers: Sequence[int] | None = None
) -> dict[str, torch.Tensor]:
    """One batch (B, C, H, W) to float32 CPU features: ``{"features": ...}`` or one entry per requested block."""
    if pool not in POOLS:
        raise VitzooError(f"pool must be one of {POOLS}, got {pool!r}")
    p = model.num_prefix_tokens
    if layers:
        if pool == "pre_logits":
            raise VitzooError("pool='pre_logits' applies to the final output only; use token, avg or tokens")
        outs = model.forward_intermediates(x, indices=list(layers), norm=True, output_fmt="NLC",
                                           return_prefix_tokens=True, intermediates_only=True)  # fmt: skip
        picked = {}
        for index, (patches, prefix) in zip(take_indices(len(model.blocks), list(layers)), outs):
            picked[f"layer_{index}"] = _pool(torch.cat([prefix, patches], dim=1), pool, p)
        return {k: v.float().cpu() for k, v in picked.items()}
    if pool == "token" and p:
        feats = model.forward_cls(x)
    elif pool == "pre_logits":
        feats = model.forward_head(model.forward_features(x), pre_logits=True)
    else:
        feats = _pool(model.forward_features(x), pool, p)
    return {"features": feats.float().cpu()}


def _pool(tokens: torch.Tensor, pool: str, prefix: int) -> torch.Tensor:
    if pool == "token":
        if not prefix:
            raise VitzooError("pool='token' needs a class token; use pool='avg'")
        return tokens[:, 0]
    if pool == "avg":
        return tokens[:, prefix:].mean(dim=1)
    return tokens  # "tokens": (B, P + N, D)


def _prepare(model: torch.nn.Module, dtype: torch.dtype | str | None, device: Any) -> tuple[torch.dtype, torch.device]:
    dtype = _DTYPES[dtype] if isinstance(dtype, str) else dtype
    if dtype is not None or device is not None:
        model.to(device=device, dtype=dtype)
    param = next(model.parameters())
    return param.dtype, param.device


_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
           "fp16": torch.float16, "float16": torch.float16}  # fmt: skip


def extract_features(
    model: torch.nn.Module,
    inputs: Any,
    *,
    pool: str = "token",
    layers: Sequence[int] | None = None,
    batch_size: int = 64,
    num_workers: int | None = None,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    on_error: str = "raise",
) -> torch.Tensor | dict[str, torch.Tensor]:
    """Features of ``inputs`` (paths, a folder, a text file of paths, PIL images or preprocessed tensors).

    Images get the model's checkpoint transform (``create_transform(model)``). ``pool``: ``"token"`` (normed class
    token), ``"avg"`` (mean of normed patch tokens), ``"tokens"`` (all normed tokens), ``"pre_logits"`` (what the
    head sees). ``layers`` (block indices, negatives allowed) returns ``{"layer_i": features}`` from those blocks
    (final-normed). ``dtype``/``device`` move the model. Unreadable images raise ``ImageError``; with
    ``on_error="skip"`` they are left out (rows then follow the readable inputs) and logged.
    """
    model.eval()
    dtype, device = _prepare(model, dtype, device)
    items = expand_inputs(inputs)
    transform = create_transform(model)
    chunks: dict[str, list[torch.Tensor]] = {}
    meter = Progress(len(items), enabled=progress)
    for _, x, failed in iter_batches(items, transform, batch_size, num_workers):
        if failed:
            if on_error == "raise":
                raise ImageError("; ".join(err for _, err in failed))
            logger.warning("skipped %d unreadable image(s): %s", len(failed), "; ".join(e for _, e in failed))
        if x is not None:
            for key, value in compute_features(model, x.to(device=device, dtype=dtype), pool, layers).items():
                chunks.setdefault(key, []).append(value)
        meter.update(len(failed) + (0 if x is None else x.shape[0]))
    meter.close()
    out = {k: torch.cat(v) for k, v in chunks.items()}
    return out["features"] if not layers else out


@dataclass
class Prediction:
    label: str
    index: int
    prob: float


def predict(model: torch.nn.Module, inputs: Any, topk: int = 5, **kwargs: Any) -> list[list[Prediction]]:
    """Top-k classes per input, with names from the checkpoint (ImageNet-1k/21k names are shipped)."""
    if not model.config.num_classes:
        raise VitzooError("this model has no classifier head (num_classes=0); use extract_features")
    facts = getattr(model, "pretrained_cfg", None)
    names = facts.class_names() if facts is not None else [f"class_{i}" for i in range(model.config.num_classes)]
    model.eval()
    dtype, device = _prepare(model, kwargs.pop("dtype", None), kwargs.pop("device", None))
    results: list[list[Prediction]] = []
    items = expand_inputs(inputs)
    for _, x, failed in iter_batches(items, create_transform(model), kwargs.pop("batch_size", 32),
                                     kwargs.pop("num_workers", None)):  # fmt: skip
        if failed:
            raise ImageError("; ".join(err for _, err in failed))
        with torch.inference_mode():
            probs = model(x.to(device=device, dtype=dtype)).float().softmax(dim=-1).cpu()
        top = probs.topk(min(topk, probs.shape[-1]), dim=-1)
        for values, indices in zip(top.values.tolist(), top.indices.tolist()):
            results.append([Prediction(names[i], i, p) for p, i in zip(values, indices)])
    return results


# ------------------------------------------------------------------------------------------------ progress
class Progress:
    """A small images/s meter on stderr (a bar on a terminal, a line every few seconds otherwise)."""

    def __init__(self, total: int, enabled: bool = True, prefix: str = "") -> None:
        self.total, self.enabled, self.prefix = total, enabled, prefix
        self.done, self.start, self.last = 0, time.perf_counter(), 0.0
        self.tty = sys.stderr.isatty()

    def update(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if self.enabled and (now - self.last > (0.2 if self.tty else 5.0) or self.done >= self.total):
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            bar = f"[{'#' * filled}{'.' * (width - filled)}] " if self.tty else ""
            end = "\r" if self.tty else "\n"
            sys.stderr.write(f"{self.prefix}{bar}{self.done}/{self.total} images, {rate:.1f} img/s{end}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")


# ------------------------------------------------------------------------------------------- the embed job
def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def _dist_info() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def embed_to_file(
    model: torch.nn.Module,
    items: Sequence[str],
    out: str | Path,
    *,
    meta: dict[str, str],
    pool: str = "token",
    layers: Sequence[int] | None = None,
    batch_size: int = 64,
    shard_size: int = 1024,
    num_workers: int | None = None,
    dtype: torch.dtype | str | None = None,
    device: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Embed ``items`` into ``out`` (.safetensors or .npy), in resumable shards, sharded over torch.distributed ranks.

    Shard k (inputs ``[k * shard_size, (k + 1) * shard_size)``) is written atomically to ``OUT.parts/`` by rank
    ``k % world_size``; finished shards are skipped when the same command runs again. Rank 0 then concatenates the
    shards in order, so the file does not depend on the number of processes or on interruptions. Unreadable images
    are skipped and listed in ``OUT.failed.txt``.
    """
    out = Path(out)
    if out.suffix not in (".safetensors", ".npy"):
        raise VitzooError(f"--out must end in .safetensors or .npy, got {out.name}")
    if out.suffix == ".npy" and layers:
        raise VitzooError("--layers gives several arrays: write them to a .safetensors file")
    model.eval()
    dtype, device = _prepare(model, dtype, device)
    rank, world = _dist_info()
    parts = out.with_name(out.name + ".parts")
    fingerprint = {**meta, "pool": pool, "layers": list(layers or []), "dtype": str(dtype).removeprefix("torch."),
                   "batch_size": batch_size, "shard_size": shard_size, "inputs": _digest(items)}  # fmt: skip
    if rank == 0:
        parts.mkdir(parents=True, exist_ok=True)
        manifest = parts / "manifest.json"
        if manifest.exists() and json.loads(manifest.read_text()) != fingerprint:
            raise VitzooError(f"{parts} holds shards of a different command; delete it or choose another --out")
        manifest.write_text(json.dumps(fingerprint, indent=1))
    _barrier()
    num_shards = max(1, -(-len(items) // shard_size))
    mine = [k for k in range(num_shards) if k % world == rank]
    todo = [k for k in mine if not (parts / f"shard-{k:06d}.safetensors").exists()]
    if progress and len(todo) < len(mine):
        sys.stderr.write(f"resuming: {len(mine) - len(todo)} of {len(mine)} shards already done\n")
    transform = create_transform(model)
    meter = Progress(sum(len(items[k * shard_size : (k + 1) * shard_size]) for k in todo), enabled=progress,
                     prefix=f"[rank {rank}] " if world > 1 else "")  # fmt: skip
    for k in todo:
        shard_items = items[k * shard_size : (k + 1) * shard_size]
        chunks: dict[str, list[torch.Tensor]] = {}
        rows: list[int] = []
        failed: list[tuple[int, str]] = []
        for idx, x, bad in iter_batches(shard_items, transform, batch_size, num_workers):
            failed += [(k * shard_size + i, err) for i, err in bad]
            if x is not None:
                rows += [k * shard_size + i for i in idx]
                for key, value in compute_features(model, x.to(device=device, dtype=dtype), pool, layers).items():
                    chunks.setdefault(key, []).append(value)
            meter.update(len(bad) + (0 if x is None else x.shape[0]))
        tensors = {key: torch.cat(v) for key, v in chunks.items()}
        _atomic_save(tensors, parts / f"shard-{k:06d}.safetensors",
                     {"rows": json.dumps(rows), "failed": json.dumps(failed)})  # fmt: skip
    meter.close()
    _barrier()
    summary: dict[str, Any] = {}
    if rank == 0:
        summary = _merge(parts, num_shards, items, out, {**meta, "pool": pool, "layers": json.dumps(list(layers or [])),
                                                          "dtype": str(dtype).removeprefix("torch.")})  # fmt: skip
    _barrier()
    return summary


def _merge(parts: Path, num_shards: int, items: Sequence[str], out: Path, meta: dict[str, str]) -> dict[str, Any]:
    import shutil

    import numpy as np
    from safetensors import safe_open

    chunks: dict[str, list[torch.Tensor]] = {}
    rows: list[int] = []
    failed: list[tuple[int, str]] = []
    for k in range(num_shards):
        with safe_open(str(parts / f"shard-{k:06d}.safetensors"), framework="pt") as f:
            info = f.metadata()
            rows += json.loads(info["rows"])
            failed += [tuple(x) for x in json.loads(info["failed"])]
            for key in f.keys():  # noqa: SIM118
                chunks.setdefault(key, []).append(f.get_tensor(key))
    tensors = {key: torch.cat(v) for key, v in chunks.items()}
    paths = [items[i] for i in rows]
    meta = {**meta, "vitzoo_version": __version__, "paths": json.dumps(paths), "num_failed": str(len(failed))}
    if out.suffix == ".npy":
        feats = tensors.get("features", torch.zeros(0))
        tmp = out.with_name(out.name + ".tmp.npy")
        np.save(tmp, feats.numpy())
        os.replace(tmp, out)
        out.with_name(out.name + ".paths.txt").write_text("".join(p + "\n" for p in paths))
    else:
        _atomic_save(tensors, out, meta)
    failed_file = out.with_name(out.name + ".failed.txt")
    if failed:
        failed_file.write_text("".join(f"{items[i]}\t{err}\n" for i, err in failed))
    elif failed_file.exists():
        failed_file.unlink()
    shutil.rmtree(parts)
    return {"rows": len(rows), "failed": len(failed), "failed_file": str(failed_file) if failed else None}


def _digest(items: Sequence[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(map(str, items)).encode()).hexdigest()


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
