"""A PostgreSQL session over ADBC's low-level API: SQL, binary bulk ingest, one transaction.

The DB-API layer of adbc-driver-manager imports `pyarrow.dataset`, which imports pandas:
about 50 MiB of memory and a third of a second on every load. Only the driver manager's
own objects are used here, which need neither.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


class AdbcSession:
    """One connection with autocommit off: `execute`, `query`, `ingest`, then `commit` or `rollback`."""

    def __init__(self, uri: str) -> None:
        import adbc_driver_manager as am
        import adbc_driver_postgresql

        self._am = am
        self._db = adbc_driver_postgresql.connect(uri)
        try:
            self._conn = am.AdbcConnection(self._db)
            self._conn.set_autocommit(False)
        except BaseException:
            self._db.close()
            raise

    def _statement(self, sql: str | None = None) -> Any:
        stmt = self._am.AdbcStatement(self._conn)
        if sql is not None:
            stmt.set_sql_query(sql)
        return stmt

    def execute(self, sql: str) -> int:
        """Run a statement that returns no rows; the affected row count (-1 when unknown)."""
        stmt = self._statement(sql)
        try:
            return int(stmt.execute_update())
        finally:
            stmt.close()

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run a query; its rows as dicts (small results only: catalog lookups, counts)."""
        import pyarrow as pa

        stmt = self._statement(sql)
        try:
            handle, _ = stmt.execute_query()
            return pa.RecordBatchReader._import_from_c(handle.address).read_all().to_pylist()
        finally:
            stmt.close()

    def ingest(self, table: str, data: pa.RecordBatchReader, *, db_schema: str) -> int:
        """Append every batch of `data` to `db_schema.table` with binary COPY; the row count."""
        am = self._am
        stmt = self._statement()
        try:
            stmt.set_options(
                **{
                    am.INGEST_OPTION_TARGET_TABLE: table,
                    am.INGEST_OPTION_MODE: am.INGEST_OPTION_MODE_APPEND,
                    am.StatementOptions.INGEST_TARGET_DB_SCHEMA.value: db_schema,
                }
            )
            handle = am.ArrowArrayStreamHandle()
            data._export_to_c(handle.address)
            stmt.bind_stream(handle)
            return int(stmt.execute_update())
        finally:
            stmt.close()

    def cancel(self) -> None:
        """Cancel the statement running on this connection (from another thread); never raises."""
        with contextlib.suppress(Exception):  # nothing running, or the connection is gone
            self._conn.cancel()

    def commit(self) -> None:
        """Commit the current transaction."""
        self._conn.commit()

    def rollback(self) -> None:
        """Roll the current transaction back."""
        self._conn.rollback()

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back by the server)."""
        try:
            self._conn.close()
        finally:
            self._db.close()


class AdbcCursor:
    """A psycopg2-style cursor on an `AdbcSession`, for the few small statements of the state table.

    `%s` parameters are inlined as SQL literals (text, integers, None), so `osiris.drivers.supabase.state`
    runs unchanged inside an ADBC transaction (ADBC's own binding takes an Arrow batch per statement).
    """

    def __init__(self, session: AdbcSession) -> None:
        self._session = session
        self._rows: list[tuple[Any, ...]] = []
        self.rowcount = -1
        # Literals below double their quotes only, which is exact with standard strings (PostgreSQL's default).
        session.execute("SET LOCAL standard_conforming_strings = on")

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> None:
        """Run one statement; rows it returns (SELECT, RETURNING) are kept for `fetchone`."""
        if params:
            sql = sql % tuple(sql_literal(p) for p in params)
        head = sql.lstrip().split(None, 1)[0].upper()
        if head == "SELECT" or " RETURNING " in sql.upper():
            self._rows = [tuple(r.values()) for r in self._session.query(sql)]
            self.rowcount = len(self._rows)
        else:
            self._rows = []
            self.rowcount = self._session.execute(sql)

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row of the last statement, or None."""
        return self._rows.pop(0) if self._rows else None


def sql_literal(value: Any) -> str:
    """`value` (None, bool, int or text) as a SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("PostgreSQL text cannot hold NUL characters")
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"cannot inline a {type(value).__name__} as a SQL literal")
