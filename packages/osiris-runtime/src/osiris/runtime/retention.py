"""Retention: which run directories `osiris runs prune` (and the after-run retention) removes, and removing
them so that a stop halfway never leaves a half-deleted run.

Rules, applied per pipeline to its runs ordered newest first (whatever their status):

- `keep=N`: delete every run after the newest N (the whole directory);
- `older_than=D`: delete every run that started more than D ago;
  with both, a run is deleted only when both say so (the newest N stay, however old);
- `keep_data=N`: remove the data artifacts (`artifacts/<step>/*.parquet`) of every run after the newest N,
  keeping its diagnostics (run card, events, metrics, manifest, `cleaned_config.json`, `error.txt`,
  `artifacts/_system/`), and note what was removed in `artifacts/_system/retention.json`.

A run that is still running (a process holds one of its files open), or that has no run card and changed
in the last `history.LIVE_GRACE_S` seconds, is never touched: it is reported as skipped; so is a folder
holding none of a run's files (a `--runs-dir` pointed at the wrong folder deletes nothing it did not write).

The retention setting is read from the environment after every `osiris run` (and by `osiris runs prune`
without rules): `OSIRIS_RUNS_KEEP_DATA=N`, `OSIRIS_RUNS_KEEP=N`, `OSIRIS_RUNS_MAX_AGE=D` (e.g. `30d`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from osiris.core.errors import UserInputError
from osiris.runtime.history import (
    HIDDEN_PREFIX,
    LIVE_GRACE_S,
    RETENTION_NOTE,
    RunFile,
    RunRecord,
    open_files_under,
    scan_runs,
)

ENV_KEEP_DATA = "OSIRIS_RUNS_KEEP_DATA"
ENV_KEEP = "OSIRIS_RUNS_KEEP"
ENV_MAX_AGE = "OSIRIS_RUNS_MAX_AGE"
DELETING_SUFFIX = ".deleting"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def parse_duration(text: str, *, where: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w`, `45s` or a sum like `1d12h`; a clear error naming `where` otherwise."""
    value = str(text).strip().lower()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(value):
        if value[pos : m.start()].strip():
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not value or pos == 0 or value[pos:].strip():
        raise UserInputError(
            f"Invalid duration `{text}` for {where}: expected a number and a unit (s, m, h, d, w), "
            "like `30d`, `12h`, `90m` or `1d12h`"
        )
    return timedelta(seconds=total)


def parse_count(text: Any, *, where: str, minimum: int) -> int:
    """A whole number of runs, at least `minimum`; a clear error naming `where` otherwise."""
    try:
        value = int(str(text).strip())
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise UserInputError(f"Invalid number of runs `{text}` for {where}: expected a whole number >= {minimum}")
    return value


@dataclass(frozen=True)
class Policy:
    """What to keep: see the module docstring."""

    keep: int | None = None
    older_than: timedelta | None = None
    keep_data: int | None = None

    @property
    def empty(self) -> bool:
        """True when no rule is set."""
        return self.keep is None and self.older_than is None and self.keep_data is None

    def describe(self) -> str:
        """The rules in words, for messages and the retention note."""
        parts = []
        if self.keep is not None:
            parts.append(f"keep the newest {self.keep} runs")
        if self.older_than is not None:
            parts.append(f"delete runs older than {_human_duration(self.older_than)}")
        if self.keep_data is not None:
            parts.append(f"keep data of the newest {self.keep_data} runs")
        return "; ".join(parts) or "keep everything"

    def to_data(self) -> dict[str, Any]:
        """The rules as plain data."""
        return {
            "keep": self.keep,
            "older_than_s": self.older_than.total_seconds() if self.older_than is not None else None,
            "keep_data": self.keep_data,
        }


def _human_duration(d: timedelta) -> str:
    seconds = d.total_seconds()
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def policy_from_env(environ: Mapping[str, str] | None = None) -> Policy:
    """The retention setting from `OSIRIS_RUNS_KEEP_DATA`, `OSIRIS_RUNS_KEEP`, `OSIRIS_RUNS_MAX_AGE`."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value is not None and value.strip() else None

    keep_data, keep, max_age = get(ENV_KEEP_DATA), get(ENV_KEEP), get(ENV_MAX_AGE)
    return Policy(
        keep=parse_count(keep, where=f"`{ENV_KEEP}`", minimum=1) if keep is not None else None,
        older_than=parse_duration(max_age, where=f"`{ENV_MAX_AGE}`") if max_age is not None else None,
        keep_data=parse_count(keep_data, where=f"`{ENV_KEEP_DATA}`", minimum=0) if keep_data is not None else None,
    )


@dataclass
class PrunePlan:
    """What a policy removes from a set of runs; nothing is removed until `apply_plan`."""

    policy: Policy
    delete: list[RunRecord] = field(default_factory=list)
    strip: list[tuple[RunRecord, list[RunFile]]] = field(default_factory=list)
    skipped: list[tuple[RunRecord, str]] = field(default_factory=list)
    kept: list[RunRecord] = field(default_factory=list)


def _protected(run: RunRecord) -> str | None:
    if run.live:
        return "still running: a process has its files open"
    if run.recently_changed:
        return f"no run card and changed less than {int(LIVE_GRACE_S // 60)} minutes ago: it may still be running"
    return None


def plan_prune(records: list[RunRecord], policy: Policy, *, now: datetime | None = None) -> PrunePlan:
    """Decide, per pipeline, which runs are deleted, which lose their data and which are skipped."""
    now = now or datetime.now(UTC)
    out = PrunePlan(policy=policy)
    by_pipeline: dict[str, list[RunRecord]] = {}
    for r in records:
        if not r.is_run_dir:  # not a run: it neither counts among the newest N nor is ever touched
            out.skipped.append((r, "not a run directory (no run card, events, metrics or manifest): left alone"))
            continue
        by_pipeline.setdefault(r.pipeline, []).append(r)
    cutoff = (now - policy.older_than).timestamp() if policy.older_than is not None else None
    for runs in by_pipeline.values():
        newest_first = sorted(runs, key=lambda r: (r.sort_time, r.run_id), reverse=True)
        for rank, run in enumerate(newest_first):
            by_count = policy.keep is not None and rank >= policy.keep
            by_age = cutoff is not None and run.sort_time < cutoff
            both = policy.keep is not None and cutoff is not None
            delete = (by_count and by_age) if both else (by_count or by_age)
            strip = policy.keep_data is not None and rank >= policy.keep_data
            data = [f for f in run.files() if f.data] if strip else []
            reason = _protected(run)
            if (delete or strip) and reason:
                out.skipped.append((run, reason))
            elif delete:
                out.delete.append(run)
            elif data:
                out.strip.append((run, data))
            else:
                out.kept.append(run)
    return out


@dataclass
class PruneResult:
    """What prune did (or, for a dry run, would do)."""

    plan: PrunePlan
    dry_run: bool
    deleted: list[dict[str, Any]] = field(default_factory=list)
    data_removed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int:
        """Bytes removed (or that would be)."""
        return sum(d["bytes"] for d in self.deleted) + sum(d["bytes"] for d in self.data_removed)

    def to_data(self) -> dict[str, Any]:
        """`osiris runs prune --json`."""
        return {
            "dry_run": self.dry_run,
            "policy": self.plan.policy.to_data(),
            "rules": self.plan.policy.describe(),
            "deleted": self.deleted,
            "data_removed": self.data_removed,
            "skipped": self.skipped,
            "kept": [r.ref for r in self.plan.kept],
            "freed_bytes": self.freed_bytes,
            "errors": self.errors,
        }


def apply_plan(plan: PrunePlan, *, runs_dir: Path, dry_run: bool = False) -> PruneResult:
    """Carry out a plan. Just before touching each run its liveness is checked again."""
    result = PruneResult(plan=plan, dry_run=dry_run)
    for run, reason in plan.skipped:
        result.skipped.append({"run_id": run.run_id, "pipeline": run.pipeline, "reason": reason})
    fresh = open_files_under(runs_dir) if not dry_run else None
    for run in plan.delete:
        size = sum(f.size for f in run.files())
        if fresh is not None and fresh.under(run.path):
            result.skipped.append(
                {"run_id": run.run_id, "pipeline": run.pipeline, "reason": "started to be used while pruning"}
            )
            continue
        entry = {"run_id": run.run_id, "pipeline": run.pipeline, "path": str(run.path), "bytes": size}
        if not dry_run:
            try:
                delete_run_dir(run.path)
            except OSError as exc:
                result.errors.append(f"could not delete `{run.path}`: {exc}")
                continue
        result.deleted.append(entry)
    for run, files in plan.strip:
        if fresh is not None and fresh.under(run.path):
            result.skipped.append(
                {"run_id": run.run_id, "pipeline": run.pipeline, "reason": "started to be used while pruning"}
            )
            continue
        removed, failed = ([f for f in files], []) if dry_run else _remove_data(run, files, plan.policy)
        result.errors.extend(failed)
        if removed:
            result.data_removed.append(
                {
                    "run_id": run.run_id,
                    "pipeline": run.pipeline,
                    "files": [f.path for f in removed],
                    "bytes": sum(f.size for f in removed),
                }
            )
    if not dry_run:
        result.errors.extend(sweep_leftovers(runs_dir))
    return result


def delete_run_dir(path: Path) -> None:
    """Delete a run directory: renamed to a hidden name first (one atomic step out of every listing), then
    removed; a stop in between leaves only the hidden folder, which the next prune removes."""
    tomb = path.with_name(f"{HIDDEN_PREFIX}{path.name}{DELETING_SUFFIX}")
    os.rename(path, tomb)
    shutil.rmtree(tomb)


def sweep_leftovers(runs_dir: Path) -> list[str]:
    """Remove the hidden folders an earlier prune stopped in the middle of deleting."""
    errors = []
    for tomb in Path(runs_dir).glob(f"*/{HIDDEN_PREFIX}*{DELETING_SUFFIX}"):
        try:
            shutil.rmtree(tomb)
        except OSError as exc:
            errors.append(f"could not delete `{tomb}`: {exc}")
    return errors


def _remove_data(run: RunRecord, files: list[RunFile], policy: Policy) -> tuple[list[RunFile], list[str]]:
    removed, errors = [], []
    for f in files:
        try:
            (run.path / f.path).unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            errors.append(f"could not remove `{run.path / f.path}`: {exc}")
            continue
        removed.append(f)
    if removed:
        note_path = run.path / RETENTION_NOTE
        note = run.retention_note or {}
        previous = note.get("data_removed") if isinstance(note.get("data_removed"), list) else []
        note = {
            "data_removed": [
                *previous,
                {
                    "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "rule": policy.describe(),
                    "files": [{"path": f.path, "bytes": f.size} for f in removed],
                },
            ]
        }
        note_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = note_path.with_name(f".{note_path.name}.tmp")
        tmp.write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, note_path)
    return removed, errors


def prune(
    runs_dir: Path,
    policy: Policy,
    *,
    pipeline: str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PruneResult:
    """Plan and apply `policy` to the runs under `runs_dir` (of one pipeline, if given)."""
    records = scan_runs(runs_dir, pipeline)
    return apply_plan(plan_prune(records, policy, now=now), runs_dir=Path(runs_dir), dry_run=dry_run)


def retention_after_run(runs_dir: Path, pipeline: str, policy: Policy) -> PruneResult | None:
    """Apply the retention setting to one pipeline's runs after a run of it; None when there is no setting."""
    if policy.empty or not (Path(runs_dir) / pipeline).is_dir():
        return None
    return prune(runs_dir, policy, pipeline=pipeline)


def after_run_hook(runs_dir: Path, manifest_path: Path, policy: Policy) -> Any:
    """A callable for `click.Context.call_on_close` that applies `policy` to the runs of the pipeline
    `manifest_path` compiles, once `osiris run` is over. A failure to prune is a warning on stderr: it
    never changes the run's outcome or its exit code."""

    def hook() -> None:
        if policy.empty:
            return
        import click

        from osiris.core.documents import load_yaml_file

        try:
            manifest, _ = load_yaml_file(manifest_path)
            name = manifest["pipeline"]["name"]
            result = retention_after_run(runs_dir, str(name), policy)
        except Exception as exc:
            click.echo(f"warning: retention ({policy.describe()}) was not applied: {exc}", err=True)
            return
        if result is None:
            return
        for err in result.errors:
            click.echo(f"warning: retention: {err}", err=True)
        if result.deleted or result.data_removed:
            click.echo(
                f"retention ({policy.describe()}): deleted {len(result.deleted)} runs and the data of "
                f"{len(result.data_removed)} runs of `{name}`, {format_bytes(result.freed_bytes)} freed",
                err=True,
            )

    return hook


def format_bytes(n: float) -> str:
    """`1.5 MB`: sizes for people (powers of 1024)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"
