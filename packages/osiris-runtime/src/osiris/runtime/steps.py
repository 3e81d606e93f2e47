"""Running one step's driver: the call, its output streamed to Parquet with its data hash, and retries.

`execute_step` is what the runner does for every step and what `osiris.runtime.testing`
does for a driver under test, so a driver test sees exactly the runner's behaviour: a
returned `df` (Arrow table, record-batch reader or iterator, pandas DataFrame) is streamed
batch by batch into `<output_dir>/output.parquet` (a temporary file renamed into place)
while a second thread computes its `data_sha256`, and a failed attempt is retried as
`osiris.runtime.retry` says.

With a `handoff` (`osiris.runtime.handoff`) the batches written are also handed, through a bounded
queue, to the step that reads this one's output as it is written; a step whose input is such a
`LiveInput` and whose attempt failed because that stream broke (the upstream's attempt failed) runs
again on the upstream's final output, without counting a retry.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osiris.core.errors import TerminalError
from osiris.runtime import interrupts
from osiris.runtime.contract import Driver, InputHandle, StepContext
from osiris.runtime.handoff import HandOff, LiveInput
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
    handoff: HandOff | None = None,
    on_restart: Callable[[BaseException], Any] | None = None,
) -> StepOutput:
    """Run `driver` for one step, retrying as `policy` allows; the output is in `ctx.output_dir`.

    Each attempt gets its own copy of `config`. `on_rows(rows)` is called for every batch
    written (the rows so far of this attempt restart at 0 after a retry). `handoff`: also hand the
    output's batches to the step reading it as it is written. `on_restart(exc)` is called before an
    attempt runs again because the live input it was reading broke.
    """
    live = list({id(h): h for h in inputs.values() if isinstance(h, LiveInput)}.values())

    def produce() -> StepOutput:
        returned = driver.run(step_id=step_id, config=copy.deepcopy(config), inputs=inputs, ctx=ctx)
        if returned is not None and not isinstance(returned, dict):
            raise TerminalError(
                f"Driver of step `{step_id}` returned `{type(returned).__name__}`; expected a dict or None",
                step=step_id,
            )
        facts = dict(returned or {})
        df = facts.pop("df", None)
        if df is None:
            if handoff is not None:
                handoff.attempt_done(output=False)
            return StepOutput(facts=facts)
        schema, batches = as_batches(df, step_id=step_id)
        if handoff is not None:
            batches = handoff.feed(schema, batches)
        path = Path(ctx.output_dir) / OUTPUT_FILE
        hasher = DataHasher(schema)
        rows = write_parquet_atomic(path, schema, batches, step_id=step_id, on_batch=on_rows, hasher=hasher)
        output = StepOutput(path, rows, list(schema.names), hasher.hexdigest(), facts)
        if handoff is not None:
            handoff.attempt_done()
        return output

    def attempt() -> StepOutput:
        try:
            return produce()
        except BaseException:
            if handoff is not None:
                handoff.attempt_failed()
            for h in live:  # the upstream no longer waits for this attempt; a retry reads the file
                h.handoff.detach()
            raise

    restarted = False

    def attempt_or_restart() -> StepOutput:
        nonlocal restarted
        try:
            return attempt()
        except Exception as exc:
            broken = [h for h in live if h.handoff.broken]
            if restarted or not broken or interrupts.requested() is not None:
                raise
            restarted = True
            for h in broken:
                h.handoff.wait_final()  # raises `UpstreamFailed` when the upstream did not succeed
            if on_restart is not None:
                on_restart(exc)
            return attempt()  # on the upstream's final output (a live stream breaks once)

    return call_with_retries(attempt_or_restart, policy, on_retry=on_retry)
