from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from osiris.core.errors import TerminalError
from osiris.runtime.io import DataHasher, as_batches, data_sha256, write_parquet_atomic


def table(n: int = 100_000) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(n)),
            "name": pa.array([None if i % 7 == 0 else f"n{i}" for i in range(n)]),
            "amount": pa.array([None if i % 5 == 0 else i / 4 for i in range(n)]).cast(pa.decimal128(12, 2)),
            "day": pa.array([None if i % 3 == 0 else i % 1000 for i in range(n)], pa.int32()).cast(pa.date32()),
        }
    )


def test_hash_ignores_encoding_compression_and_row_groups(tmp_path: Path) -> None:
    t = table()
    pq.write_table(t, tmp_path / "a.parquet", compression="snappy", row_group_size=9_999)
    pq.write_table(t, tmp_path / "b.parquet", compression="zstd", row_group_size=70_000, use_dictionary=False)
    schema, batches = as_batches(t.to_batches(max_chunksize=3_333), step_id="s")
    write_parquet_atomic(tmp_path / "c.parquet", schema, batches, step_id="s", compression="none")
    hashes = {data_sha256(tmp_path / f"{n}.parquet") for n in "abc"}
    assert len(hashes) == 1


def test_hash_computed_while_writing_equals_the_hash_of_the_file(tmp_path: Path) -> None:
    t = table()
    hasher = DataHasher(t.schema)
    schema, batches = as_batches(t.to_batches(max_chunksize=7_777), step_id="s")
    write_parquet_atomic(tmp_path / "out.parquet", schema, batches, step_id="s", hasher=hasher)
    assert hasher.hexdigest() == data_sha256(tmp_path / "out.parquet")
    assert pq.read_table(tmp_path / "out.parquet").equals(t)


def test_hash_changes_with_data_order_and_schema(tmp_path: Path) -> None:
    t = table(1000)
    pq.write_table(t, tmp_path / "a.parquet")
    pq.write_table(t.slice(1), tmp_path / "b.parquet")
    pq.write_table(t.rename_columns(["id", "name2", "amount", "day"]), tmp_path / "c.parquet")
    pq.write_table(t.take(list(range(999, -1, -1))), tmp_path / "d.parquet")
    assert len({data_sha256(tmp_path / f"{n}.parquet") for n in "abcd"}) == 4


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    t = table(10)

    def broken():
        yield t.to_batches()[0]
        raise RuntimeError("boom")

    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError):
        write_parquet_atomic(target, t.schema, broken(), step_id="s")
    assert list(tmp_path.iterdir()) == []


def test_unknown_return_type_is_a_clear_error() -> None:
    with pytest.raises(TerminalError, match="expected a pyarrow Table"):
        as_batches(42, step_id="s")


def _pool_in_fresh_process(env_pool: str | None) -> str:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if env_pool:
        env["ARROW_DEFAULT_MEMORY_POOL"] = env_pool
    code = "from osiris.runtime.io import use_lean_memory_pool; print(use_lean_memory_pool())"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_runs_use_jemalloc_unless_the_user_chose_a_pool() -> None:
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        expected = pa.default_memory_pool().backend_name  # a pyarrow built without jemalloc keeps its default
    else:
        expected = "jemalloc"
    assert _pool_in_fresh_process(None) == expected
    assert _pool_in_fresh_process("system") == "system"
