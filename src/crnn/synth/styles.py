"""Rendering styles: how often ``crnn synth`` draws each kind of hard case.

One table, :data:`STYLES`, names every style ``crnn synth --style`` accepts. ``default`` is the
generator as it always was (same seed, same bytes). ``hard`` mixes in the failure classes that the
bundled model shows on benchmarks nobody tuned on (docs/training_log.md, round 7): strong
circular arcs, steep rotation, perspective, small blurred street-view crops, neighbouring text and
loose or cut crops. Each single-class style turns one class up and serves as a validation set of
that class (rendered with a seed that training never uses).

Closer to real scenes: ``scene`` puts most words on crops of real photos and textures
(:mod:`crnn.synth.backgrounds`) and draws from every installed font, including the ~400 extra
Google Fonts families of ``scripts/install_more_fonts.sh``; ``realwarp`` renders nothing but bends,
tilts and rotates real training crops (:mod:`crnn.synth.realwarp`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Style:
    """Probabilities and ranges of the hard cases; angles in degrees, sizes in text heights."""

    clutter_p: float = 0.35  # other words beside, above or below
    curve_p: float = 0.12  # parabola or wave baseline (column shift)
    arc_p: float = 0.0  # word set along a circle (letters turn with the tangent)
    arc_span: tuple[float, float] = (60.0, 160.0)  # degrees of circle the word spans
    rotate_p: float = 0.25  # a uniform rotation instead of a small tilt
    rotate_max: float = 18.0
    keystone_p: float = 0.45  # corners moved: photographed at an angle
    keystone_max: float = 0.6
    loose_p: float = 0.15  # loose crop padding instead of tight
    cut_p: float = 0.0  # crop cuts into the first or last letter
    lowres_p: float = 0.12  # rendered small, then upscaled
    lowres_scale: tuple[float, float] = (0.35, 0.7)
    motion_p: float = 0.12  # motion blur when no Gaussian blur was drawn
    jpeg_low_p: float = 0.15  # JPEG quality 12-35 instead of 35-95
    photo_p: float = 0.0  # a crop of a real photo/texture as background (scripts/install_backgrounds.sh)
    fonts: str = "base"  # "base": FONT_ROOTS; "all": also the extra families (scripts/install_more_fonts.sh)
    source: str = "render"  # "render": draw words; "realwarp": warp real crops (needs --from)


DEFAULT = Style()
HARD = Style(clutter_p=0.45, curve_p=0.12, arc_p=0.2, rotate_p=0.35, rotate_max=35.0, keystone_p=0.6,
             loose_p=0.2, cut_p=0.08, lowres_p=0.25, motion_p=0.3, jpeg_low_p=0.3)
# One class each: the others stay at their defaults, so a class's accuracy measures that class.
STYLES: dict[str, Style] = {
    "default": DEFAULT,
    "hard": HARD,
    "arc": replace(DEFAULT, curve_p=0.0, arc_p=1.0),
    "rotate": replace(DEFAULT, rotate_p=1.0, rotate_max=45.0),
    "perspective": replace(DEFAULT, keystone_p=1.0, keystone_max=0.8),
    "lowres": replace(DEFAULT, lowres_p=1.0, lowres_scale=(0.3, 0.55), motion_p=0.5, jpeg_low_p=0.5),
    "clutter": replace(DEFAULT, clutter_p=1.0, cut_p=0.3),
    "loose": replace(DEFAULT, loose_p=1.0),
    # Real scenes: photo backgrounds on 70 % of words (the rest keep the procedural ones, which
    # imitate painted signs better than any photo), every font, the hard mix's geometry.
    "scene": replace(HARD, photo_p=0.7, fonts="all"),
    "photo": replace(DEFAULT, photo_p=1.0),  # photo backgrounds only: a validation class
    "realwarp": replace(DEFAULT, source="realwarp"),
}


def get_style(name: str) -> Style:
    """The style called ``name``; a ValueError lists the valid names."""
    try:
        return STYLES[name]
    except KeyError:
        raise ValueError(f"unknown synth style {name!r}; choose from {', '.join(STYLES)}") from None
