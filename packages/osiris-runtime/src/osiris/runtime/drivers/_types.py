"""Arrow types from the short names users write in configs (`int64`, `decimal128(12,2)`, `timestamp[us, UTC]`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from osiris.core.errors import UserInputError

if TYPE_CHECKING:
    import pyarrow as pa

_DECIMAL = re.compile(r"^decimal(128|256)?\(\s*(\d+)\s*,\s*(-?\d+)\s*\)$")
_TIMESTAMP = re.compile(r"^timestamp\[\s*(s|ms|us|ns)\s*(?:,\s*(?:tz\s*=\s*)?([^\]]+?)\s*)?\]$")


def parse_arrow_type(text: str, *, step_id: str | None = None, column: str | None = None) -> pa.DataType:
    """The Arrow type named by `text`; a `UserInputError` naming the column when it is unknown."""
    import pyarrow as pa

    name = text.strip().lower()
    m = _DECIMAL.match(name)
    if m:
        factory = pa.decimal256 if m.group(1) == "256" else pa.decimal128
        return factory(int(m.group(2)), int(m.group(3)))
    m = _TIMESTAMP.match(text.strip())
    if m:
        return pa.timestamp(m.group(1), tz=m.group(2))
    aliases = {
        "int": "int64",
        "integer": "int64",
        "float": "float64",
        "double": "float64",
        "str": "string",
        "text": "string",
        "boolean": "bool",
        "date": "date32",
        "timestamp": "timestamp[us]",
    }
    name = aliases.get(name, name)
    if name == "timestamp[us]":
        return pa.timestamp("us")
    try:
        return pa.type_for_alias(name)
    except (ValueError, KeyError):
        where = f" for column `{column}`" if column else ""
        raise UserInputError(
            f"Unknown Arrow type `{text}`{where}; expected e.g. int64, float64, string, bool, date32, "
            "timestamp[us], decimal128(12,2)",
            step=step_id,
        ) from None
