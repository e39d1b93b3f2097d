"""Confidence you can act on: reliability, expected calibration error, rejection, temperature scaling.

Works on what ``crnn.evaluate.evaluate`` collects: (confidence, right) per image, and, for fitting
a temperature, the logits and labels of a validation set. The temperature divides the logits before
the softmax (``PostProcess.temperature``); it changes confidences, never the greedy reading.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REJECT = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
TEMPERATURES = tuple(float(t) for t in np.round(np.arange(0.5, 3.01, 0.05), 2))


def reliability(conf: Sequence[float] | np.ndarray, right: Sequence[bool] | np.ndarray, bins: int = 10
                ) -> dict[str, Any]:
    """Expected calibration error over ``bins`` equal-width confidence bins, and the bins themselves.

    ECE = sum over bins of (bin size / n) * |accuracy - mean confidence| (Guo et al., 2017).
    """
    c, r = np.asarray(conf, dtype=np.float64), np.asarray(right, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(c, edges[1:-1], right=True), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            acc, mc = float(r[m].mean()), float(c[m].mean())
            ece += m.sum() / max(len(c), 1) * abs(acc - mc)
            rows.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": int(m.sum()), "acc": acc,
                         "conf": mc})
    return {"ece": float(ece), "count": len(c), "acc": float(r.mean()) if len(r) else 0.0, "bins": rows}


def rejection(conf: Sequence[float] | np.ndarray, right: Sequence[bool] | np.ndarray,
              fractions: Sequence[float] = REJECT) -> dict[str, float]:
    """Accuracy on what remains when the least confident fraction k of the images is rejected."""
    c, r = np.asarray(conf, dtype=np.float64), np.asarray(right, dtype=np.float64)
    order = np.argsort(-c, kind="stable")  # most confident first
    out = {}
    for k in fractions:
        keep = order[: max(1, int(round(len(c) * (1 - k))))] if len(c) else order
        out[f"{100 * k:g}%"] = float(r[keep].mean()) if keep.size else 0.0
    return out


def word_nll(conf: np.ndarray, right: np.ndarray) -> float:
    """Binary log loss of "the word is right" under the confidences (what a temperature is fitted to)."""
    c = np.clip(conf, 1e-6, 1 - 1e-6)
    return float(-(right * np.log(c) + (1 - right) * np.log(1 - c)).mean())


def fit_temperature(score: Callable[[float], tuple[np.ndarray, np.ndarray]],
                    grid: Sequence[float] = TEMPERATURES) -> tuple[float, dict[str, float]]:
    """The temperature of ``grid`` with the lowest word NLL; ``score(t)`` gives (confidences, right) at t."""
    losses = {t: word_nll(*score(t)) for t in grid}
    best = min(losses, key=lambda t: (losses[t], abs(t - 1.0)))
    return best, {f"{t:g}": v for t, v in losses.items()}


def plot_reliability(sets: dict[str, dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Reliability diagram (accuracy vs confidence per bin, one line per set) as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    for name, rel in sets.items():
        xs = [b["conf"] for b in rel["bins"]]
        ax.plot(xs, [b["acc"] for b in rel["bins"]], marker="o", label=f"{name} (ECE {100 * rel['ece']:.1f}%)")
    ax.set_xlabel("confidence (mean per bin)")
    ax.set_ylabel("word accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Reliability diagram")
    _atomic(path, lambda f: fig.savefig(f, format="png", bbox_inches="tight"))
    plt.close(fig)


def write_report(result: dict[str, Any], out_dir: str | os.PathLike[str]) -> None:
    """``calibration.json`` and ``reliability.png`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _atomic(out / "calibration.json", lambda f: f.write(json.dumps(result, indent=2).encode() + b"\n"))
    plot_reliability({k: v for k, v in result["sets"].items()}, out / "reliability.png")


def format_calibration(result: dict[str, Any]) -> str:
    """A plain-text table: set, ECE, and accuracy with the least confident k% rejected."""
    ks = list(next(iter(result["sets"].values()))["reject"]) if result["sets"] else []
    lines = [f"{'set':<16}{'ECE %':>8}" + "".join(f"{'rej ' + k:>10}" for k in ks)]
    for name, r in result["sets"].items():
        lines.append(f"{name:<16}{100 * r['ece']:>8.2f}" + "".join(f"{100 * v:>10.2f}" for v in r["reject"].values()))
    return "\n".join(lines)


def _atomic(path: str | os.PathLike[str], write: Callable[[Any], object]) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is for reading
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def calibrate(checkpoint_path: str, out: str, dataset_cfg: Any = None, is_filter: bool = True) -> dict[str, Any]:
    """``crnn calibrate``: fit ``PostProcess.temperature`` on a validation set; write a checkpoint with it.

    The set is the checkpoint config's ``Eval`` dataset (for the bundled model: the validation split
    carved from the training crops, never a benchmark) unless ``dataset_cfg`` is given. Returns the
    temperature, the NLL per temperature, and the reliability before and after.
    """
    import dataclasses

    from crnn import checkpoint
    from crnn.config import ConfigError
    from crnn.data.loader import build_loader
    from crnn.data.preprocess import Preprocess
    from crnn.decoders import build_decoder
    from crnn.evaluate import eval_datasets, evaluate
    from crnn.metrics import RecMetric, make_normalizer
    from crnn.torch_backend import load_model

    state = checkpoint.load(checkpoint_path)
    model, charset, cfg = load_model(checkpoint_path)
    if dataset_cfg is None and cfg.Eval is None:
        raise ConfigError(f"{checkpoint_path}: its config has no Eval section; give the validation set with --sets")
    base = dataclasses.replace(cfg.PostProcess, temperature=1.0)
    normalize = make_normalizer(is_filter, cfg.Metric.ignore_space, charset.normalize)
    loader_cfg = dataclasses.replace(cfg.Eval.loader if cfg.Eval else _loader(), shuffle=False, drop_last=False)
    outputs: list[tuple[Any, list[str]]] = []
    spec = Preprocess.from_config(cfg)  # the model's, also for --sets (whose transforms are defaults)
    sets = eval_datasets(dataset_cfg or cfg.Eval.dataset, normalize, cfg.Global.strict_data, spec)
    # a temperature "fitted" on nothing would be written as if it meant something
    if sum(len(ds) for _, ds in sets) == 0:
        raise ValueError(f"no samples to calibrate on in {', '.join(name for name, _ in sets) or 'the given sets'}: "
                         "calibration needs a labelled validation set")
    for _, ds in sets:
        loader, _ = build_loader(ds, loader_cfg, charset, seed=0)
        evaluate(model, loader, charset, RecMetric(normalize), decoder=build_decoder(base, charset), outputs=outputs)

    def score(t: float) -> tuple[np.ndarray, np.ndarray]:
        decoder, metric = build_decoder(dataclasses.replace(base, temperature=t), charset), RecMetric(normalize)
        conf, right = [], []
        for logits, texts in outputs:
            preds = decoder(logits)
            right += metric.update([p.text for p in preds], texts)
            conf += [p.confidence for p in preds]
        return np.asarray(conf), np.asarray(right, dtype=np.float64)

    t, losses = fit_temperature(score)
    state["config"]["PostProcess"] = {**state["config"].get("PostProcess", {}), "temperature": t}
    checkpoint.save(out, state)
    return {"temperature": t, "nll": losses, "before": reliability(*score(1.0)), "after": reliability(*score(t)),
            "count": int(sum(len(x) for _, x in outputs))}


def _loader() -> Any:
    from crnn.config import LoaderConfig

    return LoaderConfig(batch_size_per_card=128)
