"""`duckdb.processor`: any DuckDB SQL over the step's inputs, read straight from their Parquet files."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from osiris.core.errors import TerminalError
from osiris.drivers.sql._duckdb import quote_ident, quote_literal
from osiris.runtime.contract import InputHandle, StepContext


class DuckDBProcessor:
    """Each input is a view named after its upstream step id (and `input_df` when there is one input).

    The result is streamed out in record batches of `batch_size` rows; DuckDB
    spills to a temporary folder in the step's output dir beyond `memory_limit`.
    """

    def run(
        self, *, step_id: str, config: dict[str, Any], inputs: dict[str, InputHandle], ctx: StepContext
    ) -> dict[str, Any]:
        """Run `config["query"]` and return `{"df": RecordBatchReader}`."""
        import duckdb
        import pyarrow as pa

        con = duckdb.connect(":memory:")
        try:
            con.execute(f"SET memory_limit = {quote_literal(config.get('memory_limit', '1GB'))}")
            con.execute(f"SET temp_directory = {quote_literal(ctx.output_dir / 'duckdb_tmp')}")
            con.execute("SET preserve_insertion_order = true")
            if config.get("threads"):
                con.execute(f"SET threads = {int(config['threads'])}")
            views = {}
            for name, handle in inputs.items():
                view = "input_df" if name == "df" else name
                con.execute(
                    f"CREATE VIEW {quote_ident(view)} AS SELECT * FROM read_parquet({quote_literal(handle.path)})"
                )
                views[view] = handle.step_id
            ctx.log_event("duckdb.views", views=views)
            try:
                relation = con.sql(config["query"])
                if relation is None:
                    raise TerminalError(
                        f"The query of step `{step_id}` returns no rows: its last statement must be a SELECT",
                        step=step_id,
                    )
                # duckdb >= 1.4 names it `to_arrow_reader`; older releases `record_batch`.
                fetch = getattr(relation, "to_arrow_reader", None) or relation.record_batch
                reader = fetch(int(config.get("batch_size", 100000)))
            except duckdb.Error as exc:
                raise TerminalError(
                    f"DuckDB query of step `{step_id}` failed: {type(exc).__name__}: {exc}",
                    step=step_id,
                    hint=f"inputs are visible as views: {', '.join(sorted(views)) or 'none'}",
                ) from None
        except BaseException:
            con.close()
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            except duckdb.Error as exc:
                raise TerminalError(
                    f"DuckDB query of step `{step_id}` failed: {type(exc).__name__}: {exc}", step=step_id
                ) from None
            finally:
                con.close()

        return {"df": pa.RecordBatchReader.from_batches(reader.schema, batches())}
