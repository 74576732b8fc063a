"""The embed job behind ``vitzoo embed`` (and ``torchrun -m vitzoo embed``): image paths to embeddings on disk.

The inputs are listed once, by whichever process claims the listing, into ``WORK/inputs.txt`` (``vitzoo.inputs``);
every process reads its part from there. Work goes in shards of ``shard_size`` inputs: shard k holds inputs
``[k * shard_size, (k + 1) * shard_size)``. Processes claim shards through ``WORK/claims/`` (``vitzoo.claims``), so a
fast one takes more and a dead one's shards are taken over, and write each one atomically (``vitzoo.embeddings``).
Whichever process finishes the last shard finalises: a dataset directory gets its ``index.json``, a single file
(``.safetensors``/``.npy``, for small runs) is concatenated from the shards. ``WORK`` is the output directory
itself, or ``OUT.parts/`` next to a single file. ``WORK/manifest.json`` fingerprints the command, so running it
again resumes and another command is refused. No process ever waits for another's shards, so nothing can time out.

Test hook: with ``VITZOO_EMBED_TEST_GATE=FILE`` set, a process waits before writing each shard until ``FILE``
exists (the tests' stand-in for an arbitrarily slow rank).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import save_file

from ._version import __version__
from .claims import DEFAULT_LEASE_S, Claims
from .embeddings import (
    INDEX,
    atomic_write_bytes,
    atomic_write_text,
    open_embeddings,
    shard_array,
    shard_done,
    shard_failed,
    shard_info,
    shard_name,
    shard_paths,
    write_index,
    write_shard,
)
from .errors import ConfigError, VitzooError
from .extract import ImageList, batched, feature_fn, prepare_model, resolve_pool, run_batches
from .inputs import Manifest, format_failed, format_names, iter_names, write_manifest
from .loading import weights_digest
from .model import VisionTransformer, take_indices
from .transforms import resolve_data_config

OUTPUT_SUFFIXES = (".safetensors", ".npy")
MAX_SAFETENSORS_ROWS = 1_000_000  # every path goes into the header, which safetensors caps at 100 MB
GATE_ENV = "VITZOO_EMBED_TEST_GATE"


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
    img_size: list[int]  # [height, width] the images are resized to (the model's data config)
    pool: str
    layers: list[int]  # absolute block indices (sorted); [] for the final output
    dtype: str  # the model's dtype: float32, bfloat16 or float16
    decode: str = "exact"  # "exact" (every pixel decoded, as timm) or "fast" (large JPEGs in draft mode)
    weights: str | None = None  # vitzoo.loading.weights_digest: the SHA-256 of the checkpoint file (or tensors)
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
        exact_decode: bool = True,
    ) -> EmbedMeta:
        """The metadata of embedding with ``model`` as it is now (its dtype, its checkpoint facts)."""
        facts = getattr(model, "pretrained_cfg", None)
        tag = facts.name if facts is not None else None
        return cls(
            model=name or tag,
            tag=tag,
            revision=revision,
            img_size=list(resolve_data_config(model).input_size[1:]),
            pool=pool,
            layers=take_indices(len(model.blocks), list(layers)) if layers else [],
            dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
            decode="exact" if exact_decode else "fast",
            weights=weights_digest(model),
        )

    def encode(self) -> dict[str, str]:
        return encode(dataclasses.asdict(self))


@dataclass
class EmbedSummary:
    """What the finalising process wrote: the embedded rows and the unreadable inputs (listed in ``failed_file``)."""

    rows: int
    failed: int
    failed_file: Path | None


# ------------------------------------------------------------------------------------------------- the job
def output_layout(out: Path) -> str:
    """``"safetensors"`` or ``"npy"`` for a single file, ``"dir"`` for a dataset directory (no suffix)."""
    if out.suffix in OUTPUT_SUFFIXES:
        return out.suffix[1:]
    if not out.suffix or out.is_dir():
        return "dir"
    raise ConfigError(
        f"the output must end in .safetensors or .npy, or name a directory (no suffix) for large runs; got {out.name}"
    )


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
    lease_s: float = DEFAULT_LEASE_S,
    exact_decode: bool = False,
) -> EmbedSummary | None:
    """Embed images (paths, folders, list files, ``.tar`` shards, globs: ``vitzoo.inputs.iter_names``) into ``out``.

    ``out`` is a dataset directory (no suffix: shards + ``index.json``, for any size) or one ``.safetensors`` /
    ``.npy`` file (small runs). Resumable, and shared by any number of processes through claims in the output
    (see the module docstring); a claim not renewed for ``lease_s`` seconds is taken over. Unreadable images are
    skipped and listed. ``name``/``revision`` are recorded in the metadata (``name`` defaults to the checkpoint's
    tag). Returns the summary in the process that finalised the output, None in the others.

    JPEGs much larger than the model input are decoded at a reduced scale (libjpeg's DCT-domain draft mode, at
    least twice the resize target) before the checkpoint's exact resize: about 4x faster to decode a camera photo,
    features within a cosine similarity of 0.999 of the exact path (docs/performance.md). ``exact_decode=True``
    decodes every pixel, as timm and ``extract_features`` do. The choice is recorded in the metadata (``decode``).
    """
    out = Path(out)
    layout = output_layout(out)
    _check_arguments(batch_size, shard_size, num_workers, lease_s)
    if layout == "npy" and layers:
        raise ConfigError("layers (--layers) give one array per block: write them to a .safetensors file, not .npy")
    pool = resolve_pool(model, pool, layers)
    fn = feature_fn(model, pool, layers)
    spec = _input_spec(inputs)
    prepare_model(model, dtype, device)
    meta = EmbedMeta.of(model, name=name, revision=revision, pool=pool, layers=layers, exact_decode=exact_decode)
    rank, world = _dist_info()
    prefix = f"[rank {rank}] " if world > 1 else ""
    work = out if layout == "dir" else out.with_name(out.name + ".parts")
    fingerprint = {
        **meta.encode(),
        **encode({"batch_size": batch_size, "shard_size": shard_size, "inputs": _digest(spec)}),
    }
    if layout == "dir" and (out / INDEX).exists():  # finished before: nothing to do
        index = json.loads((out / INDEX).read_text())
        _check_fingerprint(out, index["command"], fingerprint)
        failed_file = out / "failed.txt"
        summary = EmbedSummary(index["rows"], index["failed"], failed_file if index["failed"] else None)
        return summary if rank == 0 else None
    _check_fingerprint(work, _read_manifest(work), fingerprint)
    claims = Claims(work / "claims", lease_s, rank)
    names = spec if isinstance(inputs, ImageList) else iter_names(spec, check=True)
    items = _listing(work, names, fingerprint, claims)
    if items is None:
        if progress:
            sys.stderr.write(f"{prefix}the other processes finished {out} before this one started\n")
        return None
    if not len(items):
        shutil.rmtree(work, ignore_errors=True)
        raise VitzooError("no images in the inputs: pass image files, folders with images, list files or .tar shards")
    if layout == "safetensors" and len(items) > MAX_SAFETENSORS_ROWS:
        raise ConfigError(
            f"{len(items):,} inputs are too many paths for one .safetensors header; write a dataset directory "
            "(an --out without suffix) instead"
        )
    num_shards = -(-len(items) // shard_size)
    done = sum(shard_done(work, k) for k in range(num_shards))
    if progress and done:
        sys.stderr.write(f"{prefix}resuming: {done} of {num_shards} shards already done\n")
    written = _embed_shards(
        model,
        items,
        fn,
        work,
        claims,
        num_shards,
        shard_size=shard_size,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        desc=prefix.strip() or None,
        exact_decode=exact_decode,
    )
    if progress:
        sys.stderr.write(f"{prefix}embedded {len(written)} of {num_shards} shards\n")
    if not claims.folder.exists():  # finalised by another process meanwhile
        return None
    if not all(shard_done(work, k) for k in range(num_shards)):
        if progress:  # the others' shards are still being embedded (or their owner died: a re-run finishes them)
            sys.stderr.write(f"{prefix}other processes hold the remaining shards; the last to finish writes {out}\n")
        return None
    if not claims.take("finalize"):
        return None
    meta_json = dataclasses.asdict(meta)
    if layout == "dir":
        return _finish_dir(out, num_shards, meta_json, fingerprint)
    return _merge(work, num_shards, out, meta)


def _check_arguments(batch_size: int, shard_size: int, num_workers: int | None, lease_s: float) -> None:
    """Refuse settings that cannot run, before anything is written (a manifest would record them)."""
    counts = [("batch_size (--batch-size)", batch_size, 1), ("shard_size (--shard-size)", shard_size, 1)]
    if num_workers is not None:
        counts.append(("num_workers (--workers)", num_workers, 0))
    for what, value, least in counts:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"{what} must be a whole number >= {least}, got {value!r}")
    if not isinstance(lease_s, (int, float)) or not lease_s > 0:
        raise ConfigError(f"lease_s (--lease) must be a number of seconds > 0, got {lease_s!r}")


def _input_spec(inputs: Any) -> list[str]:
    """The inputs as given (absolute where they exist), which the fingerprint records; paths only."""
    single = isinstance(inputs, (str, Path))
    items = [inputs] if single else list(inputs)
    if not all(isinstance(item, (str, Path)) for item in items):
        raise ConfigError(
            "the embed job records image paths: pass files, folders, list files or .tar shards, not images or "
            "tensors (use extract_features for those)"
        )
    if isinstance(inputs, ImageList):
        return [str(item) for item in items]
    return [os.path.abspath(item) if os.path.exists(item) else str(item) for item in items]


def _read_manifest(work: Path) -> dict[str, str] | None:
    manifest = work / "manifest.json"
    return json.loads(manifest.read_text()) if manifest.exists() else None


def _check_fingerprint(work: Path, old: Mapping[str, str] | None, fingerprint: Mapping[str, str]) -> None:
    """Refuse ``work`` if it holds the work of another command (different model, pool, inputs, ...)."""
    if old is not None and dict(old) != dict(fingerprint):
        changed = sorted(k for k in old.keys() | fingerprint.keys() if old.get(k) != fingerprint.get(k))
        raise VitzooError(
            f"{work} holds shards of a different command (it differs in {', '.join(changed)}); "
            "delete that folder, or run the original command to finish it, or choose another "
            "--out"
        )


def _listing(work: Path, names: Any, fingerprint: dict[str, str], claims: Claims) -> Manifest | None:
    """The input listing of ``work``, written by whichever process claims it first; the others wait for it.

    None when the run was finished by other processes meanwhile (they removed the work files): a late starter.
    """
    manifest = work / "manifest.json"
    while not manifest.exists():
        if not claims.folder.exists():
            return None
        if claims.take("listing"):
            try:
                if not manifest.exists():
                    write_manifest(names, work)
                    atomic_write_text(manifest, json.dumps(fingerprint, indent=1))
            finally:
                claims.release("listing")
        else:
            time.sleep(0.2)  # another process is listing (perhaps for hours): no timeout
    try:
        _check_fingerprint(work, _read_manifest(work), fingerprint)
        items = Manifest(work)
        len(items)  # opens the listing: readable from now on, even once the finalising process removes it
    except FileNotFoundError:
        return None
    return items


class _ClaimedBatches:
    """The batches of the shards this process claims, each shard claimed when the loader first asks for its
    batches (so a process holds only what it is about to embed, plus the loader's prefetch)."""

    def __init__(self, work: Path, claims: Claims, n: int, num_shards: int, shard_size: int, batch_size: int):
        self.work, self.claims, self.n, self.num_shards = work, claims, n, num_shards
        self.shard_size, self.batch_size = shard_size, batch_size
        self.claimed: list[int] = []

    def __iter__(self) -> Iterator[list[int]]:
        took = True
        while took:  # a second pass takes over shards whose owner died meanwhile
            took = False
            for k in range(self.num_shards):
                if k in self.claimed or shard_done(self.work, k) or not self.claims.take(shard_name(k)):
                    continue
                if shard_done(self.work, k):  # finished between the check and the claim
                    self.claims.release(shard_name(k))
                    continue
                took = True
                self.claimed.append(k)
                span = range(k * self.shard_size, min((k + 1) * self.shard_size, self.n))
                yield from batched(span, self.batch_size)  # never across a shard boundary


def _embed_shards(
    model: VisionTransformer,
    items: Manifest,
    fn: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    work: Path,
    claims: Claims,
    num_shards: int,
    *,
    shard_size: int,
    batch_size: int,
    num_workers: int | None,
    progress: bool,
    desc: str | None,
    exact_decode: bool,
) -> list[int]:
    """Embed the shards this process claims through one batch loop (one DataLoader), writing each shard as soon
    as it is complete; returns them. A shard's batches are cut from the shard alone, so they, and the shard's
    numbers, do not depend on which process embeds it."""
    batches = _ClaimedBatches(work, claims, len(items), num_shards, shard_size, batch_size)
    todo = [k for k in range(num_shards) if not shard_done(work, k)]
    total = sum(min(shard_size, len(items) - k * shard_size) for k in todo)  # at most: others take some
    loop = run_batches(
        model,
        items,
        fn,
        batches,
        num_workers=num_workers,
        on_error="skip",
        progress=progress,
        desc=desc,
        total=total,
        exact_decode=exact_decode,
    )
    written: list[int] = []
    shard: _Shard | None = None
    try:
        with closing(loop):  # an interruption between batches stops the decoding workers at once
            for batch, feats in loop:
                shard = shard or _Shard(batch.positions[0] // shard_size)
                shard.add(batch.rows, batch.failed, feats)
                for k in set(batches.claimed) - set(written):
                    claims.renew(shard_name(k))
                if len(shard.rows) + len(shard.failed) == min(shard_size, len(items) - shard.k * shard_size):
                    _wait_for_gate()
                    _write_shard(work, shard, items[shard.k * shard_size : (shard.k + 1) * shard_size], shard_size)
                    claims.release(shard_name(shard.k))
                    written.append(shard.k)
                    shard = None
    finally:  # interrupted: hand back the claimed shards that are not written
        for k in set(batches.claimed) - set(written):
            claims.release(shard_name(k))
    return written


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

    def arrays(self) -> dict[str, np.ndarray[Any, Any]]:
        return {key: torch.cat(values).numpy() for key, values in self.chunks.items()}


def _write_shard(work: Path, shard: _Shard, names: Sequence[str], shard_size: int) -> None:
    """Write a finished shard (``names``: the shard's inputs, readable or not) with its paths and failures."""
    base = shard.k * shard_size
    paths = [names[i - base] for i in shard.rows]
    failed = [(names[i - base], err) for i, err in shard.failed]
    write_shard(work, shard.k, shard.arrays(), paths, failed)


def _wait_for_gate() -> None:
    gate = os.environ.get(GATE_ENV)
    while gate and not os.path.exists(gate):
        time.sleep(0.05)


def _finish_dir(out: Path, num_shards: int, meta: dict[str, Any], fingerprint: dict[str, str]) -> EmbedSummary:
    """Write the index and the list of failures of a finished dataset directory; remove the work files."""
    index = write_index(out, num_shards, meta, fingerprint)
    failed_file = out / "failed.txt"
    if index["failed"]:
        atomic_write_bytes(failed_file, b"".join(format_failed(shard_failed(out, k)) for k in range(num_shards)))
    for name in ("inputs.txt", "inputs.offsets", "manifest.json"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "claims", ignore_errors=True)
    return EmbedSummary(index["rows"], index["failed"], failed_file if index["failed"] else None)


def _merge(work: Path, num_shards: int, out: Path, meta: EmbedMeta) -> EmbedSummary:
    """Concatenate the shards in order into the single file ``out`` (with ``meta``), list the failures, remove
    ``work``. This holds every row in memory: the single file is for small runs."""
    infos = [shard_info(work, k) for k in range(num_shards)]
    keys: dict[str, Any] = next((info["arrays"] for info in infos if info["rows"]), {})
    full = [k for k in range(num_shards) if infos[k]["rows"]]
    arrays = {key: np.concatenate([shard_array(work, k, key) for k in full]) for key in keys}
    paths = [p for k in range(num_shards) for p in shard_paths(work, k)]
    failed = [f for k in range(num_shards) for f in shard_failed(work, k)]
    if out.suffix == ".npy":
        atomic_write_bytes(out.with_name(out.name + ".paths.txt"), format_names(paths))
        tmp = out.with_name(f"{out.name}.tmp{os.getpid()}.npy")
        np.save(tmp, arrays.get("features", np.zeros(0, dtype=np.float32)))
        os.replace(tmp, out)
    else:
        tensors = {key: torch.from_numpy(value) for key, value in arrays.items()}
        _atomic_save(tensors, out, {**meta.encode(), **encode({"paths": paths, "num_failed": len(failed)})})
    failed_file = out.with_name(out.name + ".failed.txt")
    if failed:
        atomic_write_bytes(failed_file, format_failed(failed))
    elif failed_file.exists():
        failed_file.unlink()
    shutil.rmtree(work)
    return EmbedSummary(rows=len(paths), failed=len(failed), failed_file=failed_file if failed else None)


# ------------------------------------------------------------------------------------------------ reading
@dataclass
class LoadedEmbeddings:
    """An embed output read into memory (for ``vitzoo probe``): its arrays (``features`` or ``layer_<i>``), the input
    path of each row, and the metadata (``EmbedMeta``'s keys decoded; empty for a ``.npy`` file, which has none)."""

    tensors: dict[str, torch.Tensor]
    paths: list[str]
    meta: dict[str, Any]


def read_embeddings(path: str | Path) -> LoadedEmbeddings:
    """Read everything ``embed_to_file`` / ``vitzoo embed`` wrote (any layout ``open_embeddings`` opens) into
    memory."""
    opened = open_embeddings(path)
    tensors = {key: torch.from_numpy(np.ascontiguousarray(opened[key][:])) for key in opened.keys()}  # noqa: SIM118
    return LoadedEmbeddings(tensors, list(opened.paths), dict(opened.meta))


# ------------------------------------------------------------------------------------------------- helpers
def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def _digest(items: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(items).encode("utf-8", "surrogatepass")).hexdigest()


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
