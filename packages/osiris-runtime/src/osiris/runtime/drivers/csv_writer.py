"""`filesystem.csv_writer`: write the input to a CSV file, same data -> same bytes."""

from __future__ import annotations

from typing import Any

from osiris.core.errors import UserInputError
from osiris.runtime.contract import InputHandle, StepContext, single_input
from osiris.runtime.drivers._files import atomic_target


class CsvWriter:
    """Writes batch by batch with a fixed column order and line ending; replaces the file atomically."""

    def run(
        self, *, step_id: str, config: dict[str, Any], inputs: dict[str, InputHandle], ctx: StepContext
    ) -> dict[str, Any]:
        """Write `inputs["df"]` to `config["path"]`."""
        import pyarrow as pa
        import pyarrow.csv as pcsv

        source = single_input(inputs, step_id)
        names = list(source.schema.names)
        columns = config.get("columns")
        if columns:
            unknown = [c for c in columns if c not in names]
            if unknown:
                raise UserInputError(
                    f"Step `{step_id}`: `columns` names {', '.join(f'`{c}`' for c in unknown)}, not in the input; "
                    f"input columns: {', '.join(names)}",
                    step=step_id,
                )
        elif config.get("sort_columns"):
            columns = sorted(names)
        else:
            columns = names
        target = ctx.resolve_path(config["path"])
        options = pcsv.WriteOptions(
            include_header=bool(config.get("header", True)),
            delimiter=config.get("delimiter", ","),
            **_line_terminator(step_id, config.get("line_terminator", "\n")),
        )
        schema = pa.schema([source.schema.field(c) for c in columns])
        rows = 0
        with atomic_target(target) as tmp, pcsv.CSVWriter(tmp, schema, write_options=options) as writer:
            for batch in source.iter_batches(columns=columns):
                batch = batch.select(columns)
                writer.write_batch(batch)
                rows += batch.num_rows
                ctx.progress(batch.num_rows)
        ctx.log_event("write.complete", channel_used="file", path=str(config["path"]), rows_written=rows)
        return {"rows_written": rows, "path": str(config["path"])}


def _line_terminator(step_id: str, eol: str) -> dict[str, str]:
    """The `eol` write option: "\\n" is every pyarrow's default; others need pyarrow 26, where `eol` arrived."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if eol == "\n":
        return {}
    if "eol" not in (pcsv.WriteOptions.__doc__ or ""):
        raise UserInputError(
            f"Step `{step_id}`: `line_terminator: {eol!r}` needs pyarrow 26 or newer; "
            f"this environment has pyarrow {pa.__version__}",
            step=step_id,
            hint="pip install 'pyarrow>=26'",
        )
    return {"eol": eol}
