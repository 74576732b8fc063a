"""Checkpoint tensors into a model, strictly, with a report of everything that was adapted.

Path of the data (``vitzoo.source`` has located the files): tensors (safetensors' reader; ``.bin``/``.pth`` with
``weights_only=True``; ``.npz`` without pickle) -> vitzoo names (``vitzoo.formats``) ->
adapted to the model (zeroed head / unused pre-logits dropped, head re-initialised, pos-embed and patch-embed
resampled, dtype cast) -> assigned (``assign=True`` into a meta-device model: no second copy, no wasted init).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from ..errors import CheckpointError
from ..models.image_text import ImageTextModel
from ..models.pos_embed import resample_patch_embed, resample_pos_embed
from ..models.pretrained_cfg import LoadReport, PretrainedCfg
from ..models.vit import VisionTransformer
from .formats import Converted

logger = logging.getLogger("vitzoo")

OPEN_CLIP_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")  # open_clip's hub export
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", *OPEN_CLIP_WEIGHT_FILES)  # preference order in a repo/folder
CONFIG_FILES = ("config.json", "open_clip_config.json")  # a checkpoint's config (timm/transformers/vitzoo, open_clip)
_REFETCH = "Delete it (for a Hub file: its blob in the HF cache) and download it again"


# ------------------------------------------------------------------------------------------------ reading
def read_file(path: str | Path) -> dict[str, Any]:
    """Tensors (or numpy arrays for .npz) of one checkpoint file; never runs pickled code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            return load_file(path)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=_is_zip(path))
    except pickle.UnpicklingError as err:
        if "unsupported global" not in str(err).lower():  # no object to refuse: the bytes are not a valid pickle
            raise CheckpointError(f"{path}: cannot be read, it is truncated or corrupt ({err}). {_REFETCH}") from err
        raise CheckpointError(
            f"{path}: refused to unpickle: the file holds objects other than tensors (pickled code is never run). "
            "If you trust it, convert it to safetensors yourself; otherwise use the model.safetensors file"
        ) from err
    except Exception as err:  # safetensors, zip and torch errors have no common base class
        raise CheckpointError(
            f"{path}: cannot be read as a {suffix or 'torch'} checkpoint, it is truncated or corrupt ({err}). "
            + _REFETCH
        ) from err
    for key in ("state_dict", "model", "module", "state_dict_ema"):  # training-checkpoint wrappers
        if (
            isinstance(obj, dict)
            and isinstance(obj.get(key), dict)
            and not any(torch.is_tensor(v) for v in obj.values())
        ):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise CheckpointError(f"{path}: not a state dict (a mapping of names to tensors)")
    return obj


def _is_zip(path: Path) -> bool:
    return zipfile.is_zipfile(path)  # torch's current format; legacy files cannot be memory-mapped


def weights_in(folder: Path, names: Sequence[str] = WEIGHT_FILES) -> Path:
    """The weights file of a folder: the first of ``names`` it has, else (for the default names) its first .npz."""
    for name in names:
        if (folder / name).is_file():
            return folder / name
    default = tuple(names) == WEIGHT_FILES
    npz = sorted(folder.glob("*.npz")) if default else []
    if npz:
        return npz[0]
    raise CheckpointError(f"{folder}: no {' / '.join(names)}{' or .npz' if default else ''} file in this folder")


def read_config(folder_or_file: str | Path, filename: str = "config.json") -> dict[str, Any] | None:
    """The ``config.json`` (or another JSON ``filename``) beside a weights file or in a folder, if there is one."""
    path = Path(folder_or_file)
    path = path / filename if path.is_dir() else path.with_name(filename)
    if not path.is_file():
        return None
    try:
        config: dict[str, Any] = json.loads(path.read_text())
    except ValueError as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: not a JSON object")
    return config


def find_config(folder_or_file: str | Path) -> dict[str, Any] | None:
    """The first of ``CONFIG_FILES`` in a folder or beside a weights file, if there is one."""
    for name in CONFIG_FILES:
        config = read_config(folder_or_file, name)
        if config is not None:
            return config
    return None


# ----------------------------------------------------------------------------------------------- adapting
def _arch_hint(sd: Mapping[str, torch.Tensor]) -> str:
    norm = sd.get("norm.weight", sd.get("fc_norm.weight"))
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    return f"the checkpoint has width {norm.shape[-1] if norm is not None else '?'} and {depth} blocks"


def adapt_state_dict(
    model: VisionTransformer,
    sd: dict[str, torch.Tensor],
    report: LoadReport,
    ckpt_grid: tuple[int, int] | None = None,
    resample: Callable[[torch.Tensor, tuple[int, int]], torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Fit converted tensors to ``model``: drop, resample and report; raise on shapes that cannot fit.

    ``resample``: the checkpoint format's own way to fit its position table to the model's grid (C-RADIO's); by
    default the table is resampled with the model's ``pos_embed_interpolation``."""
    cfg = model.config
    expected = dict(model.state_dict(keep_vars=True))

    head_w = sd.get("head.weight")
    if head_w is not None and not torch.count_nonzero(head_w):
        for k in ("head.weight", "head.bias"):
            if sd.pop(k, None) is not None:
                report.dropped[k] = "zeroed head (the original ImageNet-21k release is for fine-tuning only)"
    if "pre_logits.fc.weight" in sd and "pre_logits.fc.weight" not in expected:
        for k in ("pre_logits.fc.weight", "pre_logits.fc.bias"):
            sd.pop(k, None)
            report.dropped[k] = "pre-logits layer not used (create the model with representation_size to keep it)"
    for k in ("head.weight", "head.bias", "head_dist.weight", "head_dist.bias"):
        if k in sd and k not in expected:
            report.dropped[k] = "num_classes=0: the model has no head"
            sd.pop(k)
        elif k in expected and (k not in sd or sd[k].shape != expected[k].shape):
            had = f"checkpoint head {tuple(sd[k].shape)}" if k in sd else "no head in the checkpoint"
            report.reinitialized[k] = f"zeros for {cfg.num_classes} classes ({had}), as the paper does for fine-tuning"
            sd.pop(k, None)

    for k in [k for k in sd if k.endswith((".attn.q_bias", ".attn.v_bias")) and k not in expected]:
        if not torch.count_nonzero(sd[k]):  # timm: DINOv3 B/L/H files have all-zero q/v biases
            report.dropped[k] = "all-zero q/v bias, and the model has none (qkv_bias=False): the same computation"
            sd.pop(k)

    pos = sd.get("pos_embed")
    if (
        pos is not None
        and "pos_embed" in expected
        and pos.shape != expected["pos_embed"].shape
        and pos.shape[-1] == cfg.embed_dim
    ):
        if resample is not None:
            new = resample(pos, cfg.grid_size)
        else:
            new = resample_pos_embed(
                pos,
                cfg.grid_size,
                ckpt_grid,
                cfg.pos_embed_prefix_tokens,
                cfg.pos_embed_interpolation,
                cfg.pos_embed_antialias,
            )
        report.resized["pos_embed"] = (tuple(pos.shape), tuple(new.shape))
        sd["pos_embed"] = new
    kernel = sd.get("patch_embed.proj.weight")
    target = expected["patch_embed.proj.weight"]
    if kernel is not None and kernel.shape[:2] == target.shape[:2] and kernel.shape[2:] != target.shape[2:]:
        sd["patch_embed.proj.weight"] = resample_patch_embed(kernel, target.shape[2:])
        report.resized["patch_embed.proj.weight"] = (tuple(kernel.shape), tuple(target.shape))

    wrong = [
        (k, tuple(v.shape), tuple(expected[k].shape))
        for k, v in sd.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if wrong:
        listed = "; ".join(f"{k}: checkpoint {a} vs model {b}" for k, a, b in wrong[:6])
        raise CheckpointError(
            f"{report.source}: checkpoint does not fit this model ({listed}); {_arch_hint(sd)}, the model has "
            f"width {cfg.embed_dim} and {cfg.depth} blocks. Create the matching architecture (vitzoo.list_models())"
        )
    return sd


def _init_missing(name: str, p: torch.Tensor) -> None:
    """Initialise a tensor the checkpoint did not provide (head: zeros, paper App. B.1.1; norms: ones/zeros)."""
    with torch.no_grad():
        if name.startswith(("head.", "head_dist.")) or name.endswith(".bias"):
            p.zero_()
        elif "norm" in name:
            p.fill_(1.0)
        else:
            nn.init.trunc_normal_(p, std=0.02)


def load_into(
    model: VisionTransformer,
    converted: Converted,
    *,
    label: str,
    files: Iterable[str] = (),
    facts: PretrainedCfg | None = None,
    strict: bool = True,
    device: torch.device | str | None = None,
) -> LoadReport:
    """Adapt converted tensors to ``model`` and assign them; return (and log) what was done.

    ``facts`` (the checkpoint's input size) tell the grid its position table was trained for. A model on the meta
    device receives the checkpoint's tensors themselves (cast to the model's dtype and moved to ``device``, default
    CPU); a materialised model has them copied into its parameters.
    """
    cfg = model.config
    report = LoadReport(
        source=label,
        files=list(files),
        format=converted.format,
        notes=list(converted.notes),
        dropped=dict(converted.dropped),  # what the conversion left out (training-only tokens, a text tower)
    )
    grid = checkpoint_grid(converted, facts, cfg.patch_size, cfg.pos_embed_prefix_tokens)
    sd = adapt_state_dict(model, dict(converted.state_dict), report, grid, converted.resample_pos_embed)
    assign(model, sd, report, strict=strict, device=device)
    level = logging.WARNING if (report.missing or report.unexpected) else logging.INFO
    logger.log(level, "%s", report)
    return report


def assign(
    model: nn.Module,
    sd: dict[str, torch.Tensor],
    report: LoadReport,
    *,
    strict: bool = True,
    device: torch.device | str | None = None,
    skip: str | None = None,
) -> None:
    """Assign tensors already under ``model``'s names (a meta-device model receives them, cast to its dtypes; a
    materialised one has them copied in); record the counts, casts and misses in ``report``. The model's names
    starting with ``skip`` are loaded by someone else (the image tower of a two-tower model) and not expected."""
    expected = {k: v for k, v in model.state_dict(keep_vars=True).items() if skip is None or not k.startswith(skip)}
    missing = [k for k in expected if k not in sd and k not in report.reinitialized]
    unexpected = [k for k in sd if k not in expected]
    if strict and (missing or unexpected):
        raise CheckpointError(
            f"{report.source}: strict load failed: missing {missing[:8]}, unexpected {unexpected[:8]}"
            f" ({len(missing)} missing, {len(unexpected)} unexpected). Pass strict=False to load anyway with a report"
        )
    report.missing += missing
    report.unexpected += unexpected
    for k in unexpected:
        sd.pop(k)

    on_meta = any(t.is_meta for t in expected.values())
    if device is None:
        device = next((t.device for t in expected.values() if not t.is_meta), torch.device("cpu"))
    for k, v in sd.items():
        dtype = expected[k].dtype
        if v.dtype != dtype:
            report.cast[k] = (str(v.dtype).removeprefix("torch."), str(dtype).removeprefix("torch."))
        sd[k] = v.to(device=device, dtype=dtype)
    model.load_state_dict(sd, strict=False, assign=on_meta)
    report.loaded += len(sd)
    # Materialise and initialise what the checkpoint did not provide (re-initialised head, strict=False misses).
    for name in [k for k in report.reinitialized if k in expected] + missing:
        module_name, _, attr = name.rpartition(".")
        module = model.get_submodule(module_name)
        current = getattr(module, attr)
        if current.is_meta:
            fresh = nn.Parameter(torch.empty_like(current, device=device), requires_grad=current.requires_grad)
            setattr(module, attr, fresh)
            current = fresh
        _init_missing(name, current)


def checkpoint_grid(
    converted: Converted, facts: PretrainedCfg | None, patch: tuple[int, int], prefix: int
) -> tuple[int, int] | None:
    """The patch grid the checkpoint's position table was trained for (None: square, inferred from its length)."""
    if facts is not None:
        kernel = converted.state_dict.get("patch_embed.proj.weight")
        ph, pw = tuple(kernel.shape[2:]) if kernel is not None else patch
        grid = (facts.input_size[1] // ph, facts.input_size[2] // pw)
        pos = converted.state_dict.get("pos_embed")
        if pos is None or pos.shape[1] == prefix + grid[0] * grid[1]:
            return grid
    return None


# ------------------------------------------------------------------------------------------------ identity
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DIGESTS: dict[tuple[str, int, int], str] = {}  # (real path, size, mtime_ns) -> sha256, for this process


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, hex. A file in the Hugging Face cache is a link to ``blobs/<sha256>`` (every
    weights file is stored with Git LFS, whose object name is that hash), so its name is read, not its bytes; other
    files are hashed once per process and (size, modification time)."""
    real = os.path.realpath(path)
    name = os.path.basename(real)
    if _SHA256.fullmatch(name) and os.path.basename(os.path.dirname(real)) == "blobs":
        return name
    try:
        st = os.stat(real)
        key = (real, st.st_size, st.st_mtime_ns)
        if key not in _DIGESTS:
            h = hashlib.sha256()
            with open(real, "rb") as f:
                while chunk := f.read(1 << 24):
                    h.update(chunk)
            _DIGESTS[key] = h.hexdigest()
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read the weights to fingerprint them ({err})") from err
    return _DIGESTS[key]


def tensors_digest(tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    """The SHA-256 of named tensors: each name, dtype, shape and bytes, in the order given."""
    h = hashlib.sha256()
    for name, t in tensors:
        h.update(f"{name}\t{str(t.dtype).removeprefix('torch.')}\t{tuple(t.shape)}\n".encode())
        if t.numel():
            flat = t.detach().contiguous().cpu().reshape(-1)
            h.update(flat.view(torch.uint8).numpy().data)  # the bytes of any dtype (numpy has no bfloat16)
    return h.hexdigest()


def weights_digest(model: VisionTransformer | ImageTextModel) -> str:
    """What identifies ``model``'s weights (an image tower, or both towers of an image-text model), for the jobs that
    resume (embed, fine-tune, the probe's cache): the SHA-256 of the checkpoint file it was loaded from
    (``model.load_report.files``), or, for a model loaded from no file (random init, a state dict), of its tensors.
    Changes made to a loaded model in memory are not seen."""
    report = model.load_report
    if report is not None and report.files:
        return "+".join(file_digest(f) for f in report.files)
    return tensors_digest(model.state_dict().items())
