"""Values a manifest and a cfg file can carry to every driver: plain JSON data.

YAML reads more than JSON holds: an unquoted `2024-01-01` is a date, `!!binary` is bytes, a
mapping key may be a number, `.nan` and `.inf` are floats, and integers have no bound. Each is
refused at compile with its path, instead of failing (or changing) when the cfg is written or
when a driver gets a value no database client takes.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _shown(value: Any, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def value_problems(value: Any, parts: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Yield (path, message) for every part of `value` that is not JSON data a driver can take."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                yield (
                    parts,
                    f"the mapping key `{_shown(key)}` is {_kind(key)}; keys must be text (write it in quotes)",
                )
                continue
            yield from value_problems(item, (*parts, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from value_problems(item, (*parts, i))
    elif value is None or isinstance(value, (str, bool)):
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            yield (
                parts,
                f"the integer `{_shown(value)}` is outside the 64-bit range every driver takes "
                f"({INT64_MIN} to {INT64_MAX})",
            )
    elif isinstance(value, float):
        if not math.isfinite(value):
            yield parts, f"`{value}` is not a number a driver takes; expected a finite number"
    elif isinstance(value, (dt.date, dt.datetime)):
        yield (
            parts,
            f'YAML reads `{value}` as a date; write it in quotes ("{value}") to pass it as text',
        )
    else:
        yield (
            parts,
            f"{_kind(value)} is not a value a pipeline can pass on; expected text, a number, a list or a mapping",
        )


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, bytes):
        return "binary data (`!!binary`)"
    if isinstance(value, (dt.date, dt.datetime)):
        return "a date"
    if value is None:
        return "null"
    if isinstance(value, tuple):
        return "a list used as a key"
    return f"a YAML `{type(value).__name__}`"
