"""The `http` channel: the Supabase REST API (PostgREST) through supabase-py, in batches.

For users who have only the project URL and a service key. It cannot be atomic: each
batch is its own request and transaction, and `replace` is an upsert followed by
deletes of the keys that are no longer there. The writer says so with a
`write.non_atomic` warning event.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from osiris.core.errors import OsirisError, TerminalError, TransientError
from osiris.drivers.supabase.connection import SupabaseConnection, redact
from osiris.drivers.supabase.errors import is_transient_sqlstate
from osiris.runtime.interrupts import raise_if_requested

if TYPE_CHECKING:
    import pyarrow as pa

    from osiris.drivers.supabase.options import WriteOptions

DELETE_CHUNK = 200


def jsonable(value: Any) -> Any:
    """A Python value from Arrow as PostgREST accepts it in JSON."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return f"{value.total_seconds()} seconds"
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and all(isinstance(x, tuple) and len(x) == 2 for x in value):  # an Arrow map
            return {str(k): jsonable(v) for k, v in value}
        return [jsonable(v) for v in value]
    return str(value)


def rows_of(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """A record batch as JSON-ready row dicts."""
    return [{k: jsonable(v) for k, v in row.items()} for row in batch.to_pylist()]


def filter_value(value: Any) -> str:
    """A value quoted for a PostgREST filter (`"…"` with `\\` and `"` escaped)."""
    text = value if isinstance(value, str) else json.dumps(jsonable(value)).strip('"')
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def key_of(row: dict[str, Any], pk: list[str]) -> tuple[Any, ...]:
    """A row's key as a tuple of its JSON values (comparable across input and table)."""
    return tuple(None if row.get(k) is None else str(row.get(k)) for k in pk)


class RestLoader:
    """One load through PostgREST."""

    def __init__(
        self,
        conn: SupabaseConnection,
        opts: WriteOptions,
        *,
        step: str,
        log_event: Callable[..., None],
        progress: Callable[[int], None],
    ) -> None:
        from supabase import ClientOptions, create_client

        self.conn = conn
        self.opts = opts
        self.step = step
        self.log_event = log_event
        self.progress = progress
        options = ClientOptions(postgrest_client_timeout=opts.timeout, schema=opts.schema)
        self.client = create_client(conn.url or "", conn.key or "", options=options)
        # APIError does not carry the HTTP status; remember it to tell 5xx / 429 from the rest.
        self.last_status = 0
        session = self.client.postgrest.session
        session.event_hooks.setdefault("response", []).append(self._remember_status)

    def _remember_status(self, response: Any) -> None:
        self.last_status = int(response.status_code)

    def _table(self) -> Any:
        return self.client.schema(self.opts.schema).table(self.opts.table)

    def _api_error(self, doing: str, exc: Any) -> OsirisError:
        code = str(exc.code or "")
        text = f"{doing} `{self.opts.display}` over REST failed: {exc.message}"
        if exc.details:
            text += f" ({exc.details})"
        if code:
            text += f"; code {code}"
        text = redact(text, self.conn.secrets())
        status = int(code) if code.isdigit() and len(code) == 3 else self.last_status
        transient = is_transient_sqlstate(code) or status >= 500 or status == 429
        return (TransientError if transient else TerminalError)(text, step=self.step)

    def _call(self, doing: str, fn: Callable[[], Any]) -> Any:
        import httpx
        from postgrest.exceptions import APIError

        # Every request commits on its own: a stopped run (or a sandbox whose host is gone) sends no more.
        raise_if_requested(self.step)
        try:
            return fn()
        except APIError as exc:
            raise self._api_error(doing, exc) from None
        except httpx.HTTPError as exc:
            raise TransientError(
                f"{doing} `{self.opts.display}` over REST failed: {redact(str(exc), self.conn.secrets())}",
                step=self.step,
            ) from None

    def exists(self) -> bool:
        """Whether the table is visible through the REST API."""
        from postgrest.exceptions import APIError

        try:
            self._table().select("*").limit(1).execute()
            return True
        except APIError as exc:
            if str(exc.code) in ("PGRST205", "42P01", "404"):
                return False
            raise self._api_error("Reading", exc) from None

    def load(self, batches: Iterable[pa.RecordBatch], *, drop: set[int] | None = None) -> dict[str, int]:
        """Send every batch (without the row numbers in `drop`); for `replace`, then delete the keys no longer present."""
        opts = self.opts
        position = 0  # the input row number of each batch's first row
        pk = opts.primary_key
        mode = opts.write_mode
        seen: set[tuple[Any, ...]] = set()
        written = 0
        total = 0
        cleared = False
        for batch in batches:
            rows = rows_of(batch)
            if drop:
                rows = [r for i, r in enumerate(rows, start=position) if i not in drop]
            position += batch.num_rows
            total += batch.num_rows
            if not rows:
                continue
            if mode == "replace" and not pk and not cleared:
                self._delete_all()
                cleared = True
            if pk and mode in ("upsert", "replace"):
                dedup: dict[tuple[Any, ...], dict[str, Any]] = {}
                for row in rows:
                    dedup[key_of(row, pk)] = row  # no repeats are left here (`drop`); kept as a safety net
                rows = list(dedup.values())
                if mode == "replace":
                    seen.update(dedup.keys())
                on_conflict = ",".join(pk)
                self._call(
                    "Upserting into",
                    lambda rows=rows, oc=on_conflict: self._table()
                    .upsert(rows, on_conflict=oc, returning="minimal", default_to_null=True)
                    .execute(),
                )
            else:
                self._call(
                    "Inserting into",
                    lambda rows=rows: self._table().insert(rows, returning="minimal", default_to_null=True).execute(),
                )
            written += len(rows)
            self.progress(batch.num_rows)
        deleted = 0
        if mode == "replace":
            if total == 0:
                if not opts.allow_empty_replace:
                    raise TerminalError(
                        f"Refusing to replace `{opts.display}` with an empty input (step `{self.step}`); "
                        "set `allow_empty_replace: true` to empty the table",
                        step=self.step,
                    )
                deleted = self._delete_all()
            elif pk:
                deleted = self._delete_missing(seen)
        return {"rows_written": written, "rows_deleted": deleted, "rows_input": total}

    def _delete_all(self) -> int:
        first = self._first_column()
        if first is None:
            return 0
        res = self._call(
            "Emptying",
            lambda: self._table()
            .delete(count="exact", returning="minimal")
            .or_(f"{first}.is.null,{first}.not.is.null")
            .execute(),
        )
        return int(res.count or 0)

    def _first_column(self) -> str | None:
        res = self._call("Reading", lambda: self._table().select("*").limit(1).execute())
        if res.data:
            return next(iter(res.data[0]))
        return self.opts.primary_key[0] if self.opts.primary_key else None

    def _delete_missing(self, keep: set[tuple[Any, ...]]) -> int:
        pk = self.opts.primary_key
        page = max(1000, self.opts.batch_size)
        stale: list[tuple[Any, ...]] = []
        start = 0
        while True:
            res = self._call(
                "Reading keys of",
                lambda start=start: self._table()
                .select(",".join(pk))
                .order(pk[0])
                .range(start, start + page - 1)
                .execute(),
            )
            rows = res.data or []
            for row in rows:
                k = key_of({c: jsonable(row.get(c)) for c in pk}, pk)
                if k not in keep:
                    stale.append(tuple(row.get(c) for c in pk))
            if len(rows) < page:
                break
            start += page
        deleted = 0
        for i in range(0, len(stale), DELETE_CHUNK):
            chunk = stale[i : i + DELETE_CHUNK]
            if len(pk) == 1:
                cond = f"{pk[0]}.in.({','.join(filter_value(k[0]) for k in chunk)})"
                flt = f"or=({cond})"
            else:
                ands = [
                    "and(" + ",".join(f"{c}.eq.{filter_value(v)}" for c, v in zip(pk, k, strict=True)) + ")"
                    for k in chunk
                ]
                flt = f"or=({','.join(ands)})"
            res = self._call(
                "Deleting stale rows of",
                lambda flt=flt: self._table().delete(count="exact", returning="minimal").or_(flt[4:-1]).execute(),
            )
            deleted += int(res.count or 0)
        return deleted


def non_atomic_warning(mode: str) -> str:
    """The warning text for a load over REST."""
    return (
        f"the http channel cannot load atomically: `{mode}` runs as one request per batch"
        + (" and then deletes missing keys" if mode == "replace" else "")
        + "; a failure midway leaves a partial load (use a Postgres DSN for transactional loads)"
    )
