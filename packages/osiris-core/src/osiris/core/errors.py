"""Root error types shared by every Osiris package, and `ErrorInfo`, an error as data.

Every error Osiris raises on purpose derives from `OsirisError`. The split into
terminal and transient tells the runner what is worth retrying: it runs a step again
after a `TransientError` when the step's component declares it safe
(`osiris.runtime.retry`). `UserInputError` marks problems in what the user wrote
(exit code 2, no traceback).

`ErrorInfo` is the one shape an error has as data: the `error` of a run card and of
`osiris run --json`, a `step_failed` event, and the wire's `Failed` message.
"""

from __future__ import annotations

from typing import Any

import msgspec


class OsirisError(Exception):
    """Base of every deliberate Osiris error.

    `exit_code` is what the CLI exits with; `retryable` tells the runner whether
    trying again may succeed. `step` names the step the error belongs to, if any.
    """

    exit_code: int = 1
    retryable: bool = False

    def __init__(self, message: str, *, step: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.step = step
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message

    def to_data(self) -> dict[str, Any]:
        """The error as plain data (`ErrorInfo.to_data`)."""
        return ErrorInfo.from_exception(self).to_data()


class TerminalError(OsirisError):
    """An error that will happen again if retried (bad SQL, a constraint violation)."""


class TransientError(OsirisError):
    """An error that may go away if retried (a lost connection, a timeout)."""

    retryable = True


class UserInputError(TerminalError):
    """The user's input (a pipeline, a flag, a connections file) is invalid."""

    exit_code = 2


class DocumentError(UserInputError):
    """A YAML or JSON document cannot be read or has the wrong shape.

    Carries the file, the JSON path into the document and, when known, the line and column.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        step: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.path = path
        self.line = line
        self.column = column if line else None
        self.bare = message
        super().__init__(self.located(with_file=True), step=step, hint=hint)

    def located(self, *, with_file: bool) -> str:
        """The message with where it happened: ``file:line[:column] at `$.path` `` (file optional)."""
        where = []
        at = f"{self.line}:{self.column}" if self.column else f"{self.line}"
        if with_file and self.file:
            where.append(f"{self.file}:{at}" if self.line else self.file)
        elif self.line:
            where.append(f"line {self.line}, column {self.column}" if self.column else f"line {self.line}")
        if self.path:
            where.append(f"at `{self.path}`")
        return f"{self.bare} - {' '.join(where)}" if where else self.bare


class ValidationErrors(UserInputError):
    """Several validation errors found in one pass, reported together."""

    def __init__(self, errors: list[OsirisError], *, file: str | None = None) -> None:
        self.errors = errors
        self.file = file
        head = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
        if file:
            head += f" in {file}"
        lines = [f"{head}:"]
        for e in errors:
            same_file = isinstance(e, DocumentError) and e.file == file
            lines.append(f"  - {e.located(with_file=False) if same_file else e}")
        super().__init__("\n".join(lines))


class ComponentError(UserInputError):
    """A component is unknown or its spec is invalid."""


class ConnectionConfigError(UserInputError):
    """A connection reference or the connections file is invalid."""


class ErrorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """An error as data: what happened, in which step, whether retrying may help, and the exit code.

    `message` is the error's own text and `hint` what to do about it, apart (`str()` joins
    them as the CLI prints them). An exception that is not an `OsirisError` (a driver or
    library bug) keeps its class name as `type` and in `message`, is not retryable, and
    exits with 1. Readers skip fields they do not know, so this can grow.
    """

    type: str
    message: str
    step: str | None = None
    retryable: bool = False
    hint: str | None = None
    exit_code: int = 1

    @classmethod
    def from_exception(cls, exc: BaseException, *, step: str | None = None) -> ErrorInfo:
        """Describe `exc`; `step` is where it happened unless the error names its own step."""
        if isinstance(exc, OsirisError):
            return cls(
                type=type(exc).__name__,
                message=exc.message,
                step=exc.step or step,
                retryable=exc.retryable,
                hint=exc.hint,
                exit_code=exc.exit_code,
            )
        return cls(type=type(exc).__name__, message=f"{type(exc).__name__}: {exc}", step=step)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ErrorInfo:
        """Read `to_data()` back (unknown keys are ignored)."""
        return msgspec.convert(data, cls)

    def to_data(self) -> dict[str, Any]:
        """Plain data for JSON: a run card, an event, `--json` output."""
        return msgspec.to_builtins(self)

    def to_exception(self) -> OsirisError:
        """An Osiris error carrying this description: transient when retryable, a `UserInputError`
        (exit code 2) when it was one, else terminal. `remote_type` keeps the original type name."""
        known = globals().get(self.type)
        if self.retryable:
            cls: type[OsirisError] = TransientError
        elif self.exit_code == UserInputError.exit_code or (
            isinstance(known, type) and issubclass(known, UserInputError)
        ):
            cls = UserInputError
        else:
            cls = TerminalError
        err = cls(self.message, step=self.step, hint=self.hint)
        err.remote_type = self.type  # type: ignore[attr-defined]
        return err

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message
