"""Overlapped hand-off: a step reads its upstream's batches while the upstream is still producing them.

A component whose steps read their one input once, in order, through `InputHandle.iter_batches`, and
whose aborted attempt leaves nothing behind (the writers: one transaction, or a temporary file renamed
into place) declares it in its spec::

    capabilities:
      streaming_input: true

The runner then starts such a step as soon as its upstream starts (`overlap_pairs` says when) and
joins the two with a `HandOff`: the upstream's `osiris.runtime.steps.execute_step` still writes every
batch to `artifacts/<step>/output.parquet` and hashes it (the IO contract and `data_sha256` do not
change), and also puts it in a bounded queue (at most `MAX_BATCHES` batches and `MAX_BYTES` bytes,
always at least one), from which the downstream's `LiveInput` hands it to the driver. When the queue is
full the upstream waits (back-pressure): memory is bounded by the queue, not by the table.

What is never given up, whatever the timing:

- the live stream ends (the driver's loop finishes normally) only once the upstream's attempt wrote and
  hashed its whole output, so a writer commits only data of an upstream that succeeded;
- the upstream fails: the live stream raises, the writer rolls back; when the upstream then succeeds on
  a retry the downstream's attempt runs again on the complete file (not counted as its own retry),
  otherwise the downstream is `skipped` as when it had not started;
- the downstream fails for good: the upstream stops at its next batch (`ConsumerFailed`);
- anything a driver asks that needs the whole output (`num_rows`, `to_table()`, a second pass over the
  batches) waits for the upstream's output file and reads it, after telling the upstream not to wait
  for this reader any more, so no question a driver asks can deadlock the pair; a reader that did not
  start in time (no free step slot) reads the file too. Overlap changes when data moves, never what.

Only the first attempt of an upstream streams; a retried upstream is read from its file.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osiris.core.errors import TerminalError
from osiris.runtime import interrupts
from osiris.runtime.contract import InputHandle

if TYPE_CHECKING:
    import pyarrow as pa

STREAMING_INPUT = "streaming_input"
# A few batches absorb the jitter between the two steps; more only costs memory (S1, 1M rows: 8 batches /
# 64 MiB took the same wall time as 4 / 32 MiB with ~35 MiB more peak RSS).
MAX_BATCHES = 4
MAX_BYTES = 32 << 20
WAIT_S = 0.1  # waits are sliced so that a stop of the run (an exception raised in the thread) lands at once


class ConsumerFailed(TerminalError):
    """The upstream stopped because the step reading its output as it was written failed."""


class UpstreamFailed(TerminalError):
    """The upstream a step was reading as it was written failed; the step stopped without committing."""


class StreamBroken(TerminalError):
    """The upstream's attempt failed while the step was reading it; the step runs again on the final output."""


class HandOff:
    """The bounded queue between one upstream step and the one step that reads it as it is written."""

    def __init__(
        self,
        upstream: str,
        consumer: str,
        path: str | Path,
        *,
        max_batches: int = MAX_BATCHES,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.upstream = upstream
        self.consumer = consumer
        self.path = Path(path)
        self.max_batches = max(1, int(max_batches))
        self.max_bytes = max(1, int(max_bytes))
        self._cond = threading.Condition()
        self._items: deque[Any] = deque()
        self._bytes = 0
        self._schema: pa.Schema | None = None
        self._attempt = 0
        self._ended = False  # the first attempt's output is complete (the live stream's end)
        self._broken = False  # the first attempt failed
        self._no_output = False
        self._final: str | None = None  # "succeeded" | "failed", once the upstream's step is over
        self._started = False  # the consumer's step began (from then on the upstream waits for it)
        self._claimed = False  # the consumer's driver took the live stream
        self._detached = False  # the consumer reads the file: the upstream no longer queues for it
        self._consumer_failed = False
        # What the run card shows.
        self.batches_streamed = 0
        self.rows_streamed = 0
        self.peak_batches = 0
        self.peak_bytes = 0
        self.waits = 0
        self.waiting = False  # the upstream waits for room in the queue right now
        # Which side a stop found waiting for the other ("upstream" or "consumer"): not where the run was.
        self.stopped_waiting: str | None = None

    # -- the upstream's side (`osiris.runtime.steps.execute_step`) ---------------------------

    def feed(self, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """`batches` passed on unchanged (to the Parquet writer), each also queued for the consumer."""
        live = self._begin_attempt(schema)
        for batch in batches:
            self.check_consumer()
            if live and batch.num_rows:
                batch = _conformed(batch, schema, self.upstream)
                self._put(batch)
            yield batch

    def _begin_attempt(self, schema: pa.Schema) -> bool:
        with self._cond:
            self._attempt += 1
            if self._attempt > 1 or self._broken:
                return False  # only a first attempt streams; a retried upstream is read from its file
            self._schema = schema
            self._cond.notify_all()
            return not self._detached

    def _put(self, batch: pa.RecordBatch) -> None:
        size = int(batch.nbytes)
        with self._cond:
            waited = False
            while not self._detached and self._items and self._full(size):
                if self._consumer_failed:
                    break
                if not self._started:
                    # The consumer has not started (no free step slot): it reads the file once it does.
                    self._detach()
                    break
                waited = self.waiting = True
                try:
                    self._cond.wait(WAIT_S)
                except BaseException:
                    self.stopped_waiting = "upstream"
                    raise
                finally:
                    self.waiting = False
            if self._consumer_failed:
                raise self._consumer_error()
            if self._detached:
                if waited and interrupts.requested() is not None:
                    self.stopped_waiting = "upstream"
                return
            self.waits += waited
            self._items.append(batch)
            self._bytes += size
            self.batches_streamed += 1
            self.rows_streamed += batch.num_rows
            self.peak_batches = max(self.peak_batches, len(self._items))
            self.peak_bytes = max(self.peak_bytes, self._bytes)
            self._cond.notify_all()

    def _full(self, size: int) -> bool:
        return len(self._items) >= self.max_batches or self._bytes + size > self.max_bytes

    def check_consumer(self) -> None:
        """Raise `ConsumerFailed` when the consumer failed for good (the upstream stops)."""
        if self._consumer_failed:
            raise self._consumer_error()

    def _consumer_error(self) -> ConsumerFailed:
        return ConsumerFailed(
            f"Step `{self.upstream}` stopped: step `{self.consumer}`, which read its output as it was written, failed",
            step=self.upstream,
        )

    def attempt_done(self, *, output: bool = True) -> None:
        """The upstream's attempt wrote and hashed its whole output (or returned none)."""
        with self._cond:
            if self._attempt <= 1 and not self._broken:
                self._ended = True
                self._no_output = not output
            self._cond.notify_all()

    def attempt_failed(self) -> None:
        """The upstream's attempt failed (it may run again)."""
        with self._cond:
            if not self._ended:
                self._broken = True
                self._detach()
            self._cond.notify_all()

    def finish(self, status: str) -> None:
        """The upstream's step is over (`succeeded`, `failed`, `interrupted`...)."""
        with self._cond:
            if self._final is not None:
                return
            self._final = "succeeded" if status == "succeeded" else "failed"
            if not self._ended:
                self._broken = True
            self._cond.notify_all()

    # -- the consumer's side (`LiveInput`, the runner) -----------------------------------------

    def consumer_started(self) -> None:
        """The consumer's step began: from now on a full queue makes the upstream wait for it."""
        with self._cond:
            self._started = True
            self._cond.notify_all()

    def consumer_done(self, *, failed: bool) -> None:
        """The consumer's step is over; when it `failed`, the upstream stops at its next batch."""
        with self._cond:
            self._detach()
            if failed and self._final is None:
                self._consumer_failed = True
            self._cond.notify_all()

    def _detach(self) -> None:
        self._detached = True
        self._items.clear()
        self._bytes = 0
        self._cond.notify_all()

    def detach(self) -> None:
        """The consumer reads the upstream's file instead of the live stream."""
        with self._cond:
            self._detach()

    @property
    def upstream_failed(self) -> bool:
        """The upstream's step is over and did not succeed."""
        return self._final == "failed"

    @property
    def broken(self) -> bool:
        """The live stream the consumer was reading broke (the upstream's first attempt failed)."""
        return self._broken and self._claimed

    def schema(self) -> pa.Schema | None:
        """The upstream's output schema, once known (None: the upstream produced no output)."""
        with self._cond:
            while self._schema is None and self._final is None and not self._ended and not self._broken:
                self._cond.wait(WAIT_S)
            if self._schema is not None and not self._broken:
                return self._schema
        return self.wait_final()

    def wait_final(self) -> pa.Schema | None:
        """Wait for the upstream's step to end; its output's schema (None without output). Raises
        `UpstreamFailed` when it did not succeed."""
        with self._cond:
            self._detach()
            while self._final is None:
                self._cond.wait(WAIT_S)
        if self._final != "succeeded":
            raise UpstreamFailed(
                f"Step `{self.consumer}` stopped: step `{self.upstream}`, whose output it was reading as it was "
                "written, failed; nothing of this step was committed",
                step=self.consumer,
            )
        if not self.path.is_file():
            return None
        import pyarrow.parquet as pq

        return pq.ParquetFile(self.path).schema_arrow

    def claim(self) -> bool:
        """Take the live stream (True), or False when the consumer must read the file."""
        with self._cond:
            if self._claimed or self._detached or self._broken or self._attempt > 1:
                self._detach()
                return False
            self._claimed = True
            return True

    def live_batches(self) -> Iterator[pa.RecordBatch]:
        """The first attempt's batches as they come; ends once that attempt's output is complete."""
        finished = False
        try:
            while True:
                with self._cond:
                    while not self._items and not self._ended and not self._broken and not self._detached:
                        try:
                            self._cond.wait(WAIT_S)
                        except BaseException:
                            self.stopped_waiting = "consumer"
                            raise
                    if self._items:
                        batch = self._items.popleft()
                        self._bytes -= int(batch.nbytes)
                        self._cond.notify_all()
                    elif self._ended and not self._broken:
                        finished = True
                        if self._no_output:
                            raise TerminalError(
                                f"Step `{self.upstream}` returned no `df`, so step `{self.consumer}` has no input",
                                step=self.consumer,
                            )
                        return
                    else:
                        self._broken = True
                        if interrupts.requested() is not None:  # it was waiting for the upstream
                            self.stopped_waiting = "consumer"
                        raise StreamBroken(
                            f"Step `{self.upstream}` failed while step `{self.consumer}` was reading its output",
                            step=self.consumer,
                        )
                yield batch
        finally:
            if not finished:
                self.detach()

    def record(self) -> dict[str, Any]:
        """The run card's `overlap` entry of the consumer."""
        return {
            "upstream": self.upstream,
            "streamed": self._claimed and not self._broken and self._ended,
            "batches_streamed": self.batches_streamed,
            "rows_streamed": self.rows_streamed,
            "queue_bound": {"batches": self.max_batches, "bytes": self.max_bytes},
            "queue_peak": {"batches": self.peak_batches, "bytes": self.peak_bytes},
            "upstream_waits": self.waits,
        }


class LiveInput(InputHandle):
    """An `InputHandle` over an upstream that is still running: its batches come from a `HandOff`.

    The first `iter_batches()` streams the batches as the upstream produces them; everything that
    needs the whole output (`num_rows`, `to_table()`, another pass) reads the output file once the
    upstream's step is over, as a plain `InputHandle` does.
    """

    def __init__(self, handoff: HandOff) -> None:
        super().__init__(handoff.upstream, handoff.path)
        self.handoff = handoff

    def _parquet(self) -> Any:
        if self._file is None and self.handoff.wait_final() is None:
            raise TerminalError(
                f"Step `{self.step_id}` returned no `df`, so step `{self.handoff.consumer}` has no input",
                step=self.handoff.consumer,
            )
        return super()._parquet()

    @property
    def known_num_rows(self) -> int | None:
        """Rows in the upstream output when it is complete, else None (no waiting)."""
        if self.handoff._final == "succeeded" and self.path.is_file():
            return self.num_rows
        return None

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the upstream output (known as soon as its driver returned)."""
        schema = self.handoff.schema()
        if schema is None:
            return self._parquet().schema_arrow  # raises: no output
        return schema

    def iter_batches(self, batch_size: int = 65536, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The upstream's batches (at most `batch_size` rows each): live on the first call, else from the file."""
        if not self.handoff.claim():
            self._parquet()
            yield from super().iter_batches(batch_size, columns)
            return
        for batch in self.handoff.live_batches():
            if columns is not None:
                batch = batch.select(columns)
            if batch.num_rows <= batch_size:
                yield batch
                continue
            for start in range(0, batch.num_rows, batch_size):
                yield batch.slice(start, batch_size)

    def to_table(self) -> pa.Table:
        """The whole output as one Arrow table (waits for the upstream's file)."""
        self.handoff.detach()
        return super().to_table()

    def __repr__(self) -> str:
        return f"LiveInput(step_id={self.step_id!r}, path={str(self.path)!r})"


def _conformed(batch: pa.RecordBatch, schema: pa.Schema, step_id: str) -> pa.RecordBatch:
    """`batch` cast to the output's `schema` (as the Parquet writer does), so the consumer sees the same data."""
    if batch.schema.equals(schema):
        return batch
    import pyarrow as pa

    try:
        return pa.RecordBatch.from_arrays(
            [col.cast(field.type) for col, field in zip(batch.columns, schema, strict=True)], schema=schema
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise TerminalError(
            f"Step `{step_id}` produced a batch whose schema differs from the first one: {exc}", step=step_id
        ) from None


def overlap_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether steps may overlap: yes unless `OSIRIS_OVERLAP` is `0` (or `false`, `no`, `off`)."""
    value = (os.environ if environ is None else environ).get("OSIRIS_OVERLAP", "1")
    return value.strip().lower() not in ("0", "false", "no", "off")


def overlap_pairs(
    order: list[str],
    needs: Mapping[str, list[str]],
    streaming: Mapping[str, bool],
    *,
    excluded: set[str] | frozenset[str] = frozenset(),
) -> dict[str, str]:
    """Which steps read their upstream as it is written: consumer -> upstream.

    A step overlaps with its upstream when its component declares `streaming_input`, it has exactly one
    upstream, that upstream has no other dependent (its output feeds only this step, so stopping it when
    the step fails hurts nobody), and neither is in `excluded` (steps that already ran, incremental
    writers whose watermark needs the upstream's final facts).
    """
    dependents: dict[str, list[str]] = {}
    for sid in order:
        for need in needs.get(sid, []):
            dependents.setdefault(need, []).append(sid)
    pairs = {}
    for sid in order:
        ups = needs.get(sid, [])
        if not streaming.get(sid) or len(ups) != 1 or sid in excluded:
            continue
        up = ups[0]
        if up in excluded or dependents.get(up) != [sid]:
            continue
        pairs[sid] = up
    return pairs


__all__ = [
    "MAX_BATCHES",
    "MAX_BYTES",
    "STREAMING_INPUT",
    "ConsumerFailed",
    "HandOff",
    "LiveInput",
    "StreamBroken",
    "UpstreamFailed",
    "overlap_enabled",
    "overlap_pairs",
]
