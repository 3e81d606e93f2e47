"""`osiris run --resume RUN_ID`: a new run of the same manifest that reruns only what did not succeed.

The earlier run's `manifest.yaml` must have the fingerprint of the manifest being run, else the
resume is refused (exit 2) with both fingerprints: a changed pipeline, snapshot or config means the
earlier outputs may not fit. Steps that succeeded there are reused (their Parquet outputs hard-linked
or copied in after their `data_sha256` matches the earlier run card; writers' results taken as they
are, since the rows are already in their tables); failed, skipped and not-run steps run again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from osiris.core.errors import UserInputError
from osiris.core.manifest import load_manifest


def previous_run(runs_dir: Path, ref: str) -> tuple[Path, dict[str, Any]]:
    """The run directory `ref` names (any form `osiris runs` takes) and its run card."""
    from osiris.runtime.history import resolve_run

    record = resolve_run(runs_dir, ref)
    card_path = record.path / "run_card.json"
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserInputError(f"Cannot resume run `{record.run_id}`: its run card is missing or unreadable") from None
    return record.path, card


def build_for(previous_dir: Path, build_dir: Path) -> Path:
    """The compiled `manifest.yaml` of the manifest an earlier run ran, found in the build folder."""
    manifest = load_manifest(previous_dir / "manifest.yaml")
    path = build_dir / manifest.pipeline.name / manifest.short / "manifest.yaml"
    if not path.is_file():
        raise UserInputError(
            f"Cannot resume run `{previous_dir.name}`: its build `{path}` is gone; compile the same pipeline again "
            "and pass it (`osiris run PIPELINE.yaml --resume RUN_ID`)"
        )
    return path


def check_same_manifest(previous_dir: Path, fingerprint: str) -> None:
    """Refuse (exit 2) when the manifest to run is not the one the earlier run ran."""
    previous = load_manifest(previous_dir / "manifest.yaml").fingerprints.manifest
    if previous != fingerprint:
        raise UserInputError(
            f"Cannot resume run `{previous_dir.name}`: the manifest changed since (it ran {previous[:19]}, "
            f"this is {fingerprint[:19]}); its outputs may not fit the new steps, so start a new run without --resume",
        )


def reuse_succeeded(runner: Any, previous_dir: Path, card: dict[str, Any]) -> list[str]:
    """Reuse in `runner` every step that succeeded in the earlier run; returns the ids reused."""
    reused = []
    for entry in card.get("steps") or []:
        sid = entry.get("id")
        ok = entry.get("status") == "succeeded" and sid in runner.results
        if ok and runner.reuse(sid, previous_dir, entry).status == "succeeded":
            reused.append(sid)
    return reused


__all__ = ["build_for", "check_same_manifest", "previous_run", "reuse_succeeded"]
