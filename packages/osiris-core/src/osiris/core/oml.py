"""OML, the pipeline document a user writes: types and decoding.

Decoding checks the shape (keys, types) and names the file, the path into the
document and the line for every problem. Semantic checks (components, config,
the graph) belong to the compiler.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec

from osiris.core.documents import LineIndex, did_you_mean, format_path
from osiris.core.errors import DocumentError, ValidationErrors

OML_VERSIONS = ("0.1.0",)

StepId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")]
PipelineName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
Mode = Literal["read", "transform", "write"]
OnError = Literal["stop", "continue"]
DriftAction = Literal["warn", "stop"]


class Step(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One step of a pipeline: a component run in a mode with a config."""

    id: StepId
    component: str
    mode: Mode | None = None
    config: dict[str, Any] = {}
    needs: list[str] = []
    description: str | None = None
    on_error: OnError | None = None


class TablePattern(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Many tables in a few lines: every source table matching `include` (and no `exclude`) is read and
    written by its own pair of steps, expanded by the compiler against the source's snapshot.

    `read` is added to every read step's config (e.g. `batch_size`; later an `incremental` block), `write`
    is the write steps' config (`component` defaults to `supabase.writer`; `primary_key` to each
    table's own key, or `primary_keys[<table>]`).
    """

    id: StepId
    source: str
    include: list[str]
    exclude: list[str] = []
    snapshot: str | None = None
    read: dict[str, Any] = {}
    write: dict[str, Any]
    primary_keys: dict[str, list[str]] = {}
    # Per kind of drift (`new_column`, `dropped_column`, `changed_type`, `new_table`, `dropped_table`, or
    # `all`): `warn` or `stop`; unset kinds keep the defaults (`osiris.core.snapshot.DEFAULT_DRIFT`).
    on_drift: dict[str, DriftAction] = {}
    on_error: OnError | None = None
    description: str | None = None


class Pipeline(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A whole OML document."""

    oml_version: str
    name: PipelineName
    steps: list[Step] = []
    tables: list[TablePattern] = []
    description: str | None = None
    params: dict[str, Any] = {}
    on_error: OnError = "stop"


PIPELINE_KEYS = tuple(f for f in Pipeline.__struct_fields__)
STEP_KEYS = tuple(f for f in Step.__struct_fields__)
PATTERN_KEYS = tuple(f for f in TablePattern.__struct_fields__)

_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_AT_PATH = re.compile(r" - at `(\$[^`]*)`$")
_AT_KEY = re.compile(r" - at `key` in `(\$[^`]*)`$")


def parse_path(path: str) -> tuple[str | int, ...]:
    """Parse ``$.steps[1].id`` back into ``("steps", 1, "id")``."""
    parts: list[str | int] = []
    for key, idx in _PATH_PART.findall(path.removeprefix("$")):
        parts.append(int(idx) if idx else key)
    return tuple(parts)


def convert(data: Any, type_: Any, *, file: str | None, index: LineIndex | None, at: tuple[str | int, ...] = ()) -> Any:
    """`msgspec.convert` with errors that name the file, the JSON path and the line.

    `at` is where `data` sits in its document, for errors in a part of it.
    """
    try:
        return msgspec.convert(data, type_)
    except msgspec.ValidationError as exc:
        raise _located(str(exc), file=file, index=index, at=at) from None


def _located(text: str, *, file: str | None, index: LineIndex | None, at: tuple[str | int, ...]) -> DocumentError:
    match = _AT_PATH.search(text)
    key = None if match else _AT_KEY.search(text)
    if match or key:
        found = match or key
        assert found is not None
        parts = (*at, *parse_path(found.group(1)))
        message = text[: found.start()] + (" for a mapping key" if key else "")
    else:
        parts, message = at, text
    path = format_path(parts) if (match or key or at) else None
    line = index.line_of(parts) if (index and path) else None
    return DocumentError(message, file=file, path=path, line=line)


def _check_keys(
    mapping: dict[str, Any],
    allowed: tuple[str, ...],
    parts: tuple[str | int, ...],
    what: str,
    file: str | None,
    index: LineIndex | None,
    suggested: set[str] | None = None,
) -> list[DocumentError]:
    errors = []
    for key in mapping:
        if key not in allowed:
            if suggested is not None:
                suggested.update(difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6))
            kp = (*parts, str(key))
            errors.append(
                DocumentError(
                    f"Unknown {what} key `{_short(str(key))}`{did_you_mean(str(key), allowed)}; "
                    f"expected one of {', '.join(allowed)}",
                    file=file,
                    path=format_path(kp),
                    line=index.line_of(kp) if index else None,
                )
            )
    return errors


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class DecodedPipeline:
    """What `check_pipeline` could read: the pipeline, every shape error, and the steps that failed.

    `pipeline` is None when its top level cannot be read. A step that failed keeps its place in
    `pipeline.steps` as a stand-in (its `id` when that is a string), listed in `invalid_steps`, so
    the rest of the file can still be checked and every error reported at once.
    """

    pipeline: Pipeline | None
    errors: list[DocumentError] = field(default_factory=list)
    invalid_steps: set[int] = field(default_factory=set)


def check_pipeline(data: Any, *, file: str | None = None, index: LineIndex | None = None) -> DecodedPipeline:
    """Turn parsed YAML into a `Pipeline`, collecting every shape error (unknown keys, types) of the file."""
    line = index.line_of(()) if index else None
    if data is None:
        return DecodedPipeline(None, [DocumentError("The document is empty; expected a YAML mapping", file=file)])
    if not isinstance(data, dict):
        return DecodedPipeline(
            None,
            [
                DocumentError(
                    f"Expected a YAML mapping with `oml_version`, `name` and `steps`, got {_kind(data)}",
                    file=file,
                    path="$",
                    line=line,
                )
            ],
        )
    # A key missing because it was misspelt is said once: by the unknown key's "did you mean".
    meant: set[str] = set()
    errors = _check_keys(data, PIPELINE_KEYS, (), "top-level", file, index, meant)
    top = {k: v for k, v in data.items() if k in PIPELINE_KEYS and k not in ("steps", "tables")}
    pipeline: Pipeline | None
    try:
        pipeline = convert({**top, "steps": []}, Pipeline, file=file, index=index)
    except DocumentError as exc:
        if not any(exc.bare == f"Object missing required field `{k}`" for k in meant):
            errors.append(exc)
        pipeline = None
    raw_steps = data.get("steps")
    steps: list[Step] = []
    invalid: set[int] = set()
    patterns = _check_patterns(data.get("tables"), file, index, errors)
    if "steps" not in data:
        raw_steps = []
        if "steps" not in meant and "tables" not in data:
            errors.append(DocumentError("Object missing required field `steps`", file=file, path="$", line=line))
    elif not isinstance(raw_steps, list):
        errors.append(
            DocumentError(
                f"Expected `array`, got {_kind(raw_steps)}",
                file=file,
                path="$.steps",
                line=index.line_of(("steps",)) if index else None,
            )
        )
    else:
        for i, raw in enumerate(raw_steps):
            where = ("steps", i)
            meant_here: set[str] = set()
            step_errors = (
                _check_keys(raw, STEP_KEYS, where, "step", file, index, meant_here) if isinstance(raw, dict) else []
            )
            known = {k: v for k, v in raw.items() if k in STEP_KEYS} if isinstance(raw, dict) else raw
            # A step with an unknown key is still checked without it, unless the key stands for a
            # missing field (`confg`): its checks would only repeat that the field is missing.
            errors.extend(step_errors)
            step: Step | None = None
            try:
                step = convert(known, Step, file=file, index=index, at=where)
            except DocumentError as exc:
                if not any(exc.bare == f"Object missing required field `{k}`" for k in meant_here):
                    errors.append(exc)
            if step is not None and all(k in known for k in meant_here):
                steps.append(step)
            else:
                sid = raw.get("id") if isinstance(raw, dict) else None
                steps.append(Step(id=sid if isinstance(sid, str) else f"<step {i + 1}>", component=""))
                invalid.add(i)
    if pipeline is not None:
        if pipeline.oml_version not in OML_VERSIONS:
            errors.append(
                DocumentError(
                    f"Unsupported `oml_version` {_short(pipeline.oml_version)!r}; expected one of "
                    f"{', '.join(OML_VERSIONS)}",
                    file=file,
                    path="$.oml_version",
                    line=index.line_of(("oml_version",)) if index else None,
                )
            )
        declared = ("steps" in data) or (isinstance(data.get("tables"), list) and not data["tables"])
        if declared and isinstance(raw_steps, list) and not raw_steps and not patterns:
            errors.append(
                DocumentError(
                    "A pipeline needs at least one step",
                    file=file,
                    path="$.steps",
                    line=index.line_of(("steps",)) if index else None,
                )
            )
        pipeline = msgspec.structs.replace(pipeline, steps=steps, tables=patterns)
    return DecodedPipeline(pipeline, errors, invalid)


def _check_patterns(
    raw: Any, file: str | None, index: LineIndex | None, errors: list[DocumentError]
) -> list[TablePattern]:
    """The `tables` entries that could be read; every problem of the others goes to `errors`."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(
            DocumentError(
                f"Expected `array`, got {_kind(raw)}",
                file=file,
                path="$.tables",
                line=index.line_of(("tables",)) if index else None,
            )
        )
        return []
    out: list[TablePattern] = []
    for i, entry in enumerate(raw):
        where = ("tables", i)
        if isinstance(entry, dict):
            bad = _check_keys(entry, PATTERN_KEYS, where, "`tables` entry", file, index)
            if bad:
                errors.extend(bad)
                continue
        try:
            out.append(convert(entry, TablePattern, file=file, index=index, at=where))
        except DocumentError as exc:
            errors.append(exc)
    return out


def decode_pipeline(data: Any, *, file: str | None = None, index: LineIndex | None = None) -> Pipeline:
    """Turn parsed YAML into a `Pipeline`, or raise every shape error of the file at once."""
    decoded = check_pipeline(data, file=file, index=index)
    if decoded.errors:
        errors = sorted(decoded.errors, key=lambda e: e.line or 0)
        if len(errors) == 1:
            raise errors[0]
        raise ValidationErrors(list(errors), file=file)
    assert decoded.pipeline is not None
    return decoded.pipeline


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"`{type(value).__name__}`"
