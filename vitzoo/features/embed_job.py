"""The embed job behind ``vitzoo embed`` (and ``torchrun -m vitzoo embed``): image paths to embeddings on disk.

Where things go (``Places``): a dataset directory ``OUT/`` holds the shards, ``index.json`` and ``failed.txt``, and
vitzoo's working files in ``OUT/.vitzoo-embed/``; a single file (``.safetensors``/``.npy``, for small runs) has its
shards and working files in ``OUT.parts/`` next to it. A work folder is made whole (marked ``vitzoo-embed.json``) by
one rename; one without the mark is never used nor removed, and a non-empty ``OUT/`` that is not a vitzoo output is
refused before anything is written. vitzoo deletes only what it wrote: a run that fails before its inputs are listed
removes the work folder it made (and ``OUT/`` if it made it and it is empty); finishing removes the work folder.

The inputs are listed once, by whichever process claims the listing, into ``WORK/inputs.txt`` (``vitzoo.inputs``);
every process reads its part from there. Work goes in shards of ``shard_size`` inputs: shard k holds inputs
``[k * shard_size, (k + 1) * shard_size)``. Processes claim shards through ``WORK/claims/`` (``vitzoo.claims``), so a
fast one takes more and a dead one's shards are taken over, and write each one atomically (``vitzoo.embeddings``),
stamped with the command that made it and the listing it was cut from. Whichever process finishes the last shard
finalises: a dataset directory gets its ``index.json``, a single file is concatenated from the shards; finalising
twice (two processes that both took over a stale claim) writes the same files, and a process that finds the work
folder gone returns quietly. ``WORK/manifest.json`` fingerprints the command, so running it again resumes and
another command is refused (as is a shard of another command). No process ever waits for another's shards, so
nothing can time out.

Test hook: with ``VITZOO_EMBED_TEST_GATE=FILE`` set, a process waits before writing each shard until ``FILE``
exists (the tests' stand-in for an arbitrarily slow rank).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write_text
from ..errors import ConfigError, ImageError, VitzooError
from ..models.vit import VisionTransformer
from .batches import EXACT_DECODE, ImageList, batched, prepare_model, run_batches
from .claims import DEFAULT_LEASE_S, Claims
from .distributed import rank_and_world
from .extract import feature_fn, resolve_pool
from .fingerprint import EmbedMeta, check_fingerprint, encode, inputs_digest
from .inputs import Manifest, iter_names, write_manifest
from .outputs import (
    MARK,
    SHARD_INFO,
    EmbedSummary,
    Places,
    finish_dir,
    finished_file,
    merge_shards,
    output_layout,
    read_json,
    remove_dirs,
    remove_work,
)
from .runtimes import Runner, check_runtime, model_dtype, runner_for
from .shards import (
    INDEX,
    read_index,
    shard_done,
    shard_name,
    write_shard,
)

MAX_SAFETENSORS_ROWS = 1_000_000  # every path goes into the header, which safetensors caps at 100 MB
GATE_ENV = "VITZOO_EMBED_TEST_GATE"


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
    lease_s: float = DEFAULT_LEASE_S,
    exact_decode: bool = EXACT_DECODE,
    runtime: str = "torch",
) -> EmbedSummary | None:
    """Embed images (paths, folders, list files, ``.tar`` shards, globs: ``vitzoo.inputs.iter_names``) into ``out``.

    ``out`` is a dataset directory (no suffix: shards + ``index.json``, for any size; a new or empty folder, or one
    of vitzoo's outputs) or one ``.safetensors`` / ``.npy`` file (small runs). Resumable, and shared by any number of
    processes through claims in the output (see the module docstring); a claim not renewed for ``lease_s`` seconds
    is taken over. An input that does not exist or holds no image is refused (``ConfigError``); unreadable images
    are skipped and listed, and a run where none is readable raises ``ImageError`` naming that list.
    ``name``/``revision`` are recorded in the metadata (``name`` defaults to the checkpoint's tag). Returns the
    summary in the process that finalised the output, None in the others.

    JPEGs much larger than the model input are decoded at a reduced scale (libjpeg's DCT-domain draft mode, at
    least twice the resize target) before the checkpoint's exact resize: about 4x faster to decode a camera photo,
    features within a cosine similarity of 0.999 of the exact path (docs/performance.md). ``exact_decode=True``
    decodes every pixel, as timm and ``extract_features`` do. The choice is recorded in the metadata (``decode``).

    ``runtime`` (``torch``, ``compile``, ``onnxruntime``, ``auto``) and ``dtype`` (``int8`` too) are those of
    ``extract_features``; both are recorded, and a run is resumed only with the same ones.
    """
    out = Path(out)
    layout = output_layout(out)
    check_arguments(batch_size, shard_size, num_workers, lease_s)
    if layout == "npy" and layers:
        raise ConfigError("layers (--layers) give one array per block: write them to a .safetensors file, not .npy")
    pool = resolve_pool(model, pool, layers)
    int8 = check_runtime(runtime, dtype)
    fn = feature_fn(model, pool, layers)
    spec = _input_spec(inputs)
    if not spec:
        raise ConfigError("no inputs: pass image files, folders with images, list files or .tar shards")
    prepare_model(model, model_dtype(dtype), device)
    meta = EmbedMeta.of(
        model,
        name=name,
        revision=revision,
        pool=pool,
        layers=layers,
        exact_decode=exact_decode,
        runtime=runtime,
        int8=int8,
    )
    rank, world = rank_and_world()
    prefix = f"[rank {rank}] " if world > 1 else ""
    places = Places(out, layout)
    fingerprint = {
        **meta.encode(),
        **encode({"batch_size": batch_size, "shard_size": shard_size, "inputs": inputs_digest(spec)}),
    }
    places.refuse_foreign()  # nothing is written before these checks
    if layout == "dir" and (out / INDEX).exists():  # finished before: nothing to do
        index = read_index(out)
        check_fingerprint(out, index["command"], fingerprint)
        failed_file = out / "failed.txt"
        summary = EmbedSummary(index["rows"], index["failed"], failed_file if index["failed"] else None)
        return _none_readable(summary) if rank == 0 else None
    if layout != "dir" and out.exists() and not (places.work / MARK).is_file():  # a file, and no run under way
        summary = finished_file(out, fingerprint)
        return _none_readable(summary) if rank == 0 else None
    check_fingerprint(places.work, read_manifest(places.work), fingerprint)
    listings = check_shards(places.shards, fingerprint)
    made, created = places.make()
    claims = Claims(places.work / "claims", lease_s, rank)
    try:
        names = spec if isinstance(inputs, ImageList) else iter_names(spec, check=True)
        try:
            listed = _listing(places.work, names, fingerprint, claims)
            if listed is not None:
                _check_listing(places.shards, listings, listed[1])
        except BaseException:
            if created and not (places.work / "manifest.json").exists():  # nothing of value: leave no trace
                remove_work(places.work)
                remove_dirs(made)
            raise
        if listed is None:
            if not places.finished():
                raise VitzooError(
                    f"{places.work} was removed before its inputs were listed: the process listing them failed or "
                    "was interrupted (see its error); run the command again"
                )
            if progress:
                sys.stderr.write(f"{prefix}the other processes finished {out} before this one started\n")
            return None
        items, listing = listed
        stamp = {"command": fingerprint, "listing": listing}
        what = {"pool": pool, "layers": meta.layers}
        return _run(
            model,
            items,
            partial(runner_for, model, fn, runtime, int8=int8, what=what, batch_size=batch_size),
            places,
            claims,
            meta,
            fingerprint,
            stamp,
            prefix=prefix,
            shard_size=shard_size,
            batch_size=batch_size,
            num_workers=num_workers,
            progress=progress,
            exact_decode=exact_decode,
        )
    finally:
        claims.release_all()  # interrupted or failed: hand back what this process holds


def _run(
    model: VisionTransformer,
    items: Manifest,
    make_runner: Callable[[], Runner],
    places: Places,
    claims: Claims,
    meta: EmbedMeta,
    fingerprint: dict[str, str],
    stamp: dict[str, Any],
    *,
    prefix: str,
    shard_size: int,
    batch_size: int,
    num_workers: int | None,
    progress: bool,
    exact_decode: bool,
) -> EmbedSummary | None:
    """Embed the shards this process claims, then finalise if every shard is done."""
    out, layout = places.out, places.layout
    if layout == "safetensors" and len(items) > MAX_SAFETENSORS_ROWS:
        raise ConfigError(
            f"{len(items):,} inputs are too many paths for one .safetensors header; write a dataset directory "
            "(an --out without suffix) instead"
        )
    num_shards = -(-len(items) // shard_size)
    done = sum(shard_done(places.shards, k) for k in range(num_shards))
    if progress and done:
        sys.stderr.write(f"{prefix}resuming: {done} of {num_shards} shards already done\n")
    if progress and done < num_shards and meta.runtime != "torch":  # an export or a compile can take a minute
        sys.stderr.write(f"{prefix}preparing runtime {meta.runtime} (exported, compiled or measured once, cached)\n")
    runner = make_runner() if done < num_shards else Runner("torch", False, lambda _: {})  # none left: none built
    label = "" if runner.runtime == "torch" and not runner.int8 else runner.label
    written = _embed_shards(
        model,
        items,
        runner,
        places.shards,
        claims,
        num_shards,
        stamp,
        shard_size=shard_size,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        desc=f"{prefix}{label}".strip() or None,
        exact_decode=exact_decode,
    )
    if progress:
        sys.stderr.write(f"{prefix}embedded {len(written)} of {num_shards} shards\n")
    if not claims.folder.exists():  # finalised by another process meanwhile
        return None
    if not all(shard_done(places.shards, k) for k in range(num_shards)):
        if progress:  # the others' shards are still being embedded (or their owner died: a re-run finishes them)
            sys.stderr.write(f"{prefix}other processes hold the remaining shards; the last to finish writes {out}\n")
        return None
    if not claims.take("finalize"):
        return None
    try:
        if layout == "dir":
            summary = finish_dir(out, num_shards, dataclasses.asdict(meta), fingerprint)
        else:
            summary = merge_shards(places.work, num_shards, out, meta, fingerprint)
    except FileNotFoundError:
        if places.work.exists():
            raise
        return None  # another process finalised and removed the work folder meanwhile: the output is whole
    remove_work(places.work)
    return _none_readable(summary)


def check_arguments(batch_size: int, shard_size: int, num_workers: int | None, lease_s: float) -> None:
    """Refuse settings that cannot run, before anything is written (a manifest would record them)."""
    counts = [("batch_size (--batch-size)", batch_size, 1), ("shard_size (--shard-size)", shard_size, 1)]
    if num_workers is not None:
        counts.append(("num_workers (--workers)", num_workers, 0))
    for what, value, least in counts:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"{what} must be a whole number >= {least}, got {value!r}")
    if not isinstance(lease_s, (int, float)) or not lease_s > 0:
        raise ConfigError(f"lease_s (--lease) must be a number of seconds > 0, got {lease_s!r}")


def _none_readable(summary: EmbedSummary) -> EmbedSummary:
    """``summary``, or ``ImageError`` when no input could be read (the failed list says why, input by input)."""
    if summary.failed and not summary.rows:
        raise ImageError(
            f"none of the {summary.failed} inputs could be read; {summary.failed_file} lists each with its error"
        )
    return summary


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


def read_manifest(work: Path) -> dict[str, str] | None:
    manifest = work / "manifest.json"
    return json.loads(manifest.read_text()) if manifest.exists() else None


def check_shards(folder: Path, fingerprint: Mapping[str, str]) -> dict[int, Any]:
    """Refuse ``folder`` if a shard in it was made by another command; returns the listing each shard was cut
    from (its digest), by shard."""
    listings: dict[int, Any] = {}
    if not folder.is_dir():
        return listings
    for entry in os.scandir(folder):
        match = SHARD_INFO.fullmatch(entry.name)
        if match is None:
            continue
        info = read_json(Path(entry.path))
        check_fingerprint(folder, info.get("command") or {}, fingerprint)
        listings[int(match.group(1))] = info.get("listing")
    return listings


def _check_listing(folder: Path, listings: Mapping[int, Any], listing: str) -> None:
    """Refuse shards cut from another listing of the same inputs (files added or removed since they were made)."""
    if any(digest != listing for digest in listings.values()):
        raise VitzooError(
            f"{folder} holds shards made from another listing of these inputs (files were added, removed or renamed "
            "since); delete those shards, or choose another --out"
        )


def _listing(work: Path, names: Any, fingerprint: dict[str, str], claims: Claims) -> tuple[Manifest, str] | None:
    """The input listing of ``work`` and its digest, written by whichever process claims it first; the others wait
    for it. None when the work folder was removed meanwhile (the run was finished by other processes: a late
    starter; or the process listing failed)."""
    manifest = work / "manifest.json"
    while not manifest.exists():
        if not claims.folder.exists():
            return None
        if claims.take("listing"):
            try:
                if not manifest.exists():
                    count, digest = write_manifest(names, work)
                    atomic_write_text(work / "listing.json", json.dumps({"names": count, "sha256": digest}))
                    atomic_write_text(manifest, json.dumps(fingerprint, indent=1))
            finally:
                claims.release("listing")
        else:
            time.sleep(0.2)  # another process is listing (perhaps for hours): no timeout
    try:
        check_fingerprint(work, read_manifest(work), fingerprint)
        listing = str(json.loads((work / "listing.json").read_text())["sha256"])
        items = Manifest(work)
        len(items)  # opens the listing: readable from now on, even once the finalising process removes it
    except FileNotFoundError:
        return None
    return items, listing


class _ClaimedBatches:
    """The batches of the shards this process claims, each shard claimed when the loader first asks for its
    batches (so a process holds only what it is about to embed, plus the loader's prefetch)."""

    def __init__(self, folder: Path, claims: Claims, n: int, num_shards: int, shard_size: int, batch_size: int):
        self.folder, self.claims, self.n, self.num_shards = folder, claims, n, num_shards
        self.shard_size, self.batch_size = shard_size, batch_size
        self.claimed: list[int] = []

    def __iter__(self) -> Iterator[list[int]]:
        took = True
        while took:  # a second pass takes over shards whose owner died meanwhile
            took = False
            for k in range(self.num_shards):
                if k in self.claimed or shard_done(self.folder, k) or not self.claims.take(shard_name(k)):
                    continue
                if shard_done(self.folder, k):  # finished between the check and the claim
                    self.claims.release(shard_name(k))
                    continue
                took = True
                self.claimed.append(k)
                span = range(k * self.shard_size, min((k + 1) * self.shard_size, self.n))
                yield from batched(span, self.batch_size)  # never across a shard boundary


class _Gone(Exception):
    """The work folder was removed while this process embedded: another one finished the output."""


def _embed_shards(
    model: VisionTransformer,
    items: Manifest,
    fn: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    folder: Path,
    claims: Claims,
    num_shards: int,
    stamp: dict[str, Any],
    *,
    shard_size: int,
    batch_size: int,
    num_workers: int | None,
    progress: bool,
    desc: str | None,
    exact_decode: bool,
) -> list[int]:
    """Embed the shards this process claims through one batch loop (one DataLoader), writing each shard (into
    ``folder``, stamped with ``stamp``) as soon as it is complete; returns them. A shard's batches are cut from the
    shard alone, so they, and the shard's numbers, do not depend on which process embeds it."""
    batches = _ClaimedBatches(folder, claims, len(items), num_shards, shard_size, batch_size)
    todo = [k for k in range(num_shards) if not shard_done(folder, k)]
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
                    if not shard_done(folder, shard.k):  # else written by a process that took it over as stale
                        names = items[shard.k * shard_size : (shard.k + 1) * shard_size]
                        _write_shard(folder, shard, names, shard_size, stamp)
                    claims.release(shard_name(shard.k))
                    written.append(shard.k)
                    shard = None
    except _Gone:
        pass  # the output was finished by another process: nothing left to do here
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


def _write_shard(folder: Path, shard: _Shard, names: Sequence[str], shard_size: int, stamp: dict[str, Any]) -> None:
    """Write a finished shard (``names``: the shard's inputs, readable or not) with its paths and failures;
    ``_Gone`` when ``folder`` was removed meanwhile (a single file's ``.parts``, finished by another process)."""
    base = shard.k * shard_size
    paths = [names[i - base] for i in shard.rows]
    failed = [(names[i - base], err) for i, err in shard.failed]
    try:
        write_shard(folder, shard.k, shard.arrays(), paths, failed, stamp)
    except FileNotFoundError:
        if folder.exists():
            raise
        raise _Gone from None


def _wait_for_gate() -> None:
    gate = os.environ.get(GATE_ENV)
    while gate and not os.path.exists(gate):
        time.sleep(0.05)


# -------------------------------------------------------------------------------------------- the folders


# ------------------------------------------------------------------------------------------------ reading


# ------------------------------------------------------------------------------------------------- helpers
