"""The driver of `acme.upper`: upper-cases text columns, batch by batch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from osiris.core.errors import UserInputError
from osiris.runtime.contract import InputHandle, StepContext, single_input


class Upper:
    """Streams its input, upper-casing the chosen text columns."""

    def run(
        self, *, step_id: str, config: dict[str, Any], inputs: dict[str, InputHandle], ctx: StepContext
    ) -> dict[str, Any]:
        """Return `{"df": reader}` with the columns of `config["columns"]` (default: every text column) upper-cased."""
        source = single_input(inputs, step_id)
        schema = source.schema
        text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        wanted = config.get("columns") or text
        unknown = [c for c in wanted if c not in text]
        if unknown:
            raise UserInputError(
                f"`columns` of step `{step_id}` names {', '.join(f'`{c}`' for c in unknown)}, "
                f"which is not a text column of the input; text columns: {', '.join(text) or 'none'}",
                step=step_id,
            )
        ctx.log_event("upper.columns", columns=list(wanted))

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in source.iter_batches():
                arrays = [
                    pc.utf8_upper(batch.column(i)) if name in wanted else batch.column(i)
                    for i, name in enumerate(batch.schema.names)
                ]
                ctx.progress(batch.num_rows)
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)

        return {"df": pa.RecordBatchReader.from_batches(schema, batches())}
