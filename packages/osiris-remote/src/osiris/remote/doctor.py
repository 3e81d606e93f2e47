"""`osiris-remote doctor`: is this environment (host or sandbox) able to run Osiris steps?

Checks Python, the installed osiris distributions and their versions, every
discovered component's driver and declared imports, and runs a small Arrow
(Parquet round trip) and DuckDB (SQL over an Arrow table) self-test.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MIN_PYTHON = (3, 11)


def _check(name: str, ok: bool, detail: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail, **extra}


def check_python() -> dict[str, Any]:
    """Python is new enough."""
    ok = sys.version_info >= MIN_PYTHON
    want = ".".join(map(str, MIN_PYTHON))
    return _check("python", ok, f"{platform.python_version()} at {sys.executable}" + ("" if ok else f"; need {want}+"))


def check_distributions() -> dict[str, Any]:
    """Which osiris distributions are installed, with versions and code hashes."""
    from osiris.remote.dists import distribution_sha256, installed

    dists = {name: {"version": v, "sha256": distribution_sha256(name)} for name, v in installed().items()}
    missing = [d for d in ("osiris-core", "osiris-runtime") if d not in dists]
    detail = ", ".join(f"{n} {d['version']}" for n, d in dists.items())
    if missing:
        detail += f"; missing: {', '.join(missing)}"
    return _check("distributions", not missing, detail, distributions=dists)


def check_drivers() -> dict[str, Any]:
    """Every discovered component: its driver class imports and its declared imports are present."""
    from osiris.core.discovery import ComponentRegistry

    registry = ComponentRegistry.discover()
    drivers: dict[str, Any] = {}
    for comp in registry.all():
        target = comp.spec.x_runtime.driver
        missing = []
        for module in comp.spec.x_runtime.requirements.imports:
            try:
                if importlib.util.find_spec(module) is None:
                    missing.append(module)
            except (ImportError, ValueError):
                missing.append(module)
        error = None
        module_name, _, attr = target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as exc:  # report every broken driver, not only the first
            error = f"{type(exc).__name__}: {exc}"
        drivers[comp.name] = {
            "distribution": f"{comp.distribution} {comp.version}",
            "driver": target,
            "missing_imports": missing,
            "error": error,
            "ok": not missing and error is None,
        }
    failures = [f"{f.distribution}: {f.error}" for f in registry.failures]
    failures += [message for _name, _providers, message in registry.clashes()]  # as compile reports them
    bad = sorted(n for n, d in drivers.items() if not d["ok"])
    ok = not bad and not failures
    detail = f"{len(drivers) - len(bad)}/{len(drivers)} drivers importable"
    if bad:
        detail += f"; broken: {', '.join(bad)}"
    return _check("drivers", ok, detail, drivers=drivers, provider_failures=failures)


def check_arrow() -> dict[str, Any]:
    """pyarrow writes and reads back a Parquet file."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        return _check("arrow", False, f"pyarrow cannot be imported: {exc}")
    table = pa.table({"id": [1, 2, 3], "name": ["a", "b", None]})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.parquet"
        pq.write_table(table, path)
        back = pq.read_table(path)
    ok = back.equals(table)
    return _check("arrow", ok, f"pyarrow {pa.__version__}: Parquet round trip {'ok' if ok else 'differs'}")


def check_duckdb() -> dict[str, Any]:
    """DuckDB runs SQL over an Arrow table (skipped, not failed, when no installed driver needs it)."""
    if importlib.util.find_spec("duckdb") is None:
        return _check("duckdb", True, "not installed (no driver here needs it)", skipped=True)
    import duckdb
    import pyarrow as pa

    input_df = pa.table({"x": [1, 2, 3, 4]})  # noqa: F841 - DuckDB finds it by name
    con = duckdb.connect()
    try:
        total = con.execute("SELECT sum(x) FROM input_df").fetchone()[0]
    finally:
        con.close()
    ok = total == 10
    return _check("duckdb", ok, f"duckdb {duckdb.__version__}: SQL over Arrow {'ok' if ok else f'gave {total}'}")


def run_doctor() -> dict[str, Any]:
    """Run every check; `ok` is true when all pass."""
    start = time.perf_counter()
    checks = []
    for fn in (check_python, check_distributions, check_drivers, check_arrow, check_duckdb):
        try:
            checks.append(fn())
        except Exception as exc:  # a crashing check is a failed check, reported with the others
            checks.append(_check(fn.__name__.removeprefix("check_"), False, f"{type(exc).__name__}: {exc}"))
    return {
        "ok": all(c["ok"] for c in checks),
        "checks": checks,
        "duration_ms": round((time.perf_counter() - start) * 1000, 1),
    }


def format_report(report: dict[str, Any]) -> str:
    """The doctor's report as lines for a person."""
    lines = []
    for c in report["checks"]:
        mark = "ok  " if c["ok"] else "FAIL"
        lines.append(f"[{mark}] {c['name']}: {c['detail']}")
        for name, d in (c.get("drivers") or {}).items():
            if not d["ok"]:
                why = d["error"] or f"missing imports: {', '.join(d['missing_imports'])}"
                lines.append(f"         {name} ({d['distribution']}): {why}")
        for f in c.get("provider_failures") or []:
            lines.append(f"         provider failed: {f}")
    lines.append("all checks passed" if report["ok"] else "some checks failed")
    return "\n".join(lines)
