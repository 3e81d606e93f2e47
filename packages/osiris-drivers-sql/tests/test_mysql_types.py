"""The type plan: protocol metadata to Arrow types, and exact text parsing (no server needed)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from osiris.drivers.sql import mysql_types as mt


@pytest.mark.parametrize(
    ("type_code", "flags", "length", "scale", "charset", "arrow", "cx_exact"),
    [
        (mt.TINY, 0, 1, 0, 63, pa.bool_(), True),
        (mt.TINY, 0, 4, 0, 63, pa.int8(), True),
        (mt.TINY, mt.UNSIGNED_FLAG, 3, 0, 63, pa.uint8(), True),
        (mt.LONGLONG, mt.UNSIGNED_FLAG, 20, 0, 63, pa.uint64(), True),
        (mt.INT24, 0, 9, 0, 63, pa.int32(), True),
        (mt.NEWDECIMAL, 0, 12, 2, 63, pa.decimal128(10, 2), True),
        (mt.NEWDECIMAL, mt.UNSIGNED_FLAG, 11, 2, 63, pa.decimal128(10, 2), True),
        (mt.NEWDECIMAL, 0, 67, 30, 63, pa.decimal256(65, 30), False),
        (mt.NEWDECIMAL, 0, 40, 0, 63, pa.decimal256(39, 0), False),
        (mt.FLOAT, 0, 12, 31, 63, pa.float32(), True),
        (mt.DOUBLE, 0, 22, 31, 63, pa.float64(), True),
        (mt.DATE, 0, 10, 0, 63, pa.date32(), True),
        (mt.DATETIME, 0, 26, 6, 63, pa.timestamp("us"), True),
        (mt.TIMESTAMP, 0, 23, 3, 63, pa.timestamp("us", tz="UTC"), True),
        (mt.TIME, 0, 17, 6, 63, pa.duration("us"), False),
        (mt.YEAR, mt.UNSIGNED_FLAG, 4, 0, 63, pa.int16(), True),
        (mt.VAR_STRING, 0, 400, 0, 45, pa.string(), True),
        (mt.BLOB, 0, 65535, 0, 63, pa.binary(), True),
        (mt.STRING, mt.ENUM_FLAG, 4, 0, 45, pa.string(), True),
        (mt.STRING, mt.SET_FLAG, 20, 0, 45, pa.string(), True),
        (mt.BIT, 0, 1, 0, 63, pa.bool_(), True),
        (mt.BIT, 0, 10, 0, 63, pa.uint64(), True),
        (mt.JSON, 0, 0, 0, 63, pa.string(), True),
        (mt.NULL, 0, 0, 0, 63, pa.null(), False),
    ],
)
def test_plan_column_picks_the_documented_arrow_type(type_code, flags, length, scale, charset, arrow, cx_exact):
    plan = mt.plan_column("c", type_code, flags, length, scale, charset)
    assert plan.arrow_type == arrow
    assert plan.cx_exact is cx_exact


def test_text_values_parse_exactly_including_extremes():
    def parse(type_code, values, flags=0, length=20, scale=0, charset=63):
        return mt.plan_column("c", type_code, flags, length, scale, charset).from_text(values).to_pylist()

    assert parse(mt.LONGLONG, ["18446744073709551615", None, "0"], flags=mt.UNSIGNED_FLAG) == [2**64 - 1, None, 0]
    assert parse(mt.LONGLONG, ["-9223372036854775808"]) == [-(2**63)]
    wide = "12345678901234567890123456789012345.123456789012345678901234567890"
    assert parse(mt.NEWDECIMAL, [wide, "-0.000000000000000000000000000001"], length=67, scale=30) == [
        Decimal(wide),
        Decimal("-1E-30"),
    ]
    assert parse(mt.TIME, ["-838:59:59.000000", "838:59:59.999999", "00:00:00.000001", None], scale=6) == [
        -dt.timedelta(hours=838, minutes=59, seconds=59),
        dt.timedelta(hours=838, minutes=59, seconds=59, microseconds=999999),
        dt.timedelta(microseconds=1),
        None,
    ]
    assert parse(mt.DATETIME, ["1000-01-01 00:00:00.000001"]) == [dt.datetime(1000, 1, 1, 0, 0, 0, 1)]
    assert parse(mt.TIMESTAMP, ["2038-01-19 03:14:07.999"]) == [
        dt.datetime(2038, 1, 19, 3, 14, 7, 999000, tzinfo=dt.UTC)
    ]
    assert parse(mt.TINY, ["0", "1", "5", None], length=1) == [False, True, True, None]
    assert parse(mt.BIT, [b"\x02\xaa", b"\x00\x00"], length=10) == [682, 0]


def test_decimal_precision_from_length():
    assert mt.decimal_precision(12, 2, unsigned=False) == 10
    assert mt.decimal_precision(11, 2, unsigned=True) == 10
    assert mt.decimal_precision(11, 0, unsigned=False) == 10


def test_a_bad_time_value_is_reported():
    with pytest.raises(ValueError, match="TIME value"):
        mt._time_text_to_us("12 hours")


ZERO_AND_PARTIAL = {
    mt.DATE: ["0000-00-00", "2024-02-00", "2024-00-05"],
    mt.DATETIME: ["0000-00-00 00:00:00.000", "2024-02-00 10:00:00.123", "2024-00-05 10:00:00.000"],
    mt.TIMESTAMP: ["0000-00-00 00:00:00"],  # a TIMESTAMP cannot hold a partial date, only the zero one
}


@pytest.mark.parametrize("type_code", [mt.DATE, mt.DATETIME, mt.TIMESTAMP])
def test_zero_and_partial_dates_raise_bad_date_value_naming_column_and_value(type_code):
    plan = mt.plan_column("ordered_on", type_code, 0, 23, 3, 63)
    for bad in ZERO_AND_PARTIAL[type_code]:
        with pytest.raises(mt.BadDateValue) as info:
            plan.from_text([None, bad, None])
        assert info.value.column == "ordered_on" and info.value.value == bad and info.value.zero


def test_zero_and_partial_dates_become_null_when_asked_and_everything_else_stays_exact():
    def parse(type_code, values):
        plan = mt.plan_column("c", type_code, 0, 26, 6, 63, zero_dates_as_null=True)
        return plan.from_text(values).to_pylist()

    assert parse(mt.DATE, ["0000-00-00", "2024-02-00", None, "2024-02-29", "2024-00-05"]) == [
        None,
        None,
        None,
        dt.date(2024, 2, 29),
        None,
    ]
    assert parse(mt.DATETIME, ["2024-00-05 10:00:00.123", "2024-02-29 23:59:59.999999", None]) == [
        None,
        dt.datetime(2024, 2, 29, 23, 59, 59, 999999),
        None,
    ]
    assert parse(mt.TIMESTAMP, ["0000-00-00 00:00:00.000000", "1970-01-01 00:00:00.001"]) == [
        None,
        dt.datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=dt.UTC),
    ]


def test_year_zero_with_a_real_month_and_day_is_a_date_not_a_zero_date():
    assert not mt.is_zero_date("0000-01-01") and not mt.is_zero_date("0000-01-01 00:00:00.001")
    assert mt.is_zero_date("0000-00-00") and mt.is_zero_date("2024-02-00 10:00:00")
    plan = mt.plan_column("c", mt.DATE, 0, 10, 0, 63, zero_dates_as_null=True)
    assert plan.from_text(["0000-01-01"]).cast(pa.string()).to_pylist() == ["0000-01-01"]


def test_an_invalid_date_is_reported_but_not_a_zero_date():
    # Stored under sql_mode ALLOW_INVALID_DATES; `zero_dates: "null"` does not cover it.
    plan = mt.plan_column("c", mt.DATE, 0, 10, 0, 63, zero_dates_as_null=True)
    with pytest.raises(mt.BadDateValue) as info:
        plan.from_text(["2024-02-29", "2024-02-31"])
    assert info.value.value == "2024-02-31" and not info.value.zero


def test_zero_dates_as_null_is_kept_on_date_plans_only():
    assert mt.plan_column("c", mt.DATETIME, 0, 19, 0, 63, zero_dates_as_null=True).zero_dates_as_null
    assert not mt.plan_column("c", mt.LONG, 0, 11, 0, 63, zero_dates_as_null=True).zero_dates_as_null
