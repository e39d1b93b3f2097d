"""A stronger recognizer as a teacher: PaddleOCR's PP-OCRv6 small recognizer, run with ONNX Runtime.

The teacher reads a crop of height 48 and any width and emits one frame per 8 columns over its own
18,710 classes (blank, the ``character`` list stored in the ONNX metadata, then space). crnn's CRNN
emits one frame per 4 columns of its 32 x 100 input. Giving the teacher the crop that crnn sees,
stretched horizontally by 2 (48 x 200, ``teacher_inputs``), makes each of its frames cover exactly the
columns of one of crnn's frames, so its per-frame distribution can be a target for crnn's frame by frame.

``fold_matrix`` maps the teacher's classes onto a crnn charset: a symbol that the charset's
``normalize`` turns into one of its symbols (``A`` -> ``a`` for the caseless 36) goes to that class;
every other symbol (punctuation, space, CJK, accents) goes to blank, because crnn's training labels
drop exactly those symbols (``Charset.normalize``), so where the teacher sees one, crnn's CTC target
wants a blank frame or a repeat, never a symbol.

Training-time only: nothing here is needed to run a crnn model. No torch (numpy + onnxruntime).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from crnn.charset import Charset
from crnn.data.preprocess import Preprocess
from crnn.data.transforms import norm_lut

TEACHER_HEIGHT = 48
TEACHER_STRIDE = 8  # input columns per output frame
DEFAULT_TEACHER = "PP-OCRv6_rec_small.onnx"  # shipped inside rapidocr's wheel (Apache-2.0)


def find_teacher(name: str) -> Path:
    """An ONNX file path, or the name of a model shipped in the ``rapidocr`` package (``crnn[distill]``).

    Raises:
        FileNotFoundError: neither a file nor a model of an installed rapidocr, naming both places.
    """
    p = Path(name)
    if p.is_file():
        return p
    try:
        import rapidocr
    except ImportError:
        raise FileNotFoundError(f"teacher {name}: no such file, and rapidocr (which ships it) is not installed: "
                                "pip install 'crnn[distill]'") from None
    shipped = Path(rapidocr.__file__).parent / "models" / p.name
    if not shipped.is_file():
        raise FileNotFoundError(f"teacher {name}: no such file, nor in rapidocr's models ({shipped.parent})")
    return shipped


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (names the teacher in every target file)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fold_matrix(teacher_chars: Sequence[str], charset: Charset) -> np.ndarray:
    """(K_teacher, C) 0/1 float32 matrix: teacher class k (0 = blank, 1.. = ``teacher_chars``) -> crnn class.

    Probabilities fold by ``p_crnn = p_teacher @ M``: each row has one 1, so the mass is kept.
    """
    m = np.zeros((len(teacher_chars) + 1, charset.num_classes), dtype=np.float32)
    m[0, 0] = 1.0
    for k, ch in enumerate(teacher_chars, start=1):
        ids = charset.encode(ch)
        # one symbol that normalises to one crnn symbol; anything else is dropped from labels -> blank
        m[k, ids[0] if len(ids) == 1 and len(charset.normalize(ch)) == 1 else 0] = 1.0
    return m


def teacher_inputs(images: Sequence[np.ndarray], spec: Preprocess, frames: int) -> np.ndarray:
    """Decoded BGR crops -> the teacher's (B, 3, 48, 8 * frames) input, aligned with crnn's frames.

    Each crop fills the same fraction of the width as in crnn's input (``spec.content_width``), resized
    with OpenCV bilinear as crnn's is; the rest is padding of 0 after normalisation, as in crnn's input
    and PaddleOCR's. The teacher's normalisation, (v / 255 - 0.5) / 0.5 in BGR, is crnn's default.
    """
    width = TEACHER_STRIDE * frames
    sx = width / spec.image_shape[2]
    buf = np.empty((len(images), TEACHER_HEIGHT, width, 3), dtype=np.uint8)
    content = []
    for i, img in enumerate(images):
        h, w = img.shape[:2]
        cw = min(width, max(1, int(round(spec.content_width(h, w) * sx))))
        cv2.resize(img, (cw, TEACHER_HEIGHT), dst=buf[i, :, :cw])
        content.append(cw)
    out = np.empty((len(images), 3, TEACHER_HEIGHT, width), dtype=np.float32)
    np.take(norm_lut(), buf.transpose(0, 3, 1, 2), out=out)
    for i, cw in enumerate(content):
        out[i, :, :, cw:] = 0.0
    return out


@dataclass
class Teacher:
    """A loaded teacher: ``probs(batch)`` maps (B, 3, 48, W) to (B, W / 8, K) probabilities over its classes."""

    path: Path
    sha256: str
    chars: list[str]  # its symbols, class k + 1 = chars[k]; the last class (space) is included
    probs: Callable[[np.ndarray], np.ndarray]

    def folded_log_probs(self, images: Sequence[np.ndarray], spec: Preprocess, frames: int,
                         fold: np.ndarray) -> np.ndarray:
        """Crops -> (B, frames, C) float32 log-probabilities over crnn's classes (``fold_matrix``)."""
        p = self.probs(teacher_inputs(images, spec, frames))
        if p.shape[1] != frames or p.shape[2] != fold.shape[0]:
            raise ValueError(f"teacher {self.path.name}: output {p.shape} for {frames} frames and "
                             f"{fold.shape[0]} classes; not a PP-OCR CTC recognizer of stride {TEACHER_STRIDE}?")
        # as one 2-D product: numpy's stacked (B, T, K) @ (K, C) takes a slow path (100x here, 5.9 s per 64 crops)
        folded = (p.reshape(-1, p.shape[2]) @ fold).reshape(p.shape[0], p.shape[1], fold.shape[1])
        return np.log(np.maximum(folded, 1e-12))


def load_teacher(name: str = DEFAULT_TEACHER, num_threads: int | None = None) -> Teacher:
    """Load a PP-OCR recognizer exported to ONNX (its symbols in the ``character`` metadata entry).

    Raises:
        FileNotFoundError: see ``find_teacher``.
        ValueError: the file is not a loadable ONNX model or has no ``character`` metadata.
    """
    import onnxruntime as ort

    from crnn.onnx_backend import session_options

    path = find_teacher(name)
    so = session_options(num_threads)
    # it runs beside training and other jobs: idle threads sleep instead of spinning on the shared cores
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        sess = ort.InferenceSession(str(path), sess_options=so,
                                    providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own error types
        raise ValueError(f"teacher {path} is not a loadable ONNX model: {str(e).strip().splitlines()[0]}") from e
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    if "character" not in meta:
        raise ValueError(f"teacher {path}: no 'character' metadata (a PP-OCR recognizer export has it)")
    chars = [*meta["character"].split("\n"), " "]  # PaddleOCR appends the space class (use_space_char)
    in_name, out_name = sess.get_inputs()[0].name, sess.get_outputs()[0].name

    def probs(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = sess.run([out_name], {in_name: x})[0]
        return out

    return Teacher(path, file_sha256(path), chars, probs)

