import json

import numpy as np
import pytest

from crnn.data.transforms import resize_norm, resized_width

from .conftest import need_shared


def test_padding_and_range():
    img = np.full((16, 20, 3), 255, dtype=np.uint8)
    out = resize_norm(img, [3, 32, 100])
    assert out.shape == (3, 32, 100) and out.dtype == np.float32
    assert resized_width(16, 20, 32, 100) == 40
    assert np.all(out[:, :, :40] == 1.0) and np.all(out[:, :, 40:] == 0.0)  # pad is 0 after normalising


def test_wide_images_are_squashed():
    assert resized_width(10, 500, 32, 100) == 100
    assert resize_norm(np.zeros((10, 500, 3), np.uint8), [3, 32, 100]).min() == -1.0


def test_zero_size_raises():
    with pytest.raises(ValueError, match="0x"):
        resize_norm(np.zeros((5, 0, 3), np.uint8), [3, 32, 100])


@pytest.mark.parametrize(("width", "rows"), [(100, 4), (320, 2)])
def test_reproduces_paddleocr_preprocessing(width, rows):
    fix = need_shared("paddle")
    expected = np.load(fix / f"inputs_w{width}.npy")
    meta = json.loads((fix / "inputs.json").read_text())
    assert meta  # the fixture lists the source crops
    for i in range(rows):
        raw = np.load(fix / f"raw_w{width}_{i}.npy")  # BGR uint8 as cv2.imdecode gives it
        np.testing.assert_array_equal(resize_norm(raw, [3, 32, width]), expected[i])
