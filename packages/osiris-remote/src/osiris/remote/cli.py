"""The `osiris-remote` command: `worker` (inside a sandbox) and `doctor` (anywhere)."""

from __future__ import annotations

import json
import sys

import click

from osiris.core.cli_errors import failure_json, wants_json
from osiris.remote.__about__ import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="osiris-remote", message="%(prog)s %(version)s")
def cli() -> None:
    """Osiris remote execution: the sandbox worker and environment checks."""


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def doctor(as_json: bool) -> None:
    """Check Python, osiris distributions, driver imports, Arrow and DuckDB in this environment."""
    from osiris.remote.doctor import format_report, run_doctor

    report = run_doctor()
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        click.echo(format_report(report))
    sys.exit(0 if report["ok"] else 1)


@cli.command()
def worker() -> None:
    """Serve the wire protocol: commands on stdin, messages on stdout, logs on stderr."""
    from osiris.remote.worker import exit_now, serve

    exit_now(serve())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `osiris-remote` script; with `--json` a failure is one JSON object on stdout
    (the same shape as `osiris`'s, `osiris.core.cli_errors`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = wants_json(args) and args[:1] != ["worker"]  # the worker's stdout is the wire protocol
    try:
        cli.main(args=args, prog_name="osiris-remote", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return _failed(exc, exc.exit_code, as_json)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except (KeyboardInterrupt, click.Abort) as exc:
        click.echo("Interrupted.", err=True)
        return _failed(exc, 130, as_json)
    except Exception as exc:  # a bug: one line, and the JSON object when asked for
        click.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
        return _failed(exc, 1, as_json)
    return 0


def _failed(exc: BaseException, code: int, as_json: bool) -> int:
    if as_json:
        click.echo(failure_json(exc, code))
    return code


if __name__ == "__main__":
    sys.exit(main())
