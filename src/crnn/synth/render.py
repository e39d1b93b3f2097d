"""Render one word crop: text layout with PIL, composition and geometry with OpenCV.

A sample is a pure function of its ``numpy.random.Generator``: font, size, spacing, colours,
background, outline/shadow, neighbouring words, curve, rotation/shear/perspective, crop
padding, final resolution and degradations are all drawn from it.
"""

from __future__ import annotations

import functools
import re

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from crnn.synth import backgrounds, effects
from crnn.synth.corpus import Corpus
from crnn.synth.fonts import FontInfo, group_by_family
from crnn.synth.styles import DEFAULT, Style

BOLD_STYLE = re.compile(r"bold|black|heavy|demi|semi|extra|ultra|medium", re.IGNORECASE)
THIN_STYLE = re.compile(r"thin|hairline|light", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    """Open a font once per (path, size): FreeType loading costs far more than drawing a word."""
    return ImageFont.truetype(path, size)


def _draw_text(
    draw: ImageDraw.ImageDraw,
    x: float,
    baseline: float,
    text: str,
    font: ImageFont.FreeTypeFont,
    spacing: float,
) -> None:
    """Draw ``text`` with its left baseline at (x, baseline); ``spacing`` px between letters."""
    if spacing == 0:
        draw.text((x, baseline), text, font=font, fill=255, anchor="ls")
        return
    for i, ch in enumerate(text):
        # prefix length keeps the font's own advance and kerning, spacing is added on top
        draw.text(
            (x + font.getlength(text[:i]) + i * spacing, baseline), ch, font=font, fill=255, anchor="ls"
        )


def _text_width(text: str, font: ImageFont.FreeTypeFont, spacing: float) -> float:
    return font.getlength(text) + spacing * max(len(text) - 1, 0)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the non-zero pixels, exclusive end; None if empty."""
    cols = np.flatnonzero(mask.max(axis=0) > 40)
    rows = np.flatnonzero(mask.max(axis=1) > 40)
    if cols.size == 0 or rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _curve(masks: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Bend the text along an arc or a wave by shifting each column vertically."""
    h, w = masks.shape[:2]
    xs = np.arange(w, dtype=np.float32)
    amp = rng.uniform(0.1, 0.45) * size
    if rng.random() < 0.6:  # arc, as on round signs and logos
        dy = amp * (((xs - w / 2) / (w / 2)) ** 2 - 0.5) * (1 if rng.random() < 0.5 else -1)
    else:  # gentle wave, as on fabric, bottles and banners
        dy = amp * 0.5 * np.sin(2 * np.pi * xs / rng.uniform(1.5, 4) / size + rng.uniform(0, 2 * np.pi))
    map_x = np.broadcast_to(xs[None, :], (h, w)).astype(np.float32)
    map_y = (np.arange(h, dtype=np.float32)[:, None] - dy[None, :]).astype(np.float32)
    return cv2.remap(masks, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _arc(
    masks: np.ndarray, rng: np.random.Generator, span_deg: tuple[float, float], min_radius: float = 1.0
) -> np.ndarray:
    """Set the text along a circle, as on round logos and badges; returns a new (H', W', C) canvas.

    Unlike :func:`_curve`, letters turn with the tangent. Convex arcs (the top of a badge) put the
    tops of the letters outwards, concave ones (the bottom) inwards; both read left to right.
    ``min_radius`` (in canvas heights, > 0.5) bounds how tight the circle may be, and so the span
    of short canvases.
    """
    h, w = masks.shape[:2]
    # The middle line of the canvas keeps its length w on a circle of radius r0; r0 >= h keeps the
    # inner edge of the canvas at a positive radius (r0 > h / 2 is the limit).
    span = min(np.deg2rad(rng.uniform(*span_deg)), w / (min_radius * h))
    r0 = w / span
    sign = 1.0 if rng.random() < 0.5 else -1.0  # +1 convex (centre below), -1 concave (centre above)

    def forward(sx: np.ndarray, sy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        phi, r = (sx - w / 2) / r0, r0 + sign * (h / 2 - sy)
        return r * np.sin(phi), -sign * r * np.cos(phi)

    t = np.linspace(0, 1, 64)
    edge_x = np.concatenate([t * w, t * w, np.zeros_like(t), np.full_like(t, w)])
    edge_y = np.concatenate([np.zeros_like(t), np.full_like(t, h), t * h, t * h])
    ex, ey = forward(edge_x, edge_y)
    x0, y0 = ex.min(), ey.min()
    out_w, out_h = int(np.ceil(ex.max() - x0)) + 1, int(np.ceil(ey.max() - y0)) + 1
    # Inverse map: each output pixel, relative to the circle's centre, back to the flat canvas.
    xs = np.arange(out_w, dtype=np.float32)[None, :] + np.float32(x0)  # (1, W')
    ys = np.arange(out_h, dtype=np.float32)[:, None] + np.float32(y0)  # (H', 1)
    phi = np.arctan2(xs, -sign * ys)  # (H', W'): angle from the vertical through the word's middle
    r = np.hypot(xs, ys)
    map_x = (w / 2 + phi * r0).astype(np.float32)
    map_y = (h / 2 - sign * (r - r0)).astype(np.float32)
    return cv2.remap(masks, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _geometry(
    box: tuple[int, int, int, int], rng: np.random.Generator, style: Style = DEFAULT
) -> tuple[np.ndarray, np.ndarray]:
    """A perspective matrix moving the text box's corners: rotation, slant and keystone.

    Returns (3x3 matrix, the four transformed corners).
    """
    x0, y0, x1, y1 = box
    src = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)
    c = src.mean(axis=0)
    tilt = rng.random() < 1 - style.rotate_p  # mostly a small tilt, sometimes any angle in range
    angle = rng.normal(0, 2.0) if tilt else rng.uniform(-style.rotate_max, style.rotate_max)
    t = np.deg2rad(angle)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]], dtype=np.float32)
    shear = rng.uniform(-0.35, 0.35) if rng.random() < 0.2 else 0.0
    sh = np.array([[1, shear], [0, 1]], dtype=np.float32)
    dst = (src - c) @ (rot @ sh).T + c
    if rng.random() < style.keystone_p:  # keystone: photographed at an angle
        h = y1 - y0
        strength = rng.uniform(0.05, 0.35) if rng.random() < 0.8 else rng.uniform(0.3, style.keystone_max)
        dst = dst + rng.uniform(-1, 1, size=(4, 2)).astype(np.float32) * strength * h
    return cv2.getPerspectiveTransform(src, dst.astype(np.float32)), dst


def _final_height(rng: np.random.Generator) -> int:
    """Crop heights like the benchmarks': mostly 20-60 px, some tiny, some large."""
    r = rng.random()
    if r < 0.15:
        return int(rng.integers(12, 20))
    if r < 0.70:
        return int(rng.integers(20, 40))
    return int(rng.integers(40, 80))


class Renderer:
    """Draws labelled word crops from a list of fonts and a :class:`Corpus`."""

    def __init__(
        self,
        fonts: list[FontInfo],
        corpus: Corpus,
        style: Style = DEFAULT,
        photos: list[np.ndarray] | None = None,
    ):
        """``photos``: background photos for ``style.photo_p`` (default: :func:`backgrounds.load_backgrounds`)."""
        if not fonts:
            raise ValueError("Renderer needs at least one font")
        self.families = group_by_family(fonts)
        self.corpus = corpus
        self.style = style
        if photos is None and style.photo_p > 0:
            photos = backgrounds.load_backgrounds()
        if style.photo_p > 0 and not photos:
            raise ValueError("this style draws photo backgrounds: give at least one photo")
        self.photos = photos or []

    def pick_font(self, rng: np.random.Generator) -> FontInfo:
        """A family uniformly, then a style within it: no collection dominates by file count.

        Signs favour heavy weights, so a bold style is preferred half of the time when there is one,
        and thin/light weights are mostly skipped.
        """
        fam = self.families[int(rng.integers(len(self.families)))]
        # Hairline weights wash out to nothing at 20-30 px crop heights: keep them rare.
        if rng.random() < 0.9:
            fam = [f for f in fam if not THIN_STYLE.search(f.style)] or fam
        if rng.random() < 0.5:
            bold = [f for f in fam if BOLD_STYLE.search(f.style) and not THIN_STYLE.search(f.style)]
            if bold:
                return bold[int(rng.integers(len(bold)))]
        return fam[int(rng.integers(len(fam)))]

    def render(self, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """One (BGR uint8 image, label) pair."""
        info = self.pick_font(rng)
        text = self.corpus.sample(rng)
        if info.caps_only:
            text = text.upper()  # the font draws capitals: the label must say so
        size = int(rng.integers(26, 50))
        font = load_font(info.path, size)
        spacing = rng.uniform(-0.04, 0.2) * size if rng.random() < 0.12 else 0.0
        masks, box = self._masks(text, font, size, spacing, rng)
        ch, cw = masks.shape[:2]
        fill = masks[..., 1].astype(np.float32) / 255.0

        bg_col, fg_col = effects.pick_colors(rng)
        # photo_p == 0 draws nothing here, so the other styles keep their exact random sequence
        if self.style.photo_p and rng.random() < self.style.photo_p:
            img = backgrounds.photo_background(ch, cw, self.photos, rng)
            img, fg_col, bg_col = backgrounds.contrast_text_color(img, fill, rng)
        else:
            img = effects.background(ch, cw, bg_col, rng, keep_out=box)
        img, fg_col = effects.text_effects(img, fill, size, bg_col, fg_col, rng)
        fg = effects.foreground(ch, cw, fg_col, rng)
        img = img + (fg - img) * fill[..., None]
        img = effects.lighting(img, rng)
        img = self._crop(img, box, rng)
        return self._resize(img, len(text), rng), text

    def _masks(self, text: str, font: ImageFont.FreeTypeFont, size: int, spacing: float,
               rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """(H, W, 2) uint8 masks (the word's ink, and the ink of everything drawn) and the word's box."""
        style = self.style
        ascent, descent = font.getmetrics()
        width = _text_width(text, font, spacing)
        mx, my = int(0.6 * size) + 4, int(0.7 * size) + 4
        cw, ch = int(width) + 2 * mx, ascent + descent + 2 * my
        baseline = my + ascent

        main = Image.new("L", (cw, ch), 0)
        _draw_text(ImageDraw.Draw(main), mx, baseline, text, font, spacing)
        main_a = np.asarray(main)
        fill_a = main_a
        if rng.random() < style.clutter_p:  # other words beside, above or below: real crops catch them
            other = Image.new("L", (cw, ch), 0)
            d = ImageDraw.Draw(other)
            if rng.random() < 0.6:
                gap = rng.uniform(0.1, 0.6) * size
                w2 = self.corpus.word(rng)
                _draw_text(d, mx - gap - _text_width(w2, font, spacing), baseline, w2, font, spacing)
                _draw_text(
                    d,
                    mx + width + rng.uniform(0.1, 0.6) * size,
                    baseline,
                    self.corpus.word(rng),
                    font,
                    spacing,
                )
            if rng.random() < 0.5:
                lh = rng.uniform(1.0, 1.5) * (ascent + descent)
                sign = 1 if rng.random() < 0.5 else -1
                line = " ".join(self.corpus.word(rng) for _ in range(3))
                _draw_text(d, mx - rng.uniform(0, 2) * size, baseline + sign * lh, line, font, spacing)
            fill_a = np.maximum(main_a, np.asarray(other))

        masks = np.dstack([main_a, fill_a])
        if style.arc_p and rng.random() < style.arc_p:
            masks = _arc(masks, rng, style.arc_span)
        elif rng.random() < style.curve_p:
            masks = _curve(masks, rng, size)
        box = _bbox(masks[..., 0])
        if box is None:  # whitespace-only glyph run: should not happen with checked fonts
            box = (mx, my, mx + max(int(width), 1), my + ascent)
        return masks, box

    def _crop(self, img: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
        """The word's crop: a perspective warp of ``img`` (H, W, 3) float, with tight or loose padding."""
        style = self.style
        matrix, corners = _geometry(box, rng, style)
        text_h = box[3] - box[1]
        # Crop padding in units of the text height: mostly tight as in the benchmarks (a pixel into
        # the ink at worst), sometimes loose. Order: left, top, right, bottom.
        if rng.random() < 1 - style.loose_p:
            pad = rng.uniform([-0.02, -0.06, -0.02, -0.06], [0.2, 0.16, 0.2, 0.16]) * text_h
        else:
            pad = rng.uniform(0.15, 0.6, size=4) * text_h
        if style.cut_p and rng.random() < style.cut_p:  # the crop cuts into the first or last letter
            pad[0 if rng.random() < 0.5 else 2] = -rng.uniform(0.05, 0.25) * text_h
        x0 = corners[:, 0].min() - pad[0]
        y0 = corners[:, 1].min() - pad[1]
        x1 = corners[:, 0].max() + pad[2]
        y1 = corners[:, 1].max() + pad[3]
        out_w, out_h = max(4, round(x1 - x0)), max(4, round(y1 - y0))
        shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], dtype=np.float64)
        return cv2.warpPerspective(
            img, shift @ matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )

    def _resize(self, img: np.ndarray, n_chars: int, rng: np.random.Generator) -> np.ndarray:
        """Resolution: a benchmark-like height with a random aspect stretch, then degradations; uint8."""
        style = self.style
        out_h, out_w = img.shape[:2]
        fh = _final_height(rng)
        stretch = rng.uniform(0.65, 1.1)
        fw = round(out_w * fh / out_h * stretch)
        min_w = 5 * n_chars  # below ~5 px per character a word is unreadable even for people
        if fw < min_w:
            fh = min(round(fh * min_w / max(fw, 1)), 100)
            fw = round(out_w * fh / out_h * stretch)
        fw = int(np.clip(fw, 4, 30 * fh))
        interp = cv2.INTER_AREA if fh < out_h else cv2.INTER_LINEAR
        blur_p = 0.35
        if rng.random() < style.lowres_p:  # captured tiny, shown bigger: blocky or smeared letters
            sh_ = max(6, int(fh * rng.uniform(*style.lowres_scale)))
            small = cv2.resize(img, (max(4, fw * sh_ // fh), sh_), interpolation=cv2.INTER_AREA)
            up = cv2.INTER_NEAREST if rng.random() < 0.3 else cv2.INTER_LINEAR
            img = cv2.resize(small, (fw, fh), interpolation=up)
            blur_p = 0.1
        else:
            img = cv2.resize(img, (fw, fh), interpolation=interp)
        return effects.degrade(img, rng, blur_p, style.motion_p).astype(np.uint8)


def sample_rng(seed: int, shard: int, index: int) -> np.random.Generator:
    """The generator of sample ``index`` of ``shard``: independent of worker count and order."""
    return np.random.default_rng(np.random.SeedSequence([seed, shard, index]))
