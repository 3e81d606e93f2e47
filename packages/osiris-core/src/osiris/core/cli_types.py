"""Click parameter types for values every Osiris command checks the same way before doing anything.

A bad value is a click usage error (exit 2) naming the option, the value and what was expected,
instead of a Python error deep inside a command.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import click


class Folder(click.ParamType):
    """A folder Osiris reads from and, when `writable`, creates files in.

    It may not exist yet (it is created when needed): then the nearest folder above it that does
    exist must be a folder too, and writable. An existing path must be a folder. Writability is
    checked by creating and removing a temporary file, which also catches pseudo file systems
    such as `/proc` where permission bits say yes but nothing can be created.
    """

    name = "folder"

    def __init__(self, *, writable: bool = True) -> None:
        self.writable = writable

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = os.fsdecode(value) if isinstance(value, (bytes, os.PathLike)) else str(value)
        if not text:
            self.fail("expected a folder, got an empty path", param, ctx)
        path = Path(text)
        shown = click.format_filename(text)
        if path.exists() and not path.is_dir():
            self.fail(f"`{shown}` is a file; expected a folder", param, ctx)
        if not self.writable:
            return text
        probe_in = path
        while not probe_in.exists():
            if probe_in.parent == probe_in:
                break
            probe_in = probe_in.parent
        if not probe_in.is_dir():
            self.fail(f"`{shown}` cannot be created: `{click.format_filename(str(probe_in))}` is a file", param, ctx)
        try:
            fd, probe = tempfile.mkstemp(prefix=".osiris-probe-", dir=probe_in)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            where = "" if probe_in == path else f" (its nearest existing parent `{probe_in}`)"
            self.fail(
                f"cannot write in `{shown}`{where}: {exc.strerror or exc}; expected a writable folder", param, ctx
            )
        return text


def positive_seconds() -> click.FloatRange:
    """A duration in seconds greater than zero."""
    return click.FloatRange(min=0, min_open=True)


def refuse_unused(ctx: click.Context, reason: str, *names: str) -> None:
    """A usage error when any option in `names` was given on the command line though it does nothing here."""
    given = [n for n in names if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
    if not given:
        return
    opts = []
    for p in ctx.command.params:
        if p.name in given and isinstance(p, click.Option):
            opts.append(max(p.opts, key=len))
    raise click.UsageError(
        f"{', '.join(f'`{o}`' for o in opts)} {'does' if len(opts) == 1 else 'do'} nothing {reason}", ctx
    )
