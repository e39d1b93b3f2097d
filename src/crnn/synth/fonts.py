"""Discover installed font files that can render every character of ``[0-9a-zA-Z]``.

The scan renders each glyph with Pillow (no fontTools dependency) and compares it with the
font's ``.notdef`` glyph, so fonts that silently draw boxes or nothing are dropped. The result
is cached as JSON keyed by a fingerprint of the candidate files, so later runs start instantly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import string
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import ImageFont

log = logging.getLogger(__name__)

FONT_ROOTS: tuple[str, ...] = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "/usr/share/texmf/fonts/opentype",  # fonts-texgyre lives here, not under /usr/share/fonts
)
# The ~400 extra Google Fonts families (scripts/install_more_fonts.sh), used only by styles with
# fonts="all": kept outside FONT_ROOTS so the other styles render the same bytes with or without them.
EXTRA_FONT_ROOTS: tuple[str, ...] = ("/usr/local/share/crnn/fonts",)
FONT_EXTENSIONS = (".ttf", ".otf", ".woff")  # .woff: the npm display faces (scripts/install_display_fonts.sh)
REQUIRED_CHARS = string.digits + string.ascii_letters
# Punctuation the corpus emits: it must exist (not .notdef) but may look alike (e.g. quotes).
REQUIRED_PUNCT = ".,!?:;'\"()[]$%#@&-/"
# Fonts whose Latin code points map to symbols, pictograms or maths glyphs: the glyphs exist,
# so the coverage test passes, but they do not look like the letters the label says.
EXCLUDE_NAME = re.compile(
    r"symbol|dingbat|d050000l|awesome|emoji|math|music|cmex|cmsy|wingding|ornament|icon|fallback|keyboard"
    r"|nushu",
    re.IGNORECASE,
)
# Small-caps and titling faces draw lower-case letters as (smaller) capitals.
CAPS_NAME = re.compile(r"small ?caps|titling", re.IGNORECASE)
CACHE_VERSION = 5


@dataclass(frozen=True)
class FontInfo:
    """One usable font file.

    ``caps_only`` marks fonts whose lower-case letters are drawn as capitals (e.g. Bebas Neue):
    text rendered with them must be labelled in upper case.
    """

    path: str
    family: str
    style: str
    caps_only: bool


def candidate_files(roots: tuple[str, ...] = FONT_ROOTS) -> list[Path]:
    """Every font file (``FONT_EXTENSIONS``) under ``roots`` (sorted, symlinks resolved, duplicates removed)."""
    seen: dict[str, Path] = {}
    for root in roots:
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames.sort()
            for name in sorted(filenames):
                if name.lower().endswith(FONT_EXTENSIONS) and not EXCLUDE_NAME.search(name):
                    real = os.path.realpath(os.path.join(dirpath, name))
                    seen.setdefault(real, Path(real))
    return sorted(seen.values())


def _glyph_signature(font: ImageFont.FreeTypeFont, ch: str) -> bytes:
    """Bitmap of ``ch`` plus its size: equal signatures mean the same glyph was drawn.

    An empty bitmap (nothing drawn) gives ``b""``.
    """
    mask = font.getmask(ch)
    if mask.getbbox() is None:
        return b""
    return bytes(str(mask.size), "ascii") + bytes(mask)


def check_font(path: str | os.PathLike[str], chars: str = REQUIRED_CHARS) -> FontInfo | None:
    """Return a :class:`FontInfo` if the font draws a distinct, non-empty glyph for every char."""
    try:
        font = ImageFont.truetype(str(path), 24)
        family, style = font.getname()
    except (OSError, ValueError):
        return None
    family = family or Path(path).stem
    style = style or ""
    if EXCLUDE_NAME.search(family):
        return None
    try:
        # U+E000 (private use) is absent from text fonts: what it draws is the .notdef glyph.
        notdef = _glyph_signature(font, "\ue000")
        sigs = {}
        for ch in chars:
            sig = _glyph_signature(font, ch)
            if not sig or sig == notdef:  # nothing drawn, or the missing-glyph box
                return None
            sigs[ch] = sig
        if any(_glyph_signature(font, ch) in (notdef, b"") for ch in REQUIRED_PUNCT):
            return None
    except (OSError, ValueError):
        return None
    # Fonts where every letter is the same shape (barcode, redacted, box fonts) are useless.
    if len(set(sigs.values())) < len(chars) * 0.6:
        return None
    lower = [c for c in string.ascii_lowercase if c in sigs]
    same_case = sum(sigs[c] == sigs[c.upper()] for c in lower)
    caps_only = same_case >= len(lower) // 2 or bool(CAPS_NAME.search(f"{family} {style} {Path(path).stem}"))
    return FontInfo(str(path), family, style, caps_only=caps_only)


def _fingerprint(files: list[Path]) -> str:
    h = hashlib.sha1(f"v{CACHE_VERSION}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    return h.hexdigest()


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/crnn/synth_fonts.json`` (``~/.cache`` if unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "crnn" / "synth_fonts.json"


def discover_fonts(
    roots: tuple[str, ...] = FONT_ROOTS,
    cache_path: str | os.PathLike[str] | None = None,
    install_hint: str = "scripts/install_fonts.sh (as root)",
) -> list[FontInfo]:
    """Usable fonts under ``roots``, from the cache when the installed files have not changed.

    Raises:
        FileNotFoundError: no usable font was found; the message names ``install_hint``.
    """
    files = candidate_files(roots)
    cache = Path(cache_path) if cache_path is not None else default_cache_path()
    key = _fingerprint(files)
    fonts: list[FontInfo] | None = None
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
        if data.get("fingerprint") == key:
            fonts = [FontInfo(**d) for d in data["fonts"]]
    except (OSError, ValueError, KeyError, TypeError):
        fonts = None
    if fonts is None:
        log.info("checking %d font files for [0-9a-zA-Z] coverage", len(files))
        fonts = [info for f in files if (info := check_font(f)) is not None]
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps({"fingerprint": key, "fonts": [asdict(x) for x in fonts]}, indent=0))
            os.replace(tmp, cache)
        except OSError as e:  # a read-only home must not stop generation
            log.warning("cannot write font cache %s: %s", cache, e)
    if not fonts:
        raise FileNotFoundError(
            f"no usable font file covering [0-9a-zA-Z] under {', '.join(roots)}; "
            f"install fonts with {install_hint}"
        )
    return fonts


def fonts_for_style(fonts: str) -> list[FontInfo]:
    """The fonts a style asks for: ``"base"`` (:data:`FONT_ROOTS`) or ``"all"`` (plus the extras).

    Raises:
        FileNotFoundError: the base fonts, or for ``"all"`` the extra families, are not installed.
        ValueError: ``fonts`` is neither name.
    """
    if fonts not in ("base", "all"):
        raise ValueError(f"unknown font set {fonts!r}; choose base or all")
    found = discover_fonts()
    if fonts == "all":
        # a cache file of its own: one shared file would be rebuilt at every switch of root set
        extra_cache = default_cache_path().with_name("synth_fonts_extra.json")
        found = found + discover_fonts(EXTRA_FONT_ROOTS, extra_cache, "scripts/install_more_fonts.sh")
    return found


def group_by_family(fonts: list[FontInfo]) -> list[list[FontInfo]]:
    """Fonts grouped by family (sorted), so sampling can pick a family first, then a style.

    Sampling families uniformly keeps big collections (Noto, ADF) from dominating.
    """
    groups: dict[str, list[FontInfo]] = {}
    for f in fonts:
        groups.setdefault(f.family, []).append(f)
    return [sorted(groups[k], key=lambda x: x.path) for k in sorted(groups)]
