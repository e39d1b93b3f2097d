import numpy as np
import pytest

from crnn.charset import DEFAULT_CHARACTERS, Charset
from crnn.decode import greedy_decode, softmax
from crnn.metrics import RecMetric, filter_36, make_normalizer

CS = Charset.from_config(None)


def onehot_logits(path: list[int], num_classes: int = 37, hot: float = 10.0) -> np.ndarray:
    x = np.zeros((1, len(path), num_classes), dtype=np.float32)
    for t, c in enumerate(path):
        x[0, t, c] = hot
    return x


def idx(ch: str) -> int:
    return DEFAULT_CHARACTERS.index(ch) + 1


@pytest.mark.parametrize(("path", "text"), [
    ([0, idx("c"), idx("c"), 0, idx("a"), idx("t")], "cat"),  # repeats merge
    ([idx("o"), 0, idx("o"), idx("o"), 0], "oo"),  # a blank separates a real double letter
    ([0, 0, 0], ""),  # nothing kept
    ([idx("7"), idx("z")], "7z"),
])
def test_greedy_decode_exact(path, text):
    (pred,) = greedy_decode(onehot_logits(path), CS)
    assert pred.text == text


def test_confidence_is_mean_of_kept_step_maxima():
    logits = onehot_logits([idx("a"), idx("a"), 0, idx("b")])
    probs = softmax(logits)[0].max(-1)
    (pred,) = greedy_decode(logits, CS)
    assert pred.confidence == pytest.approx((probs[0] + probs[3]) / 2, rel=1e-6)
    (empty,) = greedy_decode(onehot_logits([0, 0]), CS)
    assert empty.confidence == 0.0


def test_charset_defaults_and_dict(tmp_path):
    assert CS.num_classes == 37 and CS.lower
    assert CS.encode("Ab-1!") == [idx("a"), idx("b"), idx("1")]
    d = tmp_path / "dict.txt"
    d.write_text("a\nB\n \n")
    cs = Charset.from_config(str(d), use_space_char=True)
    # PaddleOCR appends the space even when the dict has one: the class count must match its models.
    assert cs.chars == ["a", "B", " ", " "] and cs.num_classes == 5 and not cs.lower
    assert cs.encode("aB b") == [1, 2, 4]
    assert Charset.from_dict(cs.to_dict()) == cs


def test_metric_36_char_protocol():
    m = RecMetric(make_normalizer(True, True, None))
    assert m.update(["hello", "w0rld", "ab"], ["Hello!", "WORLD", "a-b"]) == [True, False, True]
    r = m.compute()
    assert r["count"] == 3 and r["acc"] == pytest.approx(2 / 3)
    assert r["norm_edit_dis"] == pytest.approx(1 - (1 / 5) / 3)
    assert filter_36("It's 5 O'Clock!") == "its5oclock"


def test_metric_charset_mode_ignores_space():
    m = RecMetric(make_normalizer(False, True, CS.normalize))
    m.update(["newyork"], ["New York"])
    assert m.compute()["acc"] == 1.0
