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

    host = run_on_host(
        manifest,
        runs_dir=workdir / "host",
        connections_file=str(connections_file) if connections_file else None,
        as_json=True,
        verbose=False,
        progress=False,
    )
    assert host == 0
    kw = {"connections_file": connections_file, "verbose": False, "json_output": True}
    assert local_plugin(manifest, SandboxOptions(name="local"), runs_dir=workdir / "local", **kw) == 0
    assert e2b_plugin(manifest, SandboxOptions(name="e2b"), runs_dir=workdir / "e2b", **kw) == 0
    return {where: max((workdir / where).glob("*/*"), key=lambda p: p.stat().st_mtime) for where in WHERE}


def load_run(run_dir: Path) -> tuple[dict, list[dict]]:
    """A run directory's run card and events."""
    card = json.loads((run_dir / "run_card.json").read_text())
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return card, events
