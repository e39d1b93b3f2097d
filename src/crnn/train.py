"""``crnn train``: the training loop, as one process or as one rank of ``torchrun`` (DDP)."""

from __future__ import annotations

import contextlib
import logging
import math
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from crnn import checkpoint
from crnn.charset import Charset
from crnn.config import Config
from crnn.data.datasets import build_dataset, train_label_check
from crnn.data.loader import Batch, build_loader, split_batch
from crnn.data.preprocess import Preprocess
from crnn.decode import greedy_decode
from crnn.decoders import build_decoder
from crnn.distributed import DistInfo, barrier, broadcast, cleanup, init_distributed
from crnn.ema import EMA
from crnn.evaluate import eval_datasets, evaluate_sets, format_table
from crnn.finetune import transfer_weights
from crnn.logs import MetricsLog, SmoothedValue
from crnn.loss import ctc_loss, distill_loss
from crnn.memory import keep_freed_memory
from crnn.metrics import RecMetric, make_normalizer
from crnn.models import build_model
from crnn.optim import build_optimizer, build_scheduler, param_groups, regularizer_l2

log = logging.getLogger(__name__)


def _rng_state() -> dict[str, Any]:
    """Every RNG's state as tensors and plain data, so checkpoints load with ``weights_only=True``."""
    key, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    assert isinstance(keys, np.ndarray)
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": {"key": key, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    npstate = state["numpy"]
    if isinstance(npstate, dict):
        keys = npstate["keys"].numpy().astype(np.uint32)
        np.random.set_state((npstate["key"], keys, npstate["pos"], npstate["has_gauss"], npstate["cached_gaussian"]))
    else:  # checkpoints written before: the tuple of np.random.get_state()
        np.random.set_state(npstate)
    random.setstate(state["python"])


class TrainingStoppedError(Exception):
    """Training stopped early on SIGINT/SIGTERM after saving ``latest.pt``; ``exit_code`` is 128 + the signal."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class StopRequest:
    """Turns the first SIGINT/SIGTERM into a request to stop after the current step; a second Ctrl-C aborts.

    Stopping between steps keeps the saved state exact: the weights, optimizer, step count and data
    position of ``latest.pt`` all describe the same moment, so a resume continues as if never stopped.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            # A second Ctrl-C is a person who will not wait; supervisors (torchrun) may repeat SIGTERM at once.
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.signum = signum
        log.warning("%s: stopping after this step and saving latest.pt (Ctrl-C again aborts without saving)",
                    signal.Signals(signum).name)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            for s in (signal.SIGINT, signal.SIGTERM):
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    step: int = 0  # optimizer steps taken
    epoch: int = 0
    epoch_samples: int = 0  # samples consumed in this epoch, all ranks together
    best: dict[str, Any] = field(default_factory=lambda: {"acc": -1.0})
    last_eval: int = -1


def _check_sha256(path: str, expected: str) -> None:
    """Refuse starting weights whose bytes are not the ones the recipe names."""
    got = checkpoint.file_sha256(path)
    if got != expected.lower():
        raise ValueError(f"pretrained model {path}: sha256 {got[:12]}... is not Global.pretrained_sha256 "
                         f"{expected[:12]}... (the file was replaced; docs/training_log.md names each round's start)")


def _load_weights(model: torch.nn.Module, path: str, charset: Charset, case_init: bool,
                  sha256: str | None = None) -> None:
    """Pretrained weights; a different charset keeps the shared head rows (see ``crnn.finetune``)."""
    if sha256:
        _check_sha256(path, sha256)
    state = checkpoint.load(path)
    old = Charset.from_dict(state["charset"])
    try:
        report = transfer_weights(model, state["model"], old, charset, case_init)
    except ValueError as e:
        raise ValueError(f"pretrained model {path}: {e}") from None
    if old == charset:
        log.info("loaded pretrained weights from %s", path)
    else:
        log.info("loaded pretrained weights from %s (charset %d -> %d symbols): %s", path, len(old), len(charset),
                 report.summary())


def output_frames(model: torch.nn.Module, spec: Preprocess) -> int:
    """T of the model's (B, T, C) output for the input shape of ``spec`` (one zero image, eval mode)."""
    was = model.training
    model.eval()
    with torch.no_grad():
        p = next(model.parameters())
        t = int(model(torch.zeros((1, *spec.image_shape), dtype=p.dtype, device=p.device)).shape[1])
    model.train(was)
    return t


def _load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict[str, Any], path: str, name: str) -> None:
    """``optimizer.load_state_dict(saved)``, refusing the state of another kind of optimizer.

    torch swaps in the saved hyper-parameters without checking them: Adam's state loaded into
    Momentum failed at the first step with ``KeyError: 'momentum'``.
    """
    groups, own = saved.get("param_groups") or [{}], optimizer.param_groups
    need = {k for k in own[0] if k != "params"}
    have = {k for k in groups[0] if k != "params"}
    if len(groups) != len(own) or need - have:
        missing = ", ".join(sorted(need - have)) or f"{len(own)} parameter groups, not {len(groups)}"
        raise ValueError(f"Global.checkpoints {path}: its optimizer state is not that of Optimizer.name {name} "
                         f"(it lacks {missing}); resume with the optimizer it was trained with, or start from its "
                         "weights with Global.pretrained_model")
    try:
        optimizer.load_state_dict(saved)
    except (ValueError, KeyError) as e:
        raise ValueError(f"Global.checkpoints {path}: its optimizer state does not fit Optimizer.name {name}: "
                         f"{e}") from None


class DivergedError(ValueError):
    """Training produced a non-finite loss or weights; the checkpoints on disk are from before."""


def _sync_bn(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    if info.device.type == "cpu":
        raise ValueError("Global.use_sync_bn: PyTorch's SyncBatchNorm runs on GPUs only")
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


class Trainer:
    """Owns the model, optimizer, schedule, EMA and checkpoints of one run; ``fit`` runs the loop."""

    def __init__(self, cfg: Config, info: DistInfo):
        g = cfg.Global
        assert cfg.Train is not None
        self.cfg, self.info = cfg, info
        self.out_dir = Path(g.save_model_dir)
        self.charset = Charset.from_config(g.character_dict_path, g.use_space_char)
        self.decoder = build_decoder(cfg.PostProcess, self.charset)  # evaluation's; a bad PostProcess fails now
        model: torch.nn.Module = build_model(cfg.Architecture, self.charset.num_classes)
        if g.use_sync_bn and info.world_size > 1:
            model = _sync_bn(model, info)
        model = model.to(info.device)
        if g.channels_last:
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.model = model
        dataset = build_dataset(cfg.Train.dataset, train_label_check(self.charset.normalize, g.max_text_length),
                                train=True, strict=g.strict_data, seed=g.seed, normalize=self.charset.normalize)
        if cfg.Distill is not None:
            from crnn.distill.targets import attach

            attach(dataset, cfg.Train.dataset, cfg.Distill, self.charset, output_frames(model, dataset.preprocess))
        if len(dataset) == 0:
            raise ValueError(f"the training set ({', '.join(src.name for src in dataset.sources)}) has no usable "
                             "sample")
        self.loader, self.sampler = build_loader(dataset, cfg.Train.loader, self.charset, g.seed,
                                                 info.rank, info.world_size)
        if cfg.Eval is not None:  # an empty eval set must stop the run now, not at its first evaluation
            normalize = make_normalizer(cfg.Metric.is_filter, cfg.Metric.ignore_space, self.charset.normalize)
            for _, eval_set in eval_datasets(cfg.Eval.dataset, normalize, g.strict_data):
                if len(eval_set) == 0:
                    raise ValueError(f"evaluation set {eval_set.sources[0].name} has no usable sample")
        if len(self.loader) == 0:  # drop_last with fewer samples than a batch: every epoch had no step, exit 0
            loader_cfg = cfg.Train.loader
            raise ValueError(f"the training set has {len(dataset)} usable samples (labels up to "
                             f"Global.max_text_length {g.max_text_length} symbols), fewer than one batch of "
                             f"Train.loader.batch_size_per_card {loader_cfg.batch_size_per_card} x {info.world_size} "
                             f"process(es) with drop_last: {str(loader_cfg.drop_last).lower()}: no training step")
        self.steps_per_epoch = max(1, len(self.loader))
        self.optimizer = build_optimizer(
            param_groups(model, cfg.Architecture.Head.fc_decay, regularizer_l2(cfg.Optimizer)), cfg.Optimizer)
        self.scheduler = build_scheduler(self.optimizer, cfg.Optimizer, self.steps_per_epoch, g.epoch_num)
        self.progress = Progress()
        self.distill_part = torch.zeros(())  # the last step's distillation term (crnn.distill), for the log
        self.metrics_log = MetricsLog(self.out_dir)
        if info.is_main:
            for orphan in checkpoint.remove_orphans(self.out_dir):
                log.info("removed %s, left by a process killed while saving", orphan)
            self.metrics_log.remove_orphans()
        if g.pretrained_model and not g.checkpoints:
            _load_weights(model, g.pretrained_model, self.charset, g.finetune_case_init, g.pretrained_sha256)
        # Built after the pretrained weights are in, so a warm restart averages from them.
        self.ema = EMA(model, g.ema_decay) if g.ema_decay else None
        if g.checkpoints:
            self._resume(g.checkpoints)
        # DDP averages gradients across ranks; the wrapped module stays ``self.model`` for saving.
        self.forward: torch.nn.Module = (
            DistributedDataParallel(model, device_ids=[info.device] if info.device.type == "cuda" else None)
            if info.world_size > 1 else model)
        if g.compile:
            # Inductor fuses batch norm, hard-swish and the SE products that dominate a CPU step;
            # evaluation and saving keep using the eager ``self.model`` (same parameters).
            self.forward = torch.compile(self.forward)  # type: ignore[assignment]

    def _resume(self, path: str) -> None:
        state = checkpoint.load(path)
        checkpoint.load_weights(self.model, state.get("train_model", state["model"]), f"Global.checkpoints {path}")
        _load_optimizer_state(self.optimizer, state["optimizer"], path, self.cfg.Optimizer.name)
        self.scheduler.load_state_dict(state["scheduler"])
        p = self.progress
        p.step, p.epoch, p.best = state["step"], state["epoch"], state.get("best_metric", p.best)
        # Counted in samples, so a resume may change the number of processes or the batch size.
        p.epoch_samples = state["epoch_samples"]
        if self.ema is not None and "train_model" in state:
            self.ema.load_state_dict(state["model"], p.step)
        _set_rng_state(state["rng"])
        if self.info.is_main and (dropped := self.metrics_log.truncate(p.step)):
            log.info("dropped %d rows past step %d from %s", dropped, p.step, self.metrics_log.path)
        log.info("resumed from %s at step %d (epoch %d, sample %d)", path, p.step, p.epoch, p.epoch_samples)

    def weights(self) -> dict[str, torch.Tensor]:
        """What inference should use: the EMA weights when enabled."""
        return self.ema.state_dict() if self.ema is not None else self.model.state_dict()

    def save(self, name: str) -> None:
        """Atomically write checkpoint ``name`` (rank 0 only)."""
        if not self.info.is_main:
            return
        p = self.progress
        state = {"model": self.weights(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "step": p.step, "epoch": p.epoch,
                 "epoch_samples": p.epoch_samples, "world_size": self.info.world_size, "rng": _rng_state(),
                 "config": self.cfg.to_dict(), "charset": self.charset.to_dict(), "best_metric": p.best}
        if self.ema is not None:
            state["train_model"] = self.model.state_dict()
        for key in ("model", "train_model"):  # never overwrite a good checkpoint with diverged weights
            weights = state.get(key)
            found = checkpoint.first_non_finite(weights) if isinstance(weights, dict) else None
            if found is not None:
                raise DivergedError(f"training diverged by step {p.step}: tensor {found[0]} holds {found[1]} "
                                    f"non-finite values (NaN or inf); {name}.pt was not written, the checkpoints in "
                                    f"{self.out_dir} are from before (lower Optimizer.lr.learning_rate?)")
        checkpoint.save(self.out_dir / name, state)

    def evaluate(self) -> None:
        """Evaluate on rank 0; every rank then agrees on "best" (broadcast)."""
        cfg, p = self.cfg, self.progress
        p.last_eval = p.step
        if cfg.Eval is None:
            return
        res = None
        if self.info.is_main:
            # the averaged weights when enabled: they are what gets saved
            model = self.ema.module if self.ema is not None else self.model
            res = evaluate_sets(model, cfg, self.charset, cfg.Eval.dataset, cfg.Eval.loader, cfg.Metric.is_filter,
                                decoder=self.decoder)
            self.metrics_log.write({"kind": "eval", "step": p.step, "epoch": p.epoch, "acc": res["total"]["acc"],
                                    "norm_edit_dis": res["total"]["norm_edit_dis"], "sets": res["sets"]})
            tqdm.write(f"step {p.step} eval:\n{format_table(res)}")
        res = broadcast(res, self.info)
        assert res is not None
        key = cfg.Metric.main_indicator
        if res["total"][key] >= p.best.get(key, -1.0):  # PaddleOCR keeps the later checkpoint on ties
            p.best = {**res["total"], "step": p.step}
            self.save("best_accuracy")
        barrier(self.info)

    def _forward_backward(self, batch: Batch, amp_dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward over ``batch`` in chunks of ``Global.micro_batch_size`` (one chunk when unset).

        Each chunk's mean CTC loss is weighted by its share of the batch, so the gradients that add up
        in ``.grad`` are those of the batch's mean loss; only BatchNorm differs (it normalises each
        chunk with the chunk's statistics). With a ``Distill`` section the teacher's term is added the
        same way (``distill_part`` keeps its value for the log). Returns the (B, T, C) logits (detached)
        and the mean loss.
        """
        g, device = self.cfg.Global, self.info.device
        chunks = split_batch(batch, g.micro_batch_size) if g.micro_batch_size else [batch]
        ddp = self.forward if isinstance(self.forward, DistributedDataParallel) else None
        n, outputs, loss = len(batch.texts), [], torch.zeros((), device=device)
        for i, chunk in enumerate(chunks):
            images = chunk.images.to(device)
            if g.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            # DDP averages gradients across ranks in the last chunk's backward only: one exchange per step
            with ddp.no_sync() if ddp is not None and i < len(chunks) - 1 else contextlib.nullcontext():
                with torch.autocast(device.type, dtype=amp_dtype, enabled=g.use_amp):
                    logits = self.forward(images)
                part = ctc_loss(logits, chunk.targets.to(device), chunk.target_lengths.to(device),
                                self.cfg.Loss.use_focal_loss) * (len(chunk.texts) / n)
                if chunk.soft is not None and chunk.soft_mask is not None and self.cfg.Distill is not None:
                    d = self.cfg.Distill
                    kd = distill_loss(logits, chunk.soft.to(device), chunk.soft_mask.to(device), d.temperature)
                    self.distill_part += kd.detach() * (len(chunk.texts) / n)
                    part = part + d.weight * kd * (len(chunk.texts) / n)
                part.backward()
            outputs.append(logits.detach())
            loss += part.detach()
        return (outputs[0] if len(outputs) == 1 else torch.cat(outputs)), loss

    def train_step(self, batch: Batch, amp_dtype: torch.dtype) -> torch.Tensor:
        """Forward, CTC loss, backward, clip, optimizer, schedule and EMA; returns (B, T, C) logits."""
        g = self.cfg.Global
        self.optimizer.zero_grad(set_to_none=True)
        self.distill_part = torch.zeros(())
        logits, self.loss = self._forward_backward(batch, amp_dtype)
        if self.progress.step < g.freeze_backbone_steps:
            # no gradient = no update (Adam and weight decay skip it); works under DDP, unlike requires_grad
            for p in self.model.backbone.parameters():  # type: ignore[union-attr]
                p.grad = None
        clip = self.cfg.Optimizer.clip_norm or self.cfg.Optimizer.clip_norm_global
        if clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return logits

    def _stop_requested(self, stop: StopRequest, loss: float = 0.0) -> bool:
        """Whether any rank got SIGINT/SIGTERM (ranks agree, so none waits forever for the others).

        Raises:
            DivergedError: the step's loss is not finite on some rank (an infinite learning rate, say);
                all ranks raise together, before anything is saved.
        """
        flags = [float(stop.signum is not None), float(not math.isfinite(loss))]
        if self.info.world_size > 1:
            t = torch.tensor(flags, device=self.info.device)
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
            flags = t.tolist()
        if flags[1]:
            raise DivergedError(f"training diverged at step {self.progress.step}: the loss is {loss} (not finite); "
                                f"nothing was saved from this step on, the checkpoints in {self.out_dir} are from "
                                "before (lower Optimizer.lr.learning_rate?)")
        return bool(flags[0])

    def fit(self) -> dict[str, Any]:
        """Run until ``Global.max_steps`` or ``Global.epoch_num``; returns the best evaluation.

        Raises:
            TrainingStoppedError: SIGINT or SIGTERM arrived; ``latest.pt`` holds the state after the last step.
        """
        with StopRequest() as stop:
            self._fit(stop)
            if stop.signum is not None:
                name = signal.Signals(stop.signum).name
                raise TrainingStoppedError(f"stopped by {name} at step {self.progress.step}; saved "
                                      f"{self.out_dir / 'latest.pt'} (resume with -o Global.checkpoints=PATH)",
                                      128 + stop.signum)
        return self.progress.best

    def _fit(self, stop: StopRequest) -> None:
        cfg, g, p = self.cfg, self.cfg.Global, self.progress
        max_steps = g.max_steps if g.max_steps is not None else g.epoch_num * self.steps_per_epoch
        bar = tqdm(total=max_steps, initial=p.step, desc="train", dynamic_ncols=True, mininterval=5.0,
                   disable=not self.info.is_main)
        try:
            if self._loop(stop, bar, max_steps):
                return  # stopped by a signal; latest.pt is saved
        finally:
            bar.close()  # an error's one line starts a line of its own, not the bar's
        self.save("latest")
        if cfg.Eval is not None and p.last_eval != p.step:
            self.evaluate()  # the final weights are always evaluated once
            self.save("latest")
        if self.info.is_main:
            self.metrics_log.plot()
        log.info("done at step %d; best %s", p.step, p.best)

    def _loop(self, stop: StopRequest, bar: tqdm, max_steps: int) -> bool:
        """The steps of ``_fit`` until ``max_steps`` or the last epoch; True when a stop request ended
        them (after saving ``latest.pt``)."""
        cfg, g, p = self.cfg, self.cfg.Global, self.progress
        assert cfg.Train is not None
        amp_dtype = torch.bfloat16 if g.amp_dtype == "bfloat16" else torch.float16
        smooth_loss, smooth_acc = SmoothedValue(g.log_smooth_window), SmoothedValue(g.log_smooth_window)
        smooth_kd = SmoothedValue(g.log_smooth_window)
        train_norm = make_normalizer(False, True, self.charset.normalize)
        eval_start, eval_every = [*g.eval_batch_step, 0, 2000][:2]
        t_last, n_last = time.perf_counter(), 0
        while p.step < max_steps and p.epoch < g.epoch_num:
            # each rank's shard is every world_size-th sample, so skipping n/world per rank skips n in all
            self.sampler.set_epoch(p.epoch, skip=p.epoch_samples // self.info.world_size)
            epoch_steps, skipped, resumed_mid_epoch = 0, 0, p.epoch_samples > 0
            for batch in self.loader:
                skipped += batch.skipped
                # counts what the sampler handed out (read or not), so a resume skips exactly these samples
                p.epoch_samples += cfg.Train.loader.batch_size_per_card * self.info.world_size
                if not batch.texts:
                    continue
                logits = self.train_step(batch, amp_dtype)
                p.step += 1
                epoch_steps += 1
                n_last += len(batch.texts) * self.info.world_size
                loss = self.loss.item()
                # before anything is evaluated or saved: raises on a non-finite loss, on every rank together
                stop_now = self._stop_requested(stop, loss)
                smooth_loss.update(loss)
                smooth_kd.update(self.distill_part.item())
                if g.cal_metric_during_train:
                    m = RecMetric(train_norm)
                    # the running training accuracy always decodes greedily: cheap, and only a progress signal
                    preds = greedy_decode(logits.detach().float().cpu().numpy(), self.charset)
                    m.update([x.text for x in preds], batch.texts)
                    smooth_acc.update(m.compute()["acc"])
                bar.update(1)
                if p.step % g.print_batch_step == 0 or p.step == max_steps:
                    now = time.perf_counter()
                    ips, t_last, n_last = n_last / max(now - t_last, 1e-9), now, 0
                    lr = self.scheduler.get_last_lr()[0]
                    bar.set_postfix(loss=f"{smooth_loss.avg:.3f}", acc=f"{smooth_acc.avg:.3f}", lr=f"{lr:.2e}",
                                    ips=f"{ips:.0f}", refresh=False)
                    if self.info.is_main:
                        self.metrics_log.write({"kind": "train", "step": p.step, "epoch": p.epoch,
                                                "loss": smooth_loss.avg, "acc": smooth_acc.avg, "lr": lr,
                                                "img_s": ips, "skipped": batch.skipped,
                                                **({"distill": smooth_kd.avg} if cfg.Distill is not None else {})})
                if p.step > eval_start and eval_every and (p.step - eval_start) % eval_every == 0:
                    self.evaluate()
                    self.save("latest")
                    if self.info.is_main:
                        self.metrics_log.plot()
                if g.save_latest_step and p.step % g.save_latest_step == 0:
                    self.save("latest")  # bounds what kill -9 loses to save_latest_step steps
                if stop_now:
                    self.save("latest")
                    return True
                if p.step >= max_steps:
                    break
            else:
                # every batch empty: the run wrote an iter_epoch checkpoint of untrained weights per epoch, exit 0
                if epoch_steps == 0 and not resumed_mid_epoch:
                    raise ValueError(f"epoch {p.epoch} gave no training step: no batch of the training set had a "
                                     f"usable sample ({skipped} images could not be read; labels longer than "
                                     f"Global.max_text_length {g.max_text_length} or with no known symbol are "
                                     "dropped); check Train.dataset (data_dir, label files, ratio_list)")
                p.epoch, p.epoch_samples = p.epoch + 1, 0
                self.save("latest")
                if g.save_epoch_step and p.epoch % g.save_epoch_step == 0:
                    self.save(f"iter_epoch_{p.epoch}")
        return False


def log_layout(cfg: Config, info: DistInfo, malloc_kept: bool) -> None:
    """One line saying how this run computes a step on this machine, so two runs' speeds can be compared
    (docs/training_throughput.md has the figures per CPU kind behind each choice)."""
    from crnn.models import train_kernels
    from crnn.threads import cpu_summary

    g = cfg.Global
    log.info("layout: %d process(es) x %d thread(s), channels_last %s, crnn's CPU kernels %s, micro-batch %s, "
             "malloc keeps freed memory %s; CPU %s", info.world_size, torch.get_num_threads(), g.channels_last,
             "on" if train_kernels.enabled else "off (CRNN_TRAIN_KERNELS=0)",
             g.micro_batch_size or "off (whole batch)", "yes" if malloc_kept else "no", cpu_summary())


def train(cfg: Config) -> dict[str, Any]:
    """Train as ``cfg`` says (one process, or one rank under torchrun); returns the best evaluation."""
    g = cfg.Global
    if cfg.Train is None:
        raise ValueError("the config has no Train section")
    random.seed(g.seed)
    np.random.seed(g.seed)
    torch.manual_seed(g.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    if g.num_threads:
        torch.set_num_threads(g.num_threads)
    # before any large tensor: the step's buffers are then reused from the heap, not page-faulted each step
    malloc_kept = keep_freed_memory()
    info = init_distributed(g.use_gpu)
    if info.is_main:
        Path(g.save_model_dir).mkdir(parents=True, exist_ok=True)
        log_layout(cfg, info, malloc_kept)
    try:
        return Trainer(cfg, info).fit()
    finally:
        cleanup(info)
