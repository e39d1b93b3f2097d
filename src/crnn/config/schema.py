"""The configuration schema: one dataclass per PaddleOCR section, with its keys, types and defaults.

Which *names* are valid (backbones, necks, heads, optimizers, LR schedules, dataset sources,
decoders) is not listed here: each component's own table says (``crnn.registry``), and the loader
asks it. ``Literal`` types are the values a fixed key may take.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal


class ConfigError(ValueError):
    """A configuration problem; the message names the offending key."""


@dataclass
class LRConfig:
    """``Optimizer.lr``: schedule name (``crnn.optim.LR_SCHEDULES``) and its parameters (PaddleOCR keys)."""

    name: str = "Const"
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

    name: Literal["L2"] = "L2"
    factor: float = 0.0


@dataclass
class OptimizerConfig:
    """``Optimizer`` section; ``name`` is a key of ``crnn.optim.OPTIMIZERS``."""

    name: str = "Adam"
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
class ComponentConfig:
    """A model part: ``name`` picks an entry of the part's table; ``params`` are that entry's own keys.

    In YAML the params sit beside ``name`` (PaddleOCR's flat layout); the loader checks each against
    the entry (``crnn.registry.Entry.keys``) and ``to_dict`` flattens them back.
    """

    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class BackboneConfig(ComponentConfig):
    """``Architecture.Backbone``: an entry of ``crnn.models.backbones.BACKBONES`` and its keys."""

    name: str = "MobileNetV3"


@dataclass
class NeckConfig(ComponentConfig):
    """``Architecture.Neck``: an entry of ``crnn.models.NECKS`` and its keys."""

    name: str = "SequenceEncoder"


@dataclass
class HeadConfig(ComponentConfig):
    """``Architecture.Head``: an entry of ``crnn.models.HEADS``, its keys, and two keys every head has."""

    name: str = "CTCHead"
    fc_decay: float = 0.0  # L2 factor of the head's weights, instead of Optimizer.regularizer (PaddleOCR's)
    out_channels: int | None = None  # set from the charset; a stated value must agree with it


@dataclass
class ArchitectureConfig:
    """``Architecture`` section."""

    model_type: Literal["rec"] = "rec"
    algorithm: Literal["CRNN"] = "CRNN"
    Transform: None = None
    Backbone: BackboneConfig = field(default_factory=BackboneConfig)
    Neck: NeckConfig = field(default_factory=NeckConfig)
    Head: HeadConfig = field(default_factory=HeadConfig)


@dataclass
class LossConfig:
    """``Loss`` section."""

    name: Literal["CTCLoss"] = "CTCLoss"
    use_focal_loss: bool = False


@dataclass
class PostProcessConfig:
    """``PostProcess`` section."""

    name: Literal["CTCLabelDecode"] = "CTCLabelDecode"
    character_dict_path: str | None = None
    use_space_char: bool | None = None
    # crnn extensions: the decoder (a key of crnn.decoders.DECODERS) and what a prediction's confidence is
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

    name: Literal["RecMetric"] = "RecMetric"
    main_indicator: Literal["acc", "norm_edit_dis"] = "acc"
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

    img_mode: Literal["BGR", "RGB"] = "BGR"
    # PaddleOCR's CHW decode would break its own RecResizeImg, so only its default is accepted
    channel_first: Literal[False] = False
    image_shape: list[int] = field(default_factory=lambda: [3, 32, 100])
    padding: bool = True
    rec_aug: RecAugConfig | None = None
    keep_keys: list[str] = field(default_factory=lambda: ["image", "label", "length"])  # no effect: fixed batches


@dataclass
class DatasetConfig:
    """``Train.dataset`` / ``Eval.dataset``; ``name`` is a key of ``crnn.data.datasets.SOURCES``."""

    name: str = "SimpleDataSet"
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
    use_shared_memory: bool = True  # no effect: PyTorch's workers always share memory


@dataclass
class SplitConfig:
    """``Train`` or ``Eval`` section."""

    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)


@dataclass
class GlobalConfig:
    """``Global`` section: PaddleOCR's keys plus a few crnn extensions (marked).

    Accepted for PaddleOCR configs but without effect here (``crnn.config.loader.NO_EFFECT`` logs a
    warning when one is set): ``save_inference_dir``, ``infer_img``, ``infer_mode``, ``save_res_path``,
    ``distributed`` (docs/paddle_interop.md says what to use instead).
    """

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
    save_inference_dir: str | None = None  # no effect: `crnn export --out` names the ONNX file
    use_visualdl: Literal[False] = False  # crnn logs JSONL and a PNG plot
    use_wandb: Literal[False] = False
    infer_img: str | None = None  # no effect: `crnn predict IMAGES`
    character_dict_path: str | None = None
    character_type: Literal["en", "EN"] | None = None  # PaddleOCR 2.0 key; only "en" (0-9a-z): else character_dict_path
    max_text_length: int = 25
    infer_mode: bool = False  # no effect
    use_space_char: bool = False
    save_res_path: str | None = None  # no effect: `crnn predict` prints to stdout
    distributed: bool = False  # no effect: `crnn train --nproc N` (or torchrun) makes a run distributed
    seed: int = 1024
    use_amp: bool = False  # bf16 autocast on CPU (fp16 on GPU)
    # crnn extensions
    amp_dtype: Literal["bfloat16", "float16"] = "bfloat16"
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
class DistillConfig:
    """``Distill`` section (crnn extension): a teacher's frames as soft targets beside CTC (docs/distillation.md).

    The targets are computed once per data source by ``crnn distill -c CONFIG`` and stored in ``targets_dir``.
    """

    teacher: str = "PP-OCRv6_rec_small.onnx"  # an ONNX file, or a model shipped in rapidocr (crnn[distill])
    weight: float = 1.0  # of the distillation term; CTC's weight is 1
    temperature: float = 2.0  # both distributions are softened by it; the term is scaled by its square
    targets_dir: str = "./output/teacher_targets"
    apply_to: list[int] | None = None  # indexes of Train.dataset.datasets that get targets (None: every source)
    max_teacher_nll: float | None = None  # drop samples the teacher cannot read even told the label (illegible)
    batch_size: int = 64  # crops per teacher run in ``crnn distill``


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
    Distill: DistillConfig | None = None  # crnn extension

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict in PaddleOCR's layout (what checkpoints store): component params sit beside ``name``."""
        return _flatten_params(dataclasses.asdict(self))


def _flatten_params(node: Any) -> Any:
    if isinstance(node, list):
        return [_flatten_params(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _flatten_params(v) for k, v in node.items() if k != "params"}
    if isinstance(node.get("params"), dict) and "name" in node:
        out.update(node["params"])
    return out
