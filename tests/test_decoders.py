"""Decoders (greedy, beam, lexicon, n-gram prior, allow/block), CTC arithmetic and symbol positions."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from crnn.charset import Charset
from crnn.cli import main
from crnn.config import ConfigError, PostProcessConfig
from crnn.ctc import align, ctc_log_prob, log_softmax
from crnn.decode import greedy_decode, word_score
from crnn.decoders import Lexicon, build_decoder, frames_to_pixels
from crnn.lm import CharNgram

CS = Charset.from_config(None)  # 0-9a-z, class i + 1 = CS.chars[i]


def frames(*steps: dict[str, float]) -> np.ndarray:
    """(1, T, C) logits whose softmax puts the given probabilities on the named symbols ("" = blank)."""
    out = np.full((1, len(steps), CS.num_classes), 1e-6)
    for t, probs in enumerate(steps):
        for sym, p in probs.items():
            out[0, t, 0 if sym == "" else CS.encode(sym)[0]] = p
    out /= out.sum(axis=-1, keepdims=True)
    return np.log(out).astype(np.float32)


def collapse(path: tuple[int, ...]) -> tuple[int, ...]:
    out, prev = [], None
    for c in path:
        if c != prev and c != 0:
            out.append(c)
        prev = c
    return tuple(out)


def test_ctc_log_prob_equals_brute_force_sum_over_paths() -> None:
    logp = log_softmax(np.random.default_rng(1).normal(size=(5, 3)))
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(3), repeat=5):
        p = float(np.exp(sum(logp[t, c] for t, c in enumerate(path))))
        totals[collapse(path)] = totals.get(collapse(path), 0.0) + p
    labels = list(totals)
    got = np.exp(ctc_log_prob(logp, [list(lab) for lab in labels]))
    np.testing.assert_allclose(got, [totals[lab] for lab in labels], rtol=1e-9)
    assert ctc_log_prob(logp, [[1, 1, 1, 1]])[0] == -np.inf  # needs 7 frames: impossible in 5


def test_align_finds_the_frames_of_each_symbol() -> None:
    lp = log_softmax(frames({"c": 0.9}, {"": 0.9}, {"a": 0.9}, {"a": 0.9}, {"": 0.9}, {"t": 0.9})[0])
    assert align(lp, CS.encode("cat")) == [(0, 0), (2, 3), (5, 5)]


def test_greedy_decoder_is_paddleocr_greedy() -> None:
    logits = np.random.default_rng(0).normal(size=(6, 25, CS.num_classes)).astype(np.float32) * 3
    got = build_decoder(None, CS)(logits)
    assert [(p.text, p.confidence) for p in got] == [(p.text, p.confidence) for p in greedy_decode(logits, CS)]
    for p in got:
        assert len(p.char_confidences) == len(p.char_frames) == len(p.text)
        assert all(s <= e for s, e in p.char_frames)


def test_greedy_frames_cover_each_run() -> None:
    (p,) = build_decoder(None, CS)(frames({"h": .9, "": .1}, {"h": .8, "": .2}, {"": .9}, {"i": .7, "": .3}, {"": .9}))
    assert p.text == "hi" and p.char_frames == ((0, 1), (3, 3))
    assert p.char_confidences == pytest.approx((0.9, 0.7), abs=1e-4)


def test_beam_finds_the_more_probable_reading() -> None:
    # greedy reads blank, blank (0.36); "a" has 0.4*0.4 + 0.4*0.6 + 0.6*0.4 = 0.64
    logits = frames({"": 0.6, "a": 0.4}, {"": 0.6, "a": 0.4})
    assert greedy_decode(logits, CS)[0].text == ""
    (p,) = build_decoder(PostProcessConfig(decoder="beam", beam_width=4), CS)(logits)
    assert p.text == "a"
    assert np.exp(ctc_log_prob(log_softmax(logits[0]), [CS.encode("a")]))[0] == pytest.approx(0.64, abs=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_beam_is_never_less_probable_than_greedy(seed: int) -> None:
    logits = np.random.default_rng(seed).normal(size=(4, 20, CS.num_classes)).astype(np.float32) * 2.5
    beam = build_decoder(PostProcessConfig(decoder="beam", beam_width=8), CS)(logits)
    for lp, b, g in zip(log_softmax(logits), beam, greedy_decode(logits, CS), strict=True):
        pb, pg = ctc_log_prob(lp, [CS.encode(b.text), CS.encode(g.text)])
        assert pb >= pg - 1e-9


def test_lexicon_picks_the_word_and_falls_back_when_none_is_close(tmp_path) -> None:
    lex = tmp_path / "lex.txt"
    lex.write_text("hello\nHELP\nworld\n", encoding="utf-8")
    # read as "hcllo" (c beats e at frame 1), but "hello" has the best CTC score of the lexicon
    logits = frames({"h": .9}, {"c": .5, "e": .45}, {"l": .9}, {"": .9}, {"l": .9}, {"o": .9})
    assert greedy_decode(logits, CS)[0].text == "hcllo"
    dec = build_decoder(PostProcessConfig(lexicon=str(lex)), CS)
    (p,) = dec(logits)
    assert p.text == "hello" and len(p.char_positions) == 0 and len(p.char_frames) == 5
    far = frames({"z": .9}, {"": .9}, {"q": .9}, {"": .9}, {"x": .9}, {"": .9}, {"j": .9}, {"k": .9}, {"v": .9})
    assert dec(far)[0].text == "zqxjkv"  # nothing within 3 edits: the free reading stays
    assert Lexicon(["HELP", "help", "Help"], CS).words == ["help"]  # the charset's form (36: lower-case)
    with pytest.raises(FileNotFoundError, match="lexicon"):
        build_decoder(PostProcessConfig(lexicon=str(tmp_path / "missing.txt")), CS)


def test_allow_and_block_lists() -> None:
    logits = frames({"o": .6, "0": .3}, {"": .9}, {"l": .6, "1": .3})
    assert greedy_decode(logits, CS)[0].text == "ol"
    (p,) = build_decoder(PostProcessConfig(allow="0123456789"), CS)(logits)
    assert p.text == "01" and p.confidence == pytest.approx(1.0, abs=1e-3)  # renormalised over allowed symbols
    assert build_decoder(PostProcessConfig(block="l"), CS)(logits)[0].text == "o1"
    assert build_decoder(PostProcessConfig(decoder="beam", allow="0123456789"), CS)(logits)[0].text == "01"
    with pytest.raises(ConfigError, match="allow"):
        build_decoder(PostProcessConfig(allow="A"), CS)


def test_ngram_prior_prefers_words(tmp_path) -> None:
    words = ["cat", "car", "cart", "care", "scat", "coat", "chat", "that", "hat", "mat"]
    lm = CharNgram(words, CS, order=3)
    assert lm.log_prob("c", "a") > lm.log_prob("c", "q")
    total = sum(np.exp(lm.log_prob("ca", c)) for c in [*CS.chars, lm.end])
    assert total == pytest.approx(1.0, abs=1e-9)  # a distribution over the charset + end of word
    wl = tmp_path / "words.txt"
    wl.write_text("\n".join(words) + "\n", encoding="utf-8")
    logits = frames({"c": .9}, {"": .9}, {"q": .5, "a": .45}, {"": .9}, {"t": .9})
    assert greedy_decode(logits, CS)[0].text == "cqt"
    fused = build_decoder(PostProcessConfig(decoder="beam", lm=str(wl), lm_weight=1.0, lm_order=3), CS)
    assert fused(logits)[0].text == "cat"
    assert build_decoder(PostProcessConfig(decoder="beam"), CS)(logits)[0].text == "cqt"


def test_bad_decoder_options_name_the_key() -> None:
    with pytest.raises(ConfigError, match="PostProcess.decoder"):
        build_decoder(PostProcessConfig(decoder="viterbi"), CS)
    with pytest.raises(ConfigError, match="PostProcess.lm"):
        build_decoder(PostProcessConfig(lm="/usr/share/dict/words"), CS)
    with pytest.raises(ConfigError, match="word_score"):
        build_decoder(PostProcessConfig(word_score="max"), CS)


def test_word_scores() -> None:
    assert word_score([0.5, 1.0], "mean") == 0.75
    assert word_score([0.5, 1.0], "min") == 0.5
    assert word_score([0.5, 0.5], "product") == 0.25
    assert word_score([], "product") == 0.0
    logits = frames({"h": .9, "": .1}, {"": .9}, {"i": .6, "": .4})
    (p,) = build_decoder(PostProcessConfig(word_score="min"), CS)(logits)
    assert p.confidence == pytest.approx(min(p.char_confidences))


def test_frames_to_pixels_undoes_resize_and_padding() -> None:
    from crnn.data.preprocess import Preprocess

    padded, stretched = Preprocess(), Preprocess(padding=False)
    # a 50x32 image at input 100x32: content 50 px wide, 25 frames of 4 input px = 4 image px each
    assert padded.content_width(32, 50) == 50
    assert frames_to_pixels([(0, 0), (4, 5)], (32, 50), 100, 25, 50) == ((0.0, 10.0), (10.0, 24.0))
    # a 64x247 image is squashed into 100 columns: a frame covers 247/25 px of the image
    assert padded.content_width(64, 247) == 100
    ((x0, x1),) = frames_to_pixels([(24, 24)], (64, 247), 100, 25, 100)
    assert (x0, x1) == (pytest.approx(237.1), 247.0)
    # frames in the right padding (content: frames 0-12) count as the last content frame
    clamped = frames_to_pixels([(0, 0), (24, 24)], (32, 50), 100, 25, 50)
    assert clamped == ((0.0, 26.0), (26.0, 50.0))
    assert all(type(x) is float for pos in clamped for x in pos)  # not the int width: json prints 50.0
    # twice as tall: resized to half the width, so a frame covers 8 image px
    assert padded.content_width(64, 50) == 25
    assert frames_to_pixels([(1, 2)], (64, 50), 100, 25, 25) == ((8.0, 24.0),)
    # a model that stretches: the 50 px image fills all 100 columns, a frame covers 2 image px
    assert stretched.content_width(32, 50) == 100 and stretched.content_width(32, 50, 160) == 160
    assert frames_to_pixels([(0, 0), (24, 24)], (32, 50), 100, 25, 100) == ((0.0, 25.0), (25.0, 50.0))


def test_recognizer_positions_and_predict_formats(capsys, tmp_path) -> None:
    from PIL import Image

    from crnn.predict import Recognizer
    from tests.conftest import ROOT

    img = ROOT / "docs" / "img" / "example_word.png"
    width = Image.open(img).width
    (p,) = Recognizer()([str(img)])
    assert p.text == "welcome" and len(p.char_positions) == 7
    xs = [x for pos in p.char_positions for x in pos]
    assert xs == sorted(xs) and xs[0] >= 0 and xs[-1] <= width
    assert main(["predict", str(img)]) == 0
    assert capsys.readouterr().out == f"{img}\twelcome\t{p.confidence:.4f}\n"
    assert main(["predict", str(img), str(img), "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and rows[0]["text"] == "welcome" and [c["char"] for c in rows[0]["chars"]] == list("welcome")
    assert main(["predict", str(img), "--format", "json", "--allow", "0123456789"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)
    assert set(rec["text"]) <= set("0123456789")
    lex = tmp_path / "lex.txt"
    lex.write_text("welcomes\nwelkin\n", encoding="utf-8")
    assert main(["predict", str(img), "--lexicon", str(lex), "--decoder", "beam"]) == 0
    assert capsys.readouterr().out.split("\t")[1] == "welcomes"


def test_temperature_changes_confidences_never_readings(tmp_path) -> None:
    # A close call between "cqt" (the model) and "cat" (the prior): the fusion weighs the model's own
    # scores; dividing the logits by the calibration temperature must not shift that balance.
    wl = tmp_path / "words.txt"
    wl.write_text("cat\ncar\ncart\nhat\nmat\nchat\n", encoding="utf-8")
    logits = frames({"c": .9}, {"": .9}, {"q": .75, "a": .2}, {"": .9}, {"t": .9})
    for options in ({"decoder": "beam", "lm": str(wl), "lm_weight": 0.5, "lm_order": 3},
                    {"decoder": "beam", "lexicon": str(wl), "lexicon_max_distance": 1},
                    {"lexicon": str(wl), "lexicon_max_distance": 1}, {"decoder": "beam"}, {}):
        plain, hot = (build_decoder(PostProcessConfig(**options, temperature=t), CS)(logits)[0] for t in (1.0, 3.0))
        assert hot.text == plain.text, options
        assert hot.char_frames == plain.char_frames
        assert hot.confidence < plain.confidence  # flatter: the one place the temperature acts
    rng = np.random.default_rng(7)
    noisy = rng.normal(size=(16, 20, CS.num_classes)).astype(np.float32) * 3
    beam = {t: build_decoder(PostProcessConfig(decoder="beam", lm=str(wl), lm_order=3, temperature=t), CS)(noisy)
            for t in (1.0, 2.0)}
    assert [p.text for p in beam[1.0]] == [p.text for p in beam[2.0]]
