"""The writer's options, read once from the step config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osiris.core.errors import UserInputError

WRITE_MODES = ("append", "replace", "upsert")
DUPLICATE_KEY_POLICIES = ("error", "keep_last", "keep_first")
MISSING_COLUMN_POLICIES = ("error", "keep")
# What the channels take; the same bounds as the spec's `configSchema`, which the compiler checks.
# A batch is one Arrow record batch (32-bit offsets), Postgres' statement_timeout is a 32-bit count
# of milliseconds, and the retry backoff doubles up to 10 s.
RANGES: dict[str, tuple[float, float]] = {
    "batch_size": (1, 2_147_483_647),
    "timeout": (0.001, 2_147_483),
    "retries": (0, 100),
    "copy_streams": (1, 16),
}


def _plain(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _number(
    config: dict[str, Any], key: str, default: float, bounds: tuple[float, float], step: str, *, integer: bool = False
) -> float:
    """`config[key]` (or `default` when absent), refused with a clear error when outside `bounds`."""
    value = config.get(key)
    if value is None:
        return default
    low, high = bounds
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not low <= value <= high:
        shown = str(value) if len(str(value)) <= 40 else str(value)[:37] + "..."
        raise UserInputError(
            f"Step `{step}`: `{key}` must be {kind} from {_plain(low)} to {_plain(high)}; got `{shown}`", step=step
        )
    return value


@dataclass(frozen=True)
class WriteOptions:
    """What to write where and how (the `supabase.writer` config, defaults applied)."""

    table: str
    schema: str
    write_mode: str
    primary_key: list[str]
    create_if_missing: bool
    add_new_columns: bool
    allow_empty_replace: bool
    on_duplicate_keys: str
    widen_columns: bool
    on_missing_columns: str
    channel: str
    ddl_channel: str
    batch_size: int
    timeout: float
    copy_streams: int = 1

    @classmethod
    def from_config(cls, config: dict[str, Any], *, step: str, default_schema: str = "public") -> WriteOptions:
        """Read and check a step config."""
        table = config.get("table")
        if not isinstance(table, str) or not table:
            raise UserInputError(f"Step `{step}`: `table` is required (a non-empty string)", step=step)
        mode = config.get("write_mode") or "append"
        if mode not in WRITE_MODES:
            raise UserInputError(
                f"Invalid `write_mode` for step `{step}`: expected one of {', '.join(WRITE_MODES)}; got `{mode}`",
                step=step,
            )
        pk = config.get("primary_key") or []
        pk = [pk] if isinstance(pk, str) else list(pk)
        if mode == "upsert" and not pk:
            raise UserInputError(f"Step `{step}`: `write_mode: upsert` needs a `primary_key`", step=step)
        if len(set(pk)) != len(pk):
            raise UserInputError(f"Step `{step}`: `primary_key` names a column twice: {pk}", step=step)
        on_dup = config.get("on_duplicate_keys") or "error"
        if on_dup not in DUPLICATE_KEY_POLICIES:
            raise UserInputError(
                f"Invalid `on_duplicate_keys` for step `{step}`: expected one of "
                f"{', '.join(DUPLICATE_KEY_POLICIES)}; got `{on_dup}`",
                step=step,
            )
        if on_dup != "error" and not (pk and mode in ("upsert", "replace")):
            raise UserInputError(
                f"Step `{step}`: `on_duplicate_keys: {on_dup}` applies to `upsert` and `replace` with a "
                f"`primary_key`; this step has `write_mode: {mode}`"
                + ("" if pk else " and no `primary_key`")
                + " (an `append` leaves duplicate keys to the table's own constraints)",
                step=step,
            )
        on_missing = config.get("on_missing_columns") or "error"
        if on_missing not in MISSING_COLUMN_POLICIES:
            raise UserInputError(
                f"Invalid `on_missing_columns` for step `{step}`: expected one of "
                f"{', '.join(MISSING_COLUMN_POLICIES)}; got `{on_missing}`",
                step=step,
            )
        # `retries` is the runner's (osiris.runtime.retry); its range is checked here, as the others.
        _number(config, "retries", 3, RANGES["retries"], step, integer=True)
        return cls(
            table=table,
            schema=config.get("schema") or default_schema,
            write_mode=mode,
            primary_key=pk,
            create_if_missing=bool(config.get("create_if_missing", False)),
            add_new_columns=bool(config.get("add_new_columns", False)),
            allow_empty_replace=bool(config.get("allow_empty_replace", False)),
            on_duplicate_keys=on_dup,
            widen_columns=bool(config.get("widen_columns", False)),
            on_missing_columns=on_missing,
            channel=config.get("channel") or "auto",
            ddl_channel=config.get("ddl_channel") or "auto",
            batch_size=int(_number(config, "batch_size", 10000, RANGES["batch_size"], step, integer=True)),
            timeout=float(_number(config, "timeout", 60, RANGES["timeout"], step)),
            copy_streams=int(_number(config, "copy_streams", 1, RANGES["copy_streams"], step, integer=True)),
        )

    @property
    def display(self) -> str:
        """`schema.table`, for messages."""
        return f"{self.schema}.{self.table}"
