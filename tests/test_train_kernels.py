"""crnn's CPU training kernels give PyTorch's outputs, gradients and running statistics; PyTorch's path elsewhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from crnn.config import load_config
from crnn.loss import ctc_loss
from crnn.models import build_model
from crnn.models import train_kernels as tk
from crnn.models.layers import ConvBNAct, SqueezeExcite
from crnn.models.train_kernels import DepthwiseConv2d, bn_act

needs_compiler = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                    reason="no C++ compiler here: the kernel cannot be built (PyTorch's path is used)")


def _pair(channels: int, k: int, stride: tuple[int, int]) -> tuple[DepthwiseConv2d, nn.Conv2d]:
    ours = DepthwiseConv2d(channels, k, stride, (k - 1) // 2)
    ref = nn.Conv2d(channels, channels, k, stride, (k - 1) // 2, groups=channels, bias=False)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


@needs_compiler
@pytest.mark.parametrize("k,stride,shape", [
    (5, (1, 1), (4, 24, 2, 13)),
    (5, (2, 1), (3, 16, 4, 11)),   # MobileNetV3's (2, 1) down-sampling
    (5, (2, 2), (2, 8, 7, 9)),     # odd sizes: the last rows/columns see padding
    (7, (1, 1), (2, 5, 3, 4)),     # kernel wider than the image
    (3, (1, 1), (3, 12, 5, 6)),    # below MIN_KERNEL_AREA: only with the threshold lowered
])
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("threads", [1, 2])
def test_gradients_equal_pytorchs(k: int, stride: tuple[int, int], shape: tuple[int, int, int, int],
                                  channels_last: bool, threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    assert tk.kernel() is not None, "a C++ compiler is here, so the kernel must build"
    monkeypatch.setattr(tk, "MIN_KERNEL_AREA", 1)
    torch.manual_seed(k + shape[1])
    ours, ref = _pair(shape[1], k, stride)
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        ours.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    used = []
    monkeypatch.setattr(tk._DepthwiseConvFn, "apply",
                        lambda *a, orig=tk._DepthwiseConvFn.apply: used.append(1) or orig(*a))
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
        yo, yr = ours(xo), ref(xr)
        g = torch.randn_like(yr)
        (yo * g).sum().backward()
        (yr * g).sum().backward()
    finally:
        torch.set_num_threads(old)
    assert used, "the kernel's path was not taken"
    torch.testing.assert_close(yo, yr)
    torch.testing.assert_close(xo.grad, xr.grad)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
    assert ours.weight.grad.stride() == ours.weight.stride()  # DDP's buckets are laid out as the parameter


def test_pytorchs_path_outside_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inference, small kernels and bf16 autocast never take the kernel's path; outputs are nn.Conv2d's."""
    ours, ref = _pair(6, 5, (1, 1))
    monkeypatch.setattr(tk._DepthwiseConvFn, "apply", lambda *a: pytest.fail("kernel path taken"))
    x = torch.randn(2, 6, 4, 9)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(ours(x), ref(x))
    small, small_ref = _pair(6, 3, (1, 1))
    torch.testing.assert_close(small(x), small_ref(x))
    # eval mode with autograd on (a user's plain ``model(x)``): never the kernels, so never their build
    monkeypatch.setattr(tk, "kernel", lambda: pytest.fail("kernels asked for outside training"))
    se = SqueezeExcite(6).eval()
    ours.eval()
    torch.testing.assert_close(ours(x), ref(x))
    se(x)
    assert list(ours.state_dict()) == ["weight"] and ours.weight.shape == (6, 1, 5, 5)


def test_no_compiler_falls_back_with_one_warning(monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Where the build fails, training runs on PyTorch's path and says so once."""
    import torch.utils.cpp_extension as cpp

    def broken(*a: object, **k: object) -> None:
        raise RuntimeError("Ninja is required to load C++ extensions\nmore detail")

    monkeypatch.setattr(cpp, "load", broken)
    tk.kernel.cache_clear()
    try:
        ours, ref = _pair(4, 5, (1, 1))
        x = torch.randn(2, 4, 3, 8)
        ours(x).sum().backward()
        ref(x).sum().backward()
        ours(x).sum()  # second call: no second warning
        torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
    finally:
        tk.kernel.cache_clear()
    warnings = [r.getMessage() for r in caplog.records if "kernels" in r.getMessage()]
    assert warnings == ["crnn's training kernels not built (Ninja is required to load C++ extensions); "
                        "using PyTorch's (slower on CPU)"]


ACTS = {None: nn.Identity(), "relu": nn.ReLU(), "hardswish": nn.Hardswish()}


@needs_compiler
@pytest.mark.parametrize("act", [None, "relu", "hardswish"])
@pytest.mark.parametrize("shape,offset", [
    ((4, 24, 5, 7), 0.0),
    ((3, 9, 1, 1), 0.0),      # the SE block's shape: one pixel per sample
    ((2, 16, 6, 33), 50.0),   # a mean far from 0: the statistics must not cancel
    ((1, 130, 3, 300), 0.0),  # more rows than one block, more channels than one vector
])
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("threads", [1, 2])
def test_bn_act_equals_pytorch(act: str | None, shape: tuple[int, int, int, int], offset: float,
                               channels_last: bool, threads: int) -> None:
    torch.manual_seed(shape[1])
    ours = nn.BatchNorm2d(shape[1])
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5)
        ours.bias.uniform_(-1, 1)
    ref = nn.BatchNorm2d(shape[1])
    ref.load_state_dict(ours.state_dict())
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for step in range(2):  # twice: the running statistics are updated with momentum
            x = torch.randn(shape) * 3 + offset
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
            yo, yr = bn_act(ours, act, xo), ACTS[act](ref(xr))
            g = torch.randn_like(yr)
            (yo * g).sum().backward()
            (yr * g).sum().backward()
            # 2e-5: float32 statistics of a batch whose mean is 50 differ in the 6th digit (PyTorch is the
            # further of the two from a float64 reference there)
            torch.testing.assert_close(yo, yr, rtol=1e-5, atol=2e-5, msg=f"output, step {step}")
            torch.testing.assert_close(xo.grad, xr.grad, rtol=1e-4, atol=1e-5, msg=f"input grad, step {step}")
    finally:
        torch.set_num_threads(old)
    for name in ("weight", "bias"):
        torch.testing.assert_close(getattr(ours, name).grad, getattr(ref, name).grad, rtol=1e-4, atol=1e-4)
    for name, buf in ref.named_buffers():
        torch.testing.assert_close(getattr(ours, name), buf, rtol=1e-5, atol=1e-5, msg=name)


def test_conv_bn_act_takes_the_fused_path_only_in_training(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = tk._BNActFn.apply
    monkeypatch.setattr(tk._BNActFn, "apply", lambda *a: calls.append(1) or real(*a))
    block = ConvBNAct(3, 8, 3, act="hardswish")
    x = torch.randn(2, 3, 8, 10)
    block.train()
    block(x).sum().backward()
    if tk.kernel() is not None:
        assert calls == [1]
    block.eval()
    ref = nn.Sequential(block.conv, block.bn, nn.Hardswish())
    torch.testing.assert_close(block(x), ref(x))
    with torch.no_grad():
        block.train()
        block(x)
    assert len(calls) <= 1, "eval mode or no autograd took the fused path"


@needs_compiler
@pytest.mark.parametrize("shape", [(4, 24, 3, 7), (2, 8, 1, 1), (3, 40, 2, 50)])
@pytest.mark.parametrize("channels_last", [True, False])
def test_squeeze_excite_equals_pytorchs(shape: tuple[int, int, int, int], channels_last: bool) -> None:
    torch.manual_seed(shape[1])
    se = SqueezeExcite(shape[1])
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    g = torch.randn(shape)
    got = {}
    old = tk.enabled
    try:
        for on in (False, True):
            tk.enabled = on
            se.zero_grad()
            xx = x.clone().requires_grad_()
            y = se(xx)
            (y * g).sum().backward()
            got[on] = [y.detach(), xx.grad, *(p.grad.clone() for p in se.parameters())]  # type: ignore[union-attr]
    finally:
        tk.enabled = old
    for name, a, b in zip(["output", "input grad", "w1", "b1", "w2", "b2"], got[True], got[False], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


@needs_compiler
def test_training_steps_as_accurate_as_pytorchs() -> None:
    """Three SGD steps of the seed's mv3 model: with the kernels, the losses are as close to a float64 run
    of PyTorch's path as PyTorch's own float32 path is. (The two float32 paths cannot be compared with
    each other to many digits: at initialisation a 1e-6 change of the input moves this model's gradients
    by a few per cent, through the kinks of ReLU and hard-swish.)"""
    cfg = load_config(str(Path(__file__).resolve().parents[1] / "configs/rec/rec_mv3_none_bilstm_ctc.yml"))

    def run(kernels: bool, dtype: torch.dtype) -> list[float]:
        torch.manual_seed(0)
        model = build_model(cfg.Architecture, 37).to(dtype=dtype, memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        gen = torch.Generator().manual_seed(1)
        out = []
        old = tk.enabled
        tk.enabled = kernels
        try:
            for _ in range(3):
                x = torch.rand(8, 3, 32, 100, generator=gen).to(dtype).contiguous(memory_format=torch.channels_last)
                targets = torch.randint(1, 37, (8 * 5,), generator=gen)
                loss = ctc_loss(model(x).float(), targets, torch.full((8,), 5))
                opt.zero_grad()
                loss.backward()
                opt.step()
                out.append(loss.item())
        finally:
            tk.enabled = old
        return out

    exact = run(False, torch.float64)
    theirs, ours = run(False, torch.float32), run(True, torch.float32)
    err_theirs = max(abs(a - b) for a, b in zip(theirs, exact, strict=True))
    err_ours = max(abs(a - b) for a, b in zip(ours, exact, strict=True))
    assert abs(ours[0] - exact[0]) < 1e-4 * exact[0], "the first forward pass differs"
    assert err_ours <= 3 * err_theirs + 1e-4 * exact[0], (exact, theirs, ours)
