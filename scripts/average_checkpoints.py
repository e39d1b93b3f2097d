"""Average the weights of checkpoints of one architecture and charset (a uniform "model soup").

    python scripts/average_checkpoints.py A.pt B.pt --out soup.pt

Every float tensor of the inference weights (``model``: the EMA weights of a training checkpoint,
or a packaged model's) is averaged in float32, batch-norm statistics included; integer buffers
(BN's batch counters) come from the first file. The output is a checkpoint that
``scripts/package_model.py`` packages and ``crnn eval --checkpoint`` reads; its config and charset
are the first file's. Evaluate the average on the validation split before using it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from crnn import checkpoint


def average(paths: list[str]) -> dict[str, Any]:
    """The first checkpoint with ``model`` replaced by the mean of every checkpoint's ``model``."""
    states = [checkpoint.load(p) for p in paths]
    first = states[0]
    for p, s in zip(paths[1:], states[1:], strict=True):
        if s["charset"] != first["charset"]:
            raise SystemExit(f"average_checkpoints: {p} has another charset than {paths[0]}")
        if s["config"]["Architecture"] != first["config"]["Architecture"] or s["model"].keys() != first["model"].keys():
            raise SystemExit(f"average_checkpoints: {p} has another architecture than {paths[0]}")
    weights: dict[str, torch.Tensor] = {}
    for k, v in first["model"].items():
        if v.is_floating_point():
            weights[k] = torch.stack([s["model"][k].float() for s in states]).mean(0)
        else:
            weights[k] = v
    return {"model": weights, "config": first["config"], "charset": first["charset"],
            "step": first.get("step"), "epoch": first.get("epoch"),
            "averaged_from": [Path(p).name for p in paths]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", help="two or more checkpoints (.pt)")
    ap.add_argument("--out", required=True, help="where to write the averaged checkpoint")
    args = ap.parse_args()
    if len(args.checkpoints) < 2:
        raise SystemExit("average_checkpoints: give at least two checkpoints")
    out = checkpoint.save(args.out, average(args.checkpoints))
    print(f"wrote {out}: the mean of {len(args.checkpoints)} checkpoints")


if __name__ == "__main__":
    main()
