"""`filesystem.parquet_writer`: write the input to a Parquet file, batch by batch."""

from __future__ import annotations

from typing import Any

from osiris.runtime.contract import InputHandle, StepContext, single_input
from osiris.runtime.io import write_parquet_atomic


class ParquetWriter:
    """Streams the input into a Parquet file that replaces the target atomically."""

    def run(
        self, *, step_id: str, config: dict[str, Any], inputs: dict[str, InputHandle], ctx: StepContext
    ) -> dict[str, Any]:
        """Write `inputs["df"]` to `config["path"]`."""
        source = single_input(inputs, step_id)
        compression = config.get("compression", "zstd")
        rows = write_parquet_atomic(
            ctx.resolve_path(config["path"]),
            source.schema,
            source.iter_batches(),
            step_id=step_id,
            compression="none" if compression == "none" else compression,
            # A user's file, not an artifact: the library's own encoding defaults.
            compression_level=None,
            use_dictionary=True,
            write_statistics=True,
            row_group_size=int(config.get("row_group_size", 131072)),
            on_batch=ctx.progress,
        )
        ctx.log_event("write.complete", channel_used="file", path=str(config["path"]), rows_written=rows)
        return {"rows_written": rows, "path": str(config["path"])}
