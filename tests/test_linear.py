"""vitzoo.models.linear: oneDNN's fp32 kernel for CPU inference, F.linear (bit for bit) everywhere else."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest
import torch
import torch.nn.functional as F

import vitzoo
from conftest import batch, maxdiff, tiny
from vitzoo.models import linear as lin
from vitzoo.models.flops import flops

pytestmark = pytest.mark.skipif(lin._ONEDNN is None, reason="this torch build has no oneDNN")


@pytest.fixture
def onednn_calls(monkeypatch) -> list[int]:
    """Counts the calls that reach oneDNN's kernel (which still computes them)."""
    calls: list[int] = []
    real = lin._ONEDNN
    assert real is not None

    def counted(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(lin, "_ONEDNN", counted)
    return calls


def _layer(seed: int = 0, dtype: torch.dtype = torch.float32) -> lin.Linear:
    torch.manual_seed(seed)
    return lin.Linear(64, 96).to(dtype)


def test_fp32_inference_runs_onednn_and_equals_f_linear(onednn_calls):
    layer, x = _layer(), torch.randn(2, 9, 64)
    with torch.inference_mode():
        y = layer(x)
        y_nobias = lin.linear(x[:, :1], layer.weight)  # a row slice and no bias, as Attention's query rows
    with torch.no_grad():
        layer(x)
    assert onednn_calls == [1, 1, 1]
    ref = F.linear(x, layer.weight, layer.bias).detach()
    assert y.shape == ref.shape and maxdiff(y, ref) <= 1e-5 * ref.abs().max().item()  # the sums' order: last bits
    assert maxdiff(y_nobias, F.linear(x[:, :1], layer.weight).detach()) <= 1e-5 * ref.abs().max().item()


@contextlib.contextmanager
def _autocast() -> Iterator[None]:
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        yield


@contextlib.contextmanager
def _mkldnn_off() -> Iterator[None]:
    with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=False):
        yield


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(lambda: (torch.enable_grad(), torch.float32), id="training"),
        pytest.param(lambda: (_autocast(), torch.float32), id="autocast-bf16"),
        pytest.param(lambda: (torch.inference_mode(), torch.bfloat16), id="bf16-weights"),
        pytest.param(lambda: (_mkldnn_off(), torch.float32), id="mkldnn-disabled"),
    ],
)
def test_everything_else_is_f_linear_bit_for_bit(onednn_calls, case: Callable):
    context, dtype = case()
    layer = _layer(dtype=dtype)
    x = torch.randn(2, 9, 64, dtype=dtype)
    with context:
        y = layer(x)
        ref = F.linear(x, layer.weight, layer.bias)
    assert onednn_calls == [] and y.dtype == ref.dtype and torch.equal(y, ref)


def test_gradients_flow_and_frozen_weights_use_onednn(onednn_calls):
    layer, x = _layer(), torch.randn(2, 9, 64, requires_grad=True)
    layer(x).sum().backward()  # training: autograd through F.linear
    assert onednn_calls == [] and layer.weight.grad is not None and x.grad is not None
    layer.requires_grad_(False)
    layer(x).sum().backward()  # a frozen layer still passes the gradient to its input: F.linear
    assert onednn_calls == []
    y = layer(torch.randn(2, 9, 64))  # frozen and nothing to differentiate (a frozen backbone's first layer)
    assert onednn_calls == [1] and not y.requires_grad


def test_tracing_uses_f_linear(onednn_calls):
    layer = _layer().eval()
    with torch.no_grad():
        traced = torch.jit.trace(layer, torch.randn(1, 64), check_trace=False)  # the check reruns it untraced
    assert onednn_calls == [] and "mkldnn" not in str(traced.graph)


def test_a_model_in_inference_equals_its_pytorch_path(onednn_calls):
    model = tiny(depth=2).eval()
    x = batch(224)
    with torch.inference_mode():
        fast = model(x)
    n = len(onednn_calls)
    with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=False):
        plain = model(x)
    # each block's qkv, proj, fc1, fc2; the last block computes the class token's query apart from the keys and
    # values (one more call); the head stays nn.Linear
    assert n == 4 * 2 + 1 and len(onednn_calls) == n
    assert maxdiff(fast, plain) <= 1e-5 * plain.abs().max().item()


def test_flops_count_the_same_on_cpu_and_meta():
    """FlopCounterMode sees F.linear (not oneDNN's op) and attention as math (the CPU's fused kernel has no formula)."""
    cpu = vitzoo.create_model("vit_base_patch16_224", depth=2)
    with torch.device("meta"):
        meta = vitzoo.create_model("vit_base_patch16_224", depth=2)
    tokens, width, mlp = 197, 768, 3072
    per_block = 2 * tokens * width * (3 * width + width + 2 * mlp) + 2 * 2 * tokens * tokens * width
    assert flops(cpu) == flops(meta) >= 2 * per_block
