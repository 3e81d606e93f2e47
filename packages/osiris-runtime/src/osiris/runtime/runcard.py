"""The run card (`run_card.json`) and the results it is made of.

A run card says what a run did, per step: status (`succeeded`, `failed`, `interrupted`, `not_run`), rows
in and out, duration, outputs with their `data_sha256`, the driver's facts, the error (an
`osiris.core.errors.ErrorInfo` as data). Two run cards of the same build, anywhere, are
compared with `comparable_run_card`, which drops times and run ids. A sandbox run's card is
the worker's, with a `sandbox` section the host adds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osiris.core.manifest import Manifest
from osiris.runtime.__about__ import __version__

RUN_CARD_FILE = "run_card.json"
RUN_CARD_VERSION = "1"
TIME_KEYS = ("started_at", "finished_at", "duration_ms", "run_id", "ts")


@dataclass
class StepResult:
    """The outcome of one step, as it appears in the run card."""

    step_id: str
    component: str
    mode: str
    status: str = "not_run"
    rows_in: int = 0
    rows_out: int = 0
    duration_ms: float = 0.0
    outputs: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    traceback: str | None = None
    # Why a step did not run (`skipped`: an upstream failed) or where its output came from (`--resume`).
    reason: str | None = None
    reused_from: str | None = None
    # A step that read its upstream as it was written (`osiris.runtime.handoff.HandOff.record`).
    overlap: dict[str, Any] | None = None

    def to_data(self) -> dict[str, Any]:
        """The step's entry in `run_card.json`."""
        extra = {
            k: v
            for k, v in (("reason", self.reason), ("reused_from", self.reused_from), ("overlap", self.overlap))
            if v is not None
        }
        return {
            "id": self.step_id,
            "component": self.component,
            "mode": self.mode,
            "status": self.status,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "duration_ms": self.duration_ms,
            "outputs": self.outputs,
            "facts": self.facts,
            "error": self.error,
            **extra,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> StepResult:
        """A step's entry of a run card read back (e.g. one a sandbox worker wrote)."""
        return cls(
            step_id=str(data.get("id", "")),
            component=str(data.get("component", "")),
            mode=str(data.get("mode", "")),
            status=str(data.get("status", "not_run")),
            rows_in=int(data.get("rows_in") or 0),
            rows_out=int(data.get("rows_out") or 0),
            duration_ms=float(data.get("duration_ms") or 0.0),
            outputs=list(data.get("outputs") or []),
            facts=dict(data.get("facts") or {}),
            error=data.get("error"),
            reason=data.get("reason"),
            reused_from=data.get("reused_from"),
            overlap=data.get("overlap"),
        )


@dataclass
class RunResult:
    """The outcome of a run: status, exit code, the run dir, every step's result and the run card."""

    run_id: str
    run_dir: Path
    status: str
    steps: list[StepResult]
    duration_ms: float
    run_card: dict[str, Any]
    error: dict[str, Any] | None = None
    # Diagnostics that could not be written (disk full); the status and the data are as reported anyway.
    diagnostics_incomplete: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every step succeeded, 130 / 143 when interrupted (SIGINT / SIGTERM), 1 when a step failed,
        else the run error's exit code (2: bad input)."""
        if self.status == "succeeded":
            return 0
        if self.status == "interrupted":
            return int((self.error or {}).get("exit_code") or 130)
        if self.failed_step is not None:
            return 1
        return int((self.error or {}).get("exit_code", 1))

    @property
    def failed_step(self) -> StepResult | None:
        """The step that failed, if any."""
        return next((s for s in self.steps if s.status == "failed"), None)

    @property
    def sandbox(self) -> dict[str, Any] | None:
        """The run card's `sandbox` section (where and how a sandboxed run ran), or None."""
        return self.run_card.get("sandbox")

    @classmethod
    def from_card(cls, card: dict[str, Any], run_dir: Path, steps: list[StepResult] | None = None) -> RunResult:
        """The result a run card describes (`steps` when the caller holds richer ones, e.g. with tracebacks)."""
        return cls(
            run_id=str(card.get("run_id", run_dir.name)),
            run_dir=run_dir,
            status=str(card.get("status", "failed")),
            steps=steps if steps is not None else [StepResult.from_data(s) for s in card.get("steps") or []],
            duration_ms=float(card.get("duration_ms") or 0.0),
            run_card=card,
            error=card.get("error"),
        )


def build_run_card(
    *,
    run_id: str,
    manifest: Manifest,
    steps: list[StepResult],
    error: dict[str, Any] | None,
    started_at: str,
    finished_at: str,
    duration_ms: float,
    drivers_fingerprint: str | None,
    interrupted: dict[str, Any] | None = None,
    environment: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run card of a run: succeeded only when there is no error and every step succeeded; `interrupted`
    (the signal, the step, the reason) when it was stopped.

    `environment` (`osiris.runtime.versions.environment`) records the versions the run used.
    """
    ok = error is None and all(s.status == "succeeded" for s in steps)
    status = "interrupted" if interrupted is not None else "succeeded" if ok else "failed"
    card = {
        "run_card_version": RUN_CARD_VERSION,
        "run_id": run_id,
        "pipeline": manifest.pipeline.name,
        "manifest_fingerprint": manifest.fingerprints.manifest,
        "drivers_fingerprint": drivers_fingerprint,
        "runtime": {"package": "osiris-runtime", "version": __version__},
        "environment": environment,
        "status": status,
        "started_at": started_at,
        "finished_at": finished_at,
        "duration_ms": duration_ms,
        "error": error,
        "steps": [s.to_data() for s in steps],
    }
    if interrupted is not None:
        card["interrupted"] = interrupted
    return card


def write_run_card(run_dir: Path, card: dict[str, Any]) -> Path:
    """Write `run_card.json` through a temporary file renamed into place (never half-written)."""
    target = run_dir / RUN_CARD_FILE
    tmp = run_dir / f".{RUN_CARD_FILE}.tmp"
    tmp.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def comparable_run_card(card: dict[str, Any]) -> dict[str, Any]:
    """A run card without times, run ids and how steps overlapped (timing decides that), for comparing two runs."""

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in TIME_KEYS and k != "overlap"}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return strip(card)
