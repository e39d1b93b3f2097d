"""Distillation from a teacher (crnn.distill): class folding, frame alignment, the loss, stored targets, training."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from crnn.charset import DICTS_DIR, Charset
from crnn.config import RecAugConfig
from crnn.data.augment import rec_aug, rec_aug_tracked
from crnn.data.datasets import SimpleSource, build_dataset, train_label_check
from crnn.data.preprocess import Preprocess
from crnn.data.transforms import norm_lut
from crnn.distill import targets as tg
from crnn.distill.teacher import Teacher, fold_matrix, teacher_inputs
from crnn.loss import distill_loss

from .conftest import draw_word, tiny_config

TEACHER_CHARS = ["!", "0", "1", "A", "B", "a", "b", "c", "é", "中", " "]  # a made-up teacher's symbols


def test_fold_maps_cases_together_and_everything_unlearnable_to_blank():
    cs = Charset.from_config(None)  # 0-9a-z, lower-cased labels
    m = fold_matrix(TEACHER_CHARS, cs)
    assert m.shape == (len(TEACHER_CHARS) + 1, 37) and (m.sum(axis=1) == 1).all()  # every class goes somewhere
    to = {ch: int(m[k + 1].argmax()) for k, ch in enumerate(TEACHER_CHARS)}
    assert m[0, 0] == 1  # blank stays blank
    assert to["A"] == to["a"] == cs.encode("a")[0] and to["B"] == to["b"] == cs.encode("b")[0]
    assert to["0"] == cs.encode("0")[0]
    # the labels crnn trains on drop these symbols, so its CTC target has blanks where they stand
    assert to["!"] == to["é"] == to["中"] == to[" "] == 0
    cased = Charset.from_config(str(DICTS_DIR / "en_95.txt"), use_space_char=True)
    mc = fold_matrix(TEACHER_CHARS, cased)
    to = {ch: int(mc[k + 1].argmax()) for k, ch in enumerate(TEACHER_CHARS)}
    assert to["A"] != to["a"] and to["!"] == cased.encode("!")[0] and to[" "] == cased.encode(" ")[0]
    assert to["中"] == 0


def test_teacher_input_covers_the_columns_of_crnns_input_twice_as_wide():
    spec = Preprocess()  # 3 x 32 x 100: 25 frames of 4 columns
    rng = np.random.default_rng(0)
    short = rng.integers(0, 256, (30, 45, 3), dtype=np.uint8)  # fills ceil(32 * 45 / 30) = 48 of 100 columns
    long = rng.integers(0, 256, (20, 300, 3), dtype=np.uint8)  # squeezed into all 100
    x = teacher_inputs([short, long], spec, frames=25)
    assert x.shape == (2, 3, 48, 200)
    # the short crop fills 2 x 48 = 96 of the teacher's 200 columns, as it fills 48 of crnn's 100
    ref = norm_lut()[cv2.resize(short, (96, 48))].transpose(2, 0, 1)
    np.testing.assert_array_equal(x[0, :, :, :96], ref)
    assert (x[0, :, :, 96:] == 0).all()  # padding is 0 after normalisation, as in crnn's input
    np.testing.assert_array_equal(x[1], norm_lut()[cv2.resize(long, (200, 48))].transpose(2, 0, 1))


def test_distill_loss_is_zero_at_the_teacher_and_ignores_unmasked_samples():
    torch.manual_seed(0)
    teacher = torch.randn(3, 25, 37).log_softmax(2)
    mask = torch.tensor([True, True, False])
    logits = teacher.clone().requires_grad_()
    assert distill_loss(logits, teacher, mask, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    other = torch.randn(3, 25, 37, requires_grad=True)
    loss = distill_loss(other, teacher, mask, 2.0)
    loss.backward()
    assert loss.item() > 0
    assert other.grad is not None and other.grad[2].abs().max() == 0 and other.grad[0].abs().max() > 0
    # each sample weighs 1/B, as in CTC's mean: the loss of samples 0 and 1 alone, times 2/3
    alone = distill_loss(other[:2], teacher[:2], mask[:2], 2.0)
    assert loss.item() == pytest.approx(alone.item() * 2 / 3, rel=1e-5)
    # at T = 1, KL(teacher || student) = cross-entropy - teacher entropy
    ce = -(teacher[:2].exp() * other[:2].log_softmax(2)).sum(2).mean(1).sum() / 3
    ent = -(teacher[:2].exp() * teacher[:2]).sum(2).mean(1).sum() / 3
    assert distill_loss(other, teacher, mask, 1.0).item() == pytest.approx((ce - ent).item(), rel=1e-4)
    none = distill_loss(other, teacher, torch.zeros(3, dtype=torch.bool), 2.0)
    assert none.item() == 0.0 and none.requires_grad


def test_ctc_nll_is_low_for_the_reading_and_high_for_another_word():
    cs = Charset.from_config(None)
    lp = np.full((1, 25, 37), -20.0, dtype=np.float32)
    lp[0, :, 0] = 0.0
    for t, ch in zip((5, 10), "ab", strict=True):  # reads "ab"
        lp[0, t, 0], lp[0, t, cs.encode(ch)[0]] = -20.0, 0.0
    nll = tg.ctc_nll(np.repeat(lp, 3, axis=0), [cs.encode("ab"), cs.encode("xy"), []])
    assert nll[0] < 0.01 and nll[1] > 20 and nll[2] == np.inf


def test_rec_aug_tracks_the_steps_that_move_the_text():
    img = np.random.default_rng(0).integers(0, 256, (32, 96, 3), dtype=np.uint8)
    only_photometric = RecAugConfig(tia_prob=0, crop_prob=0, reverse_prob=1, noise_prob=1, jitter_prob=1,
                                    blur_prob=1, hsv_aug_prob=1)
    for seed in range(5):
        out, moved = rec_aug_tracked(img, only_photometric, np.random.default_rng(seed))
        assert not moved and out.shape == img.shape
        np.testing.assert_array_equal(out, rec_aug(img, only_photometric, np.random.default_rng(seed)))
    tia = RecAugConfig(tia_prob=1, crop_prob=0, reverse_prob=0, noise_prob=0, jitter_prob=0, blur_prob=0,
                       hsv_aug_prob=0)
    assert rec_aug_tracked(img, tia, np.random.default_rng(0))[1]


class FakeTeacher:
    """A deterministic stand-in with the real teacher's interface: reads each crop's mean brightness."""

    def __init__(self, sha: str):
        self.chars = TEACHER_CHARS
        self.path = Path("fake.onnx")
        self.sha256 = sha
        self.calls = 0

    def probs(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        b, w = x.shape[0], x.shape[3]
        p = np.full((b, w // 8, len(self.chars) + 1), 1e-3, dtype=np.float32)
        p[:, :, 0] = 1.0
        p[:, 3, 6] = 5.0 + x.mean(axis=(1, 2, 3))  # an "a" at frame 3, with a per-image margin
        return p / p.sum(axis=2, keepdims=True)

    folded_log_probs = Teacher.folded_log_probs


def _tiny_source(tiny_set: Path) -> SimpleSource:
    return SimpleSource(str(tiny_set), str(tiny_set / "labels.tsv"))


def test_prepare_stores_resumes_and_is_keyed_by_what_it_depends_on(tiny_set: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch):
    cs, spec = Charset.from_config(None), Preprocess()
    src = _tiny_source(tiny_set)
    teacher = FakeTeacher("ab" * 32)
    monkeypatch.setattr(tg, "CHUNK", 8)
    stops = []

    def interrupt(n: int) -> None:  # a kill in the second chunk, after the first one of 8 samples was saved
        if n >= 12 and not stops:
            stops.append(n)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tg.prepare(src, teacher, spec, 25, cs, tmp_path, batch_size=4, progress=interrupt)
    assert tg.load(tmp_path, tg.target_key(src, teacher.sha256, spec, 25, cs)) is None  # not complete: not used
    calls = teacher.calls
    out = tg.prepare(src, teacher, spec, 25, cs, tmp_path, batch_size=4)
    assert teacher.calls - calls == (24 - 8) // 4  # resumed after the saved chunk
    assert out.log_probs.shape == (24, 25, 37) and out.log_probs.dtype == np.float16
    fresh = FakeTeacher("ab" * 32)
    ref = tg.prepare(src, fresh, spec, 25, cs, tmp_path / "again", batch_size=24)
    np.testing.assert_array_equal(np.asarray(out.log_probs), np.asarray(ref.log_probs))
    np.testing.assert_array_equal(np.asarray(out.nll), np.asarray(ref.nll))
    info = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert info["n"] == 24 and info["frames"] == 25 and info["teacher_acc"] == 0.0  # reads "a", labels are words
    # another teacher or input shape: another key, never the old files
    assert tg.target_key(src, "cd" * 32, spec, 25, cs) != tg.target_key(src, teacher.sha256, spec, 25, cs)
    assert tg.target_key(src, teacher.sha256, Preprocess(image_shape=(3, 32, 320)), 80, cs) != \
        tg.target_key(src, teacher.sha256, spec, 25, cs)


def _distill_config(tiny_set: Path, out: Path, teacher_file: Path, targets: Path, weight: float) -> dict:
    cfg = tiny_config(tiny_set, out, max_steps=3, eval_batch_step=[0, 0], channels_last=False)
    cfg["Eval"] = None
    cfg["Distill"] = {"teacher": str(teacher_file), "weight": weight, "targets_dir": str(targets)}
    return cfg


def test_training_reads_the_targets_and_adds_the_term(tiny_set: Path, tmp_path: Path):
    from crnn import checkpoint
    from crnn.config import config_from_dict
    from crnn.distill.teacher import file_sha256
    from crnn.train import train

    teacher_file = tmp_path / "teacher.onnx"
    teacher_file.write_bytes(b"stands for a teacher: training only hashes the file to find its targets")
    targets = tmp_path / "targets"
    cfg = config_from_dict(_distill_config(tiny_set, tmp_path / "a", teacher_file, targets, 1.0))
    with pytest.raises(FileNotFoundError, match="crnn distill"):
        train(cfg)  # no targets yet: the error names the command that makes them
    assert cfg.Train is not None and cfg.Distill is not None
    cs = Charset.from_config(None)
    ds = build_dataset(cfg.Train.dataset, train_label_check(cs.normalize, 25), train=True)
    tg.prepare(ds.sources[0], FakeTeacher(file_sha256(teacher_file)), ds.preprocess, 25, cs, targets)

    runs = {}
    for weight in (0.0, 1.0):
        data = _distill_config(tiny_set, tmp_path / f"w{weight}", teacher_file, targets, weight)
        train(config_from_dict(data))
        rows = [json.loads(line) for line in (tmp_path / f"w{weight}" / "metrics.jsonl").read_text().splitlines()]
        assert all(r["distill"] > 0 for r in rows if r["kind"] == "train")  # logged in both arms
        runs[weight] = checkpoint.load(tmp_path / f"w{weight}" / "latest")["model"]
    # the term changes the gradients: same start, same batches, other weights
    assert any(not torch.equal(runs[0.0][k], runs[1.0][k]) for k in runs[0.0])


def test_illegible_samples_are_dropped_by_the_teachers_nll(tiny_set: Path, tmp_path: Path):
    cs = Charset.from_config(None)
    cfg = yaml.safe_load(yaml.safe_dump(tiny_config(tiny_set, tmp_path)))
    from crnn.config import config_from_dict

    c = config_from_dict(cfg)
    assert c.Train is not None
    ds = build_dataset(c.Train.dataset, train_label_check(cs.normalize, 25), train=True)
    n = len(ds)
    soft = np.zeros((24, 25, 37), dtype=np.float16)
    nll = np.arange(24, dtype=np.float32)  # sample i: NLL i
    dropped = ds.attach_targets([soft], [nll], max_nll=9.5)
    assert dropped == [14] and len(ds) == n - 14 and ds.source_ranges == [(0, n - 14)]
    assert all(i <= 9 for _, i in ds.index)
    item = ds[0]
    assert item is not None and item.soft is not None and item.soft.shape == (25, 37)


def test_the_real_teacher_reads_a_rendered_word():
    pytest.importorskip("rapidocr", reason="the teacher ships in rapidocr (pip install 'crnn[distill]')")
    from crnn.decode import greedy_decode
    from crnn.distill.teacher import load_teacher

    cs = Charset.from_config(None)
    teacher = load_teacher(num_threads=1)
    assert len(teacher.chars) + 1 == 18710  # blank + its dictionary + space
    img = cv2.cvtColor(np.asarray(draw_word("Street", 3)), cv2.COLOR_RGB2BGR)
    lp = teacher.folded_log_probs([img], Preprocess(), 25, fold_matrix(teacher.chars, cs))
    assert lp.shape == (1, 25, 37)
    assert greedy_decode(lp, cs)[0].text == "street"  # case folded; frames aligned with crnn's
