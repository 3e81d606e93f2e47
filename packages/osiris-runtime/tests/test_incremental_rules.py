"""The watermark rules of `osiris.runtime.incremental`: lags, low bounds, exact encodings, the older watermark."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from osiris.core.errors import UserInputError
from osiris.runtime import incremental as inc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10 minutes", timedelta(minutes=10)),
        ("1 minute", timedelta(minutes=1)),
        ("2h", timedelta(hours=2)),
        ("1.5 hours", timedelta(minutes=90)),
        ("500 ms", timedelta(milliseconds=500)),
        ("30s", timedelta(seconds=30)),
        (" 3 days ", timedelta(days=3)),
        ("1 week", timedelta(weeks=1)),
        ("250 microseconds", timedelta(microseconds=250)),
        (0, Decimal(0)),
        (None, Decimal(0)),
        (100, Decimal(100)),
        ("7", Decimal(7)),
        (2.5, Decimal("2.5")),
    ],
)
def test_lags(text, expected):
    assert inc.parse_lag(text) == expected


@pytest.mark.parametrize("bad", ["ten minutes", "5 fortnights", "-1 minute", "m", "", -3, True, "1 minute ago"])
def test_bad_lags_say_what_is_expected(bad):
    with pytest.raises(UserInputError, match="lag"):
        inc.parse_lag(bad)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2024, 1, 1, 10, 0, 0, 1),
        datetime(1970, 1, 1),
        date(2024, 2, 29),
        0,
        -5,
        18446744073709551615,
        Decimal("12345678901234567890.000001"),
        "ABC-0001",
    ],
)
def test_watermarks_round_trip_exactly(value):
    encoded = inc.encode_value(value)
    assert isinstance(encoded["value"], str)
    assert inc.decode_value(encoded) == value
    assert type(inc.decode_value(encoded)) is type(value)


def test_low_bounds_by_cursor_type():
    assert inc.lower_bound(datetime(2024, 1, 1, 10), timedelta(minutes=10), what="x") == datetime(2024, 1, 1, 9, 50)
    # a DATE moves back by whole days, rounded up: never less overlap than asked
    assert inc.lower_bound(date(2024, 1, 10), timedelta(hours=1), what="x") == date(2024, 1, 9)
    assert inc.lower_bound(date(2024, 1, 10), timedelta(days=2), what="x") == date(2024, 1, 8)
    assert inc.lower_bound(date(2024, 1, 10), Decimal(0), what="x") == date(2024, 1, 10)
    assert inc.lower_bound(100, Decimal("2.5"), what="x") == 97  # rounded up
    assert inc.lower_bound(18446744073709551615, Decimal(5), what="x") == 18446744073709551610
    assert inc.lower_bound(Decimal("1.5"), Decimal("0.25"), what="x") == Decimal("1.25")
    assert inc.lower_bound(None, Decimal(5), what="x") is None
    with pytest.raises(UserInputError, match="duration"):
        inc.lower_bound(datetime(2024, 1, 1), Decimal(5), what="x")
    with pytest.raises(UserInputError, match="number"):
        inc.lower_bound(5, timedelta(minutes=1), what="x")
    with pytest.raises(UserInputError, match="text cursor"):
        inc.lower_bound("abc", Decimal(1), what="x")


def test_the_older_watermark_is_read_and_none_is_oldest():
    a, b = inc.encode_value(datetime(2024, 1, 1)), inc.encode_value(datetime(2024, 1, 2))
    assert inc.older(a, b) == a and inc.older(b, a) == a
    assert inc.older(a, None) is None and inc.older(None, b) is None


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("2024-01-01 10:00:00", "datetime", datetime(2024, 1, 1, 10)),
        ("2024-01-01", "datetime", datetime(2024, 1, 1)),
        ("2024-01-01 10:00:00", "date", date(2024, 1, 1)),
        ("42", "int", 42),
        (42, "decimal", Decimal(42)),
    ],
)
def test_initial_values_take_the_cursor_type(value, kind, expected):
    assert inc.coerce_like(value, kind, what="x") == expected


@pytest.mark.parametrize(("value", "kind"), [("yesterday", "datetime"), ("1.5", "int"), ("2024-13-01", "date")])
def test_initial_values_of_another_type_are_refused(value, kind):
    with pytest.raises(UserInputError, match=f"not a {kind} value"):
        inc.coerce_like(value, kind, what="x")


def test_deletes_and_blocks():
    assert inc.parse_deletes(None, step="s") == ("none", None)
    assert inc.parse_deletes("reconcile", step="s") == ("reconcile", None)
    assert inc.parse_deletes({"soft": "deleted_at"}, step="s") == ("soft", "deleted_at")
    for bad in ("hard", {"soft": ""}, {"soft": "a", "x": 1}, 3):
        with pytest.raises(UserInputError, match="deletes"):
            inc.parse_deletes(bad, step="s")
    block = inc.IncrementalConfig.from_config({"cursor": " c ", "lag": "1 hour"}, step="s")
    assert block.cursor == "c" and block.lag == timedelta(hours=1) and block.on_null_cursor == "error"
    with pytest.raises(UserInputError, match="on_null_cursor"):
        inc.IncrementalConfig.from_config({"cursor": "c", "on_null_cursor": "maybe"}, step="s")
