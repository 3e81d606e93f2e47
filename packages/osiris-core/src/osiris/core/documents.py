"""Reading YAML documents with line numbers, and paths into them.

`load_yaml` returns the plain data plus a `LineIndex`, so that an error found
later (by msgspec, jsonschema or the compiler) can name the line it comes from.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from osiris.core.errors import DocumentError

PathParts = tuple[str | int, ...]


def format_path(parts: Iterable[str | int]) -> str:
    """Render path parts as a JSON path: ``("steps", 1, "id")`` -> ``$.steps[1].id``."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean `x`?)`` for the closest choice, or an empty string."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean `{match[0]}`?)" if match else ""


@dataclass
class LineIndex:
    """Maps paths into a YAML document to the 1-based line they start on."""

    lines: dict[PathParts, int] = field(default_factory=dict)

    def line_of(self, parts: Sequence[str | int]) -> int | None:
        """Line of the deepest known node on `parts` (falls back to parents)."""
        key = tuple(parts)
        while True:
            if key in self.lines:
                return self.lines[key]
            if not key:
                return None
            key = key[:-1]


def _index(node: yaml.Node, parts: PathParts, index: LineIndex, file: str | None) -> None:
    index.lines[parts] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DocumentError(
                    f"Duplicate key `{key}` (first defined on line {seen[key]})",
                    file=file,
                    path=format_path(parts),
                    line=line,
                )
            seen[key] = line
            _index(value_node, (*parts, key), index, file)
            index.lines[(*parts, key)] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*parts, i), index, file)


def load_yaml_text(text: str, *, file: str | None = None) -> tuple[Any, LineIndex]:
    """Parse one YAML document; syntax errors become a `DocumentError` with the line."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise DocumentError("The document is empty; expected a YAML mapping", file=file)
        index = LineIndex()
        _index(node, (), index, file)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = f", column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise DocumentError(f"YAML syntax error: {problem}{column}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"YAML error: {exc}", file=file) from None
    finally:
        loader.dispose()
    return data, index


def load_yaml_file(path: str | Path) -> tuple[Any, LineIndex]:
    """Read and parse a YAML file, with clear errors for a missing or unreadable file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocumentError("File not found", file=str(path)) from None
    except IsADirectoryError:
        raise DocumentError("Expected a file, got a directory", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise DocumentError(f"File is not valid UTF-8 ({exc.reason})", file=str(path)) from None
    except OSError as exc:
        raise DocumentError(f"Cannot read file: {exc.strerror}", file=str(path)) from None
    if not text.strip():
        raise DocumentError("The document is empty; expected a YAML mapping", file=str(path))
    return load_yaml_text(text, file=str(path))
