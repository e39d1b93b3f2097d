"""crnn's CPU training kernels vs PyTorch's path: per layer, and for a whole training step, side by side.

For the config's model (shapes from a forward pass at ``--batch``), times in this process:
- the weight gradient of every depthwise convolution, PyTorch's (oneDNN) vs crnn's kernel;
- BatchNorm + activation of every ConvBNAct, forward and backward, PyTorch's modules vs crnn's fused kernel;
- the model's training step (forward, CTC loss, backward) with the kernels on and off, in turns.
Prints the CPU flags: the ratios depend on the CPU. Run it on a quiet machine.

    python scripts/bench_train_kernels.py -c configs/rec/rec_mv3_none_bilstm_ctc.yml --batch 64 --threads 1 2 \\
        --json docs/bench/train_kernels.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import cpu_flags, git_head

from crnn.config import load_config
from crnn.loss import ctc_loss
from crnn.models import build_model, train_kernels
from crnn.models.layers import ConvBNAct
from crnn.models.train_kernels import DepthwiseConv2d, bn_act

CL = torch.channels_last


def timed(f: Callable[[], object], repeats: int) -> float:
    """Median milliseconds of ``repeats`` calls after one warm-up call."""
    f()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return 1000 * statistics.median(ts)


Shapes = list[tuple[torch.nn.Module, tuple[int, ...]]]


def input_shapes(model: torch.nn.Module, batch: int,
                 pick: Callable[[torch.nn.Module], torch.nn.Module | None]) -> Shapes:
    """(module, shape of the input of ``pick(module)``) for every module where ``pick`` names one, in a forward pass."""
    seen: Shapes = []
    hooks = []
    for owner in model.modules():
        target = pick(owner)
        if target is not None:
            hooks.append(target.register_forward_hook(
                lambda m, i, o, owner=owner: seen.append((owner, tuple(i[0].shape)))))
    with torch.no_grad():
        model(torch.randn(batch, 3, 32, 100).contiguous(memory_format=CL))
    for h in hooks:
        h.remove()
    return seen


def _torch_dw_grad(go: torch.Tensor, x: torch.Tensor, w: torch.Tensor, s: tuple[int, int], p: tuple[int, int]) -> None:
    torch.ops.aten.convolution_backward(go, x, w, None, s, p, (1, 1), False, (0, 0), w.shape[0], (False, True, False))


def depthwise_rows(model: torch.nn.Module, batch: int, repeats: int) -> list[dict[str, object]]:
    ext = train_kernels.kernel()
    assert ext is not None, "the kernels could not be built here"
    rows: list[dict[str, object]] = []
    for m, shape in input_shapes(model, batch, lambda m: m if isinstance(m, DepthwiseConv2d) else None):
        assert isinstance(m, DepthwiseConv2d)
        x = torch.randn(shape).contiguous(memory_format=CL)
        w = m.weight.detach()
        s, p = (int(m.stride[0]), int(m.stride[1])), (int(m.padding[0]), int(m.padding[1]))  # type: ignore[index]
        go = torch.randn_like(F.conv2d(x, w, None, s, p, 1, w.shape[0]))  # (B, C, H', W')
        k = w.shape[2]
        theirs = timed(partial(_torch_dw_grad, go, x, w, s, p), repeats)
        ours = timed(partial(ext.depthwise_weight_grad, x, go, k, k, s[0], s[1], p[0], p[1]), repeats)
        rows.append({"input": list(shape), "kernel": k, "stride": list(s), "pytorch_ms": round(theirs, 2),
                     "crnn_ms": round(ours, 2), "used": k * k >= train_kernels.MIN_KERNEL_AREA})
    return rows


def _bn_act_step(block: ConvBNAct, x: torch.Tensor, g: torch.Tensor, fused: bool) -> None:
    y = bn_act(block.bn, block.act_name, x) if fused else block.act(block.bn(x))
    torch.autograd.grad(y, (x, block.bn.weight, block.bn.bias), g)


def bn_act_rows(model: torch.nn.Module, batch: int, repeats: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for m, shape in input_shapes(model, batch, lambda m: m.bn if isinstance(m, ConvBNAct) else None):
        assert isinstance(m, ConvBNAct)
        x = torch.randn(shape).contiguous(memory_format=CL).requires_grad_()
        g = torch.randn(shape).contiguous(memory_format=CL)
        theirs = timed(partial(_bn_act_step, m, x, g, False), repeats)
        ours = timed(partial(_bn_act_step, m, x, g, True), repeats)
        rows.append({"input": list(shape), "act": m.act_name, "pytorch_ms": round(theirs, 2),
                     "crnn_ms": round(ours, 2)})
    return rows


def step_ratio(model: torch.nn.Module, batch: int, repeats: int) -> dict[str, float]:
    """Training step (forward, CTC loss, backward) with the kernels off and on, run in turns."""
    x = torch.randn(batch, 3, 32, 100).contiguous(memory_format=CL)
    targets = torch.randint(1, 37, (batch * 6,))
    lengths = torch.full((batch,), 6)
    times: dict[bool, list[float]] = {False: [], True: []}
    try:
        for _ in range(repeats + 1):
            for on in (False, True):
                train_kernels.enabled = on
                model.zero_grad(set_to_none=True)
                t0 = time.perf_counter()
                ctc_loss(model(x), targets, lengths).backward()
                times[on].append(time.perf_counter() - t0)
    finally:
        train_kernels.enabled = True
    a, b = (1000 * statistics.median(times[on][1:]) for on in (False, True))
    return {"pytorch_ms": round(a, 1), "crnn_ms": round(b, 1), "ratio": round(a / b, 3)}


def _print_rows(title: str, rows: list[dict[str, object]], key: str) -> None:
    print(title)
    print(f"{'input (B,C,H,W)':>22} {key:>9} {'PyTorch':>8} {'crnn':>7} {'ratio':>7}")
    total = [0.0, 0.0]
    for r in rows:
        a, b = float(r["pytorch_ms"]), float(r["crnn_ms"])  # type: ignore[arg-type]
        if r.get("used", True):
            total[0] += a
            total[1] += b
        note = "" if r.get("used", True) else "  (PyTorch's kept: k < 5)"
        print(f"{tuple(r['input'])!s:>22} {r[key]!s:>9} {a:>8.2f} {b:>7.2f} {a / b:>6.2f}x{note}")  # type: ignore[arg-type]
    print(f"{'sum of the layers using the kernel':>41} {total[0]:>8.1f} {total[1]:>7.1f} {total[0] / total[1]:>6.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", "--config", default="configs/rec/rec_mv3_none_bilstm_ctc.yml")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json")
    args = ap.parse_args()
    cfg = load_config(args.config)
    torch.manual_seed(0)
    model = build_model(cfg.Architecture, 37).to(memory_format=CL)  # type: ignore[call-overload]
    print(f"cpu: {cpu_flags()}")
    per_threads: dict[int, object] = {}
    for th in args.threads:
        torch.set_num_threads(th)
        dw, bn, step = depthwise_rows(model, args.batch, args.repeats), bn_act_rows(model, args.batch, args.repeats), \
            step_ratio(model, args.batch, args.repeats)
        per_threads[th] = {"depthwise_weight_grad": dw, "bn_act_fwd_bwd": bn, "step": step}
        print(f"\n=== {th} thread(s), batch {args.batch}, ms")
        _print_rows("depthwise weight gradient", dw, "kernel")
        _print_rows("BatchNorm + activation, forward + backward", bn, "act")
        print(f"training step (forward + CTC loss + backward): PyTorch's path {step['pytorch_ms']} ms, "
              f"crnn's kernels {step['crnn_ms']} ms: {step['ratio']:.3f}x")
    if args.json:
        report = {"date": time.strftime("%Y-%m-%d"), "commit": git_head(), "cpu": cpu_flags(), "config": args.config,
                  "batch": args.batch, "threads": per_threads}
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
