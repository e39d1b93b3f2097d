"""``crnn train``: the training loop (single process, or one rank of torchrun)."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from crnn import checkpoint
from crnn.charset import Charset
from crnn.config import Config
from crnn.data.datasets import build_dataset, train_label_check
from crnn.data.loader import build_loader
from crnn.decode import greedy_decode
from crnn.evaluate import evaluate_sets, format_table
from crnn.logs import MetricsLog, SmoothedValue
from crnn.loss import ctc_loss
from crnn.metrics import RecMetric, make_normalizer
from crnn.models import build_model
from crnn.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


class EMA:
    """Exponential moving average of every float tensor of a model's state (weights and BN stats)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.state[k].lerp_(v.detach(), 1.0 - self.decay)
            else:
                self.state[k].copy_(v)


def _load_weights(model: torch.nn.Module, path: str) -> None:
    state = checkpoint.load(path)
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if missing or unexpected:
        raise ValueError(f"pretrained model {path} does not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
    log.info("loaded pretrained weights from %s", path)


def train(cfg: Config) -> dict[str, Any]:
    """Train as ``cfg`` says; returns the best evaluation result (empty without an Eval section)."""
    g = cfg.Global
    if cfg.Train is None:
        raise ValueError("the config has no Train section")
    random.seed(g.seed)
    np.random.seed(g.seed)
    torch.manual_seed(g.seed)
    if g.num_threads:
        torch.set_num_threads(g.num_threads)
    out_dir = Path(g.save_model_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    charset = Charset.from_config(g.character_dict_path, g.use_space_char)
    model = build_model(cfg.Architecture, charset.num_classes)
    if g.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    dataset = build_dataset(cfg.Train.dataset, train_label_check(charset.normalize, g.max_text_length),
                            train=True, strict=g.strict_data, seed=g.seed)
    if len(dataset) == 0:
        raise ValueError("the training set has no usable sample")
    loader, sampler = build_loader(dataset, cfg.Train.loader, charset, g.seed)
    steps_per_epoch = max(1, len(loader))
    optimizer = build_optimizer([p for p in model.parameters() if p.requires_grad], cfg.Optimizer)
    scheduler = build_scheduler(optimizer, cfg.Optimizer, steps_per_epoch, g.epoch_num)
    ema = EMA(model, g.ema_decay) if g.ema_decay else None
    step, epoch, epoch_step, best = 0, 0, 0, {"acc": -1.0}
    if g.checkpoints:
        state = checkpoint.load(g.checkpoints)
        model.load_state_dict(state.get("train_model", state["model"]))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, epoch, epoch_step = state["step"], state["epoch"], state["epoch_step"]
        best = state.get("best_metric", best)
        if ema is not None and "train_model" in state:
            ema.state = {k: v.clone() for k, v in state["model"].items()}
        _set_rng_state(state["rng"])
        log.info("resumed from %s at step %d (epoch %d, batch %d)", g.checkpoints, step, epoch, epoch_step)
    elif g.pretrained_model:
        _load_weights(model, g.pretrained_model)

    metrics_log = MetricsLog(out_dir)
    clip = cfg.Optimizer.clip_norm or cfg.Optimizer.clip_norm_global
    amp_dtype = torch.bfloat16 if g.amp_dtype == "bfloat16" else torch.float16
    smooth_loss, smooth_acc = SmoothedValue(g.log_smooth_window), SmoothedValue(g.log_smooth_window)
    train_norm = make_normalizer(False, True, charset.normalize)
    eval_start, eval_every = [*g.eval_batch_step, 0, 2000][:2]
    max_steps = g.max_steps if g.max_steps is not None else g.epoch_num * steps_per_epoch

    def state_dict(weights: dict[str, torch.Tensor]) -> dict[str, Any]:
        s = {"model": weights, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "step": step, "epoch": epoch, "epoch_step": epoch_step, "rng": _rng_state(),
             "config": cfg.to_dict(), "charset": charset.to_dict(), "best_metric": best}
        if ema is not None:
            s["train_model"] = model.state_dict()
        return s

    last_eval = -1

    def run_eval() -> dict[str, Any] | None:
        nonlocal best, last_eval
        last_eval = step
        if cfg.Eval is None:
            return None
        if ema is not None:  # evaluate the averaged weights: they are what gets saved as "model"
            raw = {k: v.clone() for k, v in model.state_dict().items()}
            model.load_state_dict(ema.state)
        res = evaluate_sets(model, cfg, charset, cfg.Eval.dataset, cfg.Eval.loader, cfg.Metric.is_filter)
        if ema is not None:
            model.load_state_dict(raw)
        key = cfg.Metric.main_indicator
        cur = res["total"][key]
        metrics_log.write({"kind": "eval", "step": step, "epoch": epoch, "acc": res["total"]["acc"],
                           "norm_edit_dis": res["total"]["norm_edit_dis"], "sets": res["sets"]})
        tqdm.write(f"step {step} eval:\n{format_table(res)}")
        if cur >= best.get(key, -1.0):  # PaddleOCR keeps the later checkpoint on ties
            best = {**res["total"], "step": step}
            checkpoint.save(out_dir / "best_accuracy", state_dict(ema.state if ema else model.state_dict()))
        return res

    model.train()
    bar = tqdm(total=max_steps, initial=step, desc="train", dynamic_ncols=True, mininterval=2.0)
    t_last, n_last = time.perf_counter(), 0
    done = step >= max_steps
    while not done and epoch < g.epoch_num:
        sampler.set_epoch(epoch, skip=epoch_step * cfg.Train.loader.batch_size_per_card)
        for batch in loader:
            epoch_step += 1  # counts batches consumed, so a resume skips exactly these samples
            if not batch.texts:
                continue
            images = batch.images.contiguous(memory_format=torch.channels_last) if g.channels_last else batch.images
            with torch.autocast("cpu", dtype=amp_dtype, enabled=g.use_amp):
                logits = model(images)
            loss = ctc_loss(logits, batch.targets, batch.target_lengths, cfg.Loss.use_focal_loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update(model)
            step += 1
            n_last += len(batch.texts)
            smooth_loss.update(loss.item())
            if g.cal_metric_during_train:
                m = RecMetric(train_norm)
                m.update([p.text for p in greedy_decode(logits.detach().float().numpy(), charset)], batch.texts)
                smooth_acc.update(m.compute()["acc"])
            bar.update(1)
            if step % g.print_batch_step == 0 or step == max_steps:
                now = time.perf_counter()
                ips = n_last / max(now - t_last, 1e-9)
                t_last, n_last = now, 0
                lr = scheduler.get_last_lr()[0]
                bar.set_postfix(loss=f"{smooth_loss.avg:.3f}", acc=f"{smooth_acc.avg:.3f}", lr=f"{lr:.2e}",
                                ips=f"{ips:.0f}", refresh=False)
                metrics_log.write({"kind": "train", "step": step, "epoch": epoch, "loss": smooth_loss.avg,
                                   "acc": smooth_acc.avg, "lr": lr, "img_s": ips, "skipped": batch.skipped})
            if step > eval_start and eval_every and (step - eval_start) % eval_every == 0:
                run_eval()
                checkpoint.save(out_dir / "latest", state_dict(ema.state if ema else model.state_dict()))
                metrics_log.plot()
            if step >= max_steps:
                done = True
                break
        else:
            epoch += 1
            epoch_step = 0
            checkpoint.save(out_dir / "latest", state_dict(ema.state if ema else model.state_dict()))
            if g.save_epoch_step and epoch % g.save_epoch_step == 0:
                checkpoint.save(out_dir / f"iter_epoch_{epoch}", state_dict(ema.state if ema else model.state_dict()))
    bar.close()
    checkpoint.save(out_dir / "latest", state_dict(ema.state if ema else model.state_dict()))
    if cfg.Eval is not None and last_eval != step:
        run_eval()  # the final weights are always evaluated once
    metrics_log.plot()
    log.info("done at step %d; best %s", step, best)
    return best
