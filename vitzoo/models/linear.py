"""The blocks' linear layers: PyTorch's, or oneDNN's fp32 kernel for inference on the CPU.

On an x86-64 CPU, for a float32 input with no gradient to record (``torch.inference_mode``, ``torch.no_grad``, or
frozen weights), ``linear`` calls oneDNN's linear kernel (``torch.ops.mkldnn._linear_pointwise``, the one Inductor
uses) on the same weight tensor instead of ``F.linear`` (MKL's sgemm). It reads the weights in place (no packed copy,
no extra memory) and runs the blocks' matrix shapes 10-25% faster on the CPUs measured (docs/performance.md); its
sums differ from MKL's in the last bits (about 1e-6 relative). Everything else (training, autocast, bf16, GPU, Arm
CPUs, tracing, compiling, ONNX export, tensor subclasses, dispatch modes such as ``FlopCounterMode``) goes to
``F.linear`` unchanged. ``torch.backends.mkldnn.flags(enabled=False)`` turns the oneDNN path off.
"""

from __future__ import annotations

import platform

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

# x86-64 only: measured there (AVX-512); on Arm (Apple's Accelerate, Graviton) F.linear's BLAS may well be faster
_X86 = platform.machine().lower() in ("x86_64", "amd64")
_AVAILABLE: bool = _X86 and torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
_ONEDNN = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if _AVAILABLE else None


def _onednn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """Whether oneDNN computes this call: an fp32 CPU inference call outside tracing (``torch.jit.trace``),
    compiling and autocast."""
    if torch.compiler.is_compiling() or torch._C._get_tracing_state() is not None:
        return False  # checked first: Dynamo reads only this far
    if _get_current_dispatch_mode() is not None:
        return False  # a mode sees every op (FlopCounterMode counts aten.addmm, not oneDNN's op)
    if _ONEDNN is None or type(x) is not torch.Tensor or x.device.type != "cpu" or x.dtype != torch.float32:
        return False
    if weight.dtype != torch.float32 or not weight.is_contiguous() or weight.device.type != "cpu":
        return False
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias)):
        return False  # autograd records this call
    return (
        torch._C._get_mkldnn_enabled() and not torch.is_autocast_enabled("cpu") and not torch.onnx.is_in_onnx_export()
    )


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``: (..., in) -> (..., out), through oneDNN for fp32 CPU inference."""
    if _onednn(x, weight, bias):
        assert _ONEDNN is not None
        return _ONEDNN(x, weight, bias, "none", [], "")
    return F.linear(x, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, names, init and hooks) whose forward is ``linear`` above."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
