"""Evaluation: word accuracy and normalised edit distance per set, then mean and total."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader

from crnn.charset import Charset
from crnn.config import Config, ConfigError, DatasetConfig, LoaderConfig
from crnn.data.datasets import Item, RecDataset, build_sources, eval_label_check
from crnn.data.loader import Batch, build_loader, make_collate
from crnn.data.preprocess import Preprocess, ratio_batches
from crnn.decoders import Decoder, build_decoder
from crnn.metrics import RecMetric, make_normalizer

log = logging.getLogger(__name__)


class Miss(NamedTuple):
    """A misrecognised eval image: where it came from, its label, what was read and how sure."""

    key: str
    label: str
    prediction: str
    confidence: float


class Record(NamedTuple):
    """One eval image's outcome (calibration and error reports): a ``Miss`` plus whether it was right."""

    key: str
    label: str
    prediction: str
    confidence: float
    right: bool


# A model for evaluation: a torch module, or any back end's (B, C, H, W) -> (B, T, K) numpy function
# (``crnn.onnx_backend.onnx_runner``), so every deployable form is measured by the same loop.
EvalModel = torch.nn.Module | Callable[[np.ndarray], np.ndarray]


@torch.no_grad()
def evaluate(model: EvalModel, loader: DataLoader[Batch] | Iterable[Batch], charset: Charset, metric: RecMetric,
             channels_last: bool = False, misses: list[Miss] | None = None,
             decoder: Decoder | None = None, records: list[Record] | None = None,
             outputs: list[tuple[Any, list[str]]] | None = None,
             texts: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``model`` over ``loader``; returns acc, norm_edit_dis, count, skipped, fps and decode_ms.

    fps counts the model's forward pass only, as PaddleOCR's eval does; decode_ms is the decoder's
    time per image (``decoder``: default greedy). When ``misses`` is given, every image the metric
    counts as wrong is appended to it; ``records`` receives every image's ``Record``, ``outputs``
    (logits (B, T, C), labels) of every batch (calibration), and ``texts`` every image's decoded
    string by key (to compare two forms of a model image by image).
    """
    decoder = decoder or build_decoder(None, charset)
    module = model if isinstance(model, torch.nn.Module) else None
    was_training = module is not None and module.training
    if module is not None:
        module.eval()
    metric.reset()
    skipped, forward_s, decode_s, n = 0, 0.0, 0.0, 0
    device = next(module.parameters()).device if module is not None else None
    for batch in loader:
        skipped += batch.skipped
        if not batch.texts:
            continue
        t0 = time.perf_counter()
        if module is None:
            logits = model(batch.images.numpy())
        else:
            images = batch.images.to(device)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            t0 = time.perf_counter()
            logits = module(images).float().cpu().numpy()
        forward_s += time.perf_counter() - t0
        n += len(batch.texts)
        t0 = time.perf_counter()
        preds = decoder(logits)
        decode_s += time.perf_counter() - t0
        right = metric.update([p.text for p in preds], batch.texts)
        if records is not None:
            records.extend(Record(key, label, p.text, p.confidence, ok)
                           for key, label, p, ok in zip(batch.keys, batch.texts, preds, right, strict=True))
        if outputs is not None:
            outputs.append((logits, list(batch.texts)))
        if texts is not None:
            texts.update((key, p.text) for key, p in zip(batch.keys, preds, strict=True))
        if misses is not None:
            misses.extend(Miss(key, label, p.text, p.confidence)
                          for key, label, p, ok in zip(batch.keys, batch.texts, preds, right, strict=True) if not ok)
    if module is not None:
        module.train(was_training)
    result = metric.compute()
    result.update(skipped=skipped, fps=n / forward_s if forward_s else 0.0, decode_ms=1000 * decode_s / max(n, 1))
    return result


def load_eval_model(model: str | None, config: str | None, overrides: list[str], threads: int | None = None
                    ) -> tuple[Config, EvalModel, Charset, str, Preprocess]:
    """(config, model, charset, model path, the model's preprocessing) for ``crnn eval``: any deployable form.

    The model is ``model`` (a ``.pt`` checkpoint or an ``.onnx`` file, fp32 or int8), else
    ``Global.checkpoints``, else the bundled model (as ONNX when onnxruntime is installed). An
    ``.onnx`` model runs on onnxruntime as a numpy function. The config (sets, metric, loader) is
    ``config``, else the checkpoint's own, else (for ``.onnx``) the bundled checkpoint's; the
    preprocessing (``Preprocess``: input shape, channel order, padding) always comes from the model
    itself (its checkpoint's config or its ONNX metadata), as in ``Recognizer``.
    """
    from crnn import checkpoint
    from crnn.config import load_config
    from crnn.predict import DEFAULT_MODEL, default_model
    from crnn.threads import default_threads, n_threads

    named = model or next((v.split("=", 1)[1] for v in overrides if v.startswith("Global.checkpoints=")), None)
    cfg = load_config(config, overrides) if config else None
    path = str(named or (cfg.Global.checkpoints if cfg else None) or default_model())
    if cfg is None:
        source = DEFAULT_MODEL if path.endswith(".onnx") else path
        cfg = checkpoint.stored_config(checkpoint.load(source), source, overrides)
    threads = threads or cfg.Global.num_threads or default_threads()
    if path.endswith(".onnx"):
        from crnn.onnx_backend import onnx_runner

        run, meta = onnx_runner(path, threads)
        log.info("evaluating %s on onnxruntime, %s", path, n_threads(threads))
        return cfg, run, meta["charset"], path, meta["preprocess"]
    from crnn.torch_backend import for_inference, load_model

    torch.set_num_threads(threads)
    module, charset, model_cfg = load_model(path)
    module = for_inference(module)
    log.info("evaluating %s on PyTorch, %s", path, n_threads(threads))
    return cfg, module, charset, path, Preprocess.from_config(model_cfg)


def eval_split(cfg: Config, sets: DatasetConfig | None = None) -> tuple[DatasetConfig, LoaderConfig]:
    """The dataset and loader ``crnn eval`` measures on: ``sets`` (``--sets`` folders, read with the
    config's Eval transforms, i.e. the model's input shape) or else the config's Eval dataset.

    Without an Eval section ``sets`` are read with default transforms (the model's own preprocessing
    applies in any case) and the default loader.

    Raises:
        ConfigError: no ``sets`` and no Eval section to take the sets from.
    """
    if cfg.Eval is None:
        if sets is None:
            raise ConfigError("no eval sets: the config has no Eval section; give --sets DIR ... or -c CONFIG with one")
        return sets, LoaderConfig()
    dataset_cfg = replace(sets, transforms=cfg.Eval.dataset.transforms) if sets else cfg.Eval.dataset
    return dataset_cfg, cfg.Eval.loader


def set_name(source_name: str) -> str:
    """Short display name of an eval set: ``iiit5k`` for ``.../iiit5k/labels.tsv``, else folder/stem."""
    p = Path(source_name)
    if p.suffix in (".tsv", ".txt"):
        return p.parent.name if p.name == "labels.tsv" else f"{p.parent.name}/{p.stem}"
    # an LMDB leaf: `crnn synth` names its leaves shard_NNNNN, which says nothing without the set's folder
    return f"{p.parent.name}/{p.name}" if p.name.startswith("shard_") else p.name


def eval_datasets(dataset_cfg: DatasetConfig, normalize: Any, strict: bool, preprocess: Preprocess | None = None
                  ) -> list[tuple[str, RecDataset]]:
    """One ``RecDataset`` per source (label file or LMDB leaf) of an Eval dataset section.

    ``preprocess`` is the evaluated model's spec (``load_eval_model``); None: the section's own
    transforms (the model being trained with this config).
    """
    spec = preprocess or Preprocess.from_transforms(dataset_cfg.transforms)
    return [(set_name(src.name), RecDataset([(src, 1.0)], spec, eval_label_check(normalize), strict=strict))
            for src, _ in build_sources(dataset_cfg)]


def variable_width_batches(ds: RecDataset, charset: Charset, batch_size: int) -> Iterator[Batch]:
    """``ds`` as ``Recognizer`` batches it by default: PaddleOCR's predict_rec variable width.

    Every image is decoded first (eval sets are small), then batched in order of aspect ratio and
    each batch preprocessed to its own width by ``ds.preprocess.batch``. Unreadable images are
    counted in the first batch's ``skipped``.
    """
    decoded = [(i, ds.image(i)) for i in range(len(ds))]
    good = [(i, im) for i, im in decoded if im is not None]
    collate = make_collate(charset)
    skipped = len(decoded) - len(good)
    for idx in ratio_batches([im.shape[:2] for _, im in good], batch_size):
        x = ds.preprocess.batch([good[j][1] for j in idx])  # (b, C, H, batch width)
        batch = collate([Item(x[k], ds.label(good[j][0]), ds.key(good[j][0])) for k, j in enumerate(idx)])
        yield batch._replace(skipped=skipped)
        skipped = 0
    if skipped:  # nothing readable at all
        yield collate([None] * skipped)


def evaluate_sets(model: EvalModel, cfg: Config, charset: Charset, dataset_cfg: DatasetConfig,
                  loader_cfg: LoaderConfig, is_filter: bool,
                  misses: dict[str, list[Miss]] | None = None, decoder: Decoder | None = None,
                  records: dict[str, tuple[list[Record], RecDataset]] | None = None,
                  texts: dict[str, dict[str, str]] | None = None, preprocess: Preprocess | None = None,
                  dynamic_width: bool = False) -> dict[str, Any]:
    """Evaluate every set of ``dataset_cfg`` separately; add the mean over sets and the total.

    Images are preprocessed by ``preprocess``, the model's spec (None: ``dataset_cfg``'s transforms),
    at its fixed width W (the protocol of the benchmark numbers), or with ``dynamic_width`` as
    ``Recognizer`` does by default (``variable_width_batches``, ``loader_cfg``'s batch size).

    Decoding is ``decoder``, by default the one ``cfg.PostProcess`` names. When ``misses`` is given,
    it receives each set's misrecognised images under the set's name; ``records`` likewise every
    image's ``Record``, with the set's dataset (to read the images again for a report); ``texts``
    every image's decoded string (``{set: {key: text}}``).
    """
    decoder = decoder or build_decoder(cfg.PostProcess, charset)
    normalize = make_normalizer(is_filter, cfg.Metric.ignore_space, charset.normalize)
    loader_cfg = replace(loader_cfg, shuffle=False, drop_last=False)
    sets: dict[str, dict[str, float]] = {}
    for name, ds in eval_datasets(dataset_cfg, normalize, cfg.Global.strict_data, preprocess):
        if len(ds) == 0:  # an accuracy over nothing would read as 0.00 and look like a result
            raise ValueError(f"evaluation set {ds.sources[0].name} has no usable sample "
                             f"({ds.skipped_labels} labels empty after normalisation)")
        loader: DataLoader[Batch] | Iterable[Batch]
        if dynamic_width:
            loader = variable_width_batches(ds, charset, loader_cfg.batch_size_per_card)
        else:
            loader, _ = build_loader(ds, loader_cfg, charset, seed=0)
        unique, k = name, 2
        while unique in sets:  # the same folder named twice, or two sets with one name
            unique, k = f"{name}#{k}", k + 1
        set_misses = None if misses is None else misses.setdefault(unique, [])
        set_records = None if records is None else records.setdefault(unique, ([], ds))[0]
        set_texts = None if texts is None else texts.setdefault(unique, {})
        res = evaluate(model, loader, charset, RecMetric(normalize), cfg.Global.channels_last, set_misses, decoder,
                       set_records, texts=set_texts)
        res["skipped"] += ds.skipped_labels
        sets[unique] = res
        log.info("%s: acc %.4f over %d", name, res["acc"], res["count"])
    total = sum(r["count"] for r in sets.values())
    summary = {
        "mean": {k: sum(r[k] for r in sets.values()) / max(len(sets), 1) for k in ("acc", "norm_edit_dis")},
        "total": {
            "count": total,
            "skipped": sum(r["skipped"] for r in sets.values()),
            **{k: sum(r[k] * r["count"] for r in sets.values()) / max(total, 1) for k in ("acc", "norm_edit_dis")},
        },
    }
    return {"protocol": "36-char" if is_filter else "charset", "sets": sets, **summary}


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table: set, count, skipped, accuracy %, normalised edit distance."""
    w = max([16, *(len(name) + 2 for name in result["sets"])])
    lines = [f"{'set':<{w}}{'count':>8}{'skipped':>9}{'acc %':>9}{'1-NED':>9}"]
    for name, r in result["sets"].items():
        lines.append(f"{name:<{w}}{r['count']:>8}{r['skipped']:>9}{100 * r['acc']:>9.2f}{r['norm_edit_dis']:>9.4f}")
    m, t = result["mean"], result["total"]
    lines.append(f"{'mean (sets)':<{w}}{'':>8}{'':>9}{100 * m['acc']:>9.2f}{m['norm_edit_dis']:>9.4f}")
    lines.append(f"{'total':<{w}}{t['count']:>8}{t['skipped']:>9}{100 * t['acc']:>9.2f}{t['norm_edit_dis']:>9.4f}")
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: str) -> None:
    """Write an evaluation result as JSON."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def write_misses(misses: dict[str, list[Miss]], path: str) -> None:
    """Write misrecognised images as TSV: set, image, label, prediction, confidence."""
    rows = ["set\timage\tlabel\tprediction\tconfidence"]
    for name, items in misses.items():
        rows += [f"{name}\t{m.key}\t{m.label}\t{m.prediction}\t{m.confidence:.4f}" for m in items]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(rows) + "\n", encoding="utf-8")
