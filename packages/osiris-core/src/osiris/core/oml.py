"""OML, the pipeline document a user writes: types and decoding.

Decoding checks the shape (keys, types) and names the file, the path into the
document and the line for every problem. Semantic checks (components, config,
the graph) belong to the compiler.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from osiris.core.documents import LineIndex, did_you_mean, format_path
from osiris.core.errors import DocumentError

OML_VERSIONS = ("0.1.0",)

StepId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")]
PipelineName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
Mode = Literal["read", "transform", "write"]


class Step(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One step of a pipeline: a component run in a mode with a config."""

    id: StepId
    component: str
    mode: Mode | None = None
    config: dict[str, Any] = {}
    needs: list[str] = []
    description: str | None = None


class Pipeline(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A whole OML document."""

    oml_version: str
    name: PipelineName
    steps: list[Step]
    description: str | None = None
    params: dict[str, Any] = {}


PIPELINE_KEYS = tuple(f for f in Pipeline.__struct_fields__)
STEP_KEYS = tuple(f for f in Step.__struct_fields__)

_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_AT_PATH = re.compile(r" - at `(\$[^`]*)`$")


def parse_path(path: str) -> tuple[str | int, ...]:
    """Parse ``$.steps[1].id`` back into ``("steps", 1, "id")``."""
    parts: list[str | int] = []
    for key, idx in _PATH_PART.findall(path.removeprefix("$")):
        parts.append(int(idx) if idx else key)
    return tuple(parts)


def convert(data: Any, type_: Any, *, file: str | None, index: LineIndex | None) -> Any:
    """`msgspec.convert` with errors that name the file, the JSON path and the line."""
    try:
        return msgspec.convert(data, type_)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _AT_PATH.search(text)
        path = match.group(1) if match else None
        message = text[: match.start()] if match else text
        line = index.line_of(parse_path(path)) if (index and path) else None
        raise DocumentError(message, file=file, path=path, line=line) from None


def _check_keys(
    mapping: dict[str, Any],
    allowed: tuple[str, ...],
    parts: tuple[str | int, ...],
    what: str,
    file: str | None,
    index: LineIndex | None,
) -> None:
    for key in mapping:
        if key not in allowed:
            kp = (*parts, str(key))
            raise DocumentError(
                f"Unknown {what} key `{key}`{did_you_mean(str(key), allowed)}; expected one of {', '.join(allowed)}",
                file=file,
                path=format_path(kp),
                line=index.line_of(kp) if index else None,
            )


def decode_pipeline(data: Any, *, file: str | None = None, index: LineIndex | None = None) -> Pipeline:
    """Turn parsed YAML into a `Pipeline`, or raise a `DocumentError` that says where."""
    if data is None:
        raise DocumentError("The document is empty; expected a YAML mapping", file=file)
    if not isinstance(data, dict):
        raise DocumentError(
            f"Expected a YAML mapping with `oml_version`, `name` and `steps`, got {_kind(data)}",
            file=file,
            path="$",
            line=index.line_of(()) if index else None,
        )
    _check_keys(data, PIPELINE_KEYS, (), "top-level", file, index)
    steps = data.get("steps")
    if isinstance(steps, list):
        for i, step in enumerate(steps):
            if isinstance(step, dict):
                _check_keys(step, STEP_KEYS, ("steps", i), "step", file, index)
    pipeline: Pipeline = convert(data, Pipeline, file=file, index=index)
    if pipeline.oml_version not in OML_VERSIONS:
        raise DocumentError(
            f"Unsupported `oml_version` {pipeline.oml_version!r}; expected one of {', '.join(OML_VERSIONS)}",
            file=file,
            path="$.oml_version",
            line=index.line_of(("oml_version",)) if index else None,
        )
    if not pipeline.steps:
        raise DocumentError(
            "A pipeline needs at least one step",
            file=file,
            path="$.steps",
            line=index.line_of(("steps",)) if index else None,
        )
    return pipeline


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"`{type(value).__name__}`"
