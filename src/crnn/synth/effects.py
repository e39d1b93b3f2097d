"""Colours, backgrounds, lighting and camera degradations for synthetic word crops.

All functions take a ``numpy.random.Generator`` and draw from it in a fixed order, so a sample
is a pure function of its seed. Images are float32 BGR in [0, 255] until :func:`encode`.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

Color = np.ndarray  # shape (3,), float32 BGR


def _hsv(h: float, s: float, v: float) -> Color:
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return np.array([b, g, r], dtype=np.float32) * 255.0


def luminance(c: Color) -> float:
    """Relative luminance in [0, 1] of a BGR colour (Rec. 601 weights)."""
    return float(0.114 * c[0] + 0.587 * c[1] + 0.299 * c[2]) / 255.0


# Hue anchors of man-made scene colours (red, orange, yellow, green, teal, blue, purple, pink)
# and how often they occur: signs are mostly red, blue, yellow and green, rarely purple.
_HUES = np.array([0.0, 0.07, 0.14, 0.33, 0.48, 0.61, 0.78, 0.92])
_HUE_CDF = np.cumsum([0.22, 0.11, 0.13, 0.15, 0.07, 0.20, 0.05, 0.07])


def random_color(rng: np.random.Generator) -> Color:
    """Scene colours: many greys/whites/blacks (paper, walls, paint), many sign colours."""
    r = rng.random()
    if r < 0.12:  # white-ish paper, panels, lit signs
        return _hsv(rng.random(), rng.uniform(0.0, 0.12), rng.uniform(0.85, 1.0))
    if r < 0.45:
        return _hsv(rng.random(), rng.uniform(0.0, 0.2), rng.uniform(0.0, 1.0))
    # searchsorted on the CDF: same as rng.choice(p=...) but ~10x cheaper per call
    anchor = _HUES[min(int(np.searchsorted(_HUE_CDF, rng.random() * _HUE_CDF[-1])), len(_HUES) - 1)]
    hue = (float(anchor) + rng.normal(0, 0.025)) % 1.0
    return _hsv(hue, rng.uniform(0.2, 1.0) ** 1.2, rng.uniform(0.15, 1.0))


def pick_colors(rng: np.random.Generator) -> tuple[Color, Color]:
    """(background, text) colours with a luminance difference of at least a random minimum.

    The minimum is sometimes small: real photos include faded and low-contrast signs.
    """
    bg = random_color(rng)
    if rng.random() < 0.35:  # black or white lettering on any colour: the commonest sign design
        # dark letters on light backgrounds, light letters on dark ones
        v = rng.uniform(0.0, 0.15) if luminance(bg) > 0.45 else rng.uniform(0.85, 1.0)
        return bg, _hsv(rng.random(), rng.uniform(0.0, 0.15), v)
    min_diff = rng.uniform(0.2, 0.7) if rng.random() < 0.9 else rng.uniform(0.1, 0.15)
    lb = luminance(bg)
    for _ in range(12):
        fg = random_color(rng)
        if abs(luminance(fg) - lb) >= min_diff:
            return bg, fg
    # fall back to whichever of black or white contrasts more, with a slight tint
    v = 0.05 if lb > 0.5 else 0.95
    return bg, _hsv(rng.random(), rng.uniform(0.0, 0.3), v)


def _smooth_noise(h: int, w: int, cells: int, rng: np.random.Generator, channels: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid upsampled with cubic interpolation."""
    gh = max(2, round(cells * h / max(h, w)) + 1)
    gw = max(2, round(cells * w / max(h, w)) + 1)
    grid = rng.uniform(-1.0, 1.0, size=(gh, gw, channels)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, channels)


def _linear_ramp(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A (h, w, 1) ramp from 0 to 1 along a random direction."""
    theta = rng.uniform(0, 2 * np.pi)
    xs = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    ys = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None] * (h / max(w, 1))
    ramp = np.cos(theta) * xs + np.sin(theta) * ys
    ramp -= ramp.min()
    ramp /= max(float(ramp.max()), 1e-6)
    return ramp[..., None]


def background(
    h: int, w: int, base: Color, rng: np.random.Generator, keep_out: tuple[int, int, int, int] | None = None
) -> np.ndarray:
    """Solid, gradient, mottled (paint, stone, foliage) or paneled (sign edges) background.

    ``keep_out`` is the text box (x0, y0, x1, y1) that panels must not cover.
    """
    r = rng.random()
    img: np.ndarray = np.empty((h, w, 3), dtype=np.float32)
    img[:] = base
    if r < 0.25:
        pass
    elif r < 0.50:
        other = np.clip(base + rng.normal(0, 45, size=3), 0, 255).astype(np.float32)
        img = img + _linear_ramp(h, w, rng) * (other - base)
    elif r < 0.80:
        amp = rng.uniform(8, 50)
        ch = 3 if rng.random() < 0.4 else 1
        img = img + amp * _smooth_noise(h, w, int(rng.integers(3, 24)), rng, ch)
        if rng.random() < 0.5:  # a finer octave, for stone/wood/fabric grain
            img = img + amp * 0.5 * _smooth_noise(h, w, int(rng.integers(20, 60)), rng, 1)
    else:
        # Panels and bars in other colours (sign borders, frames, neighbouring objects) are kept
        # out of the text box: a random colour there could hide the text.
        tx0, ty0, tx1, ty1 = keep_out if keep_out is not None else (w, h, w, h)
        for _ in range(int(rng.integers(1, 4))):
            c = random_color(rng)
            if rng.random() < 0.5:  # horizontal band above or below the text
                if rng.random() < 0.5 and ty0 > 1:
                    img[int(rng.integers(0, ty0)) : ty0, :] = c
                elif ty1 < h - 1:
                    img[int(rng.integers(ty1, h)) :, :] = c
            else:  # vertical edge left or right of the text
                if rng.random() < 0.5 and tx0 > 1:
                    img[:, : int(rng.integers(1, tx0))] = c
                elif tx1 < w - 1:
                    img[:, int(rng.integers(tx1, w)) :] = c
        img = img + rng.uniform(3, 15) * _smooth_noise(h, w, 8, rng, 1)
    if rng.random() < 0.25:
        img = _clutter(img, keep_out, rng)
    return np.clip(img, 0, 255)


def _clutter(
    img: np.ndarray, keep_out: tuple[int, int, int, int] | None, rng: np.random.Generator
) -> np.ndarray:
    """Blurry shapes (poles, wires, leaves, logos, other objects) around the text.

    They are faded inside the text box so they texture it without hiding the letters.
    """
    h, w = img.shape[:2]
    layer = img.copy()
    for _ in range(int(rng.integers(2, 7))):
        c = tuple(float(v) for v in random_color(rng))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        kind = rng.random()
        if kind < 0.4:
            axes = (int(rng.integers(2, max(3, w // 4))), int(rng.integers(2, max(3, h // 2))))
            cv2.ellipse(layer, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, c, -1, cv2.LINE_AA)
        elif kind < 0.7:
            x2, y2 = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.line(layer, (x, y), (x2, y2), c, int(rng.integers(1, max(2, h // 8))), cv2.LINE_AA)
        else:
            x2, y2 = x + int(rng.integers(2, max(3, w // 3))), y + int(rng.integers(2, max(3, h // 2)))
            cv2.rectangle(layer, (x, y), (x2, y2), c, -1)
    if rng.random() < 0.6:
        layer = cv2.GaussianBlur(layer, (0, 0), rng.uniform(0.5, 3.0))
    alpha: np.ndarray = np.full((h, w), rng.uniform(0.5, 1.0), np.float32)
    if keep_out is not None:
        x0, y0, x1, y1 = keep_out
        alpha[max(0, y0) : y1, max(0, x0) : x1] *= rng.uniform(0.0, 0.3)
        alpha = cv2.blur(alpha, (5, 5))
    return img + (layer - img) * alpha[..., None]


def _shifted(mask: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
    return cv2.warpAffine(mask, m, (mask.shape[1], mask.shape[0]))


def text_effects(
    img: np.ndarray, fill: np.ndarray, size: int, bg: Color, fg: Color, rng: np.random.Generator
) -> tuple[np.ndarray, Color]:
    """Shadow, embossing and outline drawn under the text; returns (image, text colour).

    ``fill`` is the text coverage in [0, 1]; the text itself is composited by the caller.
    """
    r = rng.random()
    if r < 0.18:  # drop shadow or 3D extrusion
        dx, dy = rng.uniform(-0.12, 0.12, size=2) * size
        sh = _shifted(fill, dx, dy)
        if rng.random() < 0.6:
            sh = cv2.GaussianBlur(sh, (0, 0), rng.uniform(0.5, 0.1 * size + 0.6))
        shadow_col = bg * rng.uniform(0.0, 0.4)
        img = img + (shadow_col - img) * (rng.uniform(0.4, 0.9) * sh)[..., None]
    elif r < 0.24:  # engraved or embossed: same material as the sign, lit from one side
        d = max(1.0, rng.uniform(0.03, 0.07) * size)
        sign = 1 if rng.random() < 0.5 else -1
        light, dark = _shifted(fill, -sign * d, -sign * d), _shifted(fill, sign * d, sign * d)
        img = img + (255 - img) * (rng.uniform(0.3, 0.8) * light)[..., None]
        img = img - img * (rng.uniform(0.3, 0.8) * dark)[..., None]
        fg = np.clip(bg * rng.uniform(0.75, 1.25), 0, 255).astype(np.float32)
    if rng.random() < 0.15:  # outline in a third colour, as on signs and stickers
        k = max(1, int(rng.uniform(0.03, 0.1) * size))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
        ol = cv2.dilate(fill, kernel)
        ol_col = random_color(rng) if rng.random() < 0.5 else bg * 0.2
        img = img + (ol_col - img) * ol[..., None]
    return img, fg


def foreground(h: int, w: int, fg: Color, rng: np.random.Generator) -> np.ndarray | Color:
    """Text colour: usually flat, sometimes a gradient (printed/metallic letters)."""
    if rng.random() < 0.12:
        other = np.clip(fg + rng.normal(0, 50, size=3), 0, 255).astype(np.float32)
        return fg + _linear_ramp(h, w, rng) * (other - fg)
    return fg


def lighting(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uneven illumination: a brightness ramp, a soft highlight or a dark vignette corner."""
    h, w = img.shape[:2]
    r = rng.random()
    if r < 0.35:
        gain = 1.0 + rng.uniform(-0.45, 0.45) * (_linear_ramp(h, w, rng) - 0.5) * 2
        img = img * gain
    elif r < 0.50:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        sigma = rng.uniform(0.2, 0.8) * max(h, w)
        yy, xx = np.ogrid[:h, :w]
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2)).astype(np.float32)
        # Blend towards white (glare) or black (shade) rather than adding: adding saturates
        # light text on light backgrounds to a blank white patch.
        a = rng.uniform(-0.6, 0.55) * blob[..., None]
        img = img + (255.0 - img) * a if a.max() > 0 else img * (1 + a)
    return img


def degrade(img: np.ndarray, rng: np.random.Generator, blur_p: float = 0.35, motion_p: float = 0.12) -> np.ndarray:
    """Camera effects on the final-size crop: blur, haze, colour cast, gamma, sensor noise.

    ``blur_p`` is lowered by the caller for crops that are already blurred by upsampling, so
    effects do not stack into unreadable images too often.
    """
    if rng.random() < blur_p:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.1))
    elif rng.random() < motion_p:
        k = int(rng.integers(3, 6))
        kernel: np.ndarray = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k  # horizontal motion blur, then rotate it
        rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (k, k))
        kernel = (kernel / max(float(kernel.sum()), 1e-6)).astype(np.float32)
        img = cv2.filter2D(img, -1, kernel)
    if rng.random() < 0.12:  # haze / washed-out low contrast
        a = rng.uniform(0.6, 0.9)
        img = img * a + (1 - a) * rng.uniform(60, 230)
    if rng.random() < 0.25:  # white-balance cast
        img = img * rng.uniform(0.8, 1.2, size=3).astype(np.float32)
    if rng.random() < 0.3:
        img = np.clip(img, 0, 255)
        img = 255.0 * (img / 255.0) ** rng.uniform(0.6, 1.6)
    if rng.random() < 0.5:
        sigma = rng.uniform(1.0, 10.0)
        noise = rng.normal(0, sigma, size=img.shape[:2] + ((1,) if rng.random() < 0.5 else (3,)))
        img = img + noise.astype(np.float32)
    return np.clip(img, 0, 255)


def encode(img: np.ndarray, rng: np.random.Generator, low_p: float = 0.15) -> bytes:
    """JPEG bytes at a random quality (a low one with probability ``low_p``): the artefacts are augmentation."""
    q = int(rng.integers(35, 96)) if rng.random() < 1 - low_p else int(rng.integers(12, 35))
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img.astype(np.uint8)), [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:
        raise RuntimeError("cv2.imencode failed")
    return buf.tobytes()
