"""Every type each side can produce, with values and what PostgreSQL must hold afterwards.

One catalog for the tests that load these types for real (MariaDB, DuckDB, PostgreSQL) and for
`scripts/type_mapping.py`, which prints the mapping the drivers' own code gives for each of them
into docs/type-mapping.md. A case either maps to an exact PostgreSQL type (`pg`, as
`format_type` spells it, and `back`, the values psycopg2 reads from the table) or is refused
(`refused`: a fragment of the error).

Long on purpose: it is data, one case per type, read by the tests and the docs alike.
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

# Values a mappable type still refuses, one by one: (case name, type factory, values, message fragment, for the docs).
ARROW_VALUE_REFUSALS: list[tuple[str, Callable[[], Any], list[Any], str, str]] = [
    (
        "timestamp_ns_fraction",
        _pa("timestamp", "ns"),
        [1_000, 1_001],
        "would lose data: 1001",
        "`timestamp[ns]`: a value with a fraction of a microsecond",
    ),
    (
        "time_ns_fraction",
        _pa("time64", "ns"),
        [1_001],
        "PostgreSQL keeps microseconds",
        "`time64[ns]`: a value with a fraction of a microsecond",
    ),
    (
        "duration_ns_fraction",
        _pa("duration", "ns"),
        [1_001],
        "PostgreSQL keeps microseconds",
        "`duration[ns]`: a value with a fraction of a microsecond",
    ),
    (
        "list_nan",
        _nested(lambda pa: pa.list_(pa.float64())),
        [[float("nan")]],
        "JSON has no number for `nan`",
        "nested types (JSON): a float NaN or Infinity",
    ),
    (
        "map_repeated_key",
        _nested(lambda pa: pa.map_(pa.string(), pa.int32())),
        [[("k", 1), ("k", 2)]],
        "repeats a key",
        "maps (JSON objects): a value repeating a key",
    ),
]


# -- MySQL / MariaDB ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MySQLCase:
    """A MariaDB column type: what the server says about it, what the extractor makes of it, what PostgreSQL holds.

    `meta` is the result metadata the server sends for the column over a utf8mb4 connection
    (type code, flags, length, decimals, character set number), checked against the live server;
    `literals` two SQL values inserted (rows 1 and 2; row 3 is NULL); `back` what psycopg2 reads
    from the table `supabase.writer` created. `via_duckdb` is None when `SELECT *` through
    `duckdb.processor` gives the same, else the refusal's message fragment.
    """

    name: str
    decl: str
    meta: tuple[int, int, int, int, int]
    literals: tuple[str, str]
    arrow: str
    pg: str
    back: tuple[Any, Any]
    sql_type: str | None = None
    via_duckdb: str | None = None


_POINT = bytes.fromhex("000000000101000000000000000000f03f0000000000000040")
_PG_TIME_MAX = dt.timedelta(hours=838, minutes=59, seconds=59)

MYSQL_CASES: list[MySQLCase] = [
    MySQLCase("tinyint", "TINYINT", (1, 0, 4, 0, 63), ("-128", "127"), "int8", "smallint", (-128, 127)),
    MySQLCase("tinyint_u", "TINYINT UNSIGNED", (1, 32, 3, 0, 63), ("0", "255"), "uint8", "smallint", (0, 255)),
    MySQLCase("tinyint_1", "TINYINT(1)", (1, 0, 1, 0, 63), ("0", "1"), "bool", "boolean", (False, True)),
    MySQLCase("smallint", "SMALLINT", (2, 0, 6, 0, 63), ("-32768", "32767"), "int16", "smallint", (-32768, 32767)),
    MySQLCase("smallint_u", "SMALLINT UNSIGNED", (2, 32, 5, 0, 63), ("0", "65535"), "uint16", "integer", (0, 65535)),
    MySQLCase(
        "mediumint", "MEDIUMINT", (9, 0, 9, 0, 63), ("-8388608", "8388607"), "int32", "integer", (-8388608, 8388607)
    ),
    MySQLCase(
        "mediumint_u", "MEDIUMINT UNSIGNED", (9, 32, 8, 0, 63), ("0", "16777215"), "uint32", "bigint", (0, 16777215)
    ),
    MySQLCase(
        "int", "INT", (3, 0, 11, 0, 63), ("-2147483648", "2147483647"), "int32", "integer", (-(2**31), 2**31 - 1)
    ),
    MySQLCase("int_u", "INT UNSIGNED", (3, 32, 10, 0, 63), ("0", "4294967295"), "uint32", "bigint", (0, 2**32 - 1)),
    MySQLCase(
        "bigint",
        "BIGINT",
        (8, 0, 20, 0, 63),
        ("-9223372036854775808", "9223372036854775807"),
        "int64",
        "bigint",
        (-(2**63), 2**63 - 1),
    ),
    MySQLCase(
        "bigint_u",
        "BIGINT UNSIGNED",
        (8, 32, 20, 0, 63),
        ("0", "18446744073709551615"),
        "uint64",
        "numeric(20,0)",
        (D(0), D(2**64 - 1)),
    ),
    MySQLCase(
        "decimal_10_2",
        "DECIMAL(10,2)",
        (246, 0, 12, 2, 63),
        ("-99999999.99", "0.01"),
        "decimal128(10, 2)",
        "numeric(10,2)",
        (D("-99999999.99"), D("0.01")),
    ),
    MySQLCase(
        "decimal_10_2_u",
        "DECIMAL(10,2) UNSIGNED",
        (246, 32, 11, 2, 63),
        ("0", "99999999.99"),
        "decimal128(10, 2)",
        "numeric(10,2)",
        (D("0.00"), D("99999999.99")),
    ),
    MySQLCase(
        "decimal_38_10",
        "DECIMAL(38,10)",
        (246, 0, 40, 10, 63),
        ("-9999999999999999999999999999.9999999999", "0.0000000001"),
        "decimal128(38, 10)",
        "numeric(38,10)",
        (D("-9999999999999999999999999999.9999999999"), D("0.0000000001")),
    ),
    MySQLCase(
        "decimal_65_30",
        "DECIMAL(65,30)",
        (246, 0, 67, 30, 63),
        ("12345678901234567890123456789012345.123456789012345678901234567890", "-0.000000000000000000000000000001"),
        "decimal256(65, 30)",
        "numeric(65,30)",
        (
            D("12345678901234567890123456789012345.123456789012345678901234567890"),
            D("-0.000000000000000000000000000001"),
        ),
        via_duckdb="DuckDB's DECIMAL holds at most 38 digits",
    ),
    MySQLCase(
        "decimal_65_0",
        "DECIMAL(65,0)",
        (246, 0, 66, 0, 63),
        ("9" * 65, "-1"),
        "decimal256(65, 0)",
        "numeric(65,0)",
        (D("9" * 65), D(-1)),
        via_duckdb="DuckDB's DECIMAL holds at most 38 digits",
    ),
    MySQLCase(
        "float",
        "FLOAT",
        (4, 0, 12, 31, 63),
        ("0.1", "-3.40282e38"),
        "float",
        "real",
        (0.10000000149011612, -3.402820018375656e38),
    ),
    MySQLCase(
        "double",
        "DOUBLE",
        (5, 0, 22, 31, 63),
        ("0.1", "1.7976931348623157e308"),
        "double",
        "double precision",
        (0.1, 1.7976931348623157e308),
    ),
    MySQLCase("bit_1", "BIT(1)", (16, 32, 1, 0, 63), ("b'0'", "b'1'"), "bool", "boolean", (False, True)),
    MySQLCase(
        "bit_5",
        "BIT(5)",
        (16, 32, 5, 0, 63),
        ("b'10101'", "b'00001'"),
        "uint64",
        "bit(5)",
        ("10101", "00001"),
        sql_type="bit(5)",
    ),
    MySQLCase(
        "bit_64",
        "BIT(64)",
        (16, 32, 64, 0, 63),
        ("b'" + "1" * 64 + "'", "b'0'"),
        "uint64",
        "bit(64)",
        ("1" * 64, "0" * 64),
        sql_type="bit(64)",
    ),
    MySQLCase(
        "date",
        "DATE",
        (10, 128, 10, 0, 63),
        ("'1000-01-01'", "'9999-12-31'"),
        "date32[day]",
        "date",
        (dt.date(1000, 1, 1), dt.date(9999, 12, 31)),
    ),
    MySQLCase(
        "datetime",
        "DATETIME",
        (12, 128, 19, 0, 63),
        ("'1000-01-01 00:00:00'", "'9999-12-31 23:59:59'"),
        "timestamp[us]",
        "timestamp without time zone",
        (dt.datetime(1000, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59)),
    ),
    MySQLCase(
        "datetime_6",
        "DATETIME(6)",
        (12, 128, 26, 6, 63),
        ("'2024-02-29 23:59:59.999999'", "'1970-01-01 00:00:00.000001'"),
        "timestamp[us]",
        "timestamp without time zone",
        (dt.datetime(2024, 2, 29, 23, 59, 59, 999999), dt.datetime(1970, 1, 1, 0, 0, 0, 1)),
    ),
    MySQLCase(
        "timestamp_6",
        "TIMESTAMP(6) NULL",
        (7, 160, 26, 6, 63),
        ("'2038-01-19 03:14:07.999999'", "'1970-01-01 00:00:01.000001'"),
        "timestamp[us, tz=UTC]",
        "timestamp with time zone",
        (dt.datetime(2038, 1, 19, 3, 14, 7, 999999, tzinfo=UTC), dt.datetime(1970, 1, 1, 0, 0, 1, 1, tzinfo=UTC)),
    ),
    MySQLCase(
        "time",
        "TIME",
        (11, 128, 10, 0, 63),
        ("'-838:59:59'", "'838:59:59'"),
        "duration[us]",
        "interval",
        (-_PG_TIME_MAX, _PG_TIME_MAX),
    ),
    MySQLCase(
        "time_6",
        "TIME(6)",
        (11, 128, 17, 6, 63),
        ("'-00:00:00.000001'", "'12:34:56.789012'"),
        "duration[us]",
        "interval",
        (dt.timedelta(microseconds=-1), dt.timedelta(hours=12, minutes=34, seconds=56, microseconds=789012)),
    ),
    MySQLCase("year", "YEAR", (13, 96, 4, 0, 63), ("1901", "2155"), "int16", "smallint", (1901, 2155)),
    MySQLCase(
        "char_3",
        "CHAR(3)",
        (254, 0, 12, 0, 45),
        ("'ab'", "'abc'"),
        "string",
        "character(3)",
        ("ab ", "abc"),
        sql_type="char(3)",
    ),
    MySQLCase(
        "varchar_40",
        "VARCHAR(40)",
        (253, 0, 160, 0, 45),
        ("'héllo ☃ 日本'", "''"),
        "string",
        "character varying(40)",
        ("héllo ☃ 日本", ""),
        sql_type="varchar(40)",
    ),
    MySQLCase(
        "varchar_latin1",
        "VARCHAR(10) CHARACTER SET latin1",
        (253, 0, 40, 0, 45),
        ("'café'", "'x'"),
        "string",
        "character varying(10)",
        ("café", "x"),
        sql_type="varchar(10)",
    ),
    MySQLCase("tinytext", "TINYTEXT", (252, 16, 1020, 0, 45), ("'t'", "''"), "string", "text", ("t", "")),
    MySQLCase("text", "TEXT", (252, 16, 262140, 0, 45), ("'text ☃'", "'x'"), "string", "text", ("text ☃", "x")),
    MySQLCase("mediumtext", "MEDIUMTEXT", (252, 16, 67108860, 0, 45), ("'m'", "'n'"), "string", "text", ("m", "n")),
    MySQLCase("longtext", "LONGTEXT", (252, 16, 4294967295, 0, 45), ("'l'", "'o'"), "string", "text", ("l", "o")),
    MySQLCase(
        "binary_4",
        "BINARY(4)",
        (254, 128, 4, 0, 63),
        ("x'00010203'", "x'ffffffff'"),
        "binary",
        "bytea",
        (b"\x00\x01\x02\x03", b"\xff\xff\xff\xff"),
    ),
    MySQLCase(
        "varbinary_7", "VARBINARY(7)", (253, 128, 7, 0, 63), ("x'ff00'", "x''"), "binary", "bytea", (b"\xff\x00", b"")
    ),
    MySQLCase(
        "tinyblob", "TINYBLOB", (252, 144, 255, 0, 63), ("x'00'", "x'01'"), "binary", "bytea", (b"\x00", b"\x01")
    ),
    MySQLCase("blob", "BLOB", (252, 144, 65535, 0, 63), ("x'00ff'", "x''"), "binary", "bytea", (b"\x00\xff", b"")),
    MySQLCase(
        "mediumblob", "MEDIUMBLOB", (252, 144, 16777215, 0, 63), ("x'0a'", "x'0b'"), "binary", "bytea", (b"\n", b"\x0b")
    ),
    MySQLCase(
        "longblob", "LONGBLOB", (252, 144, 4294967295, 0, 63), ("x'0c'", "x'0d'"), "binary", "bytea", (b"\x0c", b"\r")
    ),
    MySQLCase("enum", "ENUM('a','bb')", (254, 256, 8, 0, 45), ("'bb'", "'a'"), "string", "text", ("bb", "a")),
    MySQLCase("set", "SET('x','y')", (254, 2048, 12, 0, 45), ("'x,y'", "''"), "string", "text", ("x,y", "")),
    MySQLCase(
        "json",
        "JSON",
        (252, 144, 4294967295, 0, 45),
        ("'{\"a\": [1, 2.5]}'", "'null'"),
        "string",
        "text",
        ('{"a": [1, 2.5]}', "null"),
    ),
    MySQLCase(
        "geometry",
        "GEOMETRY",
        (255, 144, 4294967295, 0, 63),
        ("ST_GeomFromText('POINT(1 2)')", "ST_GeomFromText('POINT(1 2)')"),
        "binary",
        "bytea",
        (_POINT, _POINT),
    ),
    MySQLCase(
        "uuid",
        "UUID",
        (254, 160, 144, 0, 45),
        ("'550e8400-e29b-41d4-a716-446655440000'", "'00000000-0000-0000-0000-000000000000'"),
        "string",
        "character varying(36)",
        ("550e8400-e29b-41d4-a716-446655440000", "00000000-0000-0000-0000-000000000000"),
        sql_type="varchar(36)",
    ),
    MySQLCase(
        "inet4",
        "INET4",
        (254, 160, 60, 0, 45),
        ("'192.168.0.1'", "'0.0.0.0'"),
        "string",
        "character varying(15)",
        ("192.168.0.1", "0.0.0.0"),
        sql_type="varchar(15)",
    ),
    MySQLCase(
        "inet6",
        "INET6",
        (254, 160, 156, 0, 45),
        ("'2001:db8::1'", "'::'"),
        "string",
        "character varying(39)",
        ("2001:db8::1", "::"),
        sql_type="varchar(39)",
    ),
]


# -- DuckDB ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DuckDBCase:
    """A DuckDB result type: a `duckdb.processor` query producing it, and what PostgreSQL holds after the writer.

    `sql` is a select expression (two rows come from `VALUES (1), (2)` as `v`, so it may use
    `v`); `refused` a fragment of the error when the type (or the value) is refused.
    """

    name: str
    duckdb: str
    sql: str
    pg: str | None = None
    back: tuple[Any, ...] = ()
    refused: str | None = None
    why: str | None = None  # for the docs: which values of a mapped type are refused


DUCKDB_CASES: list[DuckDBCase] = [
    DuckDBCase("boolean", "BOOLEAN", "v = 1", "boolean", (True, False)),
    DuckDBCase("tinyint", "TINYINT", "CAST(125 + v AS TINYINT)", "smallint", (126, 127)),
    DuckDBCase("smallint", "SMALLINT", "CAST(-32769 + v AS SMALLINT)", "smallint", (-32768, -32767)),
    DuckDBCase("integer", "INTEGER", "CAST(2147483645 + v AS INTEGER)", "integer", (2147483646, 2147483647)),
    DuckDBCase("bigint", "BIGINT", "CAST(9223372036854775805 AS BIGINT) + v", "bigint", (2**63 - 2, 2**63 - 1)),
    DuckDBCase(
        "hugeint", "HUGEINT", "CAST('1' || repeat('0', 37) AS HUGEINT) * v", "numeric(38,0)", (D(10**37), D(2 * 10**37))
    ),
    DuckDBCase(
        "hugeint_39_digits",
        "HUGEINT",
        "CAST(170141183460469231731687303715884105727 AS HUGEINT) - v + 1",
        refused="has more than 38 digits",
        why="a value of more than 38 digits",
    ),
    DuckDBCase("utinyint", "UTINYINT", "CAST(253 + v AS UTINYINT)", "smallint", (254, 255)),
    DuckDBCase("usmallint", "USMALLINT", "CAST(65533 + v AS USMALLINT)", "integer", (65534, 65535)),
    DuckDBCase("uinteger", "UINTEGER", "CAST(4294967293 + v AS UINTEGER)", "bigint", (2**32 - 2, 2**32 - 1)),
    DuckDBCase(
        "ubigint", "UBIGINT", "CAST(18446744073709551613 + v AS UBIGINT)", "numeric(20,0)", (D(2**64 - 2), D(2**64 - 1))
    ),
    DuckDBCase(
        "uhugeint",
        "UHUGEINT",
        "CAST('1' || repeat('0', 37) AS UHUGEINT) * CAST(v AS UHUGEINT)",
        "numeric(38,0)",
        (D(10**37), D(2 * 10**37)),
    ),
    DuckDBCase(
        "uhugeint_max",
        "UHUGEINT",
        "CAST(340282366920938463463374607431768211455 AS UHUGEINT)",
        refused="has more than 38 digits",
        why="a value of more than 38 digits",
    ),
    DuckDBCase("float", "FLOAT", "CAST(0.1 * v AS FLOAT)", "real", (0.10000000149011612, 0.20000000298023224)),
    DuckDBCase("double", "DOUBLE", "CAST(0.1 AS DOUBLE) * v", "double precision", (0.1, 0.2)),
    DuckDBCase(
        "decimal_4_1", "DECIMAL(4,1)", "CAST(999.9 - (v - 1) AS DECIMAL(4,1))", "numeric(4,1)", (D("999.9"), D("998.9"))
    ),
    DuckDBCase(
        "decimal_18_3",
        "DECIMAL(18,3)",
        "CAST(-123456789012345.678 * v AS DECIMAL(18,3))",
        "numeric(18,3)",
        (D("-123456789012345.678"), D("-246913578024691.356")),
    ),
    DuckDBCase(
        "decimal_38_10",
        "DECIMAL(38,10)",
        "CAST('9999999999999999999999999999.9999999999' AS DECIMAL(38,10))",
        "numeric(38,10)",
        (D("9999999999999999999999999999.9999999999"),) * 2,
    ),
    DuckDBCase("varchar", "VARCHAR", "'héllo ☃ ' || v", "text", ("héllo ☃ 1", "héllo ☃ 2")),
    DuckDBCase("blob", "BLOB", "CAST('\\x00\\xFF' AS BLOB)", "bytea", (b"\x00\xff", b"\x00\xff")),
    DuckDBCase("bit", "BIT", "CAST(CASE v WHEN 1 THEN '10101' ELSE '0' END AS BIT)", "bit varying", ("10101", "0")),
    DuckDBCase("date", "DATE", "DATE '9999-12-31' - v + 1", "date", (dt.date(9999, 12, 31), dt.date(9999, 12, 30))),
    DuckDBCase(
        "time",
        "TIME",
        "TIME '23:59:59.999999' - INTERVAL (v - 1) SECOND",
        "time without time zone",
        (dt.time(23, 59, 59, 999999), dt.time(23, 59, 58, 999999)),
    ),
    DuckDBCase(
        "time_ns",
        "TIME_NS",
        "CAST('12:34:56.789012' AS TIME_NS)",
        "time without time zone",
        (dt.time(12, 34, 56, 789012),) * 2,
    ),
    DuckDBCase(
        "time_ns_fraction",
        "TIME_NS",
        "CAST('12:34:56.789012345' AS TIME_NS)",
        refused="PostgreSQL keeps microseconds",
        why="a value with a fraction of a microsecond",
    ),
    DuckDBCase(
        "timetz",
        "TIME WITH TIME ZONE",
        "CAST('12:00:00-07:30' AS TIMETZ)",
        "time with time zone",
        (dt.time(12, 0, tzinfo=dt.timezone(-dt.timedelta(hours=7, minutes=30))),) * 2,
    ),
    DuckDBCase(
        "timestamp",
        "TIMESTAMP",
        "TIMESTAMP '2024-02-29 23:59:59.999999' + INTERVAL (v) MICROSECOND",
        "timestamp without time zone",
        (dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 1, 0, 0, 0, 1)),
    ),
    DuckDBCase(
        "timestamp_s",
        "TIMESTAMP_S",
        "CAST(TIMESTAMP '2024-01-01 10:00:00' AS TIMESTAMP_S)",
        "timestamp without time zone",
        (dt.datetime(2024, 1, 1, 10),) * 2,
    ),
    DuckDBCase(
        "timestamp_ms",
        "TIMESTAMP_MS",
        "CAST(TIMESTAMP '2024-01-01 10:00:00.123' AS TIMESTAMP_MS)",
        "timestamp without time zone",
        (dt.datetime(2024, 1, 1, 10, 0, 0, 123000),) * 2,
    ),
    DuckDBCase(
        "timestamp_ns",
        "TIMESTAMP_NS",
        "CAST('2024-01-01 10:00:00.123456' AS TIMESTAMP_NS)",
        "timestamp without time zone",
        (dt.datetime(2024, 1, 1, 10, 0, 0, 123456),) * 2,
    ),
    DuckDBCase(
        "timestamp_ns_fraction",
        "TIMESTAMP_NS",
        "CAST('2024-01-01 10:00:00.123456789' AS TIMESTAMP_NS)",
        refused="would lose data",
        why="a value with a fraction of a microsecond",
    ),
    DuckDBCase(
        "timestamptz",
        "TIMESTAMP WITH TIME ZONE",
        "TIMESTAMPTZ '2024-01-01 10:00:00.5+02'",
        "timestamp with time zone",
        (dt.datetime(2024, 1, 1, 8, 0, 0, 500000, tzinfo=UTC),) * 2,
    ),
    DuckDBCase(
        "interval",
        "INTERVAL",
        "INTERVAL '-1 year 2 months 3 days 04:05:06.000007' + INTERVAL (v - 1) DAY",
        "interval",
        (
            dt.timedelta(days=-297, hours=4, minutes=5, seconds=6, microseconds=7),
            dt.timedelta(days=-296, hours=4, minutes=5, seconds=6, microseconds=7),
        ),
    ),
    DuckDBCase(
        "uuid",
        "UUID",
        "CAST('550e8400-e29b-41d4-a716-44665544000' || v AS UUID)",
        "uuid",
        ("550e8400-e29b-41d4-a716-446655440001", "550e8400-e29b-41d4-a716-446655440002"),
    ),
    DuckDBCase(
        "json",
        "JSON",
        "CAST('{\"b\": [1, 2.50], \"a\": ' || v || '}' AS JSON)",
        "jsonb",
        ({"a": 1, "b": [1, D("2.50")]}, {"a": 2, "b": [1, D("2.50")]}),
    ),
    DuckDBCase(
        "bignum",
        "BIGNUM",
        "CAST(CASE v WHEN 1 THEN '1' || repeat('0', 49) ELSE '-2' || repeat('0', 49) END AS BIGNUM)",
        "numeric",
        (D(10**49), D(-2 * 10**49)),
    ),
    DuckDBCase("list", "INTEGER[]", "[v, NULL, 3]", "jsonb", ([1, None, 3], [2, None, 3])),
    DuckDBCase("array", "INTEGER[3]", "CAST([v, 2, 3] AS INTEGER[3])", "jsonb", ([1, 2, 3], [2, 2, 3])),
    DuckDBCase(
        "struct",
        "STRUCT(a INTEGER, b VARCHAR, c DECIMAL(5,2))",
        "{'a': v, 'b': 'x', 'c': CAST(1.25 AS DECIMAL(5,2))}",
        "jsonb",
        ({"a": 1, "b": "x", "c": D("1.25")}, {"a": 2, "b": "x", "c": D("1.25")}),
    ),
    DuckDBCase("map_text_keys", "MAP(VARCHAR, INTEGER)", "MAP {'k': v}", "jsonb", ({"k": 1}, {"k": 2})),
    DuckDBCase(
        "enum", "ENUM('a', 'b')", "CAST(CASE v WHEN 1 THEN 'a' ELSE 'b' END AS ENUM('a', 'b'))", "text", ("a", "b")
    ),
    DuckDBCase(
        "geometry",
        "GEOMETRY",
        "CAST('POINT (1 2)' AS GEOMETRY)",
        "bytea",
        (bytes.fromhex("0101000000000000000000f03f0000000000000040"),) * 2,
    ),
    DuckDBCase("map_int_keys", "MAP(INTEGER, VARCHAR)", "MAP {v: 'a'}", refused="keys must be text"),
    DuckDBCase(
        "union",
        "UNION(n INTEGER, s VARCHAR)",
        "CAST(v AS UNION(n INTEGER, s VARCHAR))",
        refused="a UNION has no single type",
    ),
    DuckDBCase("variant", "VARIANT", "CAST(v AS VARIANT)", refused="a VARIANT has no single type"),
    DuckDBCase(
        "list_of_intervals", "INTERVAL[]", "[INTERVAL (v) DAY]", refused="`INTERVAL` inside it has no exact form"
    ),
]


def read_column(pg: Any, table: str, column: str, pg_type: str, order_by: str) -> list[Any]:
    """A column's values as psycopg2 reads them, exactly: `real` as float8 (float4 text is only float4-precise),
    `jsonb` as text parsed with Decimal numbers, `bytea` as bytes."""
    import json

    col = '"' + column.replace('"', '""') + '"'
    if pg_type == "real":
        col += "::float8"
    elif pg_type == "jsonb":
        col += "::text"
    with pg.cursor() as cur:
        cur.execute(f'SELECT {col} FROM "{table}" ORDER BY "{order_by}"')
        got = [r[0] for r in cur.fetchall()]
    if pg_type == "jsonb":
        return [None if v is None else json.loads(v, parse_float=Decimal) for v in got]
    return [bytes(v) if isinstance(v, memoryview) else v for v in got]


def column_types(pg: Any, table: str) -> dict[str, str]:
    """`format_type` of every column of `table` (in the search path)."""
    with pg.cursor() as cur:
        cur.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            ('"' + table.replace('"', '""') + '"',),
        )
        return dict(cur.fetchall())
