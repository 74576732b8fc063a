"""Deployable graphs of a model: ONNX (onnxruntime, TensorRT, ...) and ``torch.export`` programs (``.pt2``).

A fixed size bakes the position table for that size into the graph. ``dynamic_size=True`` keeps the image height
and width symbolic (any multiple of the patch size): the graph resamples the learned position table with the
model's interpolation, which ``torch.export`` traces as ``F.interpolate`` and ONNX expresses as one ``Resize`` node
(opset 18+: bicubic with ``antialias``, bilinear, nearest, "jax", "torchvision"). ``"area"`` becomes an adaptive
average pool whose output size ONNX fixes at export, so it is refused for dynamic sizes. RoPE (DINOv3) is computed
from the symbolic grid. The batch size is always dynamic.

``export_text_onnx`` writes a text tower (CLIP, SigLIP) at its fixed context length: token ids in, the text
embedding out.

The ONNX exporter is PyTorch's (``torch.onnx.export(dynamo=True)``), which needs ``onnx`` and ``onnxscript``:
``pip install 'vitzoo[export]'``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch.export import Dim, ExportedProgram

from .choices import EXPORT_FORMATS
from .errors import ConfigError
from .models.config import to_pair
from .models.dtypes import resolve_dtype
from .models.image_text import ImageTextModel
from .models.text import TextTransformer
from .models.vit import VisionTransformer

FORMATS = EXPORT_FORMATS
MAX_GRID = 256  # largest patch grid per axis a dynamic-size graph accepts (4096 px at patch 16)
INPUT_NAME, OUTPUT_NAME = "pixel_values", "output"
TEXT_INPUT_NAME, TEXT_OUTPUT_NAME = "input_ids", "text_embeds"


def prepare(
    model: VisionTransformer,
    img_size: int | tuple[int, int] | None = None,
    dynamic_size: bool = False,
    dtype: str = "fp32",
) -> tuple[VisionTransformer, torch.Tensor, dict[str, dict[int, Dim]]]:
    """An eval-mode copy of ``model`` ready to trace, an example input and the ``dynamic_shapes`` of ``torch.export``.

    Fixed size: the copy is ``set_input_size(img_size)`` (default: the model's), so its table is baked in.
    Dynamic size: the copy gets ``dynamic_img_size=True``; ``img_size`` only sets the example input.
    """
    torch_dtype = resolve_dtype(dtype) or torch.float32
    cfg = model.config
    if dynamic_size and cfg.pos_embed_interpolation == "area" and cfg.abs_pos_embed:
        raise ConfigError(
            "pos_embed_interpolation='area' cannot be exported with a dynamic size (ONNX fixes its output size); "
            "export a fixed size or build the model with another pos_embed_interpolation (docs/export.md)"
        )
    out = copy.deepcopy(model).eval().to(torch_dtype)
    size = to_pair(img_size, "img_size") if img_size is not None else cfg.img_size
    if dynamic_size:
        out.config = out.config.replace(dynamic_img_size=True, dynamic_img_pad=False)
    else:
        out.set_input_size(size)
    device = next(out.parameters()).device
    example = torch.randn(2, cfg.in_chans, *size, generator=torch.Generator().manual_seed(0)).to(device, torch_dtype)
    ph, pw = cfg.patch_size
    shape: dict[int, Dim] = {0: Dim("batch", min=1, max=65536)}
    if dynamic_size:
        shape[2] = ph * Dim("grid_h", min=1, max=MAX_GRID)
        shape[3] = pw * Dim("grid_w", min=1, max=MAX_GRID)
    return out, example, {"x": shape}


def export_program(
    model: VisionTransformer,
    img_size: int | tuple[int, int] | None = None,
    dynamic_size: bool = False,
    dtype: str = "fp32",
) -> ExportedProgram:
    """``torch.export`` of ``model``'s forward (images -> its output) at ``img_size`` or any size.

    Run it with ``program.module()(x)``; save it with ``torch.export.save(program, "model.pt2")``.
    """
    traced, example, shapes = prepare(model, img_size, dynamic_size, dtype)
    with torch.no_grad():
        return torch.export.export(traced, (example,), dynamic_shapes=shapes)


def export_onnx(
    model: VisionTransformer,
    out: str | Path,
    img_size: int | tuple[int, int] | None = None,
    dynamic_size: bool = False,
    dtype: str = "fp32",
    opset: int = 20,
) -> Path:
    """Write ``model`` as an ONNX file (input ``pixel_values`` (B, C, H, W), output ``output``); returns its path.

    Needs ``onnx`` and ``onnxscript`` (``pip install 'vitzoo[export]'``); run it with onnxruntime.
    """
    if opset < 18:
        raise ConfigError(f"opset must be >= 18 (Resize with antialias), got {opset}")
    traced, example, shapes = prepare(model, img_size, dynamic_size, dtype)
    path = write_onnx(traced, example, shapes, (INPUT_NAME, OUTPUT_NAME), opset, out)
    if dynamic_size:
        _guard_patch_multiples(path, traced.config.patch_size)
    return path


def export_text_onnx(
    model: ImageTextModel | TextTransformer, out: str | Path, dtype: str = "fp32", opset: int = 20
) -> Path:
    """Write a text tower (``model.text`` of an image-text model) as an ONNX file: input ``input_ids``
    (B, context_length) int64, output ``text_embeds`` (B, E), not normalised. The context length is fixed (the
    tokenizer pads every text to it), the batch size dynamic. Needs ``onnx`` and ``onnxscript``."""
    if opset < 18:
        raise ConfigError(f"opset must be >= 18, got {opset}")
    tower = model.text if isinstance(model, ImageTextModel) else model
    traced = copy.deepcopy(tower).eval().to(resolve_dtype(dtype) or torch.float32)
    cfg = traced.config
    gen = torch.Generator().manual_seed(0)
    example = torch.randint(0, cfg.vocab_size, (2, cfg.context_length), generator=gen)
    example = example.to(next(traced.parameters()).device)
    shapes = {"ids": {0: Dim("batch", min=1, max=65536)}}
    return write_onnx(traced, example, shapes, (TEXT_INPUT_NAME, TEXT_OUTPUT_NAME), opset, out)


def write_onnx(
    traced: torch.nn.Module,
    example: torch.Tensor,
    shapes: dict[str, dict[int, Dim]],
    names: tuple[str, ...],
    opset: int,
    out: str | Path,
) -> Path:
    """PyTorch's ONNX exporter on ``traced`` (one input and its outputs, named ``names``: the input's name first),
    saved to ``out``."""
    try:
        with torch.no_grad():
            program = torch.onnx.export(
                traced,
                (example,),
                dynamo=True,
                dynamic_shapes=shapes,
                input_names=[names[0]],
                output_names=list(names[1:]),
                opset_version=opset,
                verbose=False,
            )
    except ImportError as e:
        raise ImportError(f"ONNX export needs onnx and onnxscript: pip install 'vitzoo[export]' ({e})") from e
    if program is None:  # only the legacy exporter returns None
        raise RuntimeError("torch.onnx.export returned no program")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(path))
    return path


def _guard_patch_multiples(path: Path, patch: tuple[int, int]) -> None:
    """Make a dynamic-size ONNX graph refuse an input whose sides are not multiples of the patch, as PyTorch does.

    ONNX has no assertion: the patch convolution would floor the grid and silently crop the image. The guard adds
    ``H % ph + W % pw`` as an index into a one-element zero and adds the result to the input, so any other size is
    an out-of-bounds ``Gather`` error in every runtime, whose node name says what is wrong. It costs one addition per
    input pixel.
    """
    import onnx  # the export extra; torch.onnx.export above already needed it

    model = onnx.load(str(path))
    graph = model.graph
    x = graph.input[0]
    dtype = x.type.tensor_type.elem_type
    h = onnx.helper
    name = f"input_height_and_width_must_be_multiples_of_{patch[0]}x{patch[1]}"
    checked = f"{x.name}_{name}"
    for node in graph.node:  # every reader of the input reads the checked input instead
        node.input[:] = [checked if i == x.name else i for i in node.input]
    graph.initializer.extend(
        [
            h.make_tensor(f"{name}_patch", onnx.TensorProto.INT64, [2], list(patch)),
            h.make_tensor(f"{name}_zero", dtype, [1], [0.0]),
        ]
    )
    guard = [
        h.make_node("Shape", [x.name], [f"{name}_shape"], start=2, end=4),
        h.make_node("Mod", [f"{name}_shape", f"{name}_patch"], [f"{name}_rest"]),
        h.make_node("ReduceSum", [f"{name}_rest"], [f"{name}_index"], keepdims=1),
        h.make_node("Gather", [f"{name}_zero", f"{name}_index"], [f"{name}_ok"], name=name, axis=0),
        h.make_node("Add", [x.name, f"{name}_ok"], [checked], name=f"{name}_add"),
    ]
    nodes = [*guard, *graph.node]  # topological order: the guard first
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export(
    model: VisionTransformer,
    out: str | Path,
    format: str = "onnx",
    img_size: int | tuple[int, int] | None = None,
    dynamic_size: bool = False,
    dtype: str = "fp32",
) -> Path:
    """``export_onnx``, or (``format="pt2"``) ``export_program`` saved with ``torch.export.save``; returns the path."""
    if format not in FORMATS:
        raise ConfigError(f"format must be one of {FORMATS}, got {format!r}")
    if format == "onnx":
        return export_onnx(model, out, img_size, dynamic_size, dtype)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(export_program(model, img_size, dynamic_size, dtype), str(path))
    return path
