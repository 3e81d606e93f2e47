"""Every type each side can produce, with values and what PostgreSQL must hold afterwards.

One catalog for the tests that load these types for real (MariaDB, DuckDB, PostgreSQL) and for
`scripts/type_mapping.py`, which prints the mapping the drivers' own code gives for each of them
into docs/type-mapping.md. A case either maps to an exact PostgreSQL type (`pg`, as
`format_type` spells it, and `back`, the values psycopg2 reads from the table) or is refused
(`refused`: a fragment of the error).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

UTC = dt.UTC
D = Decimal


@dataclass(frozen=True)
class ArrowCase:
    """An Arrow column as it can reach `supabase.writer` in a Parquet file."""

    name: str
    arrow: Callable[[], Any]  # -> pyarrow.Field (so importing this module needs no pyarrow)
    values: list[Any] = field(default_factory=list)
    pg: str | None = None
    back: list[Any] | None = None  # None: the same as `values`
    refused: str | None = None  # the type is refused, the message contains this
    parquet: bool = True  # False: Parquet cannot hold the type (only a driver returning it directly)
    label: str | None = None  # how the docs name the type (default: the Arrow type)

    def field(self) -> Any:
        """The Arrow field (named after the case)."""
        import pyarrow as pa

        f = self.arrow()
        if isinstance(f, pa.DataType):
            f = pa.field(self.name, f)
        return f.with_name(self.name)

    def array(self) -> Any:
        """The values as an Arrow array of the case's type."""
        import pyarrow as pa

        f = self.field()
        if isinstance(f.type, pa.BaseExtensionType):
            return pa.ExtensionArray.from_storage(f.type, pa.array(self.values, f.type.storage_type))
        if pa.types.is_float16(f.type):
            import numpy as np

            return pa.array(np.array(self.values, dtype=np.float16))
        return pa.array(self.values, f.type)

    @property
    def expected(self) -> list[Any]:
        """What PostgreSQL must return for the values."""
        return self.values if self.back is None else self.back


def _f(typ: Callable[[], Any], **meta: str) -> Callable[[], Any]:
    """A field factory with `osiris.*` metadata."""

    def make() -> Any:
        import pyarrow as pa

        return pa.field("x", typ(), metadata={f"osiris.{k}": v for k, v in meta.items()})

    return make


def _pa(name: str, *args: Any, **kw: Any) -> Callable[[], Any]:
    def make() -> Any:
        import pyarrow as pa

        return getattr(pa, name)(*args, **kw)

    return make


def _nested(build: Callable[[Any], Any]) -> Callable[[], Any]:
    def make() -> Any:
        import pyarrow as pa

        return build(pa)

    return make


TS = dt.datetime(2024, 2, 29, 23, 59, 58, 123456)
U = uuid.UUID("a717686c-bcdf-4f1f-a9d5-614f9fe87782")

ARROW_CASES: list[ArrowCase] = [
    ArrowCase("bool", _pa("bool_"), [True, False, None], "boolean"),
    ArrowCase("int8", _pa("int8"), [-128, 127], "smallint"),
    ArrowCase("int16", _pa("int16"), [-32768, 32767], "smallint"),
    ArrowCase("int32", _pa("int32"), [-(2**31), 2**31 - 1], "integer"),
    ArrowCase("int64", _pa("int64"), [-(2**63), 2**63 - 1], "bigint"),
    ArrowCase("uint8", _pa("uint8"), [0, 255], "smallint"),
    ArrowCase("uint16", _pa("uint16"), [0, 65535], "integer"),
    ArrowCase("uint32", _pa("uint32"), [0, 2**32 - 1], "bigint"),
    ArrowCase("uint64", _pa("uint64"), [0, 2**64 - 1], "numeric(20,0)", [D(0), D(2**64 - 1)]),
    ArrowCase("float16", _pa("float16"), [1.5, -65504.0], "real"),
    ArrowCase("float32", _pa("float32"), [1.5, 3.4028234663852886e38], "real"),
    ArrowCase("float64", _pa("float64"), [0.1, 1.7976931348623157e308, 5e-324], "double precision"),
    ArrowCase("decimal_9_2", _pa("decimal128", 9, 2), [D("-1234567.89"), D("0.01")], "numeric(9,2)"),
    ArrowCase(
        "decimal_38_10", _pa("decimal128", 38, 10), [D("1234567890123456789012345678.1234567890")], "numeric(38,10)"
    ),
    ArrowCase(
        "decimal_65_30",
        _pa("decimal256", 65, 30),
        [D("12345678901234567890123456789012345.123456789012345678901234567890")],
        "numeric(65,30)",
    ),
    ArrowCase("decimal_76_0", _pa("decimal256", 76, 0), [D("9" * 76)], "numeric(76,0)"),
    ArrowCase("decimal_5_neg2", _pa("decimal128", 5, -2), [D("1234500")], "numeric(5,-2)", parquet=False),
    ArrowCase("string", _pa("string"), ["héllo ☃", "", None], "text"),
    ArrowCase("large_string", _pa("large_string"), ["large"], "text"),
    ArrowCase("string_view", _pa("string_view"), ["view"], "text"),
    ArrowCase("varchar_5", _f(_pa("string"), sql_type="varchar(5)"), ["ab", "abcde"], "character varying(5)"),
    ArrowCase("char_3", _f(_pa("string"), sql_type="char(3)"), ["ab", "abc"], "character(3)", ["ab ", "abc"]),
    ArrowCase(
        "json_text",
        _f(_pa("string"), sql_type="json"),
        ['{"b": [1, 2.5], "a": null}'],
        "jsonb",
        [{"a": None, "b": [1, 2.5]}],
    ),
    ArrowCase("uuid_text", _f(_pa("string"), sql_type="uuid"), [str(U)], "uuid"),
    ArrowCase(
        "interval_text",
        _f(_pa("string"), sql_type="interval"),
        ["1 mon 2 days 00:00:03"],
        "interval",
        [dt.timedelta(days=32, seconds=3)],
    ),
    ArrowCase("numeric_text", _f(_pa("string"), sql_type="numeric"), ["1" + "0" * 50], "numeric", [D("1" + "0" * 50)]),
    ArrowCase("varbit_text", _f(_pa("string"), sql_type="varbit"), ["1011"], "bit varying"),
    ArrowCase("bit_5", _f(_pa("uint64"), sql_type="bit(5)"), [0, 21, 31], "bit(5)", ["00000", "10101", "11111"]),
    ArrowCase("binary", _pa("binary"), [b"\x00\xff", b""], "bytea"),
    ArrowCase("large_binary", _pa("large_binary"), [b"\x01"], "bytea"),
    ArrowCase("fixed_binary_3", _pa("binary", 3), [b"abc"], "bytea"),
    ArrowCase("binary_view", _pa("binary_view"), [b"v"], "bytea"),
    ArrowCase("date32", _pa("date32"), [dt.date(1, 1, 1), dt.date(9999, 12, 31)], "date"),
    ArrowCase("date64", _pa("date64"), [dt.date(2024, 2, 29)], "date"),
    ArrowCase("timestamp_s", _pa("timestamp", "s"), [TS.replace(microsecond=0)], "timestamp without time zone"),
    ArrowCase("timestamp_ms", _pa("timestamp", "ms"), [TS.replace(microsecond=123000)], "timestamp without time zone"),
    ArrowCase("timestamp_us", _pa("timestamp", "us"), [TS, dt.datetime(1, 1, 1)], "timestamp without time zone"),
    ArrowCase(
        "timestamp_ns", _pa("timestamp", "ns"), [TS], "timestamp without time zone", label="timestamp[ns] (whole µs)"
    ),
    ArrowCase("timestamptz", _pa("timestamp", "us", tz="UTC"), [TS.replace(tzinfo=UTC)], "timestamp with time zone"),
    ArrowCase(
        "timestamptz_berlin",
        _pa("timestamp", "us", tz="Europe/Berlin"),
        [TS.replace(tzinfo=UTC)],
        "timestamp with time zone",
    ),
    ArrowCase("time32_s", _pa("time32", "s"), [dt.time(23, 59, 59)], "time without time zone"),
    ArrowCase("time32_ms", _pa("time32", "ms"), [dt.time(0, 0, 0, 1000)], "time without time zone"),
    ArrowCase("time64_us", _pa("time64", "us"), [dt.time(12, 34, 56, 789012)], "time without time zone"),
    ArrowCase(
        "time64_ns",
        _pa("time64", "ns"),
        [dt.time(12, 34, 56, 789012)],
        "time without time zone",
        label="time64[ns] (whole µs)",
    ),
    ArrowCase("duration_s", _pa("duration", "s"), [dt.timedelta(hours=838, minutes=59, seconds=59)], "interval"),
    ArrowCase("duration_ms", _pa("duration", "ms"), [dt.timedelta(milliseconds=-1500)], "interval"),
    ArrowCase("duration_us", _pa("duration", "us"), [dt.timedelta(hours=-12, microseconds=-500000)], "interval"),
    ArrowCase(
        "duration_ns",
        _pa("duration", "ns"),
        [dt.timedelta(microseconds=7)],
        "interval",
        label="duration[ns] (whole µs)",
    ),
    ArrowCase(
        "month_day_nano",
        _pa("month_day_nano_interval"),
        [(1, 2, 3000)],
        "interval",
        [dt.timedelta(days=32, microseconds=3)],
        parquet=False,
    ),
    ArrowCase("null", _pa("null"), [None, None], "text"),
    ArrowCase("dictionary", _pa("dictionary", _pa("int32")(), _pa("string")()), ["cat", "dog", "cat"], "text"),
    ArrowCase(
        "struct",
        _nested(
            lambda pa: pa.struct(
                [("a", pa.int64()), ("b", pa.string()), ("c", pa.decimal128(5, 2)), ("d", pa.list_(pa.float64()))]
            )
        ),
        [{"a": 1, "b": "x", "c": D("1.25"), "d": [0.1, 2.0]}],
        "jsonb",
        [{"a": 1, "b": "x", "c": D("1.25"), "d": [D("0.1"), D("2.0")]}],
    ),
    ArrowCase("list", _nested(lambda pa: pa.list_(pa.int64())), [[1, None, 3], []], "jsonb"),
    ArrowCase("large_list", _nested(lambda pa: pa.large_list(pa.string())), [["a"]], "jsonb"),
    ArrowCase("fixed_size_list", _nested(lambda pa: pa.list_(pa.int32(), 2)), [[1, 2]], "jsonb"),
    ArrowCase(
        "map_text_keys",
        _nested(lambda pa: pa.map_(pa.string(), pa.int64())),
        [[("k", 1), ("j", 2)]],
        "jsonb",
        [{"k": 1, "j": 2}],
    ),
    ArrowCase(
        "nested_dates",
        _nested(lambda pa: pa.struct([("d", pa.date32()), ("t", pa.timestamp("us", tz="UTC")), ("b", pa.binary())])),
        [{"d": dt.date(2024, 1, 2), "t": TS.replace(tzinfo=UTC), "b": b"\x01"}],
        "jsonb",
        [{"d": "2024-01-02", "t": "2024-02-29T23:59:58.123456+00:00", "b": "\\x01"}],
    ),
    ArrowCase("uuid_ext", _pa("uuid"), [U.bytes], "uuid", [str(U)]),
    ArrowCase("json_ext", _pa("json_"), ['{"a": 1}'], "jsonb", [{"a": 1}]),
    # refused
    ArrowCase(
        "map_int_keys", _nested(lambda pa: pa.map_(pa.int32(), pa.string())), [[(1, "a")]], refused="keys must be text"
    ),
    ArrowCase(
        "sparse_union",
        _nested(lambda pa: pa.sparse_union([pa.field("i", pa.int32()), pa.field("s", pa.string())])),
        refused="a union has no PostgreSQL type",
        parquet=False,
    ),
    ArrowCase(
        "dense_union",
        _nested(lambda pa: pa.dense_union([pa.field("i", pa.int32()), pa.field("s", pa.string())])),
        refused="a union has no PostgreSQL type",
        parquet=False,
    ),
    ArrowCase(
        "struct_repeated_names",
        _nested(lambda pa: pa.struct([("a", pa.int32()), ("a", pa.string())])),
        refused="repeated field names",
    ),
    ArrowCase(
        "list_of_ns_timestamps",
        _nested(lambda pa: pa.list_(pa.timestamp("ns"))),
        refused="nanosecond",
    ),
    ArrowCase(
        "opaque_extension",
        _nested(
            lambda pa: pa.field(
                "x",
                pa.binary(),
                metadata={
                    "ARROW:extension:name": "arrow.opaque",
                    "ARROW:extension:metadata": '{"type_name": "bignum", "vendor_name": "DuckDB"}',
                },
            )
        ),
        refused="extension type `arrow.opaque`",
        label="extension<arrow.opaque> (e.g. DuckDB BIGNUM)",
    ),
    ArrowCase(
        "run_end_encoded",
        _nested(lambda pa: pa.run_end_encoded(pa.int32(), pa.string())),
        refused="run-end encoded",
        parquet=False,
    ),
]

# Values a mappable type still refuses, one by one: (case name, type factory, values, message fragment).
ARROW_VALUE_REFUSALS: list[tuple[str, Callable[[], Any], list[Any], str]] = [
    ("timestamp_ns_fraction", _pa("timestamp", "ns"), [1_000, 1_001], "would lose data: 1001"),
    ("time_ns_fraction", _pa("time64", "ns"), [1_001], "PostgreSQL keeps microseconds"),
    ("duration_ns_fraction", _pa("duration", "ns"), [1_001], "PostgreSQL keeps microseconds"),
    ("list_nan", _nested(lambda pa: pa.list_(pa.float64())), [[float("nan")]], "JSON has no number for `nan`"),
    ("map_repeated_key", _nested(lambda pa: pa.map_(pa.string(), pa.int32())), [[("k", 1), ("k", 2)]], "repeats a key"),
]
