"""Incremental loading: the watermark, its window, and how the runner hands state to drivers.

The rule (docs/incremental.md):

- A run of an extractor with an `incremental` block first takes the upper bound of its cursor
  (`MAX(cursor)` over the source, before any row is read), then reads the rows with
  `watermark - lag <= cursor <= upper` (on the first run, `initial_value <= cursor <= upper`, or
  every row up to `upper` without an `initial_value`). NULL cursors follow `on_null_cursor`.
- The writer upserts them on its `primary_key`, so rows read again (the lag window, rows sharing
  the boundary value) change nothing, and in the SAME transaction stores `upper` as the new
  watermark in the destination, under the key (pipeline, extractor step, destination).
- `lag` must cover the longest transaction that writes the source table: a row whose cursor value
  was set inside a transaction that commits after the read, with a value older than `upper`,
  is read by the next run only when that value is still inside `watermark - lag`.

The runner reads every destination's state before the run (`read_states`), hands the extractor
the oldest watermark (`IncrementalRead`) and each writer what to commit (`IncrementalWrite`),
through `StepContext.incremental`, the same on the host and in a sandbox worker. A writer that
keeps state offers `read_state(config, key)`, `commit` inside its load, `set_state(config, key,
watermark)` and `reset_state(config, key)` (`StateStore`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from osiris.core.errors import UserInputError

ON_NULL_CURSOR = ("error", "include", "skip")
STATE_TABLE = "_osiris_state"

_UNITS = {
    "microsecond": timedelta(microseconds=1),
    "millisecond": timedelta(milliseconds=1),
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}
_ALIASES = {"us": "microsecond", "ms": "millisecond", "s": "second", "sec": "second", "min": "minute", "h": "hour"}
LAG_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$", re.I)


def parse_lag(value: Any, *, where: str = "`incremental.lag`") -> timedelta | Decimal:
    """`"10 minutes"` -> timedelta; a number -> Decimal (for numeric cursors); 0 and None -> Decimal(0)."""
    if value is None:
        return Decimal(0)
    if isinstance(value, bool):
        raise UserInputError(f'{where}: expected a duration such as "10 minutes" or a number; got `{value}`')
    if isinstance(value, int | float | Decimal):
        if value < 0:
            raise UserInputError(f"{where}: must not be negative; got `{value}`")
        return Decimal(str(value))
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return Decimal(text)
    m = LAG_PATTERN.match(text)
    unit = None
    if m:
        name = m.group(2).lower()
        name = _ALIASES.get(name, name)
        unit = _UNITS.get(name) or (_UNITS.get(name[:-1]) if name.endswith("s") else None)
    if not m or unit is None:
        raise UserInputError(
            f'{where}: expected a duration such as "10 minutes", "2 hours", "1 day" '
            f"(units: {', '.join(_UNITS)}) or a number; got `{value}`"
        )
    return unit * float(m.group(1))


@dataclass(frozen=True)
class IncrementalConfig:
    """An extractor's `incremental` block, checked."""

    cursor: str
    lag: timedelta | Decimal = Decimal(0)
    initial_value: Any = None
    on_null_cursor: str = "error"
    deletes: str = "none"  # none | reconcile | soft
    soft_column: str | None = None

    @classmethod
    def from_config(cls, block: Mapping[str, Any], *, step: str) -> IncrementalConfig:
        """Check the block (the compiler checks it too, with its line)."""
        cursor = block.get("cursor")
        if not isinstance(cursor, str) or not cursor.strip():
            raise UserInputError(f"Step `{step}`: `incremental.cursor` must name a column or an SQL expression")
        policy = block.get("on_null_cursor") or "error"
        if policy not in ON_NULL_CURSOR:
            raise UserInputError(
                f"Step `{step}`: `incremental.on_null_cursor` expected one of {', '.join(ON_NULL_CURSOR)}; "
                f"got `{policy}`"
            )
        deletes, soft = parse_deletes(block.get("deletes"), step=step)
        return cls(
            cursor=cursor.strip(),
            lag=parse_lag(block.get("lag"), where=f"Step `{step}`: `incremental.lag`"),
            initial_value=block.get("initial_value"),
            on_null_cursor=policy,
            deletes=deletes,
            soft_column=soft,
        )


def parse_deletes(value: Any, *, step: str) -> tuple[str, str | None]:
    """`deletes`: `none`, `reconcile` or `{soft: <column>}` -> (kind, soft column)."""
    if value is None or value == "none":
        return "none", None
    if value == "reconcile":
        return "reconcile", None
    if isinstance(value, Mapping) and set(value) == {"soft"} and isinstance(value["soft"], str) and value["soft"]:
        return "soft", value["soft"]
    raise UserInputError(
        f"Step `{step}`: `incremental.deletes` expected `none`, `reconcile` or `soft: <column>`; got `{value}`"
    )


# -- watermark values -----------------------------------------------------------------------------


def encode_value(value: Any) -> dict[str, str] | None:
    """A cursor value as `{"type", "value"}` text, exact (microseconds, big integers), or None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise UserInputError(f"A boolean cursor cannot be a watermark; got `{value}`")
    if isinstance(value, datetime):
        value = naive_utc(value)
        return {"type": "datetime", "value": value.isoformat(sep=" ", timespec="microseconds")}
    if isinstance(value, date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, int):
        return {"type": "int", "value": str(value)}
    if isinstance(value, Decimal | float):
        return {"type": "decimal", "value": str(Decimal(str(value)))}
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return {"type": "string", "value": str(value)}


def naive_utc(value: Any) -> Any:
    """An aware datetime as naive UTC (watermarks of `timestamptz` cursors are kept in UTC); others as they are."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def decode_value(watermark: Mapping[str, Any] | None) -> Any:
    """The Python value of an encoded watermark."""
    if not watermark:
        return None
    kind, text = watermark.get("type"), str(watermark.get("value"))
    if kind == "datetime":
        return datetime.fromisoformat(text)
    if kind == "date":
        return date.fromisoformat(text)
    if kind == "int":
        return int(text)
    if kind == "decimal":
        return Decimal(text)
    return text


def coerce_like(value: Any, kind: str | None, *, what: str) -> Any:
    """`value` (from OML or `osiris state set`, usually text) as a value of the cursor's `kind`."""
    if value is None or kind is None:
        return value
    try:
        if kind == "datetime":
            if isinstance(value, datetime):
                return value
            if isinstance(value, date):
                return datetime(value.year, value.month, value.day)
            return datetime.fromisoformat(str(value).strip())
        if kind == "date":
            if isinstance(value, datetime):
                return value.date()
            if isinstance(value, date):
                return value
            return date.fromisoformat(str(value).strip()[:10])
        if kind == "int":
            return int(str(value).strip())
        if kind == "decimal":
            return Decimal(str(value).strip())
    except ValueError:
        raise UserInputError(f"{what}: `{value}` is not a {kind} value like the cursor's") from None
    return str(value)


def lower_bound(watermark: Any, lag: timedelta | Decimal, *, what: str) -> Any:
    """`watermark - lag`, in the watermark's own type (a date moves back by whole days)."""
    if watermark is None:
        return None
    if isinstance(watermark, datetime | date):
        if isinstance(lag, Decimal):
            if lag == 0:
                return watermark
            raise UserInputError(f'{what}: the cursor is a date/time; write `lag` as a duration such as "10 minutes"')
        if isinstance(watermark, datetime):
            return watermark - lag
        days = -(-lag // timedelta(days=1)) if lag else 0  # whole days, rounded up: never less overlap
        return watermark - timedelta(days=days)
    if isinstance(lag, timedelta):
        if not lag:
            return watermark
        raise UserInputError(f"{what}: the cursor is a number; write `lag` as a number")
    if isinstance(watermark, int):
        return watermark - math.ceil(lag)  # rounded up: never less overlap
    if isinstance(watermark, Decimal):
        return watermark - lag
    if lag:
        raise UserInputError(f"{what}: a text cursor cannot have a `lag`")
    return watermark


def older(a: dict[str, str] | None, b: dict[str, str] | None) -> dict[str, str] | None:
    """The older of two encoded watermarks (None, no watermark, is oldest)."""
    if a is None or b is None:
        return None
    return a if decode_value(a) <= decode_value(b) else b


def plan_bounds(
    block: IncrementalConfig, read: Any, high: Any, *, step: str
) -> tuple[Any, dict[str, str] | None, dict[str, str] | None]:
    """(low bound or None, watermark before, watermark after) of one read, given the source's `high`.

    `read` is the `IncrementalRead` the runner handed on (None: no state, e.g. a driver test). The low
    bound is `watermark - lag`, else `initial_value`, else none (and none on a full refresh); the new
    watermark is `high`, never older than the one before.
    """
    what = f"Step `{step}`"
    high = naive_utc(high)
    before = None if read is None else read.watermark
    kind = (encode_value(high) or before or {}).get("type")
    stored = coerce_like(decode_value(before), kind, what=f"{what}: the stored watermark") if before else None
    low = None
    if not getattr(read, "full_refresh", False):
        if stored is not None:
            low = lower_bound(stored, block.lag, what=f"{what}: `incremental.lag`")
        elif block.initial_value is not None:
            low = coerce_like(block.initial_value, kind, what=f"{what}: `incremental.initial_value`")
    after = encode_value(high)
    if stored is not None and (high is None or high < stored):
        after = before  # a watermark never moves back (the newest rows were deleted, or it was set ahead)
    return low, before, after


def window_facts(block: IncrementalConfig, read: Any, low: Any, high: Any, before: Any, after: Any) -> dict[str, Any]:
    """The window of one read as the run card, the events and the writer get it."""
    return {
        "cursor": block.cursor,
        "low": encode_value(low),
        "high": encode_value(high),
        "watermark_before": before,
        "watermark_after": after,
        "full_refresh": bool(getattr(read, "full_refresh", False)),
        "on_null_cursor": block.on_null_cursor,
        "deletes": block.deletes,
    }


NULL_CURSOR_ERROR = (
    "rows with a NULL cursor `{cursor}` exist, which an incremental read never reaches; set "
    "`incremental.on_null_cursor: include` (read them every run) or `skip` (never load them), or use a "
    "cursor such as `COALESCE(updated_at, created_at)`"
)


# -- state keys and what the runner hands on --------------------------------------------------------


@dataclass(frozen=True)
class StateKey:
    """One watermark: a pipeline's extractor step feeding one destination."""

    pipeline: str
    step: str
    destination: str

    def to_data(self) -> dict[str, str]:
        """The key as data."""
        return {"pipeline": self.pipeline, "step": self.step, "destination": self.destination}


@dataclass
class IncrementalRead:
    """What an incremental extractor gets in `ctx.incremental`."""

    watermark: dict[str, str] | None = None
    full_refresh: bool = False
    key_columns: list[str] | None = None  # read the source's keys for `deletes: reconcile`
    destinations: dict[str, dict[str, str] | None] = field(default_factory=dict)


@dataclass
class StateCommit:
    """One state row a writer commits with its rows: the key, what the run read, what to store."""

    key: StateKey
    expected_version: int | None
    watermark_before: dict[str, str] | None
    watermark_after: dict[str, str] | None
    window: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""


@dataclass
class IncrementalWrite:
    """What a writer downstream of incremental extractors gets in `ctx.incremental`."""

    commits: list[StateCommit]
    full_refresh: bool = False
    deletes: str = "none"
    soft_column: str | None = None
    source_keys: str | None = None  # Parquet file of the source's key columns (`reconcile`)


class StateStore(Protocol):
    """What a writer that keeps incremental state offers the runner and `osiris state`."""

    def read_state(self, *, config: dict[str, Any], key: StateKey) -> dict[str, Any] | None: ...

    def set_state(self, *, config: dict[str, Any], key: StateKey, watermark: dict[str, str] | None) -> None: ...


def destination_name(writer_step: str, config: Mapping[str, Any]) -> str:
    """The destination part of a state key: the writer step and what it writes to."""
    target = config.get("table") or config.get("path") or ""
    schema = config.get("schema")
    if schema and target:
        target = f"{schema}.{target}"
    return f"{writer_step}:{target}" if target else writer_step


def incremental_steps(manifest: Any, configs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Steps whose config has an `incremental` block, in manifest order."""
    return [s.id for s in manifest.steps if isinstance(configs.get(s.id, {}).get("incremental"), Mapping)]


def destinations_of(manifest: Any, step_id: str) -> list[str]:
    """The `write` steps downstream of `step_id`, in manifest order."""
    downstream = {step_id}
    out = []
    for s in manifest.steps:  # topological order: upstream first
        if any(n in downstream for n in s.needs):
            downstream.add(s.id)
            if s.mode == "write":
                out.append(s.id)
    return out


def sources_of(manifest: Any, configs: Mapping[str, Mapping[str, Any]], writer: str) -> list[str]:
    """The incremental steps upstream of a writer."""
    return [sid for sid in incremental_steps(manifest, configs) if writer in destinations_of(manifest, sid)]


__all__ = [
    "IncrementalConfig",
    "IncrementalRead",
    "IncrementalWrite",
    "StateCommit",
    "StateKey",
    "StateStore",
    "coerce_like",
    "decode_value",
    "destination_name",
    "destinations_of",
    "encode_value",
    "incremental_steps",
    "lower_bound",
    "older",
    "parse_deletes",
    "parse_lag",
    "plan_bounds",
    "sources_of",
    "window_facts",
]
