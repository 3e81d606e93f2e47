"""The overlapped hand-off between a producing step and the step reading it as it is written.

The producer is the real `execute_step` (Parquet artifact, `data_sha256`) in a thread; the consumer
reads a `LiveInput`. Nothing here waits for a time: threads are joined, and "the producer is held"
is read from the queue itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from osiris.core.errors import TerminalError, TransientError
from osiris.runtime.contract import InputHandle, StepContext
from osiris.runtime.handoff import ConsumerFailed, HandOff, LiveInput, StreamBroken, UpstreamFailed, overlap_pairs
from osiris.runtime.io import data_sha256
from osiris.runtime.retry import RetryPolicy
from osiris.runtime.steps import execute_step

BATCHES = 50
ROWS = 100


def batch(i: int) -> pa.RecordBatch:
    return pa.record_batch({"id": pa.array(range(i * ROWS, (i + 1) * ROWS), pa.int64()), "tag": [f"b{i}"] * ROWS})


class Source:
    """A driver returning `BATCHES` batches, counting how many were pulled; fails where told."""

    def __init__(self, fail_at: int | None = None, error: Exception | None = None) -> None:
        self.pulled = 0
        self.fail_at = fail_at
        self.error = error or TerminalError("the source broke", step="up")
        self.calls = 0

    def batches(self) -> Iterator[pa.RecordBatch]:
        for i in range(BATCHES):
            if self.calls == 1 and self.fail_at is not None and i == self.fail_at:
                raise self.error
            self.pulled += 1
            yield batch(i)

    def run(self, *, step_id: str, config: dict, inputs: dict, ctx: StepContext) -> dict[str, Any]:
        self.calls += 1
        return {"df": self.batches()}


def produce(source: Source, out: Path, handoff: HandOff, policy: RetryPolicy | None = None) -> dict[str, Any]:
    """Run `source` as the upstream step in a thread; the returned dict gets `output` or `error`."""
    done: dict[str, Any] = {}

    def target() -> None:
        try:
            done["output"] = execute_step(
                source,
                step_id="up",
                config={},
                inputs={},
                ctx=StepContext(step_id="up", output_dir=out),
                policy=policy or RetryPolicy(),
                on_retry=lambda *_: None,
                handoff=handoff,
            )
            handoff.finish("succeeded")
        except BaseException as exc:
            done["error"] = exc
            handoff.finish("failed")

    done["thread"] = threading.Thread(target=target)
    done["thread"].start()
    return done


def wait_until(check: Any) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, "the hand-off never reached the state the test waits for"
        time.sleep(0.01)


def make(tmp_path: Path, **kw: Any) -> HandOff:
    handoff = HandOff("up", "down", tmp_path / "output.parquet", **kw)
    handoff.consumer_started()
    return handoff


def test_a_slow_reader_holds_the_producer_at_the_queue_bound(tmp_path: Path) -> None:
    handoff = make(tmp_path, max_batches=4)
    source = Source()
    done = produce(source, tmp_path, handoff)
    wait_until(lambda: handoff.waiting)
    # Held: what it pulled is what the queue holds plus the one batch it waits to queue.
    assert len(handoff._items) == 4 and source.pulled == 4 + 1
    live = LiveInput(handoff)
    got = pa.Table.from_batches(list(live.iter_batches()))
    done["thread"].join()
    assert got.num_rows == BATCHES * ROWS and got.column("id").to_pylist() == list(range(BATCHES * ROWS))
    assert handoff.peak_batches <= 4 and handoff.waits >= 1
    record = handoff.record()
    assert record["streamed"] is True and record["batches_streamed"] == BATCHES
    # The artifact and its hash are those of a run without a reader.
    assert data_sha256(done["output"].path) == done["output"].data_sha256
    assert live.num_rows == BATCHES * ROWS


def test_a_byte_bound_holds_one_batch_at_least(tmp_path: Path) -> None:
    handoff = make(tmp_path, max_batches=100, max_bytes=1)
    source = Source()
    done = produce(source, tmp_path, handoff)
    wait_until(lambda: handoff.waiting)
    assert len(handoff._items) == 1 and source.pulled == 2
    assert sum(b.num_rows for b in LiveInput(handoff).iter_batches(batch_size=30)) == BATCHES * ROWS
    done["thread"].join()
    assert handoff.peak_batches == 1


def test_the_stream_ends_only_once_the_output_is_written_and_hashed(tmp_path: Path) -> None:
    handoff = make(tmp_path)
    live = LiveInput(handoff)
    # Before any batch: the schema waits for the producer, then comes from it.
    done = produce(Source(), tmp_path, handoff)
    assert live.schema.names == ["id", "tag"]
    rows = sum(b.num_rows for b in live.iter_batches())
    assert rows == BATCHES * ROWS
    assert (tmp_path / "output.parquet").is_file()  # the last batch came after the rename
    done["thread"].join()


def test_an_upstream_failing_mid_stream_breaks_the_reader(tmp_path: Path) -> None:
    handoff = make(tmp_path, max_batches=2)
    done = produce(Source(fail_at=20), tmp_path, handoff)
    live = LiveInput(handoff)
    seen = 0
    with pytest.raises(StreamBroken):
        for b in live.iter_batches():
            seen += b.num_rows
    done["thread"].join()
    assert 0 < seen < BATCHES * ROWS
    assert handoff.broken and handoff.upstream_failed
    with pytest.raises(UpstreamFailed, match="`up`"):
        handoff.wait_final()
    with pytest.raises(UpstreamFailed):
        list(live.iter_batches())  # a second pass waits for the file, which never came
    assert not (tmp_path / "output.parquet").exists()


def test_a_retried_upstream_is_read_again_from_its_file(tmp_path: Path) -> None:
    handoff = make(tmp_path, max_batches=2)
    source = Source(fail_at=20, error=TransientError("lost the source", step="up"))
    policy = RetryPolicy(retries=1, base_delay_s=0.0)
    done = produce(source, tmp_path, handoff, policy)
    live = LiveInput(handoff)
    with pytest.raises(StreamBroken):
        list(live.iter_batches())
    assert handoff.wait_final() is not None  # the retry succeeded: its file is complete
    assert sum(b.num_rows for b in live.iter_batches()) == BATCHES * ROWS
    done["thread"].join()
    assert source.calls == 2 and "output" in done


def test_the_reader_restarts_on_the_final_output_without_a_retry_of_its_own(tmp_path: Path) -> None:
    handoff = make(tmp_path, max_batches=2)
    source = Source(fail_at=20, error=TransientError("lost the source", step="up"))
    done = produce(source, tmp_path, handoff, RetryPolicy(retries=1, base_delay_s=0.0))
    restarts: list[BaseException] = []

    class Sink:
        attempts = 0

        def run(self, *, step_id: str, config: dict, inputs: dict, ctx: StepContext) -> dict[str, Any]:
            Sink.attempts += 1
            return {"rows_written": sum(b.num_rows for b in inputs["df"].iter_batches())}

    out = execute_step(
        Sink(),
        step_id="down",
        config={},
        inputs={"up": LiveInput(handoff), "df": LiveInput(handoff)},
        ctx=StepContext(step_id="down", output_dir=tmp_path / "down"),
        policy=RetryPolicy(retries=0),
        on_retry=lambda *_: None,
        on_restart=restarts.append,
    )
    done["thread"].join()
    assert out.facts["rows_written"] == BATCHES * ROWS
    assert Sink.attempts == 2 and len(restarts) == 1


def test_a_failed_reader_stops_the_producer(tmp_path: Path) -> None:
    handoff = make(tmp_path, max_batches=2)
    source = Source()
    done = produce(source, tmp_path, handoff)
    wait_until(lambda: handoff.waiting)
    handoff.consumer_done(failed=True)
    done["thread"].join()
    assert isinstance(done["error"], ConsumerFailed) and "`down`" in str(done["error"])
    assert source.pulled < BATCHES
    assert not (tmp_path / "output.parquet").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_asking_for_the_whole_input_lets_the_producer_run_to_its_end(tmp_path: Path) -> None:
    handoff = make(tmp_path, max_batches=2)
    done = produce(Source(), tmp_path, handoff)
    live = LiveInput(handoff)
    assert live.known_num_rows is None or live.known_num_rows == BATCHES * ROWS
    assert live.num_rows == BATCHES * ROWS  # waits for the file; the producer no longer waits for us
    done["thread"].join()
    assert handoff.record()["streamed"] is False
    assert sum(b.num_rows for b in live.iter_batches()) == BATCHES * ROWS  # from the file
    assert InputHandle("up", tmp_path / "output.parquet").known_num_rows == BATCHES * ROWS


def test_a_reader_that_never_started_does_not_hold_the_producer(tmp_path: Path) -> None:
    handoff = HandOff("up", "down", tmp_path / "output.parquet", max_batches=2)  # no consumer_started()
    done = produce(Source(), tmp_path, handoff)
    done["thread"].join()
    assert "output" in done
    assert sum(b.num_rows for b in LiveInput(handoff).iter_batches()) == BATCHES * ROWS


def test_which_steps_overlap() -> None:
    order = ["a", "w", "b", "c", "w2", "x", "y"]
    needs = {"w": ["a"], "c": ["b"], "w2": ["b"], "y": ["x"]}
    streaming = {"w": True, "c": True, "w2": True, "y": True}
    # `b` feeds two steps, `y` is excluded (e.g. an incremental writer).
    assert overlap_pairs(order, needs, streaming, excluded={"y"}) == {"w": "a"}
    assert overlap_pairs(order, needs, {"w": False}) == {}
    assert overlap_pairs(order, {"w": ["a", "x"]}, streaming) == {}
