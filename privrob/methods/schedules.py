"""Linear warm-up/ramp schedules, counted in optimizer steps (as the study's ε ramps and IBP's κ schedule)."""

from __future__ import annotations


def linear_ramp(t: int, start: int, length: int, begin: float, end: float) -> float:
    """``begin`` until step ``start``, then linear to ``end`` over ``length`` steps, then ``end``.

    >>> linear_ramp(5, start=0, length=10, begin=0.0, end=1.0)
    0.5
    """
    if length <= 0:
        return end if t >= start else begin
    frac = min(max((t - start) / length, 0.0), 1.0)
    return begin + frac * (end - begin)
