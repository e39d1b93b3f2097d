"""Typed configuration that accepts PaddleOCR's CRNN YAML files.

A YAML file is parsed into nested dataclasses. Every key must be known: an unknown or misspelled
key is an error that names it, so a PaddleOCR option this project does not implement is never
silently ignored. ``-o Section.key=value`` overrides are parsed with YAML typing, as in PaddleOCR.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml


class ConfigError(ValueError):
    """A configuration problem; the message names the offending key."""


@dataclass
class LRConfig:
    """``Optimizer.lr``: schedule name and its parameters (PaddleOCR keys)."""

    name: str = "Const"  # Const | Cosine | Piecewise | Linear
    learning_rate: float = 0.001
    warmup_epoch: float = 0.0
    warmup_steps: int = 0  # crnn extension: warm-up in steps (added to warmup_epoch)
    decay_epochs: list[float] = field(default_factory=list)  # Piecewise boundaries
    values: list[float] = field(default_factory=list)  # Piecewise values
    end_lr: float = 0.0  # Linear
    power: float = 1.0  # Linear
    epochs: int | None = None  # Cosine/Linear length override (default: Global.epoch_num)


@dataclass
class RegularizerConfig:
    """``Optimizer.regularizer``: L2 weight decay added to the gradient (Paddle's L2Decay)."""

    name: str = "L2"
    factor: float = 0.0


@dataclass
class OptimizerConfig:
    """``Optimizer`` section."""

    name: str = "Adam"  # Adam | AdamW | Momentum | SGD | RMSProp
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    momentum: float = 0.9
    weight_decay: float | None = None  # AdamW's decoupled decay
    lr: LRConfig = field(default_factory=LRConfig)
    regularizer: RegularizerConfig | None = None
    clip_norm: float | None = None  # global-norm gradient clipping
    clip_norm_global: float | None = None  # PaddleOCR's alias of clip_norm


@dataclass
class BackboneConfig:
    """``Architecture.Backbone``; which keys apply depends on ``name`` (see ``BACKBONE_KEYS``)."""

    name: str = "MobileNetV3"
    layers: int | None = None
    model_name: str | None = None
    scale: float | None = None
    large_stride: list[int] | None = None
    small_stride: list[int] | None = None
    disable_se: bool | None = None
    in_channels: int | None = None


# The keys each backbone accepts; kept here (not in models/) so config parsing needs no torch.
BACKBONE_KEYS: dict[str, set[str]] = {
    "ResNet": {"layers", "in_channels"},
    "MobileNetV3": {"model_name", "scale", "large_stride", "small_stride", "disable_se", "in_channels"},
}


@dataclass
class NeckConfig:
    """``Architecture.Neck``."""

    name: str = "SequenceEncoder"
    encoder_type: str = "rnn"  # rnn | reshape | fc
    hidden_size: int = 48


@dataclass
class HeadConfig:
    """``Architecture.Head``."""

    name: str = "CTCHead"
    fc_decay: float = 0.0
    mid_channels: int | None = None
    out_channels: int | None = None  # set from the charset; a stated value must agree with it


@dataclass
class ArchitectureConfig:
    """``Architecture`` section."""

    model_type: str = "rec"
    algorithm: str = "CRNN"
    Transform: None = None
    Backbone: BackboneConfig = field(default_factory=BackboneConfig)
    Neck: NeckConfig = field(default_factory=NeckConfig)
    Head: HeadConfig = field(default_factory=HeadConfig)


@dataclass
class LossConfig:
    """``Loss`` section."""

    name: str = "CTCLoss"
    use_focal_loss: bool = False


@dataclass
class PostProcessConfig:
    """``PostProcess`` section."""

    name: str = "CTCLabelDecode"
    character_dict_path: str | None = None
    use_space_char: bool | None = None
    # crnn extensions: the decoder (crnn.decoders) and what a prediction's confidence is
    decoder: str = "greedy"  # greedy (PaddleOCR's) | beam (CTC prefix beam search)
    beam_width: int = 10
    lexicon: str | None = None  # word list file: answer the in-lexicon word with the best CTC score
    lexicon_max_distance: int = 3  # lexicon candidates: words within this many edits of the free reading
    lm: str | None = None  # word list file: character n-gram prior for the beam (shallow fusion)
    lm_order: int = 4
    lm_weight: float = 0.2  # 0.2 and 1.0: the best pair on the validation split (scripts/decoder_report.py --sweep)
    length_bonus: float = 1.0  # with lm: added per symbol to beam scores (offsets the prior's cost per symbol)
    allow: str | None = None  # only these symbols may be output (e.g. "0123456789")
    block: str | None = None  # these symbols are never output
    word_score: str = "mean"  # mean (PaddleOCR) | min | product of the symbols' confidences
    temperature: float = 1.0  # logits are divided by it before the softmax (fitted by `crnn calibrate`)


@dataclass
class MetricConfig:
    """``Metric`` section."""

    name: str = "RecMetric"
    main_indicator: str = "acc"
    is_filter: bool = False
    ignore_space: bool = True


@dataclass
class RecAugConfig:
    """Probabilities of PaddleOCR's ``RecAug`` steps."""

    tia_prob: float = 0.4
    crop_prob: float = 0.4
    reverse_prob: float = 0.4
    noise_prob: float = 0.4
    jitter_prob: float = 0.4
    blur_prob: float = 0.4
    hsv_aug_prob: float = 0.4


@dataclass
class TransformsConfig:
    """The supported subset of PaddleOCR's transform list, flattened.

    Parsed from ``[{DecodeImage: {...}}, {CTCLabelEncode: null}, {RecResizeImg: {...}}, ...]``.
    """

    img_mode: str = "BGR"
    channel_first: bool = False
    image_shape: list[int] = field(default_factory=lambda: [3, 32, 100])
    padding: bool = True
    rec_aug: RecAugConfig | None = None
    keep_keys: list[str] = field(default_factory=lambda: ["image", "label", "length"])


@dataclass
class DatasetConfig:
    """``Train.dataset`` / ``Eval.dataset``."""

    name: str = "SimpleDataSet"  # SimpleDataSet | LMDBDataSet | MixDataSet
    data_dir: str | None = None
    label_file_list: list[str] = field(default_factory=list)
    ratio_list: list[float] = field(default_factory=list)
    delimiter: str = "\t"
    transforms: TransformsConfig = field(default_factory=TransformsConfig)
    datasets: list[DatasetConfig] = field(default_factory=list)  # MixDataSet members


@dataclass
class LoaderConfig:
    """``Train.loader`` / ``Eval.loader``."""

    shuffle: bool = False
    batch_size_per_card: int = 256
    drop_last: bool = False
    num_workers: int = 0
    use_shared_memory: bool = True


@dataclass
class SplitConfig:
    """``Train`` or ``Eval`` section."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)


@dataclass
class GlobalConfig:
    """``Global`` section: PaddleOCR's keys plus a few crnn extensions (marked)."""

    use_gpu: bool = False
    epoch_num: int = 72
    log_smooth_window: int = 20
    print_batch_step: int = 10
    save_model_dir: str = "./output/rec/"
    save_epoch_step: int = 3
    eval_batch_step: list[int] = field(default_factory=lambda: [0, 2000])
    cal_metric_during_train: bool = True
    pretrained_model: str | None = None
    checkpoints: str | None = None
    save_inference_dir: str | None = None
    use_visualdl: bool = False
    use_wandb: bool = False
    infer_img: str | None = None
    character_dict_path: str | None = None
    character_type: str | None = None  # PaddleOCR 2.0 key; only "en"/"EN" (0-9a-z) is accepted
    max_text_length: int = 25
    infer_mode: bool = False
    use_space_char: bool = False
    save_res_path: str | None = None
    distributed: bool = False
    seed: int = 1024
    use_amp: bool = False  # bf16 autocast on CPU (fp16 on GPU)
    # crnn extensions
    amp_dtype: str = "bfloat16"
    max_steps: int | None = None  # stop after this many optimizer steps
    num_threads: int | None = None  # torch intra-op threads
    # SHA-256 of Global.pretrained_model's bytes: a recipe names its starting weights by content,
    # so a later round that overwrites the bundled file cannot silently change an older recipe.
    pretrained_sha256: str | None = None
    channels_last: bool = True  # faster convolutions on CPU; numerically equivalent
    compile: bool = False  # torch.compile the training step's model (minutes to compile; needs a C++ compiler)
    # run each process's batch as chunks of at most this many samples whose gradients add up before one
    # optimizer step (same gradient; BatchNorm sees each chunk's statistics): docs/training_throughput.md
    micro_batch_size: int | None = None
    strict_data: bool = False  # raise on an unusable sample instead of skipping and counting it
    ema_decay: float | None = None  # keep an exponential moving average of the weights
    use_sync_bn: bool = False  # SyncBatchNorm across DDP ranks (GPUs only: a PyTorch limitation)
    save_latest_step: int = 500  # also write latest.pt every this many steps (0: only at evaluations and epochs)
    freeze_backbone_steps: int = 0  # fine-tuning: leave the backbone's weights unchanged for the first N steps
    finetune_case_init: bool = False  # new charset: start a new symbol's head row from its other case's row


@dataclass
class Config:
    """A whole experiment, one YAML file."""

    Global: GlobalConfig = field(default_factory=GlobalConfig)
    Optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    Architecture: ArchitectureConfig = field(default_factory=ArchitectureConfig)
    Loss: LossConfig = field(default_factory=LossConfig)
    PostProcess: PostProcessConfig = field(default_factory=PostProcessConfig)
    Metric: MetricConfig = field(default_factory=MetricConfig)
    Train: SplitConfig | None = None
    Eval: SplitConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (what checkpoints store)."""
        return dataclasses.asdict(self)


T = TypeVar("T")

_RECAUG_OPS = {"RecAug", "BaseDataAugmentation"}
_KNOWN_OPS = {"DecodeImage", "CTCLabelEncode", "RecResizeImg", "KeepKeys", *_RECAUG_OPS}


def _parse_transforms(ops: Any, where: str) -> TransformsConfig:
    if ops is None:
        return TransformsConfig()
    if isinstance(ops, dict):  # already flattened (a config saved by this project)
        return _build(TransformsConfig, ops, where)
    if not isinstance(ops, list):
        raise ConfigError(f"{where}: expected a list of transform operators, got {type(ops).__name__}")
    flat: dict[str, Any] = {}
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or len(op) != 1:
            raise ConfigError(f"{where}[{i}]: each transform is a one-key mapping, got {op!r}")
        (name, params), = op.items()
        params = params or {}
        if name not in _KNOWN_OPS:
            raise ConfigError(
                f"{where}[{i}]: transform {name!r} is not supported (supported: {sorted(_KNOWN_OPS)})"
            )
        allowed = {
            "DecodeImage": {"img_mode", "channel_first"},
            "CTCLabelEncode": set(),
            "RecResizeImg": {"image_shape", "padding"},
            "KeepKeys": {"keep_keys"},
        }.get(name, {f.name for f in dataclasses.fields(RecAugConfig)})
        unknown = set(params) - allowed
        if unknown:
            raise ConfigError(f"{where}.{name}: unknown key(s) {sorted(unknown)}")
        if name in _RECAUG_OPS:
            flat["rec_aug"] = params
        else:
            flat.update(params)
    return _build(TransformsConfig, flat, where)


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _convert(tp: Any, value: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert nested sections."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{where}: a value is required")
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except ConfigError:
                if len(args) == 2:
                    raise
        raise ConfigError(f"{where}: {value!r} does not fit {tp}")
    if tp is type(None):
        if value is not None and value != "":
            raise ConfigError(f"{where}: this option is not supported by crnn (got {value!r})")
        return None
    if _is_dataclass_type(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return _build(tp, value, where)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        items = value if isinstance(value, list) else [value]  # PaddleOCR allows a scalar here
        return [_convert(item_tp, v, f"{where}[{i}]") for i, v in enumerate(items)]
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{where}: unsupported type {tp}")  # pragma: no cover - schema bug


def _build(cls: type[T], data: dict[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in names]
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(
            f"unknown config key {key!r} (known keys here: {', '.join(sorted(names))})"
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        sub = f"{where}.{name}" if where else name
        if name == "transforms" and cls is DatasetConfig:
            kwargs[name] = _parse_transforms(value, sub)
        elif value is None and typing.get_origin(hints[name]) not in (Union, types.UnionType):
            continue  # an empty YAML value means "default", as in PaddleOCR
        else:
            kwargs[name] = _convert(hints[name], value, sub)
    return cls(**kwargs)


def _validate(cfg: Config) -> None:
    bb = cfg.Architecture.Backbone
    if bb.name not in BACKBONE_KEYS:
        raise ConfigError(
            f"Architecture.Backbone.name: unknown backbone {bb.name!r} (known: {sorted(BACKBONE_KEYS)})"
        )
    for f in dataclasses.fields(bb):
        if f.name != "name" and getattr(bb, f.name) is not None and f.name not in BACKBONE_KEYS[bb.name]:
            raise ConfigError(f"Architecture.Backbone.{f.name}: not an option of backbone {bb.name}")
    checks = [
        ("Architecture.algorithm", cfg.Architecture.algorithm, {"CRNN"}),
        ("Architecture.model_type", cfg.Architecture.model_type, {"rec"}),
        ("Architecture.Neck.name", cfg.Architecture.Neck.name, {"SequenceEncoder"}),
        ("Architecture.Neck.encoder_type", cfg.Architecture.Neck.encoder_type, {"rnn", "reshape", "fc"}),
        ("Architecture.Head.name", cfg.Architecture.Head.name, {"CTCHead"}),
        ("Loss.name", cfg.Loss.name, {"CTCLoss"}),
        ("PostProcess.name", cfg.PostProcess.name, {"CTCLabelDecode"}),
        ("Metric.name", cfg.Metric.name, {"RecMetric"}),
        ("Metric.main_indicator", cfg.Metric.main_indicator, {"acc", "norm_edit_dis"}),
        ("Optimizer.name", cfg.Optimizer.name, {"Adam", "AdamW", "Momentum", "SGD", "RMSProp"}),
        ("Optimizer.lr.name", cfg.Optimizer.lr.name, {"Const", "Cosine", "Piecewise", "Linear"}),
        ("Global.amp_dtype", cfg.Global.amp_dtype, {"bfloat16", "float16"}),
    ]
    if cfg.Optimizer.regularizer is not None:
        checks.append(("Optimizer.regularizer.name", cfg.Optimizer.regularizer.name, {"L2"}))
    for split in ("Train", "Eval"):
        sec: SplitConfig | None = getattr(cfg, split)
        if sec is not None:
            checks.append(
                (f"{split}.dataset.name", sec.dataset.name, {"SimpleDataSet", "LMDBDataSet", "MixDataSet"})
            )
            checks.append((f"{split}.dataset.transforms.img_mode", sec.dataset.transforms.img_mode,
                           {"BGR", "RGB"}))
    for key, value, allowed in checks:
        if value not in allowed:
            raise ConfigError(f"{key}: {value!r} is not supported (supported: {sorted(allowed)})")
    if cfg.Global.use_visualdl or cfg.Global.use_wandb:
        raise ConfigError("Global.use_visualdl/use_wandb: not supported; crnn logs JSONL and a PNG plot")
    _validate_numbers(cfg)
    if cfg.Global.character_type not in (None, "en", "EN"):
        raise ConfigError(f"Global.character_type: {cfg.Global.character_type!r} is not supported; "
                          "use character_dict_path")


def _validate_numbers(cfg: Config) -> None:
    """Numbers that must be positive (or non-negative): a negative step count must not train 0 steps quietly."""
    g, lr = cfg.Global, cfg.Optimizer.lr
    positive = [("Global.epoch_num", g.epoch_num), ("Global.print_batch_step", g.print_batch_step),
                ("Global.log_smooth_window", g.log_smooth_window), ("Global.max_text_length", g.max_text_length),
                ("Global.max_steps", g.max_steps), ("Global.num_threads", g.num_threads),
                ("Global.micro_batch_size", g.micro_batch_size),
                ("Optimizer.lr.learning_rate", lr.learning_rate)]
    non_negative = [("Global.save_epoch_step", g.save_epoch_step), ("Global.save_latest_step", g.save_latest_step),
                    ("Optimizer.lr.warmup_epoch", lr.warmup_epoch), ("Optimizer.lr.warmup_steps", lr.warmup_steps),
                    *((f"Global.eval_batch_step[{i}]", v) for i, v in enumerate(g.eval_batch_step))]
    for split in ("Train", "Eval"):
        sec: SplitConfig | None = getattr(cfg, split)
        if sec is not None:
            positive.append((f"{split}.loader.batch_size_per_card", sec.loader.batch_size_per_card))
            non_negative.append((f"{split}.loader.num_workers", sec.loader.num_workers))
            shape = sec.dataset.transforms.image_shape
            if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
                raise ConfigError(f"{split}.dataset.transforms.image_shape: expected [C, H, W] with C 1 or 3 and "
                                  f"H, W >= 1, got {shape}")
    for key, value in positive:
        if value is not None and not value > 0:
            raise ConfigError(f"{key}: must be > 0, got {value}")
    for key, value in non_negative:
        if value is not None and value < 0:
            raise ConfigError(f"{key}: must be >= 0, got {value}")
    if g.ema_decay is not None and not 0 < g.ema_decay < 1:
        raise ConfigError(f"Global.ema_decay: must be between 0 and 1, got {g.ema_decay}")


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(overrides: list[str] | None) -> list[tuple[str, Any]]:
    """Parse ``["A.b=1", ...]`` into (dotted key, YAML-typed value) pairs."""
    pairs = []
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like Section.key=value")
        key, raw = item.split("=", 1)
        pairs.append((key.strip(), yaml.safe_load(raw)))
    return pairs


def config_from_dict(data: dict[str, Any], overrides: list[str] | None = None) -> Config:
    """Build a validated ``Config`` from a nested dict plus ``-o`` overrides.

    Raises:
        ConfigError: an unknown key, a wrongly typed value or an unsupported option.
    """
    data = _deepcopy(data)
    for key, value in parse_overrides(overrides):
        _set_path(data, key, value)
    cfg = _build(Config, data, "")
    _validate(cfg)
    return cfg


def _deepcopy(data: dict[str, Any]) -> dict[str, Any]:
    return typing.cast(dict[str, Any], yaml.safe_load(yaml.safe_dump(data)))


BASE_KEY = "_BASE_"


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``child`` into ``base``: sections merge key by key; lists and scalars replace."""
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a config file and resolve its ``_BASE_`` files (PaddleDetection's convention).

    ``_BASE_`` names one file or a list of files, relative to this one; later bases override
    earlier ones and this file overrides them all. A recipe that changes a few values of another
    thus states only those values.
    """
    path = path.resolve()
    if path in chain:
        raise ConfigError(f"{path}: {BASE_KEY} cycle: {' -> '.join(str(p) for p in (*chain, path))}")
    if not path.is_file():
        where = f" (named by {BASE_KEY} in {chain[-1]})" if chain else ""
        raise FileNotFoundError(f"config file {path} not found{where}")
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = yaml.safe_load(f)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a text (UTF-8) YAML file: {e.reason} at byte {e.start}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: malformed YAML{where}: {getattr(e, 'problem', None) or e}") from None
    if data is None:
        raise ConfigError(f"{path}: the config file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    bases = data.pop(BASE_KEY, None) or []
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: {BASE_KEY} must be a file name or a list of file names")
    merged: dict[str, Any] = {}
    for base in bases:
        merged = _merge(merged, _read_yaml(path.parent / base, (*chain, path)))
    return _merge(merged, data)


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Load a YAML config file (PaddleOCR layout, optional ``_BASE_``) with ``-o`` overrides."""
    path = Path(path)
    data = _read_yaml(path)
    try:
        return config_from_dict(data, overrides)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
