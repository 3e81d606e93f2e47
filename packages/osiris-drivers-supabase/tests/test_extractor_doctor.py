"""supabase.extractor (psycopg2 channel) and the connection doctor against the real PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from osiris.core.errors import TerminalError

pytestmark = pytest.mark.postgres


def extract(connection: dict[str, Any], tmp_path: Path, **config: Any) -> tuple[Any, list[Any]]:
    """Run the extractor; returns (Arrow table, metrics)."""
    from osiris.drivers.supabase.extractor import SupabaseExtractor
    from osiris.runtime.contract import StepContext

    metrics: list[Any] = []
    ctx = StepContext(step_id="src", output_dir=tmp_path, on_metric=lambda n, v, t: metrics.append((n, v)))
    out = SupabaseExtractor().run(
        step_id="src", config={**config, "resolved_connection": connection}, inputs={}, ctx=ctx
    )
    return out["df"].read_all(), metrics


def test_extract_table_in_batches_with_exact_types(pg: Any, connection: dict[str, Any], tmp_path: Path) -> None:
    import pyarrow as pa

    with pg.cursor() as cur:
        cur.execute(
            "CREATE TABLE src (id bigint, amount numeric(8,2), at timestamptz, d date, doc jsonb, ok boolean, raw bytea)"
        )
        cur.execute(
            "INSERT INTO src SELECT g, g * 1.5, '2024-01-01T00:00:00Z'::timestamptz + g * interval '1 hour', "
            "'2024-01-01'::date + g, jsonb_build_object('n', g), g % 2 = 0, '\\x00ff'::bytea FROM generate_series(1, 2500) g"
        )
    table, metrics = extract(connection, tmp_path, table="src", batch_size=1000)
    assert table.num_rows == 2500 and ("rows_read", 2500) in metrics
    assert table.schema == pa.schema(
        [
            ("id", pa.int64()),
            ("amount", pa.decimal128(8, 2)),
            ("at", pa.timestamp("us", tz="UTC")),
            ("d", pa.date32()),
            ("doc", pa.string()),
            ("ok", pa.bool_()),
            ("raw", pa.binary()),
        ]
    )
    first = table.slice(0, 1).to_pylist()[0]
    assert first["amount"] == Decimal("1.50") and first["d"] == dt.date(2024, 1, 2) and first["raw"] == b"\x00\xff"
    assert first["doc"] == '{"n": 1}'
    q, _ = extract(connection, tmp_path, query="SELECT id FROM src WHERE id <= 10 ORDER BY id")
    assert q.column("id").to_pylist() == list(range(1, 11))
    limited, _ = extract(connection, tmp_path, table="src", columns=["id"], where="id > 2000", limit=5)
    assert limited.num_rows == 5 and limited.column_names == ["id"]


def test_extract_bad_query_is_terminal(connection: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(TerminalError, match="42P01"):
        extract(connection, tmp_path, query="SELECT * FROM no_such_table")


def test_doctor(connection: dict[str, Any]) -> None:
    from osiris.drivers.supabase.doctor import check

    ok = check({**connection, "host": "localhost"}, timeout=5)
    assert ok["ok"] is True and ok["hostaddr"] == "127.0.0.1" and "PostgreSQL" in ok["message"]
    bad = check({**connection, "port": 1, "password": "s3cret-pw"}, timeout=2)
    assert bad["ok"] is False and "127.0.0.1" in bad["message"] and "s3cret-pw" not in bad["message"]
