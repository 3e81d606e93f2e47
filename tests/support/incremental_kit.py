"""One incremental pipeline over throwaway MariaDB and PostgreSQL databases, for the incremental tests.

`Incremental` writes the pipeline (a `mysql.extractor` with an `incremental` block into a
`supabase.writer` upserting on `id`), compiles it, runs it on the host in this process (or as
`osiris run` in a subprocess), and reads the source, the target and the stored watermark, so a
test says what changes between runs and checks that the target equals the source after each one.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from databases import Database
from osiris_cli import OSIRIS


@dataclass
class Incremental:
    """A source table `items` in MariaDB, its copy in PostgreSQL, and the pipeline between them."""

    src: Database
    dst: Database
    work: Path
    incremental: dict[str, Any] = field(default_factory=lambda: {"cursor": "updated_at"})
    writer: dict[str, Any] = field(default_factory=dict)
    extractor: dict[str, Any] = field(default_factory=lambda: {"table": "items"})
    name: str = "items_sync"
    column: str = "updated_at"  # the source column the cursor reads (compared in source and target)
    _manifest: Path | None = None

    def __post_init__(self) -> None:
        self.my = self.src.connect()
        self.pg = self.dst.connect()
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "osiris_connections.yaml").write_text(
            yaml.safe_dump(
                {
                    "connections": {
                        "mysql": {"default": {**self.src.connection, "password": ""}},
                        "supabase": {"default": {**self.dst.connection, "password": "", "sslmode": "disable"}},
                    }
                }
            )
        )

    # -- the pipeline ----------------------------------------------------------------------------

    def pipeline(self) -> dict[str, Any]:
        """The OML of the pipeline as it is configured now."""
        return {
            "oml_version": "0.1.0",
            "name": self.name,
            "steps": [
                {
                    "id": "extract",
                    "component": "mysql.extractor",
                    "mode": "read",
                    "config": {"connection": "@mysql.default", **self.extractor, "incremental": self.incremental},
                },
                {
                    "id": "load",
                    "component": "supabase.writer",
                    "mode": "write",
                    "needs": ["extract"],
                    "config": {
                        "connection": "@supabase.default",
                        "table": "items",
                        "write_mode": "upsert",
                        "primary_key": "id",
                        "create_if_missing": True,
                        **self.writer,
                    },
                },
            ],
        }

    def manifest(self) -> Path:
        """Compile the pipeline (again when its config changed); the manifest's path."""
        from osiris.compiler.compiler import compile_to_build

        path = self.work / "pipeline.yaml"
        path.write_text(yaml.safe_dump(self.pipeline(), sort_keys=False))
        out = compile_to_build(path, self.work / "build", connections_file=self.work / "osiris_connections.yaml")
        self._manifest = out.manifest_path
        return out.manifest_path

    def run(self, *, full_refresh: bool = False, expect: int = 0, sandbox: str | None = None) -> dict[str, Any]:
        """Run on the host, in this process, or in a `local` sandbox; the run card (the exit code must be `expect`)."""
        from osiris.runtime.cli import run_on_host

        conns = self.work / "osiris_connections.yaml"
        if sandbox == "local":
            from osiris.remote.plugins import local_plugin
            from osiris.runtime.sandbox_api import SandboxOptions

            options = SandboxOptions(name="local", full_refresh=full_refresh)
            result = local_plugin(self.manifest(), options, connections_file=conns, runs_dir=self.work / "runs")
        else:
            result = run_on_host(
                self.manifest(), runs_dir=self.work / "runs", connections_file=conns, full_refresh=full_refresh
            )
        card = json.loads((result.run_dir / "run_card.json").read_text())
        assert result.exit_code == expect, card.get("error")
        return card

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """`osiris run` of the compiled pipeline in a subprocess (`--json`)."""
        manifest = self.manifest()
        return subprocess.Popen(
            [*OSIRIS, "run", str(manifest), "--json", "--connections", "osiris_connections.yaml", *args],
            cwd=self.work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    # -- what is where ---------------------------------------------------------------------------

    def mysql(self, *statements: str) -> None:
        """Run statements on the source (autocommit)."""
        with self.my.cursor() as cur:
            for sql in statements:
                cur.execute(sql)

    def source(self) -> list[tuple[Any, ...]]:
        """The source rows as (id, name, cursor), sorted."""
        with self.my.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            cur.execute(f"SELECT id, name, {self.column} FROM items ORDER BY id")
            return [(int(i), n, _plain(c)) for i, n, c in cur.fetchall()]

    def target(self) -> list[tuple[Any, ...]]:
        """The target rows as (id, name, cursor), sorted (empty when the table is missing)."""
        with self.pg.cursor() as cur:
            cur.execute("SELECT to_regclass('public.items') IS NOT NULL")
            if not cur.fetchone()[0]:
                return []
            cur.execute(f"SELECT id, name, {self.column} FROM items ORDER BY id")
            return [(int(i), n, _plain(c)) for i, n, c in cur.fetchall()]

    def state(self) -> dict[str, Any] | None:
        """The stored state row of the pipeline (watermark, version), or None."""
        with self.pg.cursor() as cur:
            cur.execute("SELECT to_regclass('public._osiris_state') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            cur.execute("SELECT watermark, version FROM _osiris_state WHERE pipeline = %s", (self.name,))
            row = cur.fetchone()
            return None if row is None else {"watermark": row[0], "version": row[1]}


def _plain(value: Any) -> Any:
    """A cursor value comparable across the servers: aware datetimes as naive UTC, numbers as int."""
    from datetime import UTC, datetime
    from decimal import Decimal

    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def step(card: dict[str, Any], step_id: str) -> dict[str, Any]:
    """One step of a run card."""
    return next(s for s in card["steps"] if s["id"] == step_id)


def window(card: dict[str, Any]) -> dict[str, Any]:
    """The extractor's incremental facts of a run card (low, high, watermark before/after)."""
    return step(card, "extract")["facts"]["incremental"]
