"""Where the forward of a batch runs (``runtime=``), for every command that runs a model over images.

- ``"torch"`` (the default): eager PyTorch.
- ``"compile"``: ``torch.compile`` (Inductor) with freezing, which folds the weights into the graph and pre-packs them
  for oneDNN. A short last batch is padded to the batch size, so it does not compile again; torch caches the
  compiled code on disk, so the next process compiles in less time.
- ``"onnxruntime"``: the feature function exported to ONNX (dynamic batch, fixed image size) once per model, weights,
  pool, size and dtype, cached under ``cache_dir()/onnx``, run with every graph optimisation and as many threads as
  PyTorch uses (the decoding workers run one thread each). fp32 only (onnxruntime has no bf16 kernels on CPU).
- ``"auto"``: the faster of eager and onnxruntime on the CPU (of eager and compile on a GPU; ``available_runtimes``
  says why) among those installed that give eager's features (cosine at least ``COSINE_MIN``, max difference within
  ``REL_MAX`` of the largest value); measured once per machine, model shape, pool, size, batch and dtype on a random
  batch, and remembered in ``cache_dir()/runtimes.json``.

``dtype="int8"``: onnxruntime's dynamic quantisation of the exported graph (weights int8, activations quantised per
batch); never equal to fp32, its cost per family is in docs/performance.md. Any other runtime runs the model at its
own dtype. Every runtime but eager is checked against eager once, on two random images, before it runs: a runtime that
does not give eager's numbers (int8: a cosine under ``INT8_COSINE_MIN``) is refused, never used silently.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.export import Dim

from .._version import __version__
from ..atomic import atomic_write_text
from ..choices import INT8, RUNTIMES
from ..errors import ConfigError, VitzooError
from ..export import write_onnx
from ..models.dtypes import resolve_dtype
from ..weights.loading import tensors_digest
from .outputs import read_json
from .transforms import resolve_data_config

logger = logging.getLogger("vitzoo")

COSINE_MIN = 0.99999  # another runtime's fp32 features against eager's, per row
REL_MAX = 1e-4  # its largest difference, relative to the largest value
LOW_PRECISION_COSINE_MIN = 0.999  # bf16/fp16: compiled kernels round differently from eager's
INT8_COSINE_MIN = 0.99  # int8 against fp32: below this the quantised graph is broken, not just rounded

Fn = Callable[[torch.Tensor], dict[str, torch.Tensor]]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hold back what the exporters, the quantiser and Inductor log below ERROR (pages of INFO lines, advice on
    pre-processing, no CUDA found): vitzoo says what it does in one line instead."""
    names = ("", "onnx_ir", "onnxscript", "torch.onnx", "torch.utils.cpp_extension", "torch._inductor")
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def cache_dir() -> Path:
    """Where vitzoo keeps what it derives from a model (exported graphs, the runtime choices): ``$VITZOO_CACHE``, else
    ``$XDG_CACHE_HOME/vitzoo``, else ``~/.cache/vitzoo``."""
    if os.environ.get("VITZOO_CACHE"):
        return Path(os.environ["VITZOO_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vitzoo"


def check_runtime(runtime: str, dtype: torch.dtype | str | None) -> bool:
    """Refuse an unknown ``runtime`` or a pairing that cannot run; return whether ``dtype`` asks for int8."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    int8 = dtype == INT8
    if int8 and runtime in ("torch", "compile"):
        raise ConfigError(
            f"dtype int8 runs through onnxruntime's dynamic quantisation; use runtime 'onnxruntime' or 'auto', not "
            f"{runtime!r}"
        )
    if runtime == "onnxruntime" and not int8 and resolve_dtype(dtype) not in (None, torch.float32):
        raise ConfigError("runtime 'onnxruntime' runs fp32 (or int8) on CPU; for bf16 use runtime 'compile'")
    return int8


def model_dtype(dtype: torch.dtype | str | None) -> torch.dtype | str | None:
    """The dtype the PyTorch model runs at for ``dtype``: int8 quantises an fp32 graph."""
    return torch.float32 if dtype == INT8 else dtype


@dataclass
class Runner:
    """A feature function (a batch to a dict of CPU tensors) and the runtime that runs it."""

    runtime: str  # torch, compile or onnxruntime: what runs
    int8: bool
    fn: Fn

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.fn(x)

    @property
    def label(self) -> str:
        """What the progress line shows."""
        return f"{self.runtime} int8" if self.int8 else self.runtime


class FeatureModule(torch.nn.Module):
    """``fn`` as a module whose outputs are a tuple in ``keys`` order, for the exporters."""

    def __init__(self, model: torch.nn.Module, fn: Fn, keys: list[str]) -> None:
        super().__init__()
        self.model, self.fn, self.keys = model, fn, keys

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.fn(x)
        return tuple(out[k] for k in self.keys)


def make_runner(
    model: torch.nn.Module,
    fn: Fn,
    runtime: str = "torch",
    *,
    int8: bool = False,
    what: Mapping[str, Any],
    batch_shape: tuple[int, ...],
) -> Runner:
    """``fn`` (the feature function of ``model``, already at its dtype and device) bound to ``runtime``.

    ``what`` names what ``fn`` computes besides the model (pool, layers; part of the cache keys); ``batch_shape`` is
    (B, C, H, W) of the batches to come (the shorter last one is padded). ``"torch"`` returns ``fn`` as it is.
    """
    if runtime == "torch":
        return Runner("torch", False, fn)
    device = next(model.parameters()).device
    if device.type != "cpu" and (runtime == "onnxruntime" or int8):
        raise ConfigError(f"runtime 'onnxruntime' and dtype int8 run on the CPU; this model is on {device}")
    check = _random_batch(model, (2, *batch_shape[1:]))
    with torch.inference_mode():
        reference = fn(check)
    identity = {**_identity(model, what, batch_shape, int8), "outputs": list(reference)}  # the graph's output names
    if runtime == "auto":
        chosen = _auto(model, fn, identity, batch_shape, int8, reference, check)
    else:
        chosen = _build(runtime, model, fn, identity, batch_shape, int8, list(reference))
        _check(chosen, reference, check, model)
    logger.info("runtime: %s", chosen.label)
    return chosen


def runner_for(
    model: torch.nn.Module, fn: Fn, runtime: str, *, int8: bool, what: Mapping[str, Any], batch_size: int
) -> Runner:
    """``make_runner`` for batches of ``batch_size`` images at the size of ``model``'s data config."""
    shape = (batch_size, *resolve_data_config(model).input_size)  # type: ignore[arg-type]
    return make_runner(model, fn, runtime, int8=int8, what=what, batch_shape=shape)


# ------------------------------------------------------------------------------------------------- the runtimes


def _build(
    runtime: str,
    model: torch.nn.Module,
    fn: Fn,
    identity: dict[str, Any],
    batch_shape: tuple[int, ...],
    int8: bool,
    keys: list[str],
) -> Runner:
    if runtime == "torch":
        return Runner("torch", False, fn)
    if runtime == "compile":
        return Runner("compile", False, _compiled(fn, batch_shape[0]))
    if runtime == "onnxruntime":
        path = onnx_file(model, fn, identity, batch_shape, keys, int8)
        return Runner("onnxruntime", int8, _session(path, keys))
    raise ConfigError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")


def _compiled(fn: Fn, batch: int) -> Fn:
    """``torch.compile`` of ``fn`` with Inductor's freezing, for batches of ``batch`` images (one compiled graph:
    longer batches run in pieces, shorter ones padded with zeros, whose rows are dropped)."""
    compiled = torch.compile(fn, options={"freezing": True}, dynamic=False)

    def run(x: torch.Tensor) -> dict[str, torch.Tensor]:
        parts: list[dict[str, torch.Tensor]] = []
        for part in torch.split(x, batch):
            n = len(part)
            full = part if n == batch else torch.cat([part, part.new_zeros(batch - n, *part.shape[1:])])
            parts.append({key: value[:n] for key, value in compiled(full).items()})
        return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}

    return run


def onnx_file(
    model: torch.nn.Module,
    fn: Fn,
    identity: dict[str, Any],
    batch_shape: tuple[int, ...],
    keys: list[str],
    int8: bool,
) -> Path:
    """The ONNX file of ``fn`` (int8: quantised), from the cache or exported into it now."""
    digest = hashlib.sha256(json.dumps({**identity, "int8": False}, sort_keys=True).encode()).hexdigest()[:24]
    folder = cache_dir() / "onnx" / digest
    path = folder / ("model.int8.onnx" if int8 else "model.onnx")
    if path.is_file():
        return path
    if not (folder / "model.onnx").is_file():
        logger.info("exporting the model to ONNX once (cached in %s)", folder)
        with _quiet():
            _in_new_folder(folder, lambda tmp: _export(model, fn, batch_shape, keys, tmp / "model.onnx"))
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory(dir=folder) as tmp, _quiet():
            quantize_dynamic(folder / "model.onnx", Path(tmp) / path.name, weight_type=QuantType.QInt8)
            os.replace(Path(tmp) / path.name, path)  # one file: MatMul weights at int8 are under 2 GB
    return path


def _in_new_folder(folder: Path, write: Callable[[Path], Any]) -> None:
    """``write`` into a temporary folder renamed to ``folder`` when done: readers see all of it or none."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        write(tmp)
        os.replace(tmp, folder)
    except OSError:
        if not (folder / "model.onnx").is_file():  # another process renamed its copy first: use that one
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _export(model: torch.nn.Module, fn: Fn, batch_shape: tuple[int, ...], keys: list[str], out: Path) -> None:
    example = _random_batch(model, (2, *batch_shape[1:]))
    module = FeatureModule(model, fn, keys).eval()
    shapes = {"x": {0: Dim("batch", min=1, max=65536)}}
    write_onnx(module, example, shapes, ("pixel_values", *keys), 20, out)


def _session(path: Path, keys: list[str]) -> Fn:
    """An onnxruntime session of ``path`` (every graph optimisation, PyTorch's thread count) as a feature function."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ConfigError("runtime 'onnxruntime' needs onnxruntime: pip install 'vitzoo[export]'") from e
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    size = tuple(session.get_inputs()[0].shape[2:])

    def run(x: torch.Tensor) -> dict[str, torch.Tensor]:
        if tuple(x.shape[2:]) != size:
            raise ConfigError(
                f"runtime onnxruntime runs the image size it was exported at ({size[0]}x{size[1]}); this batch is "
                f"{x.shape[2]}x{x.shape[3]}: resize the inputs or use runtime 'torch'"
            )
        outs = session.run(keys, {name: x.float().contiguous().numpy()})
        return {key: torch.from_numpy(out) for key, out in zip(keys, outs, strict=True)}

    return run


# ------------------------------------------------------------------------------------------- checks and auto


def _random_batch(model: torch.nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    param = next(model.parameters())
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    return x.to(device=param.device, dtype=param.dtype)


def agreement(out: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor]) -> tuple[float, float]:
    """The smallest cosine between rows of ``out`` and ``reference`` and the largest difference relative to the
    largest value of ``reference``, over every output."""
    cosine, relative = 1.0, 0.0
    for key, ref in reference.items():
        a, b = out[key].float().flatten(1), ref.float().flatten(1)
        cosine = min(cosine, torch.nn.functional.cosine_similarity(a, b, dim=1).min().item())
        relative = max(relative, ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item())
    return cosine, relative


def _equal(runner: Runner, reference: Mapping[str, torch.Tensor], x: torch.Tensor, model: torch.nn.Module) -> str:
    """'' when ``runner`` gives ``reference`` on ``x``, else what differs."""
    with torch.inference_mode(), _quiet():  # the first call compiles
        cosine, relative = agreement(runner(x), reference)
    if runner.int8:
        ok = cosine >= INT8_COSINE_MIN
    elif next(model.parameters()).dtype == torch.float32:
        ok = cosine >= COSINE_MIN and relative <= REL_MAX
    else:
        ok = cosine >= LOW_PRECISION_COSINE_MIN
    if runner.int8:
        logger.info("int8: cosine %.6f to fp32 on a random batch", cosine)
    return "" if ok else f"cosine {cosine:.7f}, max difference {relative:.2e} of the largest value"


def _check(runner: Runner, reference: Mapping[str, torch.Tensor], x: torch.Tensor, model: torch.nn.Module) -> None:
    differs = _equal(runner, reference, x, model)
    if differs:
        raise VitzooError(
            f"runtime {runner.label} does not give eager PyTorch's features for this model ({differs}); use runtime "
            "'torch' (and report it: https://github.com/vitzoo/vitzoo/issues)"
        )


def _seconds(runner: Runner, x: torch.Tensor) -> float:
    with torch.inference_mode():
        runner(x)  # warm up (compiles, allocates)
        start = time.perf_counter()
        runner(x)
        return time.perf_counter() - start


def available_runtimes(int8: bool, device: torch.device) -> list[str]:
    """The runtimes ``auto`` chooses from: on the CPU eager and onnxruntime (where the export extra is installed), on a
    GPU eager and ``torch.compile``; for int8 onnxruntime alone.

    ``compile`` is left out on the CPU because it loses end to end there: its forward gained 1.05-1.2x over eager in
    docs/performance.md, onnxruntime's as much, but it starts 10-20 s slower even from torch's compile cache, and
    ``vitzoo embed --runtime compile`` ran 0.82x eager on 256 photos where onnxruntime ran 1.05x."""
    found = [] if int8 else ["torch"]
    if device.type != "cpu":
        return [] if int8 else [*found, "compile"]
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return found
    return [*found, "onnxruntime"]


def _auto(
    model: torch.nn.Module,
    fn: Fn,
    identity: dict[str, Any],
    batch_shape: tuple[int, ...],
    int8: bool,
    reference: dict[str, torch.Tensor],
    check: torch.Tensor,
) -> Runner:
    """The fastest runtime that gives eager's features: remembered per machine and model shape, else measured now on
    a random batch of ``batch_shape``."""
    candidates = available_runtimes(int8, next(model.parameters()).device)
    if not candidates:
        raise ConfigError("dtype int8 needs onnxruntime, onnx and onnxscript: pip install 'vitzoo[export]'")
    if resolve_dtype(identity["dtype"]) != torch.float32:  # onnxruntime runs fp32 only (bf16: eager)
        candidates = [r for r in candidates if r != "onnxruntime"]
    key = hashlib.sha256(json.dumps(_speed_key(identity, batch_shape[0]), sort_keys=True).encode()).hexdigest()
    choices_file = cache_dir() / "runtimes.json"
    remembered = read_json(choices_file).get(key, {}).get("runtime")
    if remembered in candidates:
        runner = _build(remembered, model, fn, identity, batch_shape, int8, list(reference))
        if not _equal(runner, reference, check, model):
            return runner
        logger.warning("runtime %s gave other features than eager for this model; measuring the others", remembered)
    x = _random_batch(model, batch_shape)
    seconds: dict[str, float] = {}
    built: dict[str, Runner] = {}
    for name in candidates:
        try:
            runner = _build(name, model, fn, identity, batch_shape, int8, list(reference))
            differs = _equal(runner, reference, check, model)
            if differs:
                logger.warning("runtime %s gives other features than eager (%s); not using it", name, differs)
                continue
            seconds[name], built[name] = _seconds(runner, x), runner
        except Exception as err:  # a runtime that cannot run this model here is not a choice (compiler, opset)
            logger.warning("runtime %s cannot run this model here (%s); not using it", name, str(err).splitlines()[0])
    if not seconds:
        raise VitzooError("no runtime could run this model here at int8; use dtype fp32")
    best = min(seconds, key=seconds.__getitem__)
    logger.info("runtime auto: %s", ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()))
    table = read_json(choices_file)
    table[key] = {"runtime": best, "seconds": seconds, "identity": _speed_key(identity, batch_shape[0])}
    choices_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(choices_file, json.dumps(table, indent=1, sort_keys=True))
    return built[best]


def _identity(
    model: torch.nn.Module, what: Mapping[str, Any], batch_shape: tuple[int, ...], int8: bool
) -> dict[str, Any]:
    """What an exported graph depends on: the weights as they are in memory (the SHA-256 of the tensors, not of the
    file they came from: a model changed in memory is exported again), the config, what is computed, the image size,
    the dtype and the versions of vitzoo and torch."""
    config = json.dumps(dataclasses.asdict(model.config), sort_keys=True)  # type: ignore[call-overload]
    return {
        "weights": tensors_digest(model.state_dict().items()),
        "config": hashlib.sha256(config.encode()).hexdigest(),
        "what": dict(what),
        "size": list(batch_shape[1:]),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "int8": int8,
        "vitzoo": __version__,
        "torch": torch.__version__,
    }


def _speed_key(identity: Mapping[str, Any], batch: int) -> dict[str, Any]:
    """What a runtime's speed depends on: the identity without the weights, with the machine and batch size."""
    return {
        **{k: v for k, v in identity.items() if k != "weights"},
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "batch": batch,
        "threads": torch.get_num_threads(),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
