"""The depthwise convolution's own weight-gradient kernel: same gradients as PyTorch's, same module otherwise."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch import nn

from crnn.models import depthwise
from crnn.models.depthwise import DepthwiseConv2d

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
    assert depthwise.kernel() is not None, "a C++ compiler is here, so the kernel must build"
    monkeypatch.setattr(depthwise, "MIN_KERNEL_AREA", 1)
    torch.manual_seed(k + shape[1])
    ours, ref = _pair(shape[1], k, stride)
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    used = []
    monkeypatch.setattr(depthwise._DepthwiseConvFn, "apply",
                        lambda *a, orig=depthwise._DepthwiseConvFn.apply: used.append(1) or orig(*a))
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


def test_pytorchs_path_outside_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inference, small kernels and bf16 autocast never take the kernel's path; outputs are nn.Conv2d's."""
    ours, ref = _pair(6, 5, (1, 1))
    monkeypatch.setattr(depthwise._DepthwiseConvFn, "apply", lambda *a: pytest.fail("kernel path taken"))
    x = torch.randn(2, 6, 4, 9)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.testing.assert_close(ours(x), ref(x))
    small, small_ref = _pair(6, 3, (1, 1))
    torch.testing.assert_close(small(x), small_ref(x))
    assert list(ours.state_dict()) == ["weight"] and ours.weight.shape == (6, 1, 5, 5)


def test_no_compiler_falls_back_with_one_warning(monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Where the build fails, training runs on PyTorch's path and says so once."""
    import torch.utils.cpp_extension as cpp

    def broken(*a: object, **k: object) -> None:
        raise RuntimeError("Ninja is required to load C++ extensions\nmore detail")

    monkeypatch.setattr(cpp, "load", broken)
    depthwise.kernel.cache_clear()
    try:
        ours, ref = _pair(4, 5, (1, 1))
        x = torch.randn(2, 4, 3, 8)
        ours(x).sum().backward()
        ref(x).sum().backward()
        ours(x).sum()  # second call: no second warning
        torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
    finally:
        depthwise.kernel.cache_clear()
    warnings = [r.getMessage() for r in caplog.records if "depthwise" in r.getMessage()]
    assert warnings == ["depthwise weight-gradient kernel not built (Ninja is required to load C++ extensions); "
                        "using PyTorch's (slower on CPU)"]
