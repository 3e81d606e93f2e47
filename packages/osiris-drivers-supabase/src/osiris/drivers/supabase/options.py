"""The writer's options, read once from the step config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osiris.core.errors import UserInputError

WRITE_MODES = ("append", "replace", "upsert")
DUPLICATE_KEY_POLICIES = ("error", "keep_last", "keep_first")
MISSING_COLUMN_POLICIES = ("error", "keep")


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
    retries: int

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
            batch_size=int(config.get("batch_size") or 10000),
            timeout=float(config.get("timeout") or 60),
            retries=int(config.get("retries", 3)),
        )

    @property
    def display(self) -> str:
        """`schema.table`, for messages."""
        return f"{self.schema}.{self.table}"
