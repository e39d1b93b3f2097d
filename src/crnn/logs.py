"""Training logs: a JSONL metrics file and a PNG plot of the curves beside the checkpoints."""

from __future__ import annotations

import json
import logging
from collections import deque
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class SmoothedValue:
    """Running mean over the last ``window`` values (PaddleOCR's log_smooth_window)."""

    def __init__(self, window: int):
        self.values: deque[float] = deque(maxlen=max(1, window))

    def update(self, value: float) -> None:
        self.values.append(value)

    @property
    def avg(self) -> float:
        return sum(self.values) / len(self.values) if self.values else 0.0


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl`` and redraws ``train_curves.png``."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / "metrics.jsonl"
        self.plot_path = out_dir / "train_curves.png"

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """Every record; a line cut short by a killed process is left out."""
        if not self.path.is_file():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def truncate(self, step: int) -> int:
        """Drop the records after ``step`` (a resumed run writes them again); returns how many were dropped."""
        records = self.read()
        keep = [r for r in records if int(r.get("step", 0)) <= step]
        if self.path.is_file() and len(keep) != len(records):
            tmp = self.path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in keep), encoding="utf-8")
            tmp.replace(self.path)
        return len(records) - len(keep)

    def remove_orphans(self) -> None:
        """Delete the temporary files a killed process left behind."""
        for tmp in (self.path.with_suffix(".jsonl.tmp"), self.plot_path.with_suffix(".tmp.png")):
            tmp.unlink(missing_ok=True)

    def plot(self) -> None:
        """Loss and train accuracy per step, eval accuracy per evaluation."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:  # plotting is optional
            log.debug("matplotlib not installed; no plot")
            return
        records = self.read()
        train = [r for r in records if r.get("kind") == "train"]
        evals = [r for r in records if r.get("kind") == "eval"]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        if train:
            ax1.plot([r["step"] for r in train], [r["loss"] for r in train], lw=1)
            ax2.plot([r["step"] for r in train], [r["acc"] for r in train], lw=1, label="train batch acc")
        if evals:
            ax2.plot([r["step"] for r in evals], [r["acc"] for r in evals], "o-", label="eval acc")
        ax1.set(xlabel="step", ylabel="CTC loss", yscale="log", title="loss")
        ax2.set(xlabel="step", ylabel="word accuracy", ylim=(0, 1), title="accuracy")
        ax2.legend(loc="lower right")
        fig.tight_layout()
        tmp = self.plot_path.with_suffix(".tmp.png")
        fig.savefig(tmp, dpi=90)
        plt.close(fig)
        tmp.replace(self.plot_path)
