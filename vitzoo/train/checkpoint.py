"""A fine-tuning run on disk: its checkpoint (weights, optimizer and RNG tensors as safetensors; epoch, log,
scheduler and the run's identity as JSON: nothing is ever unpickled), swapped in whole after every epoch, and the
rules of its ``--out`` folder (fine-tuning overwrites only what it wrote)."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import CheckpointError, ConfigError

CHECKPOINT = "checkpoint"  # OUT/checkpoint: the last finished epoch


FORMAT = "vitzoo-finetune-checkpoint"


WEIGHTS_FILE = "model.safetensors"  # the model's weights, as save_pretrained writes them


TENSORS_FILE = "state.safetensors"  # optimizer state and RNG states


STATE_FILE = "state.json"  # epoch, log, scheduler, optimizer groups, Python RNG, the run's identity


OLD_STATE_FILE = "state.pt"  # what vitzoo wrote before: a pickle, which is never loaded


OUTPUT_NAMES = ("model.safetensors", "config.json", "log.json", f"{CHECKPOINT}/")  # what fine-tuning writes in OUT


@dataclass
class Checkpoint:
    """A checkpoint as read from disk: ``state`` (the JSON: epoch, log, run, optimizer groups, scheduler, Python
    RNG), ``tensors`` (optimizer state ``optimizer.<param>.<name>``, ``rng.torch``, ``rng.cuda.<i>``) and
    ``weights``."""

    folder: Path
    state: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    weights: dict[str, torch.Tensor]


def _beside(folder: Path, suffix: str) -> Path:
    return folder.with_name(folder.name + suffix)


def _synced(path: Path) -> None:
    with path.open("rb+") as f:
        os.fsync(f.fileno())


def save_checkpoint(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: Mapping[str, Any],
) -> None:
    """Write a checkpoint (safetensors and JSON, see ``Checkpoint``) to ``folder``.

    The files are written, complete, into ``FOLDER.partial``, which then replaces ``folder`` (the old one is moved
    to ``FOLDER.previous`` and deleted after): wherever the process stops, a complete checkpoint is left,
    ``folder`` or, between the two renames, ``FOLDER.previous`` (which ``load_checkpoint`` reads).
    """
    partial, previous = _beside(folder, ".partial"), _beside(folder, ".previous")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    opt = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors |= {f"rng.cuda.{i}": t for i, t in enumerate(torch.cuda.get_rng_state_all())}
    scalars: dict[str, dict[str, Any]] = {}
    for param, entries in opt["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{param}.{name}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(param), {})[name] = value
    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    document = {
        "format": FORMAT,
        **state,
        "optimizer": {"param_groups": opt["param_groups"], "state": scalars},
        "scheduler": scheduler.state_dict(),
        "python_rng": random.getstate(),
    }
    save_file(weights, str(partial / WEIGHTS_FILE))
    save_file(tensors, str(partial / TENSORS_FILE))
    (partial / STATE_FILE).write_text(json.dumps(document))
    for name in (WEIGHTS_FILE, TENSORS_FILE, STATE_FILE):
        _synced(partial / name)
    if folder.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(folder, previous)
    os.replace(partial, folder)
    shutil.rmtree(previous, ignore_errors=True)


def load_checkpoint(folder: Path) -> Checkpoint | None:
    """The checkpoint in ``folder`` (or the complete one a save cut short left in ``FOLDER.previous``); None when
    there is none. Reads JSON and safetensors only: nothing is unpickled, whatever the files hold."""
    if not folder.exists():
        previous = _beside(folder, ".previous")
        if not (previous / STATE_FILE).is_file():
            return None
        folder = previous
    fix = f"delete {folder} to start over (its finished epochs are lost), or pass another --out"
    if not (folder / STATE_FILE).is_file():
        if (folder / OLD_STATE_FILE).is_file():
            raise CheckpointError(
                f"{folder} was written by an older vitzoo ({OLD_STATE_FILE}, a pickle, which is never loaded); {fix}"
            )
        raise CheckpointError(f"{folder} has no {STATE_FILE}: it is not a vitzoo checkpoint, or one cut short; {fix}")
    try:
        state = json.loads((folder / STATE_FILE).read_text())
        tensors = load_file(folder / TENSORS_FILE)
        weights = load_file(folder / WEIGHTS_FILE)
    except (OSError, ValueError, SafetensorError) as err:
        raise CheckpointError(
            f"{folder} cannot be read, it is truncated or corrupt ({_first_line(err)}); {fix}"
        ) from err
    if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("run"), dict):
        raise CheckpointError(f"{folder / STATE_FILE} is not the state of a vitzoo fine-tune checkpoint; {fix}")
    return Checkpoint(folder, state, tensors, weights)


def restore(
    checkpoint: Checkpoint,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[int, list[dict[str, Any]]]:
    """Load a checkpoint's weights, optimizer, scheduler and RNG states; returns (finished epochs, log)."""
    state, tensors = checkpoint.state, checkpoint.tensors
    try:
        model.load_state_dict(checkpoint.weights)
        opt_state: dict[int, dict[str, Any]] = {int(k): dict(v) for k, v in state["optimizer"]["state"].items()}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, param, name = key.split(".", 2)
                opt_state.setdefault(int(param), {})[name] = value
        groups = [
            {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in group.items()}
            for group in state["optimizer"]["param_groups"]
        ]
        optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(tensors["rng.torch"])
        cuda = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in tensors]
        if cuda and len(cuda) == torch.cuda.device_count():  # the same GPUs; elsewhere their RNG is not used
            torch.cuda.set_rng_state_all(cuda)
        version, internal, gauss = state["python_rng"]
        random.setstate((version, tuple(internal), gauss))
        epoch, log = int(state["epoch"]), list(state["log"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as err:
        raise CheckpointError(
            f"{checkpoint.folder} does not fit this run ({_first_line(err)}); delete it to start over, or pass "
            "another --out"
        ) from err
    return epoch, log


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def check_out(out: Path) -> None:
    """Refuse an ``out`` that holds anything but a fine-tune output, before anything is written: fine-tuning
    overwrites only what it wrote there. New, empty, or with a ``checkpoint/`` or a fine-tune ``log.json`` is fine."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder (a new or empty one, or an earlier run's --out)")
    names = {p.name for p in out.iterdir()}
    ours = {CHECKPOINT, f"{CHECKPOINT}.previous"}
    if not names - {f"{CHECKPOINT}.partial"} or names & ours or _is_log(out / "log.json"):
        return
    raise ConfigError(
        f"--out {out} is not empty and holds no vitzoo fine-tune output (no {CHECKPOINT}/ or log.json); fine-tuning "
        f"writes {', '.join(OUTPUT_NAMES)} there: pass a new or empty folder"
    )


def _is_log(path: Path) -> bool:
    """Whether ``path`` is a ``log.json`` written by ``finetune``: a list of epochs with their training loss."""
    try:
        log = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(log, list) and all(isinstance(e, dict) and {"epoch", "train_loss"} <= e.keys() for e in log)
