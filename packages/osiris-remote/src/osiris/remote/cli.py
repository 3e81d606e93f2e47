"""The `osiris-remote` command: `worker` (inside a sandbox) and `doctor` (anywhere)."""

from __future__ import annotations

import json
import sys

import click

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
    from osiris.remote.worker import serve

    sys.exit(serve())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `osiris-remote` script."""
    try:
        cli.main(args=argv, prog_name="osiris-remote", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
