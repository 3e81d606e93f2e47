import datetime as dt
import decimal
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from osiris.core.errors import TerminalError
from osiris.runtime.io import DataHasher, as_batches, data_sha256, statistics_columns, write_parquet_atomic


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


def many_types(n: int = 5000) -> pa.Table:
    """One column per Arrow type drivers produce, every fourth value null: a fixed table, fixed digests."""

    def vals(f):
        return [None if i % 4 == 3 else f(i) for i in range(n)]

    day, ts = dt.date(2020, 1, 1), dt.datetime(2021, 3, 4, 5, 6, 7)
    return pa.table(
        {
            "i8": pa.array(vals(lambda i: i % 127 - 60), pa.int8()),
            "i16": pa.array(vals(lambda i: i * 7 % 30000), pa.int16()),
            "i32": pa.array(vals(lambda i: i * 7919), pa.int32()),
            "i64": pa.array(vals(lambda i: i * 10**12), pa.int64()),
            "u8": pa.array(vals(lambda i: i % 255), pa.uint8()),
            "u64": pa.array(vals(lambda i: 2**63 + i), pa.uint64()),
            "f32": pa.array(vals(lambda i: i / 3), pa.float32()),
            "f64": pa.array(vals(lambda i: i / 7 - 100.5), pa.float64()),
            "dec": pa.array(vals(lambda i: decimal.Decimal(i) / 100), pa.decimal128(12, 2)),
            "dec38": pa.array(vals(lambda i: decimal.Decimal(10**30 + i)), pa.decimal128(38, 0)),
            "bool": pa.array(vals(lambda i: i % 3 == 0), pa.bool_()),
            "date": pa.array(vals(lambda i: day + dt.timedelta(days=i)), pa.date32()),
            "ts_us": pa.array(vals(lambda i: ts + dt.timedelta(seconds=i)), pa.timestamp("us")),
            "ts_tz": pa.array(vals(lambda i: ts + dt.timedelta(minutes=i)), pa.timestamp("us", tz="UTC")),
            "ts_ns": pa.array(vals(lambda i: ts + dt.timedelta(microseconds=i)), pa.timestamp("ns")),
            "time": pa.array(vals(lambda i: dt.time(i % 24, i % 60, i % 60)), pa.time64("us")),
            "dur": pa.array(vals(lambda i: dt.timedelta(seconds=i)), pa.duration("us")),
            "str": pa.array(vals(lambda i: f"név-{i}" * (i % 5))),
            "lstr": pa.array(vals(lambda i: f"x{i}"), pa.large_string()),
            "bin": pa.array(vals(lambda i: bytes([i % 256]) * (i % 9)), pa.binary()),
            "fbin": pa.array(vals(lambda i: i.to_bytes(4, "little")), pa.binary(4)),
            "list": pa.array(vals(lambda i: list(range(i % 4))), pa.list_(pa.int32())),
            "struct": pa.array(
                vals(lambda i: {"a": i, "b": str(i)}), pa.struct([("a", pa.int64()), ("b", pa.string())])
            ),
            "nulls": pa.nulls(n),
        }
    )


# `data_sha256` of each column of `many_types()` alone, as osiris-runtime 0.4.0 computed it: a change
# of how the digest is computed must leave every one of these as it is (run cards stay comparable).
PINNED = {
    "i8": "3c3ab0917b6311d181d33cf474e993575a0fddef4bdec067435fa7cd2e740095",
    "i16": "3ce717e150776eeb15182aeaade8251d68537c8fb0a76e857e4ff9598600aa33",
    "i32": "a5b797f29be7aa289794103ee406187cabbf34d202c8a6e900fdf27be4736792",
    "i64": "c5ffef0e18287da8120974d1098b3cd5192000b259100693a714b319a6fca302",
    "u8": "d4e5212d844b30fd2dbfc787cd60264f5cdda4d1612cfb6dd19225dc1d4373e4",
    "u64": "94d5f126cc5c727d946128d8d4628cf05e06e7b242ef64a6c7c70dbe4cff8fd0",
    "f32": "f91cc408b670ffe8dea8688855ef61081fb23a57f7b6a3ba375ad91083d9a643",
    "f64": "22903f8f97733670058ee6d5e51330eed17622b42567e3bc7261282c657f9443",
    "dec": "067dc623c54a14a3571b20c6a6bf8d655abf3cf35e8d50922132e02b735e3ef2",
    "dec38": "a17917e2905b0231223332c342b2d9cea1c8a90a5c5b8060b38e4c4228aa22aa",
    "bool": "c1cabb2158a0d3327283e3a85471e068b7266201949082d82ffa7d850217b31e",
    "date": "19c9c5ce5903cb0b3dbe02b31b881acd62a2ec6e27b9dd9e3b61f53c81ea04de",
    "ts_us": "91f30f87f9a00d95ddc8418d674dd779396e7ed18fa571509f4ef7cf1f96e45d",
    "ts_tz": "848c27cecb383d20474a0e52ef54a4e8dffb0d4a4888f280498bce6f4e56994e",
    "ts_ns": "bc6751067ceb30799511cdc5f156efefb76ca6752d0023f887fb295521a9fe56",
    "time": "26292ba2d59944849d2ce8c669d2831803399ba21c3a4ef853f832d357df6e9b",
    "dur": "be17d0696586f18b530972f82a9af96f90e1d3f38f5e5aaa62743f8276345977",
    "str": "22de4b9e272adcf4f081e5ffd6620ca71ce3d9696e1a8fcf61ddfd8d0d7d0ba8",
    "lstr": "89e3054be60c41fc7d9d258d69fb86e9659f4afa634f07d7eb792fe4f7280557",
    "bin": "71b0fad004036f47620574fb94deb0b21d28450529c26b4f9a126d62c4f1834e",
    "fbin": "da819f71bfadf8fe19e3b6fed157aea15dc7d4f11dc0ffb764939dd18ae27ad7",
    "list": "d14828255f4f45a65d84b5eff5ed43191c2c41d71b7ca75a4f4d1bb6e5096d4e",
    "struct": "4d2d8ca9ae0b5730b007952135f2a43e34e19650b8ccc3c74724fc6f2a8775e5",
    "nulls": "268d8fa881f5112c2ed26bbfc472d8097081f357b53ae63ef9a944e03a5b8681",
}
PINNED_TABLE = "sha256:e967c8da3d8febc563093eadb83ee0045bba905f337475faf8133d587378bc7c"
# Whose bytes under null slots pyarrow's Parquet reader does not fill the same way for every encoding.
NOT_CANONICAL_IN_FILES = {"fbin", "list", "struct"}


@pytest.mark.parametrize("batch_rows", [1, 777, 65536])
def test_digest_of_every_type_is_the_pinned_one_whatever_the_batches(batch_rows: int) -> None:
    t = many_types(500) if batch_rows == 1 else many_types()
    for name in t.column_names if batch_rows != 1 else ["i64", "str", "dec"]:
        column = t.select([name])
        hasher = DataHasher(column.schema)
        for batch in column.to_batches(max_chunksize=batch_rows):
            hasher.update(batch)
        expected = PINNED[name] if batch_rows != 1 else None
        digest = hasher.hexdigest()
        if expected is None:  # 500 rows, one at a time: the digest of the same 500 rows in one batch
            whole = DataHasher(column.schema)
            whole.update(column.to_batches()[0])
            assert digest == whole.hexdigest(), name
        else:
            assert digest == f"sha256:{expected}", name


def test_artifact_written_with_its_hash_keeps_the_pinned_digest_and_the_data(tmp_path: Path) -> None:
    t = many_types()
    hasher = DataHasher(t.schema)
    schema, batches = as_batches(t.to_batches(max_chunksize=333), step_id="s")
    rows = write_parquet_atomic(tmp_path / "out.parquet", schema, batches, step_id="s", hasher=hasher)
    assert rows == t.num_rows
    assert hasher.hexdigest() == PINNED_TABLE
    assert pq.read_table(tmp_path / "out.parquet").equals(t)
    # Read back from files of any encoding, every column whose null slots the reader fills the same way
    # hashes as it did when written.
    canonical = t.drop_columns(sorted(NOT_CANONICAL_IN_FILES))
    expected = DataHasher(canonical.schema)
    expected.update(canonical.combine_chunks().to_batches()[0])
    pq.write_table(canonical, tmp_path / "a.parquet", compression="snappy", row_group_size=1000)
    pq.write_table(canonical, tmp_path / "b.parquet", compression="none", row_group_size=4999)
    schema, batches = as_batches(canonical.to_batches(max_chunksize=2048), step_id="s")
    write_parquet_atomic(tmp_path / "c.parquet", schema, batches, step_id="s")
    assert {data_sha256(tmp_path / f"{n}.parquet") for n in "abc"} == {expected.hexdigest()}


def test_artifacts_keep_statistics_only_where_a_reader_can_prune_by_them(tmp_path: Path) -> None:
    t = table(1000)
    schema, batches = as_batches(t, step_id="s")
    write_parquet_atomic(tmp_path / "out.parquet", schema, batches, step_id="s")
    meta = pq.ParquetFile(tmp_path / "out.parquet").metadata.row_group(0)
    with_stats = {meta.column(i).path_in_schema for i in range(meta.num_columns) if meta.column(i).is_stats_set}
    assert with_stats == set(statistics_columns(t.schema)) == {"id", "amount", "day"}
    assert meta.column(0).statistics.min == 0 and meta.column(0).statistics.max == 999


def test_a_failure_of_the_encoder_thread_fails_the_write_and_leaves_nothing(tmp_path: Path) -> None:
    t = table(1000)
    produced = []

    def batches():
        for batch in t.to_batches(max_chunksize=100):
            produced.append(batch.num_rows)
            yield batch

    target = tmp_path / "out.parquet"
    # A row-group size pyarrow refuses: the error is raised by the encoder thread, then here.
    with pytest.raises(ValueError, match="Row group size"):
        write_parquet_atomic(target, t.schema, batches(), step_id="s", row_group_size=0, hasher=DataHasher(t.schema))
    assert list(tmp_path.iterdir()) == []
    assert sum(produced) < t.num_rows  # the producer stopped soon after, it did not run to the end
    assert not [th for th in threading.enumerate() if th.name.startswith(("osiris-parquet", "osiris-hash"))]


def _canonical_with_pyarrow_compute(arr: pa.Array) -> pa.Array:
    """The null-slot filling as `pyarrow.compute` spells it: the oracle of `_canonical_column`."""
    import pyarrow.compute as pc

    if arr.null_count == 0:
        return arr
    if arr.null_count == len(arr):
        return pa.nulls(len(arr), type=arr.type)
    validity = pc.is_valid(arr)
    filled = pc.fill_null(arr, arr.filter(validity)[0])
    return pa.Array.from_buffers(arr.type, len(arr), [validity.buffers()[1], *filled.buffers()[1:]], arr.null_count)


@pytest.mark.parametrize(
    "arrow_type",
    [
        pa.int8(),
        pa.uint64(),
        pa.float32(),
        pa.float64(),
        pa.decimal128(20, 4),
        pa.decimal256(50, 3),
        pa.bool_(),
        pa.date32(),
        pa.timestamp("us"),
        pa.timestamp("ns", tz="UTC"),
        pa.time64("us"),
        pa.duration("ms"),
    ],
)
def test_null_slots_are_filled_as_pyarrow_compute_fills_them(arrow_type: pa.DataType) -> None:
    """The hash calls Arrow's kernels by name; the bytes must be the ones `pyarrow.compute` gives."""
    import random

    from osiris.runtime.io import _canonical_column

    rng = random.Random(7)
    for _ in range(40):
        n = rng.randint(1, 200)
        share = rng.choice([0.05, 0.5, 0.95, 1.0])
        ints = pa.array([None if rng.random() < share else rng.randint(0, 100) for _ in range(n)], pa.int64())
        # via int32 (dates) and the smallest integer that fits (decimals): casts Arrow accepts
        via = pa.int16() if pa.types.is_decimal(arrow_type) else pa.int32() if arrow_type == pa.date32() else pa.int64()
        arr = ints.cast(via).cast(arrow_type)
        if n > 10 and rng.random() < 0.5:
            arr = arr.slice(rng.randint(0, n // 2), rng.randint(1, n // 2))  # an offset into the buffers
        got = pa.record_batch([_canonical_column(arr)], names=["c"]).serialize()
        want = pa.record_batch([_canonical_with_pyarrow_compute(arr)], names=["c"]).serialize()
        assert got.equals(want)


def test_hashing_does_not_import_pyarrow_compute(tmp_path: Path) -> None:
    """Importing `pyarrow.compute` costs every run about 20 ms of CPU; the hash needs only three kernels."""
    import subprocess
    import sys

    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"n": pa.array([1, None, 3], pa.int32()), "t": pa.array(["a", None, "c"])}), path)
    code = (
        "import sys\n"
        "from osiris.runtime.io import data_sha256\n"
        f"print(data_sha256({str(path)!r}))\n"
        "print('pyarrow.compute' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0].startswith("sha256:") and out[1] == "False"
    assert out[0] == data_sha256(path)
