"""Numeric model options, checked the same way by every engine.

A model entry's ``options`` come from a config file or the admin API as JSON/TOML values: a string
("NaN"), a non-finite float or a value far outside what the model was trained with must fail the load
with a message naming the option and its range, not give silent audio or a crash on the first request.
"""

from __future__ import annotations

import math
from typing import Any

from ..engine import ModelLoadError


def number(engine: str, name: str, value: Any, lo: float, hi: float, integer: bool = False) -> float:
    """``value`` as a float within [lo, hi] (a whole number when ``integer``); ModelLoadError otherwise."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(value, float) and not (math.isfinite(value) and (value.is_integer() or not integer)):
        ok = False
    if not ok or not lo <= value <= hi:
        kind = "an integer" if integer else "a number"
        raise ModelLoadError(f"{engine} option {name} must be {kind} in [{lo:g}, {hi:g}], not {value!r}")
    return float(value)
