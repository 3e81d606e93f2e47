"""The writer's options, read once from the step config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osiris.core.errors import UserInputError

WRITE_MODES = ("append", "replace", "upsert")


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
    channel: str
    ddl_channel: str
    batch_size: int
    timeout: float

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
        return cls(
            table=table,
            schema=config.get("schema") or default_schema,
            write_mode=mode,
            primary_key=pk,
            create_if_missing=bool(config.get("create_if_missing", False)),
            add_new_columns=bool(config.get("add_new_columns", False)),
            allow_empty_replace=bool(config.get("allow_empty_replace", False)),
            channel=config.get("channel") or "auto",
            ddl_channel=config.get("ddl_channel") or "auto",
            batch_size=int(config.get("batch_size") or 10000),
            timeout=float(config.get("timeout") or 60),
        )

    @property
    def display(self) -> str:
        """`schema.table`, for messages."""
        return f"{self.schema}.{self.table}"
