"""Accuracy and cost of each decoder on the visible benchmark sets (36-char protocol).

Decoders: greedy (PaddleOCR's), CTC prefix beam search, beam + a character n-gram prior built from
a word list (the one ``crnn synth`` uses), and the "full lexicon" protocol of the CRNN paper: the
lexicon is every label of that test set and the answer is the in-lexicon word with the best CTC
score among those within 3 edits of the free reading. The prior's weight and length bonus are
chosen on the validation split (configs/data/real_val.tsv, ``--sweep``), never on a test set. Every
row goes through ``crnn.evaluate.evaluate_sets``, the code behind ``crnn eval``; ``decode ms/img``
is the decoder's time per image, ``fwd img/s`` the model's.

    nice -n 10 python scripts/decoder_report.py --sweep            # choose the prior's weights on validation
    python scripts/decoder_report.py [--checkpoint CKPT] [--lm-weight W --length-bonus B] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import torch

from crnn import DEFAULT_MODEL
from crnn.config import Config, DatasetConfig, LoaderConfig, PostProcessConfig
from crnn.decoders import build_decoder
from crnn.evaluate import evaluate_sets
from crnn.torch_backend import load_model

EVAL = "../shared/data/eval"
SETS = {"IIIT5K": ("iiit5k", "labels.tsv"), "IC13": ("ic13", "labels_1015.tsv"),
        "IC15": ("ic15", "labels.tsv"), "IC03": ("ic03", "labels.tsv")}
VAL = ("../shared/data/train", "configs/data/real_val.tsv")
GRID = [(w, b) for w in (0.1, 0.2, 0.4) for b in (0.0, 1.0, 2.0)]  # (lm_weight, length_bonus)


def cpu_flags() -> str:
    """The SIMD flags that matter for CPU inference speed, from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "?")
    wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")  # the machine is shared
    return (f"{model}, {os.cpu_count()} cores, flags: {' '.join(f for f in wanted if f in flags)}; "
            f"load average {load:.1f}")


def one_set(data_dir: str, label_file: str, cfg: Config) -> DatasetConfig:
    assert cfg.Eval is not None
    return DatasetConfig(name="SimpleDataSet", data_dir=data_dir, label_file_list=[label_file],
                         transforms=cfg.Eval.dataset.transforms)


def run(model: torch.nn.Module, cfg: Config, charset: Any, ds: DatasetConfig, pp: PostProcessConfig,
        limit: int | None) -> dict[str, float]:
    """acc, count, decode_ms and fps of one decoder on one set."""
    loader = LoaderConfig(batch_size_per_card=128, num_workers=0)
    if limit:
        ds = dataclasses.replace(ds, label_file_list=[_head(ds.label_file_list[0], limit)])
    res = evaluate_sets(model, cfg, charset, ds, loader, is_filter=True, decoder=build_decoder(pp, charset))
    (r,) = res["sets"].values()
    return {k: r[k] for k in ("acc", "norm_edit_dis", "count", "decode_ms", "fps")}


def _head(label_file: str, n: int) -> str:
    lines = Path(label_file).read_text(encoding="utf-8").splitlines()
    step = max(1, len(lines) // n)
    out = Path(tempfile.mkdtemp()) / Path(label_file).name
    out.write_text("\n".join(lines[::step][:n]) + "\n", encoding="utf-8")
    return str(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=DEFAULT_MODEL)
    ap.add_argument("--beam-width", type=int, default=10)
    ap.add_argument("--words", default="/usr/share/dict/words", help="word list of the n-gram prior")
    ap.add_argument("--sweep", action="store_true", help="only choose lm weight and length bonus on validation")
    ap.add_argument("--lm-weight", type=float, default=PostProcessConfig.lm_weight)
    ap.add_argument("--length-bonus", type=float, default=PostProcessConfig.length_bonus)
    ap.add_argument("--limit", type=int, help="images per set (evenly spaced), for a quick look")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, charset, cfg = load_model(args.checkpoint)
    if cfg.Eval is None:
        raise SystemExit(f"{args.checkpoint}: its config has no Eval section (transforms)")
    beam = PostProcessConfig(decoder="beam", beam_width=args.beam_width)
    shown = "crnn.DEFAULT_MODEL" if args.checkpoint == DEFAULT_MODEL else args.checkpoint
    out: dict[str, Any] = {"checkpoint": shown, "cpu": cpu_flags(), "threads": args.threads,
                           "beam_width": args.beam_width, "words": args.words, "sets": {}}
    if args.sweep:  # chosen on the validation split
        val = one_set(*VAL, cfg)
        print(f"validation {VAL[1]}: greedy {100 * run(model, cfg, charset, val, PostProcessConfig(), None)['acc']:.2f}"
              f", beam {100 * run(model, cfg, charset, val, beam, None)['acc']:.2f}")
        for w, b in GRID:
            pp = dataclasses.replace(beam, lm=args.words, lm_weight=w, length_bonus=b)
            print(f"lm_weight {w} length_bonus {b}: {100 * run(model, cfg, charset, val, pp, None)['acc']:.2f}",
                  flush=True)
        return
    weight, bonus = args.lm_weight, args.length_bonus
    out.update(lm_weight=weight, length_bonus=bonus)
    print(f"CPU: {out['cpu']}; torch threads {args.threads}; beam width {args.beam_width}; "
          f"lm weight {weight}, length bonus {bonus}")
    header = f"{'set':<8}{'decoder':<20}{'acc %':>8}{'1-NED':>8}{'decode ms/img':>15}{'fwd img/s':>11}"
    print(header)
    for name, (folder, labels) in SETS.items():
        label_file = str(Path(EVAL) / folder / labels)
        ds = one_set(str(Path(EVAL) / folder), label_file, cfg)
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as lex:
            lex.write("\n".join(ln.split("\t", 1)[1] for ln in Path(label_file).read_text(encoding="utf-8")
                                .splitlines() if "\t" in ln) + "\n")
        decoders = {"greedy": PostProcessConfig(), f"beam {args.beam_width}": beam,
                    f"beam {args.beam_width} + words": dataclasses.replace(beam, lm=args.words, lm_weight=weight,
                                                                           length_bonus=bonus),
                    "full lexicon": PostProcessConfig(lexicon=lex.name)}
        out["sets"][name] = {}
        for dname, pp in decoders.items():
            r = run(model, cfg, charset, ds, pp, args.limit)
            out["sets"][name][dname] = r
            print(f"{name:<8}{dname:<20}{100 * r['acc']:>8.2f}{r['norm_edit_dis']:>8.4f}{r['decode_ms']:>15.3f}"
                  f"{r['fps']:>11.0f}", flush=True)
        os.unlink(lex.name)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
