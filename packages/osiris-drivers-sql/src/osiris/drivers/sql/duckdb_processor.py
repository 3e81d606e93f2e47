"""`duckdb.processor`: any DuckDB SQL over the step's inputs, read straight from their Parquet files.

DuckDB scans an input's `output.parquet` natively (only the columns and row groups the query
needs, in parallel). An input whose file is not written yet (an upstream still running, its
batches handed over as they are written) is scanned as an Arrow stream while it arrives when the
query reads it exactly once; any other query waits for the finished file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from osiris.core.errors import TerminalError
from osiris.drivers.sql import duckdb_types
from osiris.drivers.sql._duckdb import quote_ident, quote_literal
from osiris.runtime import interrupts
from osiris.runtime.contract import InputHandle, StepContext


def relation_types(relation: Any) -> dict[str, str]:
    """The query's result columns and their DuckDB types (empty when there is no relation yet)."""
    try:
        return {str(n): str(t) for n, t in zip(relation.columns, relation.types, strict=True)}
    except Exception:
        return {}


_SOURCE_COLUMN = re.compile(r"Could not cast value (\S+) to (DECIMAL\(38,0\)) when casting from source column (\S+)")


def _failure(exc: Exception, step_id: str, types: dict[str, str], views: dict[str, str]) -> TerminalError:
    """The step's error for a DuckDB failure; a value too wide for the exact form of its column names the column."""
    m = _SOURCE_COLUMN.search(str(exc))
    if m:
        value, target, column = m.groups()
        column = column.strip('"')
        return TerminalError(
            f"Column `{column}` of step `{step_id}` is {types.get(column, 'a 128-bit integer')}; its value {value} has "
            f"more than 38 digits, so it has no exact {target} (the widest exact form leaving DuckDB): cast it to "
            "VARCHAR, or to a DOUBLE if an approximation will do",
            step=step_id,
        )
    return TerminalError(
        f"DuckDB query of step `{step_id}` failed: {type(exc).__name__}: {exc}",
        step=step_id,
        hint=f"inputs are visible as views: {', '.join(sorted(views)) or 'none'}",
    )


class DuckDBProcessor:
    """Each input is a view named after its upstream step id (and `input_df` when there is one input).

    The result is streamed out in record batches of `batch_size` rows; DuckDB
    spills to a temporary folder in the step's output dir beyond `memory_limit`.
    Types and column names come out exactly or the step fails naming the column
    (`duckdb_types`); columns passed through unchanged keep their input's NOT NULL and
    field metadata.
    """

    def run(
        self, *, step_id: str, config: dict[str, Any], inputs: dict[str, InputHandle], ctx: StepContext
    ) -> dict[str, Any]:
        """Run `config["query"]` and return `{"df": RecordBatchReader}`."""
        import duckdb
        import pyarrow as pa

        query = config["query"]
        live: _LiveScan | None = None
        con = duckdb.connect(":memory:")
        # A stop of the run interrupts the running query (DuckDB checks signals only in the main thread).
        forget = interrupts.add_cancel(con.interrupt)
        try:
            con.execute(f"SET memory_limit = {quote_literal(config.get('memory_limit', '1GB'))}")
            con.execute(f"SET temp_directory = {quote_literal(ctx.output_dir / 'duckdb_tmp')}")
            con.execute("SET preserve_insertion_order = true")
            con.execute("SET TimeZone = 'UTC'")
            if config.get("threads"):
                con.execute(f"SET threads = {int(config['threads'])}")
            views: dict[str, str] = {}
            schemas: dict[str, Any] = {}
            unreadable: dict[str, dict[str, str]] = {}
            tree = duckdb_types.parse(con, query)
            streamed = _streamable(tree, inputs)
            for name, handle in inputs.items():
                view = "input_df" if name == "df" else name
                shown = duckdb_types.input_view(handle.schema, view=view, step=step_id)
                if handle is streamed:
                    # Scanned as it arrives, once: DuckDB reads the Arrow stream where the file is not written yet.
                    if live is None:
                        live = _LiveScan(handle)
                        con.register(_STREAM, live.reader())
                    source = quote_ident(_STREAM)
                else:
                    if not handle.path.is_file():
                        handle.num_rows  # noqa: B018  (an upstream still running: waits for its finished file)
                    source = f"read_parquet({quote_literal(handle.path)})"
                con.execute(f"CREATE VIEW {quote_ident(view)} AS SELECT {shown.select} FROM {source}")
                views[view] = handle.step_id
                schemas[view.lower()] = handle.schema
                if shown.unreadable:
                    unreadable[view] = shown.unreadable
            ctx.log_event("duckdb.views", views=views, **({"streamed": live.step_id} if live is not None else {}))
            known = {n.lower() for schema in schemas.values() for n in schema.names}
            self._refuse_unreadable(tree, unreadable, set(schemas), known, step_id)
            relation: Any = None
            original: dict[str, str] = {}  # the result's DuckDB types before the converting projection
            try:
                relation = con.sql(query)
                if relation is None:
                    raise TerminalError(
                        f"The query of step `{step_id}` returns no rows: its last statement must be a SELECT",
                        step=step_id,
                    )
                plan = duckdb_types.output_plan(list(relation.columns), list(relation.types), step=step_id)
                original = relation_types(relation)
                if plan.projection is not None:
                    relation = relation.project(plan.projection)
                # duckdb >= 1.4 names it `to_arrow_reader`; older releases `record_batch`.
                fetch = getattr(relation, "to_arrow_reader", None) or relation.record_batch
                reader = fetch(int(config.get("batch_size", 100000)))
            except duckdb.Error as exc:
                raise _failure(exc, step_id, original or relation_types(relation), views) from None
            line = duckdb_types.lineage(tree, {v: s.names for v, s in schemas.items()})
            schema = duckdb_types.result_schema(reader.schema, plan, line, schemas)
        except BaseException:
            forget()
            con.close()
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for batch in reader:
                    yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)
                if live is not None:
                    live.drain()
            except duckdb.Error as exc:
                raise _failure(exc, step_id, original, views) from None
            finally:
                forget()
                con.close()

        return {"df": pa.RecordBatchReader.from_batches(schema, batches())}

    @staticmethod
    def _refuse_unreadable(
        tree: dict[str, Any] | None,
        unreadable: dict[str, dict[str, str]],
        views: set[str],
        columns: set[str],
        step_id: str,
    ) -> None:
        """Fail when the query may read an input column DuckDB has no exact type for."""
        for view, troubles in unreadable.items():
            for column, why in troubles.items():
                if duckdb_types.reads(tree, column, views, columns):
                    raise TerminalError(
                        f"Column `{column}` of input `{view}` (step `{step_id}`) is {why}; the query reads it "
                        f"(by name, or through `*`), so its values would change. Leave it out "
                        f"(`SELECT * EXCLUDE ({quote_ident(column)})`), or narrow it upstream, e.g. with a CAST "
                        "in the extractor's query",
                        step=step_id,
                    )


_STREAM = "__osiris_live_input"


def _streamable(tree: dict[str, Any] | None, inputs: dict[str, InputHandle]) -> InputHandle | None:
    """The input to scan as a stream: one whose file is not there yet (its upstream still runs, its
    batches handed over as they are written) and that the query reads exactly once.

    Once means one table reference in the whole statement, to a view of that input, and no CTE or
    table function (which could scan it again): an Arrow stream can be read only once, so any
    other query waits for the upstream's finished file instead.
    """
    handles = {id(h): h for h in inputs.values()}
    pending = [h for h in handles.values() if not h.path.is_file()]
    if tree is None or len(pending) != 1:
        return None
    names = {("input_df" if name == "df" else name).lower() for name, h in inputs.items() if h is pending[0]}
    refs = []
    for node in duckdb_types.nodes(tree):
        kind = node.get("type")
        if kind in ("BASE_TABLE", "TABLE_FUNCTION"):
            refs.append(node)
        cte = node.get("cte_map")
        if isinstance(cte, dict) and cte.get("map"):
            return None
    if len(refs) != 1:
        return None
    ref = refs[0]
    named = ref.get("type") == "BASE_TABLE" and not ref.get("schema_name") and not ref.get("catalog_name")
    return pending[0] if named and str(ref.get("table_name", "")).lower() in names else None


class _LiveScan:
    """One input's batches as a `RecordBatchReader` for DuckDB, read to the end once the query is done
    (a query that stopped early, e.g. at a LIMIT, must not leave its upstream waiting)."""

    def __init__(self, handle: InputHandle) -> None:
        self.step_id = handle.step_id
        self._schema = handle.schema
        self._batches = handle.iter_batches()

    def reader(self) -> Any:
        import pyarrow as pa

        return pa.RecordBatchReader.from_batches(self._schema, self._batches)

    def drain(self) -> None:
        for _ in self._batches:
            pass
