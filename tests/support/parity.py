"""Running one manifest on the host, in a `local` sandbox and in the E2B stand-in, for parity tests."""

from __future__ import annotations

import json
from pathlib import Path

WHERE = ("host", "local", "e2b")


def run_everywhere(manifest: Path, workdir: Path, connections_file: Path | None) -> dict[str, Path]:
    """Run `manifest` on the host, in a `local` sandbox and in the E2B stand-in (each must succeed).

    Returns the run directory of each, keyed by where it ran (`WHERE`).
    """
    from osiris.remote.plugins import e2b_plugin, local_plugin
    from osiris.runtime.cli import run_on_host
    from osiris.runtime.sandbox_api import SandboxOptions

    host = run_on_host(manifest, runs_dir=workdir / "host", connections_file=connections_file)
    assert host.exit_code == 0, host.error
    for where, plugin in (("local", local_plugin), ("e2b", e2b_plugin)):
        run = plugin(manifest, SandboxOptions(name=where), connections_file=connections_file, runs_dir=workdir / where)
        assert run.exit_code == 0, (where, run.error)
    return {where: max((workdir / where).glob("*/*"), key=lambda p: p.stat().st_mtime) for where in WHERE}


def load_run(run_dir: Path) -> tuple[dict, list[dict]]:
    """A run directory's run card and events."""
    card = json.loads((run_dir / "run_card.json").read_text())
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return card, events


def by_step(sequence: list[tuple]) -> dict[str | None, list[tuple]]:
    """Event tuples `(name, step_id, ...)` grouped by step, each group in its order.

    Independent steps run in parallel, so the order of events across steps varies from run to run;
    within one step (and among the run's own events, step None) it does not.
    """
    out: dict[str | None, list[tuple]] = {}
    for item in sequence:
        out.setdefault(item[1], []).append(item)
    return out
