"""What the `osiris` command answers when it fails: one message on stderr, and with `--json` one object on stdout.

Every command that takes `--json` prints exactly one JSON object on stdout whatever happens. On
success that is the command's own result; on any failure (a click usage error, bad input, a
missing file, an unknown component, an Osiris bug, an interrupt) it is a `CliFailure`::

    {"ok": false, "exit_code": 2,
     "error": {"kind": "usage", "message": "...", "where": "--e2b-timeout", "hint": null}}

`kind` says which class of failure it was (see `ErrorKind`); `exit_code` is the process's exit
code. The schema is committed as `docs/cli-error.schema.json` (`scripts/gen_schemas.py`).
"""

from __future__ import annotations

import errno
import json
import os
import signal
from typing import Any, Literal

import click
import msgspec

from osiris.core.errors import (
    ComponentError,
    ConnectionConfigError,
    DocumentError,
    OsirisError,
    TransientError,
    UserInputError,
    ValidationErrors,
)

ErrorKind = Literal[
    "usage",  # the command line itself: an unknown option, a bad value, a missing argument (exit 2)
    "document",  # a file that cannot be read or has the wrong shape (exit 2)
    "validation",  # several errors of one input, reported together (exit 2)
    "component",  # an unknown component or an invalid spec (exit 2)
    "connection",  # a connections file or reference that is invalid (exit 2)
    "input",  # any other problem in what the user gave (exit 2)
    "transient",  # a failure that may go away when retried (exit 1)
    "error",  # a failure Osiris reports on purpose (exit 1)
    "interrupted",  # Ctrl-C (exit 130) or SIGTERM (exit 143)
    "internal",  # an Osiris bug (exit 1)
]

INTERRUPT_EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    """One error among several reported together (`ValidationErrors`)."""

    message: str
    where: str | None = None


class CliError(msgspec.Struct, frozen=True, kw_only=True):
    """What went wrong: its kind, the message, where (a file and position, an option, a step) and a hint."""

    kind: ErrorKind
    message: str
    where: str | None = None
    hint: str | None = None
    type: str | None = None
    errors: list[ErrorDetail] = []


class CliFailure(msgspec.Struct, frozen=True, kw_only=True):
    """The one JSON object a command run with `--json` prints on stdout when it fails."""

    ok: Literal[False]
    error: CliError
    exit_code: int


# OSErrors about a path the user named (a folder that is a file, a read-only place): exit 2, not a bug.
USER_ERRNOS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or directory",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EISDIR: "is a directory",
    errno.EEXIST: "already exists",
    errno.EROFS: "read-only file system",
    errno.ELOOP: "too many symbolic links",
    errno.ENAMETOOLONG: "name too long",
    errno.ENOSPC: "no space left on the device",
}


def user_os_error_code(exc: OSError) -> int | None:
    """2 when `exc` is about a path the user gave (permissions, a file where a folder belongs...), else None."""
    return 2 if exc.errno in USER_ERRNOS and exc.filename is not None else None


def describe_os_error(exc: OSError) -> str:
    """`exc` as a message naming the path and what is wrong with it."""
    path = os.fsdecode(exc.filename) if exc.filename is not None else "?"
    what = USER_ERRNOS.get(exc.errno or 0, exc.strerror or "failed")
    other = f" -> `{os.fsdecode(exc.filename2)}`" if exc.filename2 is not None else ""
    return f"Cannot use `{path}`{other}: {what}"


def _where_of(exc: BaseException) -> str | None:
    if isinstance(exc, DocumentError):
        if not exc.file and not exc.path:
            return None
        at = exc.file or ""
        if exc.line:
            at += f":{exc.line}" + (f":{exc.column}" if exc.column else "")
        if exc.path:
            at = f"{at} at {exc.path}" if at else exc.path
        return at
    if isinstance(exc, ValidationErrors):
        return exc.file
    if isinstance(exc, click.BadParameter) and exc.param is not None:
        opts = getattr(exc.param, "opts", None) or [exc.param.name]
        return "/".join(o for o in opts if o) or None
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        return exc.ctx.command_path
    if isinstance(exc, OsirisError) and exc.step:
        return f"step `{exc.step}`"
    if isinstance(exc, OSError) and exc.filename is not None:
        return os.fsdecode(exc.filename)
    return None


def kind_of(exc: BaseException) -> ErrorKind:
    """The class of failure `exc` is."""
    if isinstance(exc, (KeyboardInterrupt, click.Abort)) or getattr(exc, "interrupted", False):
        return "interrupted"
    if isinstance(exc, click.ClickException):
        return "usage"
    for cls, kind in (
        (ValidationErrors, "validation"),
        (DocumentError, "document"),
        (ComponentError, "component"),
        (ConnectionConfigError, "connection"),
        (UserInputError, "input"),
        (TransientError, "transient"),
        (OsirisError, "error"),
    ):
        if isinstance(exc, cls):
            return kind  # type: ignore[return-value]
    if isinstance(exc, OSError) and user_os_error_code(exc) is not None:
        return "input"
    return "internal"


def describe(exc: BaseException, exit_code: int) -> CliFailure:
    """`exc` as the failure object `--json` prints."""
    kind = kind_of(exc)
    hint = None
    details: list[ErrorDetail] = []
    if isinstance(exc, OsirisError):
        message, hint = (exc.bare if isinstance(exc, DocumentError) else exc.message), exc.hint
        if isinstance(exc, ValidationErrors):
            details = [
                ErrorDetail(message=getattr(e, "bare", e.message), where=_where_of(e) or exc.file) for e in exc.errors
            ]
    elif isinstance(exc, click.ClickException):
        message = exc.format_message()
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f"see `{exc.ctx.command_path} --help`"
    elif kind == "interrupted":
        message = "Interrupted"
    elif isinstance(exc, OSError) and kind == "input":
        message = describe_os_error(exc)
    else:
        message = f"{type(exc).__name__}: {exc}"
        hint = "this is an Osiris bug; run with --verbose for the traceback and report it"
    return CliFailure(
        ok=False,
        error=CliError(
            kind=kind, message=message, where=_where_of(exc), hint=hint, type=type(exc).__name__, errors=details
        ),
        exit_code=exit_code,
    )


def failure_json(exc: BaseException, exit_code: int, redact: Any = None) -> str:
    """The JSON text of `describe(exc, exit_code)`; `redact` (a callable) masks secret values first."""
    data = _printable(msgspec.to_builtins(describe(exc, exit_code)))
    if redact is not None:
        data = redact(data)
    return json.dumps(data, indent=2, ensure_ascii=False)


def _printable(node: Any) -> Any:
    """`node` with lone surrogates (from undecodable argv or file names) made printable UTF-8."""
    if isinstance(node, str):
        if not _has_surrogate(node):
            return node
        try:
            return node.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            return node.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(node, dict):
        return {k: _printable(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_printable(v) for v in node]
    return node


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def wants_json(argv: list[str]) -> bool:
    """True when the command line asks for `--json` (options only: stops at `--`)."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False
