"""Axis ticks for the site's charts: round values (1, 2 or 5 times a power of ten) covering a range.

Pure Python, no Django: the leaderboard's interval chart and the staff dashboard's votes chart use it.
"""

from __future__ import annotations

import math


def nice_step(span: float, count: int) -> float:
    """The round step (1, 2, 2.5 or 5 times a power of ten) giving about ``count`` intervals over ``span``."""
    raw = max(span, 1e-9) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power  # pragma: no cover (the loop always returns)


def nice_ticks(low: float, high: float, count: int = 5, *, integer: bool = False) -> list[float]:
    """Ticks from a round value at or below ``low`` to one at or above ``high``, about ``count``
    intervals apart; ``integer``: steps of at least 1 (counts). A flat range is widened by one step."""
    if high < low:
        low, high = high, low
    step = nice_step(high - low, count)
    if integer:
        step = max(1.0, math.ceil(step))
    start = math.floor(low / step) * step
    stop = math.ceil(high / step) * step
    if stop == start:
        stop = start + step
    n = round((stop - start) / step)
    return [round(start + i * step, 10) for i in range(n + 1)]


def tick_label(value: float) -> str:
    """A tick's text: no trailing zeros ("1000", "2.5", "0.05")."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
