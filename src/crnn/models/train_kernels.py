"""crnn's CPU kernels for the training step: BatchNorm + activation, squeeze-excite, depthwise weight gradient.

On 2 CPU cores the mv3 model's training step is bound by passes over memory (docs/training_throughput.md):
PyTorch 2.13 runs BatchNorm and the activation after it as separate passes forward and backward, writes
several full-size temporaries in the squeeze-excite blocks' backward pass, and computes a 5x5 depthwise
convolution's weight gradient with a oneDNN pass 3-5x slower than the forward convolution.
``csrc/train_kernels.cpp`` does the same arithmetic in fewer, vectorised passes over
channels-last memory. It is built the first time training needs it (``torch.utils.cpp_extension``,
cached per CPU kind, about a minute, in a child process killed after CRNN_KERNEL_BUILD_TIMEOUT seconds);
where it cannot be built (no C++ compiler, a build past the timeout), PyTorch's own path is used and one
warning says so. A lock left by a build that was killed is detected and removed (``_builder_lock``).

Only training on CPU in float32 changes: evaluation, export, the parameters and the state dict are
PyTorch's modules' own, and ``tests/test_train_kernels.py`` checks outputs, gradients and running
statistics against them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

_SOURCE = Path(__file__).with_name("csrc") / "train_kernels.cpp"
# CRNN_TRAIN_KERNELS=0 turns the kernels off (PyTorch's path everywhere), e.g. to compare the two.
enabled = os.environ.get("CRNN_TRAIN_KERNELS", "1") != "0"
# The depthwise kernel is used from this kernel area up: measured 3-5x faster than oneDNN for 5x5, while
# oneDNN's 3x3 pass is as fast or faster (docs/training_throughput.md).
MIN_KERNEL_AREA = 25


def _kernels_apply(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """True when a training computation on ``x`` may use the kernels: autograd on, CPU, float32, eager."""
    return (enabled and torch.is_grad_enabled() and x.device.type == "cpu" and x.dim() == 4
            and x.dtype == torch.float32 and weight.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu")
            and not torch.jit.is_tracing() and not torch.jit.is_scripting()
            and not torch.compiler.is_compiling() and not torch.onnx.is_in_onnx_export()
            and kernel() is not None)


def _cpu_kind() -> str:
    """A short tag of this CPU's model and flags: the build uses -march=native, so a cached binary
    must never be loaded on a CPU of another kind (e.g. one without AVX-512)."""
    try:
        info = Path("/proc/cpuinfo").read_text(errors="replace")
        lines = [ln for ln in info.splitlines() if ln.startswith(("model name", "flags"))][:2]
    except OSError:
        lines = [platform.processor()]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:10]


def _load_kwargs() -> dict[str, Any]:
    """The arguments of ``torch.utils.cpp_extension.load`` for this CPU (the same in the build process)."""
    flags = ["-O3", "-fopenmp"] + (["-march=native"] if platform.machine() in ("x86_64", "AMD64") else [])
    return {"name": f"crnn_train_kernels_{_cpu_kind()}", "sources": [str(_SOURCE)], "extra_cflags": flags,
            "extra_ldflags": ["-fopenmp"], "verbose": False}


def _build_timeout() -> float:
    """Seconds a build (or the wait for another process's build) may take: CRNN_KERNEL_BUILD_TIMEOUT, default
    600 (a build takes about a minute on 2 cores)."""
    try:
        return max(1.0, float(os.environ.get("CRNN_KERNEL_BUILD_TIMEOUT", "600")))
    except ValueError:
        return 600.0


class KernelBuildError(RuntimeError):
    """The kernels could not be built in time here; training uses PyTorch's path."""


@contextlib.contextmanager
def _builder_lock(build_dir: Path, timeout: float) -> Iterator[None]:
    """Hold ``build_dir/crnn_builder.lock`` (an flock) while building, waiting at most ``timeout`` s for it.

    torch's own lock is a file that exists while a build runs (``FileBaton``): a build killed with
    ``kill -9`` leaves it, and every later ``load`` then waits for it forever, silently. An flock is
    released by the kernel when its holder dies, so holding one while building tells a live crnn
    builder from a dead one; with the flock in hand, a ``lock`` file still there is stale unless a
    process is at work in the folder (``_wait_for_torch_lock``), and is then removed.
    """
    import fcntl

    with open(build_dir / "crnn_builder.lock", "a+") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise KernelBuildError(f"another process has been building them in {build_dir} for over "
                                           f"{timeout:.0f} s") from None
                time.sleep(0.5)
        try:
            _wait_for_torch_lock(build_dir / "lock", deadline, timeout)
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


STALE_LOCK_AGE_S = 10.0  # a lock this old with no process building in its folder was left by a dead build


def _builders(build_dir: Path) -> list[int]:
    """Processes whose working folder is ``build_dir``: ninja and the compiler of a build in progress
    (torch runs them there). Processes this user may not inspect are not seen."""
    target, found = os.path.realpath(build_dir), []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(entry / "cwd") == target:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _wait_for_torch_lock(lock: Path, deadline: float, timeout: float) -> None:
    """Return once torch's ``lock`` is gone, removing it when stale; raise ``KernelBuildError`` at ``deadline``.

    Holding the flock excludes other crnn builders, not a process that builds through torch alone
    (e.g. an older crnn): so a lock counts as stale only when it is ``STALE_LOCK_AGE_S`` old and no
    process is at work in its folder.
    """
    while True:
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return
        builders = _builders(lock.parent)
        if not builders and age > STALE_LOCK_AGE_S:
            lock.unlink(missing_ok=True)
            log.warning("removed %s, left by a kernel build that was killed", lock)
            return
        if time.monotonic() > deadline:
            raise KernelBuildError(f"another process (pid {', '.join(map(str, builders)) or '?'}) has been building "
                                   f"them in {lock.parent} for over {timeout:.0f} s")
        time.sleep(0.5)


def _needs_build(build_dir: Path, name: str) -> bool:
    lib = build_dir / f"{name}.so"
    return not lib.is_file() or lib.stat().st_mtime < _SOURCE.stat().st_mtime


def _build_in_subprocess(timeout: float) -> None:
    """Compile in a child process that is killed (with its compiler) after ``timeout`` s."""
    code = ("from torch.utils.cpp_extension import load; from crnn.models.train_kernels import _load_kwargs; "
            "load(**_load_kwargs())")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # its own group: the compiler dies with it
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise KernelBuildError(f"the build took over {timeout:.0f} s (CRNN_KERNEL_BUILD_TIMEOUT)") from None
    if proc.returncode != 0:
        lines = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
        raise KernelBuildError(lines[-1] if lines else f"the build exited with {proc.returncode}")


@functools.cache
def kernel() -> ModuleType | None:
    """The compiled extension, or None (with one warning) where it cannot be built here in time."""
    try:
        from torch.utils.cpp_extension import _get_build_directory, load

        kwargs = _load_kwargs()
        build_dir = Path(_get_build_directory(kwargs["name"], verbose=False))
        timeout = _build_timeout()
        with _builder_lock(build_dir, timeout):
            if _needs_build(build_dir, kwargs["name"]):
                _build_in_subprocess(timeout)
            return load(**kwargs)  # built: this only loads it (ninja finds nothing to do)
    except Exception as e:  # no compiler, no ninja, a failed or too slow build: training still works, only slower
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        log.warning("crnn's training kernels not built (%s); using PyTorch's (slower on CPU)", first)
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
            grad = ext.depthwise_weight_grad(x, grad_out.contiguous(memory_format=torch.channels_last),
                                             kh, kw, stride[0], stride[1], padding[0], padding[1])
            # in the weight's own strides (DDP's gradient buckets expect them; a channels-last model's differ)
            grad_w = torch.empty_like(weight).copy_(grad)
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
        return (self.training and self.weight.requires_grad and k[0] * k[1] >= MIN_KERNEL_AREA
                and _kernels_apply(x, self.weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._use_kernel(x):
            stride = (int(self.stride[0]), int(self.stride[1]))
            padding = (int(self.padding[0]), int(self.padding[1]))
            out: torch.Tensor = _DepthwiseConvFn.apply(x, self.weight, stride, padding)
            return out
        return super().forward(x)


ACT_CODES = {None: 0, "relu": 1, "hardswish": 2}  # the C++ file's activation codes


class _BNActFn(torch.autograd.Function):
    """act(batch_norm(x)) with batch statistics; returns (y, mean, biased var), the statistics not differentiable."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float,
                act: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ext = kernel()
        assert ext is not None
        y, mean, var, invstd = ext.bn_act_forward(x, weight, bias, eps, act)
        ctx.save_for_backward(x, weight, bias, mean, invstd)
        ctx.act = act
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    def backward(ctx: Any, grad_y: torch.Tensor, _gm: Any, _gv: Any) -> tuple[torch.Tensor | None, ...]:
        x, weight, bias, mean, invstd = ctx.saved_tensors
        ext = kernel()
        assert ext is not None
        grad_x, grad_w, grad_b = ext.bn_act_backward(grad_y.contiguous(memory_format=torch.channels_last), x,
                                                    weight, bias, mean, invstd, ctx.act)
        return grad_x, grad_w, grad_b, None, None


def fused_bn_act_applies(bn: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``bn_act`` may replace ``act(bn(x))`` here: a BatchNorm2d (not one folded away for inference)
    in training mode with running statistics, affine."""
    return (isinstance(bn, nn.BatchNorm2d) and bn.training and bn.track_running_stats and bn.affine
            and bn.momentum is not None and bn.running_mean is not None and _kernels_apply(x, bn.weight))


def bn_act(bn: nn.BatchNorm2d, act: str | None, x: torch.Tensor) -> torch.Tensor:
    """``act(bn(x))`` in training mode, in two passes forward and two backward; updates ``bn``'s running
    statistics (and ``num_batches_tracked``) exactly as ``nn.BatchNorm2d`` does. Shapes: (B, C, H, W) -> same.

    Call only where ``fused_bn_act_applies(bn, x)``.
    """
    y, mean, var = _BNActFn.apply(x, bn.weight, bn.bias, bn.eps, ACT_CODES[act])
    assert bn.running_mean is not None and bn.running_var is not None and bn.num_batches_tracked is not None
    m = float(bn.momentum)  # type: ignore[arg-type]
    n = x.numel() // x.shape[1]
    with torch.no_grad():
        bn.num_batches_tracked.add_(1)
        bn.running_mean.mul_(1 - m).add_(mean, alpha=m)
        # running_var tracks the unbiased variance, as nn.BatchNorm2d's does
        bn.running_var.mul_(1 - m).add_(var * (n / max(n - 1, 1)), alpha=m)
    out: torch.Tensor = y
    return out


def _se_gate(s: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    """SqueezeExcite's gate from the pooled input: (B, C, 1, 1) -> (B, C, 1, 1), the module's own ops."""
    return torch.clamp(0.2 * F.conv2d(torch.relu(F.conv2d(s, w1, b1)), w2, b2) + 0.5, 0.0, 1.0)


class _SqueezeExciteFn(torch.autograd.Function):
    """x * gate(mean(x)) with one pass over the activations forward (after the mean) and two backward.

    PyTorch's autograd would write go * gate, go * x, the mean's broadcast gradient and their sum as
    separate full-size tensors; here the gate's gradient is one fused reduction (``channel_dot``) and the
    input's gradient one ``addcmul``. The small gate path is re-run under autograd in the backward pass.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
                b2: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)  # (B, C, H, W) -> (B, C, 1, 1)
        gate = _se_gate(s, w1, b1, w2, b2)
        ctx.save_for_backward(x, s, w1, b1, w2, b2, gate)
        return x * gate

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x, s, w1, b1, w2, b2, gate = ctx.saved_tensors
        ext = kernel()
        assert ext is not None
        grad_out = grad_out.contiguous(memory_format=torch.channels_last)
        grad_gate = ext.channel_dot(grad_out, x).view_as(gate)  # (B, C) -> (B, C, 1, 1)
        with torch.enable_grad():
            inputs = [t.detach().requires_grad_() for t in (s, w1, b1, w2, b2)]
            grads = torch.autograd.grad(_se_gate(*inputs), inputs, grad_gate)
        grad_s = grads[0] / (x.shape[2] * x.shape[3])  # the mean's gradient, spread over the pixels
        grad_x = torch.addcmul(grad_s, grad_out, gate)  # grad_out * gate + grad_s, broadcast: one pass
        return (grad_x, *grads[1:])


def squeeze_excite(x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
                   b2: torch.Tensor, training: bool) -> torch.Tensor:
    """``x * clip(0.2 conv2(relu(conv1(mean(x)))) + 0.5, 0, 1)``; (B, C, H, W) -> same. Uses the kernels
    in training on CPU (``training`` and ``_kernels_apply``), PyTorch's ops otherwise: the same function."""
    if training and _kernels_apply(x, w1):
        out: torch.Tensor = _SqueezeExciteFn.apply(x, w1, b1, w2, b2)
        return out
    return x * _se_gate(x.mean(dim=(2, 3), keepdim=True), w1, b1, w2, b2)
