"""Depthwise convolution whose training backward pass computes the weight gradient with crnn's kernel.

On CPU, PyTorch 2.13 computes a depthwise convolution's weight gradient with oneDNN, which for 5x5
kernels takes 3-5x as long as the forward pass (docs/training_throughput.md; MobileNetV3's six 5x5
depthwise layers were the slowest part of the backward pass). ``csrc/depthwise_grad.cpp`` computes
the same sum in one vectorised pass over channels-last memory. The C++ file is built the first time
training needs it (``torch.utils.cpp_extension``, cached per CPU kind, about 40 s); where it cannot
be built (no C++ compiler), PyTorch's own path is used and one warning says so.

Only the training backward pass changes: the forward pass, the input gradient, evaluation, export and
the state dict are those of ``nn.Conv2d``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import platform
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

_SOURCE = Path(__file__).with_name("csrc") / "depthwise_grad.cpp"
# The kernel is used from this kernel area up: measured 3-5x faster than oneDNN for 5x5, while
# oneDNN's 3x3 pass is as fast or faster (docs/training_throughput.md).
MIN_KERNEL_AREA = 25


def _cpu_kind() -> str:
    """A short tag of this CPU's model and flags: the build uses -march=native, so a cached binary
    must never be loaded on a CPU of another kind (e.g. one without AVX-512)."""
    try:
        info = Path("/proc/cpuinfo").read_text(errors="replace")
        lines = [ln for ln in info.splitlines() if ln.startswith(("model name", "flags"))][:2]
    except OSError:
        lines = [platform.processor()]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:10]


@functools.cache
def kernel() -> ModuleType | None:
    """The compiled extension, or None (with one warning) where it cannot be built here."""
    try:
        from torch.utils.cpp_extension import load

        flags = ["-O3", "-fopenmp"] + (["-march=native"] if platform.machine() in ("x86_64", "AMD64") else [])
        return load(name=f"crnn_depthwise_grad_{_cpu_kind()}", sources=[str(_SOURCE)],
                    extra_cflags=flags, extra_ldflags=["-fopenmp"], verbose=False)
    except Exception as e:  # no compiler, no ninja, a failed build: training still works, only slower
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        log.warning("depthwise weight-gradient kernel not built (%s); using PyTorch's (slower on CPU)", first)
        return None


class _DepthwiseConvFn(torch.autograd.Function):
    """F.conv2d with groups == channels; backward: PyTorch's input gradient, crnn's weight gradient."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, stride: tuple[int, int],
                padding: tuple[int, int]) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding = stride, padding
        return F.conv2d(x, weight, None, stride, padding, 1, weight.shape[0])

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        stride, padding = ctx.stride, ctx.padding
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad_out, x, weight, None, stride, padding, (1, 1), False, (0, 0), weight.shape[0],
                (True, False, False))[0]
        if ctx.needs_input_grad[1]:
            ext = kernel()
            assert ext is not None  # forward only takes this path when the kernel is built
            kh, kw = weight.shape[2], weight.shape[3]
            grad_w = ext.depthwise_weight_grad(x, grad_out.contiguous(memory_format=torch.channels_last),
                                               kh, kw, stride[0], stride[1], padding[0], padding[1])
        return grad_x, grad_w, None, None


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(channels, channels, k, groups=channels, bias=False)``; same parameters and outputs.

    Shapes: (B, C, H, W) -> (B, C, H', W'). In training on CPU in float32 with a kernel of at least
    ``MIN_KERNEL_AREA`` taps, the weight gradient comes from crnn's kernel; otherwise this is nn.Conv2d.
    """

    def __init__(self, channels: int, kernel_size: int, stride: int | tuple[int, int] = 1, padding: int = 0):
        super().__init__(channels, channels, kernel_size, stride, padding, groups=channels, bias=False)

    def _use_kernel(self, x: torch.Tensor) -> bool:
        k = self.kernel_size
        return (torch.is_grad_enabled() and self.weight.requires_grad
                and x.device.type == "cpu" and x.dtype == torch.float32 and self.weight.dtype == torch.float32
                and k[0] * k[1] >= MIN_KERNEL_AREA
                and not torch.is_autocast_enabled("cpu")
                and not torch.jit.is_tracing() and not torch.jit.is_scripting()
                and not torch.compiler.is_compiling() and not torch.onnx.is_in_onnx_export()
                and kernel() is not None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._use_kernel(x):
            stride = (int(self.stride[0]), int(self.stride[1]))
            padding = (int(self.padding[0]), int(self.padding[1]))
            out: torch.Tensor = _DepthwiseConvFn.apply(x, self.weight, stride, padding)
            return out
        return super().forward(x)
