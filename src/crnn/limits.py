"""Upper bounds on every size a user can set, and the one check that enforces them.

A size without a bound is a way to hang the process or exhaust memory: ``--threads 100000``
asks the runtime for 100,000 thread stacks, ``--beam-width 100000`` makes each decoded row take
minutes, a 100000-wide ONNX input shape asks for a 27.9 GiB tensor, and a YAML alias bomb of a
few hundred bytes expands to billions of values. Each bound below is far above any useful setting
(the recipe's values are in the comments), so it only ever stops a mistake. ``check_range`` raises
one line naming the flag or key, its range and the value given; ``shown`` caps how much of a value
a message echoes. No torch here: the light ``crnn[onnx]`` install imports this module.
"""

from __future__ import annotations

import math
import reprlib
from typing import Any

MAX_THREADS = 256  # inference / decoding / training threads (the machines this runs on have 2-128 cores)
MAX_WORKERS = 64  # serve worker processes (each holds a model copy)
MAX_BATCH_SIZE = 4096  # images per forward pass (recipes: 32-256)
MAX_BEAM_WIDTH = 1000  # CTC beam width (default 10; 100 is already slow)
MAX_LEXICON_DISTANCE = 32  # lexicon edit distance (default 3); words are rarely longer than 32 symbols
MAX_INPUT_HEIGHT = 512  # model input height (recipes: 32 or 48)
MAX_INPUT_WIDTH = 8192  # model input width (recipes: 100-320; the variable width stops at H * MAX_WH_RATIO)
MAX_TEXT_LENGTH = 1000  # Global.max_text_length (recipes: 25)
MAX_NUM_WORKERS = 256  # DataLoader worker processes
MAX_TIMEOUT_S = 24 * 3600.0  # any timeout in seconds (a finite number: inf cannot be slept or scheduled)
MAX_BENCH_IMAGES = 1_000_000  # crnn bench --limit
MAX_CONFIG_VALUES = 100_000  # values in a config once YAML aliases are expanded (a real one has < 500)
MAX_SHOWN_CHARS = 200  # how much of a value an error message echoes

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = MAX_SHOWN_CHARS // 2
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 8
_repr.maxlevel = 3


def shown(value: Any) -> str:
    """``repr(value)`` cut to at most ``MAX_SHOWN_CHARS``: bounded in time too (deep or shared
    structures are not walked past a few levels and items)."""
    text = _repr.repr(value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


def check_range(name: str, value: float | None, low: float, high: float, error: type[Exception] = ValueError,
                where: str = "") -> None:
    """Raise ``error`` unless ``low <= value <= high`` (None passes: "use the default").

    NaN and infinities fail (unless a bound is infinite). The message names ``name`` (a flag such as
    ``--threads`` or a key such as ``Train.loader.batch_size_per_card``) and the range.
    """
    if value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
    if not ok:
        high_text = f"{high:g}" if isinstance(high, float) and not math.isinf(high) else str(high)
        raise error(f"{where}{name} must be between {low} and {high_text}, got {shown(value)}")


def count_values(data: Any, limit: int = MAX_CONFIG_VALUES) -> int:
    """How many values ``data`` holds with shared (aliased) containers counted each time they
    appear, i.e. its size once written out; stops counting at ``limit + 1`` so a bomb costs nothing."""
    count, todo = 0, [data]
    while todo and count <= limit:
        item = todo.pop()
        count += 1
        if isinstance(item, dict):
            todo.extend(item.values())
            count += len(item)  # the keys
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
    return count
