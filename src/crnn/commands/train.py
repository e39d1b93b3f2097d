"""``crnn train``: train a model from a YAML config, in one process or as ``--nproc`` DDP ranks."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys

from crnn.commands.options import add_config_args

log = logging.getLogger("crnn")
HELP = "train a model from a YAML config"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``crnn train`` options to ``p``."""
    add_config_args(p)
    p.add_argument("--nproc", default="1",
                   help="processes on this machine (DDP via torchrun; batch_size_per_card is per process); "
                        "auto: on CPU one single-thread rank per core, sharing batch_size_per_card")


def wait_forwarding_signals(proc: subprocess.Popen[bytes]) -> int:
    """Wait for torchrun; SIGTERM is passed on and Ctrl-C (which the ranks get too) only waits, so every
    rank can finish its step and rank 0 save latest.pt (``subprocess.call`` would kill torchrun instead)."""
    import signal

    got: list[int] = []

    def forward(signum: int, frame: object) -> None:
        got.append(signum)
        proc.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        while True:
            try:
                rc = proc.wait()
                break
            except KeyboardInterrupt:
                got.append(signal.SIGINT)
                log.info("waiting for the ranks to save latest.pt and stop")
    finally:
        signal.signal(signal.SIGTERM, previous)
    if got:  # torchrun reports the signal as its own failure; the ranks have saved latest.pt
        print(f"crnn train: stopped by {signal.Signals(got[0]).name}", file=sys.stderr)
        return 128 + got[0]
    return rc


def run(args: argparse.Namespace) -> int:
    """Train; returns the exit code (128 + signal when stopped by SIGINT/SIGTERM)."""
    from crnn.config import load_config

    cfg = load_config(args.config, args.override)  # fail on a bad config before starting processes
    from crnn.distributed import plan_launch

    try:
        launch = plan_launch(args.nproc, cfg.Global.use_gpu, cfg.Train.loader.batch_size_per_card if cfg.Train else 1)
    except ValueError as e:
        print(f"crnn train: {e}", file=sys.stderr)
        return 2
    if launch.nproc > 1:
        # a thin wrapper around torchrun: the same command, one process per rank
        cmd = launch.torchrun(args.config, args.override)
        log.info("running %s", " ".join(cmd))
        return wait_forwarding_signals(subprocess.Popen(cmd, env={**os.environ, **launch.env}))
    from crnn.train import TrainingStoppedError, train

    try:
        train(cfg)
    except TrainingStoppedError as e:
        print(f"crnn train: {e}", file=sys.stderr)
        return e.exit_code
    return 0
