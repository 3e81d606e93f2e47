"""Running one step's driver: the call, its output streamed to Parquet with its data hash, and retries.

`execute_step` is what the runner does for every step and what `osiris.runtime.testing`
does for a driver under test, so a driver test sees exactly the runner's behaviour: a
returned `df` (Arrow table, record-batch reader or iterator, pandas DataFrame) is streamed
batch by batch into `<output_dir>/output.parquet` (a temporary file renamed into place)
while a second thread computes its `data_sha256`, and a failed attempt is retried as
`osiris.runtime.retry` says.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osiris.core.errors import TerminalError
from osiris.runtime.contract import Driver, InputHandle, StepContext
from osiris.runtime.io import OUTPUT_FILE, DataHasher, as_batches, write_parquet_atomic
from osiris.runtime.retry import RetryPolicy, call_with_retries


@dataclass
class StepOutput:
    """What one successful attempt produced: the output file (if any) and the driver's facts."""

    path: Path | None = None
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    data_sha256: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def execute_step(
    driver: Driver,
    *,
    step_id: str,
    config: dict[str, Any],
    inputs: dict[str, InputHandle],
    ctx: StepContext,
    policy: RetryPolicy,
    on_retry: Callable[[int, BaseException, float], Any],
    on_rows: Callable[[int], None] | None = None,
) -> StepOutput:
    """Run `driver` for one step, retrying as `policy` allows; the output is in `ctx.output_dir`.

    Each attempt gets its own copy of `config`. `on_rows(rows)` is called for every batch
    written (the rows so far of this attempt restart at 0 after a retry).
    """

    def attempt() -> StepOutput:
        returned = driver.run(step_id=step_id, config=copy.deepcopy(config), inputs=inputs, ctx=ctx)
        if returned is not None and not isinstance(returned, dict):
            raise TerminalError(
                f"Driver of step `{step_id}` returned `{type(returned).__name__}`; expected a dict or None",
                step=step_id,
            )
        facts = dict(returned or {})
        df = facts.pop("df", None)
        if df is None:
            return StepOutput(facts=facts)
        schema, batches = as_batches(df, step_id=step_id)
        path = Path(ctx.output_dir) / OUTPUT_FILE
        hasher = DataHasher(schema)
        rows = write_parquet_atomic(path, schema, batches, step_id=step_id, on_batch=on_rows, hasher=hasher)
        return StepOutput(path, rows, list(schema.names), hasher.hexdigest(), facts)

    return call_with_retries(attempt, policy, on_retry=on_retry)
