"""Run history: the run directories under a runs dir (`runs/<pipeline>/<run_id>/`), read as data.

Nothing here imports the runner: a run directory is read through its files (`run_card.json`,
`events.jsonl`, `metrics.jsonl`, `manifest.yaml`, `artifacts/...`), so a run written by another
version of Osiris, by a sandbox host, or cut short by a kill, can still be listed and shown.

A run's status is its run card's `status` (`succeeded`, `failed`, `interrupted`, or whatever a newer
runtime writes, shown as it is), `running` while a process still has one of its files open (or,
with no run card yet, while its files changed in the last `LIVE_GRACE_S` seconds and the open files
of some processes could not be seen), and `damaged` when its run card is missing or unreadable and
nothing is running it. Steps come from the run card; without a usable one they are rebuilt from
`events.jsonl` (and the manifest's step list), so a killed run still shows how far it got.

Longer than most modules, on purpose: every way of reading a run directory (card, events,
manifest, files, liveness) is here, so `runs list`, `show`, `diff`, `prune` and `report` read
runs one way.
"""

from __future__ import annotations

import difflib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from osiris.core.errors import UserInputError

RUN_CARD = "run_card.json"
EVENTS = "events.jsonl"
METRICS = "metrics.jsonl"
MANIFEST = "manifest.yaml"
RUN_FILES = (RUN_CARD, EVENTS, METRICS, MANIFEST)
SYSTEM_DIR = "artifacts/_system"
RETENTION_NOTE = "artifacts/_system/retention.json"
# A run with no run card whose files changed this recently may still be running somewhere we cannot see.
LIVE_GRACE_S = 600.0
# Prefixes prune uses for a run directory it is deleting (renamed first, so a stop halfway leaves no
# half-deleted run in the listing) and that listings skip.
HIDDEN_PREFIX = "."


@dataclass(frozen=True)
class OpenFiles:
    """The files processes on this machine hold open under a folder (Linux `/proc`)."""

    paths: frozenset[str]
    complete: bool  # False when some processes' open files could not be read, or there is no /proc

    def under(self, folder: Path) -> bool:
        """True when some process holds a file under `folder` open."""
        prefix = str(folder.resolve()) + os.sep
        return any(p.startswith(prefix) for p in self.paths)


def open_files_under(root: Path) -> OpenFiles:
    """Every file under `root` that a process holds open, read from `/proc/<pid>/fd` (Linux only)."""
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return OpenFiles(frozenset(), complete=False)
    prefix = str(root.resolve()) + os.sep
    found: set[str] = set()
    complete = True
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        fd_dir = os.path.join(entry.path, "fd")
        try:
            fds = os.listdir(fd_dir)
        except FileNotFoundError:  # the process ended while we looked
            continue
        except OSError:  # another user's process: its open files are not ours to see
            complete = False
            continue
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if target.startswith(prefix):
                found.add(target)
    return OpenFiles(frozenset(found), complete=complete)


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The records of a JSON-lines file and a note for each line that is not a JSON object."""
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        return [], [f"`{path.name}` cannot be read: {exc}"]
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            problems.append(f"`{path.name}` line {number} is not valid JSON (cut short when the run stopped?)")
            continue
        if isinstance(value, dict):
            records.append(value)
        else:
            problems.append(f"`{path.name}` line {number} is not a JSON object")
    return records, problems


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 timestamp (as the runner writes them) as an aware datetime, else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def run_id_time(run_id: str) -> datetime | None:
    """The UTC time a run id starts with (`20261201T092135-0487b9`), else None."""
    try:
        return datetime.strptime(run_id[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def is_data_file(rel: str) -> bool:
    """True for a data artifact (a step's Parquet output, or a temporary one a stopped run left behind).

    Everything else in a run directory is a diagnostic: the run card, events, metrics, the manifest,
    `cleaned_config.json`, `error.txt`, DDL plans, `artifacts/_system/...`.
    """
    parts = rel.split("/")
    if len(parts) < 3 or parts[0] != "artifacts" or parts[1] == "_system":
        return False
    name = parts[-1]
    return name.endswith(".parquet") or (".parquet." in name and name.endswith(".tmp"))


@dataclass
class RunFile:
    """One file of a run directory."""

    path: str  # relative to the run directory, with `/`
    size: int
    data: bool


@dataclass
class RunRecord:
    """One run directory as the history sees it; see the module docstring for `status`."""

    path: Path
    pipeline: str
    run_id: str
    status: str
    card: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    live: bool = False
    recently_changed: bool = False

    # -- times ---------------------------------------------------------------------------------

    @cached_property
    def started(self) -> datetime | None:
        """When the run started: the run card's `started_at`, else its first event, else its run id."""
        card = self.card or {}
        for value in (card.get("started_at"), self.first_event_ts):
            parsed = parse_time(value)
            if parsed is not None:
                return parsed
        return run_id_time(self.run_id)

    @cached_property
    def first_event_ts(self) -> str | None:
        """The timestamp of the first event (read lazily: only the first line)."""
        try:
            with (self.path / EVENTS).open(encoding="utf-8", errors="replace") as fh:
                first = fh.readline()
            return str(json.loads(first).get("ts"))
        except (OSError, ValueError, AttributeError):
            return None

    @property
    def sort_time(self) -> float:
        """Seconds since the epoch for ordering runs (the start time, else the directory's change time)."""
        if self.started is not None:
            return self.started.timestamp()
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    @property
    def finished(self) -> datetime | None:
        """When the run finished, from its run card."""
        return parse_time((self.card or {}).get("finished_at"))

    @property
    def duration_ms(self) -> float | None:
        """The run's duration from its run card."""
        value = (self.card or {}).get("duration_ms")
        return float(value) if isinstance(value, (int, float)) else None

    # -- contents ------------------------------------------------------------------------------

    @property
    def is_run_dir(self) -> bool:
        """True when the folder holds at least one of a run's files (prune leaves any other folder alone)."""
        return any((self.path / name).exists() for name in RUN_FILES)

    @property
    def ref(self) -> str:
        """`PIPELINE/RUN_ID`: names the run unambiguously within its runs dir."""
        return f"{self.pipeline}/{self.run_id}"

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        """Every event of `events.jsonl` (unreadable lines are noted in `problems`)."""
        records, problems = read_jsonl(self.path / EVENTS)
        self.problems.extend(problems)
        return records

    @cached_property
    def metrics(self) -> list[dict[str, Any]]:
        """Every metric of `metrics.jsonl` (unreadable lines are noted in `problems`)."""
        records, problems = read_jsonl(self.path / METRICS)
        self.problems.extend(problems)
        return records

    @cached_property
    def manifest(self) -> dict[str, Any] | None:
        """`manifest.yaml` as plain data (not verified: a report shows what ran, even if edited)."""
        from osiris.core.documents import load_yaml_text
        from osiris.core.errors import DocumentError

        try:
            data, _ = load_yaml_text((self.path / MANIFEST).read_text(encoding="utf-8"), file=MANIFEST)
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, DocumentError) as exc:
            self.problems.append(f"`{MANIFEST}` cannot be read: {exc}")
            return None
        return data if isinstance(data, dict) else None

    @cached_property
    def steps(self) -> list[dict[str, Any]]:
        """Every step in run-card form (`id`, `component`, `mode`, `status`, `rows_in`, `rows_out`, ...)."""
        card_steps = (self.card or {}).get("steps")
        if isinstance(card_steps, list) and card_steps and all(isinstance(s, dict) for s in card_steps):
            return [_well_typed_step(s, i, self.problems) for i, s in enumerate(card_steps)]
        return [
            _well_typed_step(s, i, self.problems)
            for i, s in enumerate(steps_from_events(self.events, self.manifest_steps, stopped=not self.live))
        ]

    @property
    def steps_source(self) -> str:
        """Where `steps` came from: `run_card`, or `events` when the run card has none."""
        card_steps = (self.card or {}).get("steps")
        return "run_card" if isinstance(card_steps, list) and card_steps else "events"

    @property
    def manifest_steps(self) -> list[dict[str, Any]]:
        """The manifest's steps (id, component, mode, needs), in manifest order."""
        steps = (self.manifest or {}).get("steps")
        return [s for s in steps if isinstance(s, dict) and "id" in s] if isinstance(steps, list) else []

    @property
    def error(self) -> dict[str, Any] | None:
        """The run's error from its run card, else the first failed step's."""
        err = (self.card or {}).get("error")
        if isinstance(err, dict):
            return err
        for step in self.steps:
            if isinstance(step.get("error"), dict):
                return step["error"]
        return None

    def files(self) -> list[RunFile]:
        """Every file of the run directory, sorted, with its size and whether it is data."""
        out = []
        for root, _dirs, names in os.walk(self.path):
            for name in names:
                full = Path(root) / name
                try:
                    size = full.stat().st_size
                except OSError:
                    continue
                rel = full.relative_to(self.path).as_posix()
                out.append(RunFile(rel, size, is_data_file(rel)))
        return sorted(out, key=lambda f: f.path)

    def data_state(self, files: Iterable[RunFile] | None = None) -> str:
        """`kept` (every step output the run card names is here), `removed`, `partial`, or `none`."""
        present = {f.path for f in (files if files is not None else self.files())}
        named = [
            o["path"]
            for s in self.steps
            for o in (s.get("outputs") or [])
            if isinstance(o, dict) and isinstance(o.get("path"), str)
        ]
        if not named:
            return "none"
        kept = sum(p in present for p in named)
        if kept == len(named):
            return "kept"
        return "removed" if kept == 0 else "partial"

    @property
    def retention_note(self) -> dict[str, Any] | None:
        """What prune removed from this run (`artifacts/_system/retention.json`), if anything."""
        try:
            data = json.loads((self.path / RETENTION_NOTE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def summary(self) -> dict[str, Any]:
        """The run as a row of `osiris runs list --json`."""
        files = self.files()
        steps = self.steps
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "status": self.status,
            "path": str(self.path),
            "started_at": self.started.isoformat(timespec="milliseconds") if self.started else None,
            "finished_at": (self.card or {}).get("finished_at"),
            "duration_ms": self.duration_ms,
            "steps": len(steps),
            "steps_succeeded": sum(s.get("status") == "succeeded" for s in steps),
            "rows_out": _last_rows(steps),
            "size_bytes": sum(f.size for f in files),
            "data_bytes": sum(f.size for f in files if f.data),
            "data": self.data_state(files),
            "problems": list(self.problems),
        }


def _last_rows(steps: list[dict[str, Any]]) -> int | None:
    """Rows out of the last step that ran (what the pipeline delivered)."""
    for step in reversed(steps):
        if step.get("status") not in (None, "not_run") and isinstance(step.get("rows_out"), int):
            return int(step["rows_out"])
    return None


def steps_from_events(
    events: list[dict[str, Any]], manifest_steps: list[dict[str, Any]], *, stopped: bool
) -> list[dict[str, Any]]:
    """Rebuild run-card step entries from `step_start` / `step_complete` / `step_failed` events.

    A step that started and never ended is `running`, or `unfinished` once nothing runs the run
    any more; a manifest step with no event is `not_run`.
    """
    order: list[str] = []
    steps: dict[str, dict[str, Any]] = {}

    def entry(step_id: str) -> dict[str, Any]:
        if step_id not in steps:
            order.append(step_id)
            steps[step_id] = {
                "id": step_id,
                "component": None,
                "mode": None,
                "status": "not_run",
                "rows_in": 0,
                "rows_out": 0,
                "duration_ms": 0.0,
                "outputs": [],
                "facts": {},
                "error": None,
            }
        return steps[step_id]

    for ms in manifest_steps:
        e = entry(str(ms["id"]))
        e["component"], e["mode"] = ms.get("component"), ms.get("mode")
    for ev in events:
        step_id, name = ev.get("step_id"), ev.get("event")
        if not isinstance(step_id, str):
            continue
        e = entry(step_id)
        if name == "step_start":
            e["status"] = "running" if not stopped else "unfinished"
            e["component"] = ev.get("component", e["component"])
            e["mode"] = ev.get("mode", e["mode"])
        elif name == "inputs_resolved" and isinstance(ev.get("rows_in"), int):
            e["rows_in"] = ev["rows_in"]
        elif name == "step_complete":
            e["status"] = "succeeded"
            for key in ("rows_in", "rows_out", "duration_ms"):
                if isinstance(ev.get(key), (int, float)):
                    e[key] = ev[key]
            if isinstance(ev.get("outputs"), list):
                e["outputs"] = ev["outputs"]
        elif name == "step_failed":
            e["status"] = "failed"
            if isinstance(ev.get("duration_ms"), (int, float)):
                e["duration_ms"] = ev["duration_ms"]
            if isinstance(ev.get("error"), dict):
                e["error"] = ev["error"]
    return [steps[s] for s in order]


# The type each field of a step (run-card form) has; a damaged file may hold anything.
STEP_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "component": (str,),
    "mode": (str,),
    "status": (str,),
    "rows_in": (int,),
    "rows_out": (int,),
    "duration_ms": (int, float),
    "outputs": (list,),
    "facts": (dict,),
    "error": (dict,),
    "data_sha256": (str,),
    "needs": (list,),
}


def _well_typed_step(step: dict[str, Any], index: int, problems: list[str]) -> dict[str, Any]:
    """`step` without the fields whose type is wrong (each noted in `problems`); an `id` always."""
    out: dict[str, Any] = {}
    for key, value in step.items():
        types = STEP_FIELD_TYPES.get(key)
        wrong = types is not None and value is not None and (not isinstance(value, types) or isinstance(value, bool))
        if wrong:
            note = f"step {index + 1} of the run has a `{key}` of the wrong type ({type(value).__name__}); ignored"
            if note not in problems:
                problems.append(note)
            continue
        out[key] = value
    out["id"] = out.get("id") or f"#{index + 1}"
    if isinstance(out.get("outputs"), list):
        out["outputs"] = [o for o in out["outputs"] if isinstance(o, dict)]
    return out


def _card_problem(card: Any) -> str | None:
    if not isinstance(card, dict):
        return f"`{RUN_CARD}` is not a JSON object"
    if not isinstance(card.get("status"), str) or not card["status"]:
        return f"`{RUN_CARD}` has no `status`"
    steps = card.get("steps")
    if steps is not None and not (isinstance(steps, list) and all(isinstance(s, dict) for s in steps)):
        return f"`{RUN_CARD}` has a `steps` that is not a list of objects"
    return None


def load_run(path: Path, *, open_files: OpenFiles | None = None, now: float | None = None) -> RunRecord:
    """Read one run directory; never raises for a damaged one (its `status` is `damaged`)."""
    path = Path(path)
    open_files = open_files if open_files is not None else open_files_under(path)
    now = time.time() if now is None else now
    card: dict[str, Any] | None = None
    problems: list[str] = []
    try:
        raw = (path / RUN_CARD).read_text(encoding="utf-8")
    except FileNotFoundError:
        raw = None
        present = [n for n in RUN_FILES if (path / n).exists()]
        if present:
            problems.append(f"no `{RUN_CARD}`: the run did not finish (stopped or killed before writing it)")
        else:
            problems.append(f"not a run directory: none of {', '.join(RUN_FILES)} is there")
    except OSError as exc:
        raw = None
        problems.append(f"`{RUN_CARD}` cannot be read: {exc}")
    except UnicodeDecodeError as exc:
        raw = None
        problems.append(f"`{RUN_CARD}` is not UTF-8 (invalid byte at {exc.start})")
    if raw is not None:
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"`{RUN_CARD}` is not valid JSON ({exc.msg} at line {exc.lineno})")
        except RecursionError:
            problems.append(f"`{RUN_CARD}` is nested too deeply to read")
        else:
            problem = _card_problem(parsed)
            if problem:
                problems.append(problem)
            else:
                card = parsed
    live = open_files.under(path)
    changed = _newest_change(path)
    recently = card is None and changed is not None and now - changed < LIVE_GRACE_S
    if live or (recently and not open_files.complete):
        status = "running"
    elif card is not None:
        status = str(card["status"])
    else:
        status = "damaged"
    pipeline = path.parent.name
    run_id = path.name
    if card is not None:
        if isinstance(card.get("pipeline"), str) and card["pipeline"] != pipeline:
            problems.append(f"the run card names pipeline `{card['pipeline']}`, the directory `{pipeline}`")
        if isinstance(card.get("run_id"), str) and card["run_id"] != run_id:
            problems.append(f"the run card names run `{card['run_id']}`, the directory `{run_id}`")
    if status == "running":
        problems = [p for p in problems if not p.startswith(f"no `{RUN_CARD}`")]
    return RunRecord(
        path=path,
        pipeline=pipeline,
        run_id=run_id,
        status=status,
        card=card,
        problems=problems,
        live=live,
        recently_changed=recently,
    )


def _newest_change(path: Path) -> float | None:
    times = []
    for p in (path, *(path / n for n in RUN_FILES)):
        try:
            times.append(p.stat().st_mtime)
        except OSError:
            continue
    return max(times) if times else None


def _visible(entry: os.DirEntry[str]) -> bool:
    return not entry.name.startswith(HIDDEN_PREFIX) and entry.is_dir(follow_symlinks=False)


def check_runs_dir(runs_dir: Path) -> Path:
    """`runs_dir` if it is a folder, else a clear error (exit 2)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.exists():
        raise UserInputError(
            f"No runs: `{runs_dir}` does not exist",
            hint="run a pipeline first (`osiris run PIPELINE.yaml`), or give the runs folder with `--runs-dir`",
        )
    if not runs_dir.is_dir():
        raise UserInputError(f"`{runs_dir}` is not a folder; `--runs-dir` names the folder runs are written to")
    return runs_dir


def pipelines(runs_dir: Path) -> list[str]:
    """The pipelines that have a folder of runs in `runs_dir`."""
    try:
        return sorted(e.name for e in os.scandir(runs_dir) if _visible(e))
    except OSError:
        return []


def scan_runs(runs_dir: Path, pipeline: str | None = None, *, now: float | None = None) -> list[RunRecord]:
    """Every run under `runs_dir` (of one pipeline, if given), oldest first."""
    runs_dir = check_runs_dir(runs_dir)
    names = pipelines(runs_dir)
    if pipeline is not None:
        if pipeline not in names:
            close = difflib.get_close_matches(pipeline, names, n=3)
            raise UserInputError(
                f"No runs of pipeline `{pipeline}` in `{runs_dir}`",
                hint=(f"did you mean {_or(close)}?" if close else None)
                or (f"pipelines with runs: {', '.join(names)}" if names else "no pipeline has run here yet"),
            )
        names = [pipeline]
    open_files = open_files_under(runs_dir)
    records = []
    for name in names:
        try:
            entries = [e for e in os.scandir(runs_dir / name) if _visible(e)]
        except OSError:
            continue
        for entry in entries:
            records.append(load_run(Path(entry.path), open_files=open_files, now=now))
    return sorted(records, key=lambda r: (r.sort_time, r.run_id))


def _or(names: list[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


LATEST = "latest"


def resolve_run(runs_dir: Path, ref: str) -> RunRecord:
    """The run `ref` names: a run id, a unique prefix of one, `PIPELINE/RUN_ID`, `latest`,
    `PIPELINE/latest`, or the path of a run directory; a clear error (exit 2) otherwise."""
    ref = ref.strip()
    if not ref:
        raise UserInputError("Give a run id (see `osiris runs list`)")
    as_path = Path(ref)
    if ("/" in ref or os.sep in ref) and as_path.is_dir() and any((as_path / n).exists() for n in RUN_FILES):
        return load_run(as_path)
    runs_dir = check_runs_dir(runs_dir)
    pipeline: str | None = None
    wanted = ref
    if "/" in ref:
        pipeline, _, wanted = ref.rstrip("/").rpartition("/")
        pipeline = pipeline.rpartition("/")[2]
        if pipeline not in pipelines(runs_dir):
            raise _unknown(runs_dir, ref, scan_runs(runs_dir))
    records = scan_runs(runs_dir, pipeline)
    if wanted == LATEST:
        if not records:
            raise UserInputError(f"No runs in `{runs_dir}`" + (f" of pipeline `{pipeline}`" if pipeline else ""))
        return records[-1]
    exact = [r for r in records if r.run_id == wanted]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise _ambiguous(ref, exact, runs_dir)
    prefixed = [r for r in records if r.run_id.startswith(wanted)]
    if len(prefixed) == 1:
        return prefixed[0]
    if len(prefixed) > 1:
        raise _ambiguous(ref, prefixed, runs_dir)
    raise _unknown(runs_dir, ref, records)


def _ambiguous(ref: str, matches: list[RunRecord], runs_dir: Path) -> UserInputError:
    shown = [m.ref for m in matches[-10:]]
    more = f" (and {len(matches) - 10} more)" if len(matches) > 10 else ""
    return UserInputError(
        f"Run id `{ref}` is ambiguous in `{runs_dir}`: it matches {len(matches)} runs: {', '.join(shown)}{more}",
        hint="give more characters of the run id, or PIPELINE/RUN_ID",
    )


def _unknown(runs_dir: Path, ref: str, records: list[RunRecord]) -> UserInputError:
    ids = [r.run_id for r in records]
    wanted = ref.rpartition("/")[2]
    close = difflib.get_close_matches(wanted, ids, n=3, cutoff=0.6)
    names = pipelines(runs_dir)
    if ref in names:
        hint = f"`{ref}` is a pipeline; `osiris runs list {ref}` lists its runs, `{ref}/latest` is its newest"
    elif close:
        hint = f"did you mean {_or(close)}?"
    elif records:
        hint = "`osiris runs list` shows the run ids"
    else:
        hint = "no run has been recorded there yet"
    return UserInputError(f"No run `{ref}` in `{runs_dir}`", hint=hint)
