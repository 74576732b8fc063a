"""The embed job behind ``vitzoo embed`` (and ``torchrun -m vitzoo embed``): image paths to one features file.

Work goes in shards of ``shard_size`` inputs: shard k holds inputs ``[k * shard_size, (k + 1) * shard_size)`` and is
written atomically to ``OUT.parts/shard-<k>.safetensors`` by rank ``k % world_size``, next to a ``manifest.json``
that fingerprints the command. Running the same command again skips the finished shards; rank 0 concatenates them in
order at the end, so the file depends neither on the number of processes nor on interruptions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import save_file

from ._version import __version__
from .errors import ConfigError, VitzooError
from .extract import batched, feature_fn, prepare_model, require_inputs, resolve_pool, run_batches
from .model import VisionTransformer, take_indices

OUTPUT_SUFFIXES = (".safetensors", ".npy")


# ------------------------------------------------------------------------------------------------ metadata
def encode(values: Mapping[str, Any]) -> dict[str, str]:
    """Every value as JSON text (safetensors metadata is str -> str); ``json.loads`` reads each one back."""
    return {key: json.dumps(value) for key, value in values.items()}


@dataclass(frozen=True)
class EmbedMeta:
    """What an embeddings file was computed with. Encoded once (``encode``) for both the manifest and the output."""

    model: str | None  # the name the model was created from (arch.tag, hf-hub:..., local-dir:...)
    tag: str | None  # the checkpoint's tag, None without one
    revision: str | None  # the Hub revision asked for, None for the default
    img_size: list[int]  # [height, width] the images were resized to
    pool: str
    layers: list[int]  # absolute block indices (sorted); [] for the final output
    dtype: str  # the model's dtype: float32, bfloat16 or float16
    vitzoo_version: str = __version__

    @classmethod
    def of(
        cls,
        model: VisionTransformer,
        *,
        name: str | None,
        revision: str | None,
        pool: str,
        layers: Sequence[int] | None,
    ) -> EmbedMeta:
        """The metadata of embedding with ``model`` as it is now (its dtype, its checkpoint facts)."""
        facts = getattr(model, "pretrained_cfg", None)
        tag = facts.name if facts is not None else None
        return cls(
            model=name or tag,
            tag=tag,
            revision=revision,
            img_size=list(model.config.img_size),
            pool=pool,
            layers=take_indices(len(model.blocks), list(layers)) if layers else [],
            dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
        )

    def encode(self) -> dict[str, str]:
        return encode(dataclasses.asdict(self))


@dataclass
class EmbedSummary:
    """What rank 0 wrote: the number of embedded rows and of unreadable inputs (listed in ``failed_file``)."""

    rows: int
    failed: int
    failed_file: Path | None


# ------------------------------------------------------------------------------------------------- the job
def embed_to_file(
    model: VisionTransformer,
    inputs: Any,
    out: str | Path,
    *,
    name: str | None = None,
    revision: str | None = None,
    pool: str | None = None,
    layers: Sequence[int] | None = None,
    batch_size: int = 64,
    shard_size: int = 1024,
    num_workers: int | None = None,
    dtype: torch.dtype | str | None = None,
    device: Any = None,
    progress: bool = True,
) -> EmbedSummary | None:
    """Embed image paths (``inputs`` as for ``extract_features``) into ``out`` (.safetensors or .npy).

    Resumable and sharded over torch.distributed ranks (see the module docstring). Unreadable images are skipped and
    listed in ``OUT.failed.txt``. ``name``/``revision`` are recorded in the metadata (``name`` defaults to the
    checkpoint's tag). Returns the summary on rank 0 and None on the other ranks.
    """
    out = Path(out)
    if out.suffix not in OUTPUT_SUFFIXES:
        raise ConfigError(f"the output must end in .safetensors or .npy, got {out.name}")
    if out.suffix == ".npy" and layers:
        raise ConfigError("layers (--layers) give one array per block: write them to a .safetensors file, not .npy")
    pool = resolve_pool(model, pool, layers)
    fn = feature_fn(model, pool, layers)
    items = require_inputs(inputs)
    if not all(isinstance(item, str) for item in items):
        raise ConfigError(
            "the embed job records image paths: pass files, folders or .txt lists, not images or "
            "tensors (use extract_features for those)"
        )
    if shard_size < 1:
        raise ConfigError(f"shard_size must be >= 1, got {shard_size}")
    prepare_model(model, dtype, device)
    meta = EmbedMeta.of(model, name=name, revision=revision, pool=pool, layers=layers)
    rank, world = _dist_info()
    parts = out.with_name(out.name + ".parts")
    fingerprint = {
        **meta.encode(),
        **encode({"batch_size": batch_size, "shard_size": shard_size, "inputs": _digest(items)}),
    }
    _claim(parts, fingerprint, rank)

    num_shards = -(-len(items) // shard_size)
    mine = range(rank, num_shards, world)
    todo = [k for k in mine if not _shard_path(parts, k).exists()]
    prefix = f"[rank {rank}] " if world > 1 else ""
    if progress and len(todo) < len(mine):
        sys.stderr.write(f"{prefix}resuming: {len(mine) - len(todo)} of {len(mine)} shards already done\n")
    if progress and world > 1:
        sys.stderr.write(f"{prefix}{len(todo)} of {num_shards} shards to embed\n")
    if todo:
        _embed_shards(
            model,
            items,
            fn,
            parts,
            todo,
            shard_size=shard_size,
            batch_size=batch_size,
            num_workers=num_workers,
            progress=progress,
            desc=prefix.strip() or None,
        )
    _barrier()
    summary = _merge(parts, num_shards, items, out, meta) if rank == 0 else None
    _barrier()
    return summary


def _embed_shards(
    model: VisionTransformer,
    items: Sequence[str],
    fn: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    parts: Path,
    todo: Sequence[int],
    *,
    shard_size: int,
    batch_size: int,
    num_workers: int | None,
    progress: bool,
    desc: str | None,
) -> None:
    """Run the shards ``todo`` through one batch loop (one DataLoader), writing each shard as soon as it is complete.

    A shard's batches are cut from the shard alone, so they, and the shard's numbers, do not depend on which other
    shards are left to do.
    """
    spans = {k: range(k * shard_size, min((k + 1) * shard_size, len(items))) for k in todo}
    batches = [b for k in todo for b in batched(spans[k], batch_size)]  # never across a shard boundary
    loop = run_batches(
        model, items, fn, batches, num_workers=num_workers, on_error="skip", progress=progress, desc=desc
    )
    shard: _Shard | None = None
    with closing(loop):  # an interruption between batches stops the decoding workers at once
        for batch, feats in loop:
            shard = shard or _Shard(batch.positions[0] // shard_size)
            shard.add(batch.rows, batch.failed, feats)
            if len(shard.rows) + len(shard.failed) == len(spans[shard.k]):
                _write_shard(parts, shard.k, shard.tensors(), shard.rows, shard.failed)
                shard = None


@dataclass
class _Shard:
    """The outputs of one shard, gathered batch by batch until the shard is complete."""

    k: int
    rows: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    chunks: dict[str, list[torch.Tensor]] = field(default_factory=dict)

    def add(self, rows: list[int], failed: list[tuple[int, str]], feats: dict[str, torch.Tensor] | None) -> None:
        self.rows += rows
        self.failed += failed
        for key, value in (feats or {}).items():
            self.chunks.setdefault(key, []).append(value)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {key: torch.cat(values) for key, values in self.chunks.items()}


def _shard_path(parts: Path, k: int) -> Path:
    return parts / f"shard-{k:06d}.safetensors"


def _write_shard(
    parts: Path, k: int, tensors: dict[str, torch.Tensor], rows: list[int], failed: list[tuple[int, str]]
) -> None:
    """Write shard ``k`` atomically: a finished shard file is always whole."""
    _atomic_save(tensors, _shard_path(parts, k), encode({"rows": rows, "failed": failed}))


def _claim(parts: Path, fingerprint: dict[str, str], rank: int) -> None:
    """Refuse ``parts`` if it holds shards of another command; rank 0 then records this command's fingerprint.

    Every rank checks before rank 0 writes (atomically, the same content), so a refusal is raised on all ranks.
    """
    manifest = parts / "manifest.json"
    if manifest.exists():
        old = json.loads(manifest.read_text())
        if old != fingerprint:
            changed = sorted(k for k in old.keys() | fingerprint.keys() if old.get(k) != fingerprint.get(k))
            raise VitzooError(
                f"{parts} holds shards of a different command (it differs in {', '.join(changed)}); "
                "delete that folder, or run the original command to finish it, or choose another "
                "--out"
            )
    if rank == 0:
        parts.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(manifest, json.dumps(fingerprint, indent=1))
    _barrier()


def _merge(parts: Path, num_shards: int, items: Sequence[str], out: Path, meta: EmbedMeta) -> EmbedSummary:
    """Concatenate the shards in order into ``out`` (with ``meta``), list the failures, remove ``parts``."""
    chunks: dict[str, list[torch.Tensor]] = {}
    rows: list[int] = []
    failed: list[tuple[int, str]] = []
    for k in range(num_shards):
        with safe_open(str(_shard_path(parts, k)), framework="pt") as f:
            info = f.metadata()
            rows += json.loads(info["rows"])
            failed += [(i, err) for i, err in json.loads(info["failed"])]
            for key in f.keys():  # noqa: SIM118
                chunks.setdefault(key, []).append(f.get_tensor(key))
    tensors = {key: torch.cat(values) for key, values in chunks.items()}
    paths = [items[i] for i in rows]
    if out.suffix == ".npy":
        _atomic_write_text(out.with_name(out.name + ".paths.txt"), "".join(p + "\n" for p in paths))
        tmp = out.with_name(f"{out.name}.tmp{os.getpid()}.npy")
        np.save(tmp, tensors.get("features", torch.zeros(0)).numpy())
        os.replace(tmp, out)
    else:
        _atomic_save(tensors, out, {**meta.encode(), **encode({"paths": paths, "num_failed": len(failed)})})
    failed_file = out.with_name(out.name + ".failed.txt")
    if failed:
        _atomic_write_text(failed_file, "".join(f"{items[i]}\t{err}\n" for i, err in failed))
    elif failed_file.exists():
        failed_file.unlink()
    shutil.rmtree(parts)
    return EmbedSummary(rows=len(rows), failed=len(failed), failed_file=failed_file if failed else None)


# ------------------------------------------------------------------------------------------------ reading
@dataclass
class Embeddings:
    """An embeddings file read back: its arrays (``features`` or ``layer_<i>``), the input path of each row, and the
    metadata (``EmbedMeta``'s keys decoded; empty for a ``.npy`` file, which has none)."""

    tensors: dict[str, torch.Tensor]
    paths: list[str]
    meta: dict[str, Any]


def read_embeddings(path: str | Path) -> Embeddings:
    """Read a file written by ``embed_to_file`` / ``vitzoo embed``: ``.safetensors``, or ``.npy`` with its
    ``.paths.txt``."""
    path = Path(path)
    if path.suffix not in OUTPUT_SUFFIXES:
        raise ConfigError(f"an embeddings file ends in .safetensors or .npy, got {path.name}")
    if not path.is_file():
        raise VitzooError(f"{path}: no such embeddings file")
    if path.suffix == ".npy":
        listing = path.with_name(path.name + ".paths.txt")
        if not listing.is_file():
            raise VitzooError(f"{path}: its row paths ({listing.name}, written next to it by vitzoo embed) are missing")
        paths = [line for line in listing.read_text().splitlines() if line]
        return Embeddings({"features": torch.from_numpy(np.load(path))}, paths, {})
    with safe_open(str(path), framework="pt") as f:
        meta = {key: json.loads(value) for key, value in (f.metadata() or {}).items()}
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    if "paths" not in meta:
        raise VitzooError(f"{path}: no 'paths' in its metadata; is it an output of vitzoo embed?")
    return Embeddings(tensors, list(meta.pop("paths")), meta)


# ------------------------------------------------------------------------------------------------- helpers
def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _digest(items: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(items).encode()).hexdigest()


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
