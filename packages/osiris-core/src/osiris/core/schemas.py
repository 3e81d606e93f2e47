"""Committed JSON Schemas of msgspec types, as text that does not depend on the msgspec version.

msgspec copies each struct's docstring into the schema's `description`, and how it
does so changed between releases (0.23 dedents continuation lines, earlier ones
keep them). The committed files must be the same whichever version generated them,
so every description is normalized here: paragraphs are kept, and the whitespace
inside a paragraph becomes single spaces.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


def normalize_description(text: str) -> str:
    """`text` with its paragraphs kept and the whitespace within each collapsed to single spaces."""
    return "\n\n".join(" ".join(p.split()) for p in _PARAGRAPH_BREAK.split(text.strip()) if p.strip())


def _normalized(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: normalize_description(v) if k == "description" and isinstance(v, str) else _normalized(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_normalized(v) for v in node]
    return node


def json_schema(type_: Any, *, comment: str | None = None) -> dict[str, Any]:
    """The JSON Schema msgspec makes for `type_`, descriptions normalized, with an optional `$comment`."""
    schema = _normalized(msgspec.json.schema(type_))
    return {"$comment": comment, **schema} if comment else schema


def schema_text(schema: dict[str, Any]) -> str:
    """`schema` as the exact text of a committed file: sorted keys, 2-space indent, UTF-8, final newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
