"""Comma-separated number lists from the command line ('1,4,8'), checked once, with the fix in the message."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

N = TypeVar("N", int, float)


def parse_numbers(
    text: str, what: str, kind: Callable[[str], N], *, minimum: float = 0.0, allow_minimum: bool = False
) -> list[N]:
    """Numbers above `minimum` (or equal to it, `allow_minimum`); ValueError naming `what` otherwise."""
    noun = "integers" if kind is int else "numbers"
    try:
        vals = [kind(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{what}: expected comma-separated {noun}, got {text!r}") from None
    low = (lambda v: v < minimum) if allow_minimum else (lambda v: v <= minimum)
    if not vals or any(low(v) for v in vals):
        bound = f">= {minimum:g}" if allow_minimum else f"> {minimum:g}"
        raise ValueError(f"{what}: expected {noun} {bound}, got {text!r}")
    return vals
