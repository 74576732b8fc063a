"""ONNX and torch.export graphs compute what PyTorch computes: onnxruntime and the ExportedProgram against the
eager model, at a fixed size (the baked position table) and at several sizes through one dynamic-size graph.

Real patch sizes, two blocks at a small width, random weights (``randomize_``). One arch in the fast suite; one
arch per family (slow: an ONNX export takes seconds) in the slow one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vitzoo
from conftest import ONE_PER_FAMILY as FAMILIES
from conftest import batch, cli, maxdiff, tiny
from vitzoo.export import export_onnx, export_program

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

SIZES = [(224, 224), (320, 448), (384, 384)]


def onnx_run(path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def sizes_for(model) -> list[tuple[int, int]]:
    p = model.config.patch_size[0]
    return [(round(h / p) * p, round(w / p) * p) for h, w in SIZES]


@torch.no_grad()
def test_onnx_at_a_fixed_size_equals_pytorch(tmp_path):
    model = tiny()
    path = export_onnx(model, tmp_path / "m.onnx")
    x = batch(224, n=3)  # the batch stays dynamic
    assert maxdiff(torch.from_numpy(onnx_run(path, x)), model(x)) <= 1e-4


@torch.no_grad()
def check_dynamic(arch: str, tmp_path) -> None:
    model = tiny(arch, dynamic_img_size=True)
    path = export_onnx(model, tmp_path / "m.onnx", dynamic_size=True)
    program = export_program(model, dynamic_size=True).module()
    for h, w in sizes_for(model):
        x = batch(h, w)
        want = model(x)
        assert maxdiff(torch.from_numpy(onnx_run(path, x)), want) <= 1e-3, (arch, h, w)
        assert maxdiff(program(x), want) <= 1e-3, (arch, h, w)


@pytest.mark.slow  # two exports of a few seconds each; test_onnx_at_a_fixed_size_equals_pytorch stays fast
def test_one_dynamic_size_graph_runs_every_size(tmp_path):
    """Default interpolation (bicubic with antialias): ONNX Resize(cubic, antialias=1), 224, 320x448, 384."""
    check_dynamic("vit_base_patch16_224", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("arch", FAMILIES)
def test_every_family_exports_with_a_dynamic_size(arch, tmp_path):
    check_dynamic(arch, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("interpolation", ["bilinear", "jax", "torchvision", "nearest"])
def test_other_interpolations_export(interpolation, tmp_path):
    model = tiny(dynamic_img_size=True, pos_embed_interpolation=interpolation, pos_embed_antialias=False)
    path = export_onnx(model, tmp_path / "m.onnx", dynamic_size=True)
    with torch.no_grad():
        for h, w in [(160, 160), (320, 448)]:
            x = batch(h, w)
            assert maxdiff(torch.from_numpy(onnx_run(path, x)), model(x)) <= 1e-3


@pytest.mark.slow  # a dynamic-size export takes seconds; test_onnx_at_a_fixed_size_equals_pytorch stays fast
@torch.no_grad()
def test_a_dynamic_size_graph_refuses_sides_that_are_not_patch_multiples(tmp_path):
    """PyTorch raises InputError for a 100x37 input; the patch convolution alone would floor the grid and silently
    crop. The ONNX graph fails on its guard node (named for what is wrong), the torch.export program on its guard."""
    model = tiny(img_size=32, dynamic_img_size=True)
    path = export_onnx(model, tmp_path / "m.onnx", dynamic_size=True)
    x = batch(48, 80)
    assert maxdiff(torch.from_numpy(onnx_run(path, x)), model(x)) <= 1e-4  # the guard changes no number
    for h, w in [(100, 37), (100, 100), (48, 81)]:
        with pytest.raises(vitzoo.InputError):
            model(batch(h, w))
        with pytest.raises(Exception, match="must_be_multiples_of_16x16"):
            onnx_run(path, batch(h, w))
    program = export_program(model, dynamic_size=True).module()
    with pytest.raises(AssertionError, match="% 16"):
        program(batch(100, 37))


def test_area_is_refused_for_dynamic_sizes(tmp_path):
    model = tiny(pos_embed_interpolation="area")
    with pytest.raises(vitzoo.ConfigError, match="area"):
        export_onnx(model, tmp_path / "m.onnx", dynamic_size=True)


@pytest.mark.slow
@torch.no_grad()
def test_fp16_onnx_is_close_to_fp32(tmp_path):
    model = tiny()
    path = export_onnx(model, tmp_path / "m.onnx", dtype="fp16")
    x = batch(224)
    out = torch.from_numpy(onnx_run(path, x.half()))
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    assert maxdiff(out, model(x)) <= 2e-2


def test_cli_exports_a_program_at_another_size(tmp_path):
    folder = vitzoo.save_pretrained(tiny(img_size=32), tmp_path / "tiny")
    args = ("--out", tmp_path / "m.pt2", "--format", "pt2", "--img-size", "48", "64")
    out = cli("export", f"local-dir:{folder}", *args)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(str(tmp_path / "m.pt2")) and "48x64" in out.stdout
    program = torch.export.load(str(tmp_path / "m.pt2")).module()
    reference = vitzoo.create_model(f"local-dir:{folder}", pretrained=True, img_size=(48, 64)).eval()
    x = batch(48, 64)
    with torch.no_grad():
        assert maxdiff(program(x), reference(x)) <= 1e-5
