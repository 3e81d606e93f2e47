"""Reading YAML documents with line numbers, and paths into them, within fixed limits.

Every YAML file Osiris reads (pipelines, `osiris_connections.yaml`, manifests, component
specs) goes through `load_yaml_file`, `load_yaml_bytes` or `load_yaml_text`. They return the
plain data plus a `LineIndex`, so that an error found later (by msgspec, jsonschema or the
compiler) can name the line it comes from.

A document is refused, with the file, the line and the limit, when it is larger than
`Limits.max_bytes`, nests deeper than `Limits.max_depth`, or holds more than
`Limits.max_values` values or `Limits.max_bytes` of text once its aliases (`*name`) are
expanded (a 1 KB "billion laughs" file stops in milliseconds). Invalid UTF-8, NUL and other
control characters, lone surrogates and self-referencing aliases are refused with their position.
Composing is iterative and measured while the parser's events arrive, so no input can exhaust
the Python stack or run for long: the events come from libyaml when PyYAML has it (about 30
times faster than the pure-Python parser, which is the fallback).

Longer than most modules, on purpose: the limits are enforced while composing, so the
composer, the checks of the text and the line index share one pass over the parser's events.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.resolver import Resolver

from osiris.core.errors import DocumentError

try:  # libyaml's parser when PyYAML was built with it; the events are the same
    from yaml._yaml import CParser as _EventParser
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    _EventParser = None

PathParts = tuple[str | int, ...]

# What YAML accepts in a document (YAML 1.1, as PyYAML checks it); anything else is refused.
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# What a scalar may not hold even when written as an escape (`"\0"`, `"\ud800"`).
_BAD_IN_VALUE = re.compile("[\x00\ud800-\udfff]")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"
_MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """How much of one document Osiris reads.

    `max_bytes` bounds the file and the text its aliases expand to; `max_depth` the nesting of
    lists and mappings (after alias expansion); `max_values` the number of values (every scalar,
    list and mapping, keys included) after alias expansion.
    """

    max_bytes: int = 8 * _MIB
    max_depth: int = 64
    max_values: int = 100_000


DEFAULT_LIMITS = Limits()


def format_path(parts: Iterable[str | int]) -> str:
    """Render path parts as a JSON path: ``("steps", 1, "id")`` -> ``$.steps[1].id``."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean `x`?)`` for the closest choice, or an empty string."""
    if len(word) > 200:  # nothing a user meant to type; difflib is quadratic in the length
        return ""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean `{match[0]}`?)" if match else ""


@dataclass
class LineIndex:
    """Maps paths into a YAML document to the 1-based line they start on.

    It keeps the composed node tree and walks it on demand, so a document whose aliases
    repeat one subtree many times costs no more than its text.
    """

    root: yaml.Node | None = None

    def line_of(self, parts: Sequence[str | int]) -> int | None:
        """Line of the deepest known node on `parts` (falls back to parents)."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in parts:
            if isinstance(node, yaml.MappingNode):
                found = None
                for key_node, value_node in node.value:  # the last occurrence is the one that counts
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                        found = key_node, value_node
                if found is None:
                    return line
                line, node = found[0].start_mark.line + 1, found[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return line
        return line


def _where(mark: Any) -> tuple[int | None, int | None]:
    if mark is None:
        return None, None
    return mark.line + 1, mark.column + 1


class _Frame:
    """A list or mapping being composed, with what it expands to so far."""

    __slots__ = ("anchor", "depth", "key", "node", "seen", "text", "values")

    def __init__(self, node: yaml.Node, anchor: str | None) -> None:
        self.node = node
        self.anchor = anchor
        self.values = 1
        self.text = 0
        self.depth = 1
        self.key: yaml.Node | None = None
        self.seen: dict[str, int] = {}


class _Composer:
    """Builds the node tree from parser events without recursion, within `limits`.

    Each node's expanded size (values, text, depth) is known when it is complete, so an alias
    costs what its anchor expands to, without expanding anything.
    """

    def __init__(self, parser: Any, file: str | None, limits: Limits) -> None:
        self.parser = parser
        self.file = file
        self.limits = limits
        self.resolver = Resolver()
        # anchor -> (node, (values, text, depth)); the measures are None while the node is open
        self.anchors: dict[str, tuple[yaml.Node, tuple[int, int, int] | None]] = {}
        self.aliased = False

    def fail(self, message: str, mark: Any) -> DocumentError:
        line, column = _where(mark)
        return DocumentError(message, file=self.file, line=line, column=column)

    def compose(self) -> yaml.Node | None:
        p = self.parser
        p.get_event()  # stream start
        if p.check_event(yaml.StreamEndEvent):
            return None
        p.get_event()  # document start
        root = self._compose_document()
        p.get_event()  # document end
        if not p.check_event(yaml.StreamEndEvent):
            event = p.get_event()
            raise self.fail("The file holds more than one YAML document (`---`); expected one", event.start_mark)
        return root

    def _compose_document(self) -> yaml.Node:
        stack: list[_Frame] = []
        while True:
            event = self.parser.get_event()
            if isinstance(event, yaml.ScalarEvent):
                node, measures = self._scalar(event)
            elif isinstance(event, yaml.AliasEvent):
                node, measures = self._alias(event)
            elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                if len(stack) >= self.limits.max_depth:
                    raise self.fail(
                        f"The document nests lists and mappings more than {self.limits.max_depth} levels deep "
                        f"(the limit)",
                        event.start_mark,
                    )
                stack.append(self._open(event))
                continue
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                frame = stack.pop()
                frame.node.end_mark = event.end_mark
                if isinstance(frame.node, yaml.MappingNode):
                    _flatten_merges(frame.node)
                measures = (frame.values, frame.text, frame.depth)
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = (frame.node, measures)
                node = frame.node
            else:  # pragma: no cover - the parser emits nothing else inside a document
                raise self.fail(f"Unexpected YAML event {type(event).__name__}", event.start_mark)
            if not stack:
                self._check_total(measures, event.start_mark)
                return node
            self._attach(stack[-1], node, measures, event.start_mark)

    def _alias(self, event: yaml.AliasEvent) -> tuple[yaml.Node, tuple[int, int, int]]:
        found = self.anchors.get(event.anchor)
        if found is None:
            raise self.fail(
                f"YAML syntax error: alias `*{event.anchor}` names no anchor defined before it", event.start_mark
            )
        node, measures = found
        if measures is None:
            raise self.fail(
                f"Alias `*{event.anchor}` refers to the list or mapping that contains it (a self-referencing "
                "document); expected plain data",
                event.start_mark,
            )
        self.aliased = True
        return node, measures

    def _scalar(self, event: yaml.ScalarEvent) -> tuple[yaml.Node, tuple[int, int, int]]:
        bad = _BAD_IN_VALUE.search(event.value)
        if bad:
            raise self.fail(f"A value holds {_describe(bad.group())}, which Osiris refuses", event.start_mark)
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        if event.anchor is not None:
            self.anchors[event.anchor] = (node, (1, len(event.value), 0))
        return node, (1, len(event.value), 0)

    def _open(self, event: yaml.CollectionStartEvent) -> _Frame:
        kind = yaml.SequenceNode if isinstance(event, yaml.SequenceStartEvent) else yaml.MappingNode
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolver.resolve(kind, None, event.implicit)
        node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
        if event.anchor is not None:
            self.anchors[event.anchor] = (node, None)
        return _Frame(node, event.anchor)

    def _attach(self, frame: _Frame, node: yaml.Node, measures: tuple[int, int, int], mark: Any) -> None:
        values, text, depth = measures
        frame.values += values
        frame.text += text
        if isinstance(frame.node, yaml.MappingNode) and frame.key is not None and frame.key.tag == _MERGE_TAG:
            # `<<: *m` (or a list of them) adds m's entries to this mapping, not m itself
            depth = depth - 1 if isinstance(node, yaml.MappingNode) else depth - 2
        if depth >= frame.depth:
            frame.depth = depth + 1
        lim = self.limits
        if frame.values > lim.max_values or frame.text > lim.max_bytes or frame.depth > lim.max_depth:
            self._check_total((frame.values, frame.text, frame.depth), mark)
        if isinstance(frame.node, yaml.SequenceNode):
            frame.node.value.append(node)
        elif frame.key is None:
            frame.key = node
        else:
            key, frame.key = frame.key, None
            if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                first = frame.seen.get(key.value)
                if first is not None:
                    raise self.fail(f"Duplicate key `{key.value}` (first defined on line {first})", key.start_mark)
                frame.seen[key.value] = key.start_mark.line + 1
            frame.node.value.append((key, node))

    def _check_total(self, measures: tuple[int, int, int], mark: Any) -> None:
        values, text, depth = measures
        lim = self.limits
        through = " once its aliases (`*name`) are expanded" if self.aliased else ""
        if depth > lim.max_depth:
            raise self.fail(
                f"The document nests lists and mappings more than {lim.max_depth} levels deep{through} (the limit)",
                mark,
            )
        if values > lim.max_values:
            raise self.fail(f"The document holds more than {lim.max_values} values{through} (the limit)", mark)
        if text > lim.max_bytes:
            raise self.fail(f"The document's text exceeds {_size(lim.max_bytes)}{through} (the limit)", mark)


def _flatten_merges(node: yaml.MappingNode) -> None:
    """Apply `<<: *anchor` merge keys as PyYAML does, once per mapping and without recursion.

    The merged mappings are complete (an alias names a finished node), so already flattened.
    """
    if not any(k.tag == _MERGE_TAG for k, _ in node.value):
        return
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    own: list[tuple[yaml.Node, yaml.Node]] = []
    for key, value in node.value:
        if key.tag == _MERGE_TAG:
            if isinstance(value, yaml.MappingNode):
                merged.extend(value.value)
            elif isinstance(value, yaml.SequenceNode):
                parts = []
                for sub in value.value:
                    if not isinstance(sub, yaml.MappingNode):
                        raise ConstructorError(
                            "while constructing a mapping",
                            node.start_mark,
                            f"expected a mapping for merging, but found {sub.id}",
                            sub.start_mark,
                        )
                    parts.append(sub.value)
                for sub_value in reversed(parts):
                    merged.extend(sub_value)
            else:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"expected a mapping or list of mappings for merging, but found {value.id}",
                    value.start_mark,
                )
        else:
            if key.tag == _VALUE_TAG:
                key.tag = "tag:yaml.org,2002:str"
            own.append((key, value))
    node.value = merged + own


class _Constructor(SafeConstructor):
    """PyYAML's safe constructor, with a bad typed value (`!!int x`, a 13th month) as a YAML error."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, KeyError, TypeError):
            # The exception's own text may echo the value (a secret, perhaps): say what, not which.
            what = node.tag.rsplit(":", 1)[-1]
            hint = (
                " (it looks like a date or time but is none; quote it to keep it as text)"
                if what == "timestamp"
                else ""
            )
            raise ConstructorError(None, None, f"cannot read this value as `{what}`{hint}", node.start_mark) from None


def _describe(char: str) -> str:
    code = ord(char)
    if code == 0:
        return "a NUL character (U+0000)"
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone surrogate (U+{code:04X}), which is not a character"
    return f"the control character U+{code:04X}"


def _size(n: int) -> str:
    return f"{n // _MIB} MiB" if n % _MIB == 0 else f"{n} bytes"


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of character `offset` in `text`."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _parser(text: str) -> Any:
    if _EventParser is not None:
        return _EventParser(text)
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _PyParser(Reader, Scanner, Parser):
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)

    return _PyParser(text)


def load_yaml_text(text: str, *, file: str | None = None, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, LineIndex]:
    """Parse one YAML document within `limits`; every problem becomes a `DocumentError` with the line."""
    if len(text) > limits.max_bytes:
        raise DocumentError(f"The document is larger than {_size(limits.max_bytes)} (the limit)", file=file)
    bad = _NOT_PRINTABLE.search(text)
    if bad:
        line, column = _position(text, bad.start())
        raise DocumentError(
            f"The file holds {_describe(bad.group())}; YAML files cannot hold control characters or NUL bytes",
            file=file,
            line=line,
            column=column,
        )
    try:
        parser = _parser(text)
        try:
            node = _Composer(parser, file, limits).compose()
        finally:
            parser.dispose()
        if node is None:
            raise DocumentError("The document is empty; expected a YAML mapping", file=file)
        data = _Constructor().construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = _where(mark)
        problem = exc.problem or exc.context or "invalid YAML"
        if "maximum nesting depth" in problem:  # libyaml's own bound, past ours in flow collections
            problem = f"the document nests lists and mappings more than {limits.max_depth} levels deep (the limit)"
        raise DocumentError(f"YAML syntax error: {problem}", file=file, line=line, column=column) from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"YAML error: {exc}", file=file) from None
    return data, LineIndex(node)


def load_yaml_bytes(data: bytes, *, file: str | None = None, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, LineIndex]:
    """Decode UTF-8 (refusing invalid bytes with their line and column) and parse within `limits`."""
    if len(data) > limits.max_bytes:
        raise DocumentError(f"The file is larger than {_size(limits.max_bytes)} (the limit)", file=file)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        column = len(data[line_start : exc.start].decode("utf-8")) + 1
        raise DocumentError(
            f"The file is not valid UTF-8: byte 0x{data[exc.start]:02x} ({exc.reason})",
            file=file,
            line=line,
            column=column,
        ) from None
    if not text.strip():
        raise DocumentError("The document is empty; expected a YAML mapping", file=file)
    return load_yaml_text(text, file=file, limits=limits)


def load_yaml_file(path: str | Path, *, limits: Limits = DEFAULT_LIMITS) -> tuple[Any, LineIndex]:
    """Read and parse a YAML file, with clear errors for a missing, unreadable or oversized file."""
    p = Path(path)
    file = str(path)
    try:
        with p.open("rb") as f:
            data = f.read(limits.max_bytes + 1)  # never more than the limit, whatever the file is
    except FileNotFoundError:
        raise DocumentError("File not found", file=file) from None
    except IsADirectoryError:
        raise DocumentError("Expected a file, got a directory", file=file) from None
    except OSError as exc:
        raise DocumentError(f"Cannot read file: {exc.strerror or exc}", file=file) from None
    return load_yaml_bytes(data, file=file, limits=limits)
