"""Checks of a built ``Config``: names against the component tables, numbers, and keys with no effect."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crnn.config.schema import Config, ConfigError, DatasetConfig, LoaderConfig, SplitConfig, TransformsConfig
from crnn.limits import (
    MAX_BATCH_SIZE,
    MAX_INPUT_HEIGHT,
    MAX_INPUT_WIDTH,
    MAX_NUM_WORKERS,
    MAX_TEXT_LENGTH,
    MAX_THREADS,
    check_range,
    shown,
)

# Keys PaddleOCR's configs carry that change nothing here; set to a non-default value they are
# accepted (refusing them would refuse PaddleOCR's own files) with a warning that names them.
NO_EFFECT: dict[str, str] = {
    "Global.save_inference_dir": "`crnn export --out` names the ONNX file",
    "Global.infer_img": "give images to `crnn predict`",
    "Global.infer_mode": "",
    "Global.save_res_path": "`crnn predict` prints to stdout",
    "Global.distributed": "`crnn train --nproc N` (or torchrun) makes a run distributed",
    "PostProcess.character_dict_path": "Global.character_dict_path sets the charset",
    "PostProcess.use_space_char": "Global.use_space_char sets the charset",
    "Train.dataset.transforms.keep_keys": "batches are always image, label, length",
    "Eval.dataset.transforms.keep_keys": "batches are always image, label, length",
    "Train.loader.use_shared_memory": "PyTorch's loader workers always share memory",
    "Eval.loader.use_shared_memory": "PyTorch's loader workers always share memory",
}


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part, None) if obj is not None else None
    return obj


def _default(dotted: str) -> Any:
    """The schema default of a dotted key (sections that default to None are built empty)."""
    node: Any = Config()
    for part in dotted.split("."):
        value = getattr(node, part)
        if value is None and part in ("Train", "Eval"):
            value = SplitConfig()
        node = value
    return node


def _unread(section: Any, name: str, table: Mapping[str, Any], where: str) -> list[str]:
    """Keys of ``section`` that some entry of ``table`` reads but entry ``name`` does not, yet are set."""
    read_by_some = set().union(*(e.keys for e in table.values()))
    default = type(section)()
    return [f"{where}.{k} (not read by {name})" for k in sorted(read_by_some - set(table[name].keys))
            if getattr(section, k) != getattr(default, k)]


def no_effect(cfg: Config) -> list[str]:
    """Set keys that change nothing, each with why (logged as a warning by ``load_config``)."""
    from crnn.decoders import DECODERS
    from crnn.optim import LR_SCHEDULES, OPTIMIZERS

    out = []
    for key, why in NO_EFFECT.items():
        value = _get(cfg, key)
        if value is not None and value != _default(key):
            if key.startswith("PostProcess.") and value == _get(cfg, key.replace("PostProcess", "Global")):
                continue
            out.append(f"{key}{f' ({why})' if why else ''}")
    opt = cfg.Optimizer
    out += _unread(opt, opt.name, OPTIMIZERS, "Optimizer")
    out += _unread(opt.lr, opt.lr.name, LR_SCHEDULES, "Optimizer.lr")
    out += _unread(cfg.PostProcess, cfg.PostProcess.decoder, DECODERS, "PostProcess")
    for split in ("Train", "Eval"):
        sec: SplitConfig | None = getattr(cfg, split)
        if sec is not None:
            out += _unread_dataset(sec.dataset, f"{split}.dataset")
    return out


def _unread_dataset(ds: DatasetConfig, where: str) -> list[str]:
    from crnn.data.datasets import SOURCES

    out = _unread(ds, ds.name, SOURCES, where)
    for i, member in enumerate(ds.datasets):
        out += _unread_dataset(member, f"{where}.datasets[{i}]")
    return out


def check_names(cfg: Config) -> None:
    """Every name that picks a table entry is one of the table's (model parts are checked while built)."""
    from crnn.data.datasets import SOURCES
    from crnn.decoders import DECODERS
    from crnn.optim import LR_SCHEDULES, OPTIMIZERS
    from crnn.registry import lookup

    lookup(OPTIMIZERS, cfg.Optimizer.name, "Optimizer.name", "optimizer")
    lookup(LR_SCHEDULES, cfg.Optimizer.lr.name, "Optimizer.lr.name", "learning-rate schedule")
    lookup(DECODERS, cfg.PostProcess.decoder, "PostProcess.decoder", "decoder")
    for split in ("Train", "Eval"):
        sec: SplitConfig | None = getattr(cfg, split)
        todo = [(sec.dataset, f"{split}.dataset")] if sec is not None else []
        while todo:
            ds, where = todo.pop()
            lookup(SOURCES, ds.name, f"{where}.name", "dataset")
            todo += [(m, f"{where}.datasets[{i}]") for i, m in enumerate(ds.datasets)]


def _image_shape_ok(t: TransformsConfig) -> bool:
    shape = t.image_shape
    return len(shape) == 3 and shape[0] in (1, 3) and min(shape) >= 1


def check_numbers(cfg: Config) -> None:
    """Numbers that must be positive (or non-negative): a negative step count must not train 0 steps quietly."""
    g, lr = cfg.Global, cfg.Optimizer.lr
    positive = [("Global.epoch_num", g.epoch_num), ("Global.print_batch_step", g.print_batch_step),
                ("Global.log_smooth_window", g.log_smooth_window), ("Global.max_text_length", g.max_text_length),
                ("Global.max_steps", g.max_steps), ("Global.num_threads", g.num_threads),
                ("Global.micro_batch_size", g.micro_batch_size),
                ("Optimizer.lr.learning_rate", lr.learning_rate)]
    non_negative = [("Global.save_epoch_step", g.save_epoch_step), ("Global.save_latest_step", g.save_latest_step),
                    ("Optimizer.lr.warmup_epoch", lr.warmup_epoch), ("Optimizer.lr.warmup_steps", lr.warmup_steps),
                    ("Architecture.Head.fc_decay", cfg.Architecture.Head.fc_decay),
                    *((f"Global.eval_batch_step[{i}]", v) for i, v in enumerate(g.eval_batch_step))]
    for split in ("Train", "Eval"):
        sec: SplitConfig | None = getattr(cfg, split)
        if sec is not None:
            loader: LoaderConfig = sec.loader
            positive.append((f"{split}.loader.batch_size_per_card", loader.batch_size_per_card))
            non_negative.append((f"{split}.loader.num_workers", loader.num_workers))
            if not _image_shape_ok(sec.dataset.transforms):
                raise ConfigError(f"{split}.dataset.transforms.image_shape: expected [C, H, W] with C 1 or 3 and "
                                  f"H, W >= 1, got {shown(sec.dataset.transforms.image_shape)}")
    if cfg.Distill is not None:
        d = cfg.Distill
        check_range("Distill.temperature", d.temperature, 1e-3, 1e3, ConfigError)
        check_range("Distill.weight", d.weight, 0.0, 1e3, ConfigError)
        check_range("Distill.max_teacher_nll", d.max_teacher_nll, 1e-3, 1e6, ConfigError)
        check_range("Distill.batch_size", d.batch_size, 1, MAX_BATCH_SIZE, ConfigError)
        sources = (len(cfg.Train.dataset.datasets) or 1) if cfg.Train is not None else 0
        for i in d.apply_to or []:
            if not 0 <= i < sources:
                raise ConfigError(f"Distill.apply_to: {i} is not an index of Train.dataset.datasets (0..{sources - 1})")
    for key, value in positive:
        if value is not None and not value > 0:
            raise ConfigError(f"{key}: must be > 0, got {shown(value)}")
    for key, value in non_negative:
        if value is not None and value < 0:
            raise ConfigError(f"{key}: must be >= 0, got {shown(value)}")
    check_bounds(cfg)
    if g.ema_decay is not None and not 0 < g.ema_decay < 1:
        raise ConfigError(f"Global.ema_decay: must be between 0 and 1, got {g.ema_decay}")


def check_bounds(cfg: Config) -> None:
    """Upper bounds (``crnn.limits``) on the sizes a config sets: ``batch_size_per_card: 1000000000``
    would otherwise fail as a MemoryError deep in the sampler, ``num_threads: 100000`` never answer."""
    g, lr = cfg.Global, cfg.Optimizer.lr
    bounded: list[tuple[str, float | None, float, float]] = [
        ("Global.num_threads", g.num_threads, 1, MAX_THREADS),
        ("Global.max_text_length", g.max_text_length, 1, MAX_TEXT_LENGTH),
        ("Global.micro_batch_size", g.micro_batch_size, 1, MAX_BATCH_SIZE),
        # finite: an infinite rate trains on with non-finite weights
        ("Optimizer.lr.learning_rate", lr.learning_rate, 0.0, 1e6)]
    for split in ("Train", "Eval"):
        sec: SplitConfig | None = getattr(cfg, split)
        if sec is not None:
            _, h, w = sec.dataset.transforms.image_shape
            bounded += [(f"{split}.loader.batch_size_per_card", sec.loader.batch_size_per_card, 1, MAX_BATCH_SIZE),
                        (f"{split}.loader.num_workers", sec.loader.num_workers, 0, MAX_NUM_WORKERS),
                        (f"{split}.dataset.transforms.image_shape height", h, 1, MAX_INPUT_HEIGHT),
                        (f"{split}.dataset.transforms.image_shape width", w, 1, MAX_INPUT_WIDTH)]
    for key, value, low, high in bounded:
        check_range(key, value, low, high, ConfigError)
    for split in ("Train", "Eval"):
        sec = getattr(cfg, split)
        todo = [(sec.dataset, f"{split}.dataset")] if sec is not None else []
        while todo:  # a ratio <= 0 samples nothing: the run trained zero steps and exited 0
            ds, where = todo.pop()
            for i, r in enumerate(ds.ratio_list):
                if not 0 < r <= 1e6:
                    raise ConfigError(f"{where}.ratio_list[{i}]: must be a fraction > 0, got {shown(r)}")
            todo += [(m, f"{where}.datasets[{i}]") for i, m in enumerate(ds.datasets)]


def validate(cfg: Config) -> None:
    """Raise ``ConfigError`` (naming the key) for a name no table has or an out-of-range number."""
    check_names(cfg)
    check_numbers(cfg)

