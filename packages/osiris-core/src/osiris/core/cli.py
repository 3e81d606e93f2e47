"""The `osiris` command: a root that finds its subcommands through entry points.

Subcommands are registered by the packages that implement them (group
`osiris.cli`), and imported only when invoked, so `osiris --help` stays fast and
imports no data library.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

from osiris.core import installed
from osiris.core.cli_errors import describe_os_error, failure_json, user_os_error_code, wants_json
from osiris.core.errors import OsirisError

CLI_GROUP = "osiris.cli"

# Which distribution provides each well-known subcommand, for a helpful error.
KNOWN_COMMANDS = {
    "compile": "osiris-compiler",
    "validate": "osiris-compiler",
    "run": "osiris-runtime",
    "connections": "osiris-runtime",
    "runs": "osiris-runtime",
    "discover": "osiris-runtime",
}

BUILTIN_COMMANDS = {"components": "osiris.core.cli_components:components"}


def _entry_points() -> dict[str, installed.EntryPoint]:
    eps = {}
    for ep in installed.entry_points(CLI_GROUP):
        eps.setdefault(ep.name, ep)
    return eps


class LazyGroup(click.Group):
    """A click group whose commands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(BUILTIN_COMMANDS) | set(_entry_points()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        # click asks twice per invocation (resolve_command, then its parent's): scan the entry points once
        # per invocation (kept on its context, so a test that installs other commands sees them).
        loaded: dict[str, click.Command | None] = ctx.meta.setdefault("osiris.cli.commands", {})
        if cmd_name not in loaded:
            loaded[cmd_name] = self._load_command(cmd_name)
        return loaded[cmd_name]

    def _load_command(self, cmd_name: str) -> click.Command | None:
        target = BUILTIN_COMMANDS.get(cmd_name)
        if target is None:
            ep = _entry_points().get(cmd_name)
            if ep is None:
                return None
            return ep.load()
        module, _, attr = target.partition(":")
        mod = __import__(module, fromlist=[attr])
        return getattr(mod, attr)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[Any, Any, list[str]]:
        name = args[0] if args else ""
        if name in KNOWN_COMMANDS and self.get_command(ctx, name) is None:
            raise click.UsageError(
                f"`osiris {name}` is provided by the `{KNOWN_COMMANDS[name]}` package, which is not "
                f"installed; install it with `pip install {KNOWN_COMMANDS[name]}`",
                ctx,
            )
        return super().resolve_command(ctx, args)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from osiris.core.discovery import installed_osiris_distributions

    for name, version in installed_osiris_distributions():
        click.echo(f"{name} {version}")
    ctx.exit(0)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="List every installed osiris distribution and its version.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug output.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Osiris: compile data pipelines into deterministic manifests and run them."""
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose or bool(os.environ.get("OSIRIS_DEBUG"))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `osiris` script: maps errors to exit codes, never a bare traceback.

    With `--json` every failure, whatever its kind, is also one JSON object on stdout
    (`osiris.core.cli_errors`), so a script can always parse the answer.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = bool(os.environ.get("OSIRIS_DEBUG")) or any(a in ("-v", "--verbose") for a in args)
    as_json = wants_json(args)
    try:
        rv = cli.main(args=args, prog_name="osiris", standalone_mode=False)
        if isinstance(rv, int) and not isinstance(rv, bool):
            return rv  # click returns ctx.exit(code) as a value when not in standalone mode
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort as exc:
        click.echo("Aborted.", err=True)
        return _failed(exc, 130, as_json)
    except click.ClickException as exc:
        exc.show()
        return _failed(exc, exc.exit_code, as_json)
    except OsirisError as exc:
        if verbose:
            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        return _failed(exc, exc.exit_code, as_json)
    except KeyboardInterrupt as exc:
        click.echo("Interrupted.", err=True)
        return _failed(exc, 130, as_json)
    except OSError as exc:
        code = user_os_error_code(exc)
        if code is None:
            return _internal(exc, verbose, as_json)
        if verbose:
            traceback.print_exc()
        click.echo(f"error: {describe_os_error(exc)}", err=True)
        return _failed(exc, code, as_json)
    except Exception as exc:  # an Osiris bug: say so, show the traceback only when asked
        return _internal(exc, verbose, as_json)
    return 0


def _internal(exc: BaseException, verbose: bool, as_json: bool) -> int:
    if verbose:
        traceback.print_exc()
    click.echo(f"internal error: {type(exc).__name__}: {exc} (run with --verbose for the traceback)", err=True)
    return _failed(exc, 1, as_json)


def _failed(exc: BaseException, code: int, as_json: bool) -> int:
    """Print the JSON failure object on stdout when `--json` was asked for; return the exit code."""
    if as_json:
        click.echo(failure_json(exc, code))
    return code


def entry() -> None:
    """The `osiris` console script: `main()`, then an exit that skips tearing the interpreter down.

    Finalizing the interpreter (every imported module freed: pyarrow, DuckDB, the database drivers)
    took about 50 ms at the end of each command and does nothing a finished command needs. The exit
    handlers still run (`atexit`: logging's flush, temporary folders) and the standard streams are
    flushed; `os._exit` then ends the process. Where another thread is still running (a step thread
    a stop left behind), the exit is Python's ordinary one, which waits for it as before.
    """
    code = main()
    if os.environ.get("OSIRIS_FULL_EXIT") or _other_threads_alive():
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`osiris runs list | head`): nothing more to write
            code = code or 120  # what Python's own exit returns when it cannot flush stdout
    os._exit(code)


def _other_threads_alive() -> bool:
    import threading

    return any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread())


if __name__ == "__main__":
    entry()
