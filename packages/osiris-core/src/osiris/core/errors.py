"""Root error types shared by every Osiris package.

Every error Osiris raises on purpose derives from `OsirisError`. The split into
terminal and transient tells the runner what is worth retrying; `UserInputError`
marks problems in what the user wrote (exit code 2, no traceback).
"""

from __future__ import annotations

from typing import Any


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
        """Describe the error as plain data, the form in which errors cross the wire."""
        return {
            "type": type(self).__name__,
            "message": self.message,
            "step": self.step,
            "retryable": self.retryable,
        }


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
