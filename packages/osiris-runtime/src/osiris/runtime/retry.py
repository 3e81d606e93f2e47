"""Retrying a step after a transient error: the one place Osiris retries.

A component declares in its spec that its steps may run again after a failure::

    capabilities:
      safe_to_retry: true     # a failed attempt leaves nothing behind

which it may claim when an attempt that failed changed nothing anyone sees: a read (the
step's output is written to a temporary file renamed into place only when complete), a
load that commits once at the end. The runner then runs such a step again after a
`TransientError` (an `OsirisError` with `retryable`), up to `retries` more times: the step
config's `retries` when its component takes that key (`supabase.writer`; else its default in
the spec's `configSchema`), else `DEFAULT_RETRIES`. It waits 0.5 s, 1 s, 2 s, ... (at most 10 s) before each retry and records
it as the event `step_retry` (`attempt`, `of`, `delay_s`, `error`). Terminal errors, errors
that are not Osiris errors (driver bugs) and the steps of components that do not declare
the capability fail at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from osiris.core.errors import ErrorInfo, OsirisError, UserInputError
from osiris.core.spec import ComponentSpec
from osiris.runtime import interrupts

T = TypeVar("T")

SAFE_TO_RETRY = "safe_to_retry"
RETRIES_KEY = "retries"
DEFAULT_RETRIES = 2
BASE_DELAY_S = 0.5
MAX_DELAY_S = 10.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often a step may run again after a transient error, and how long to wait before each time."""

    retries: int = 0
    base_delay_s: float = BASE_DELAY_S
    max_delay_s: float = MAX_DELAY_S

    @classmethod
    def for_step(cls, spec: ComponentSpec | None, config: Mapping[str, Any], *, step_id: str = "") -> RetryPolicy:
        """The policy of a step of `spec` with `config` (no retries unless the spec declares `safe_to_retry`)."""
        if spec is None or spec.capabilities.get(SAFE_TO_RETRY) is not True:
            return cls(retries=0)
        declared = (spec.config_schema.get("properties") or {}).get(RETRIES_KEY) or {}
        retries = config.get(RETRIES_KEY, declared.get("default", DEFAULT_RETRIES))
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise UserInputError(
                f"Invalid `{RETRIES_KEY}` for step `{step_id}`: expected a whole number of at least 0; got `{retries}`",
                step=step_id or None,
            )
        return cls(retries=retries)

    def delay_s(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 for the first)."""
        return min(self.max_delay_s, self.base_delay_s * (2 ** (retry - 1)))

    def allows(self, exc: BaseException, retry: int) -> bool:
        """Whether retry number `retry` may follow the failure `exc`."""
        return retry <= self.retries and isinstance(exc, OsirisError) and exc.retryable


def retry_event(retry: int, policy: RetryPolicy, exc: BaseException, delay_s: float, step_id: str) -> dict[str, Any]:
    """The data of a `step_retry` event (before redaction)."""
    return {
        "attempt": retry,
        "of": policy.retries,
        "delay_s": delay_s,
        "error": ErrorInfo.from_exception(exc, step=step_id).to_data(),
    }


def call_with_retries(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[int, BaseException, float], Any],
    sleep: Callable[[float], Any] = time.sleep,
) -> T:
    """`attempt()`, called again while it fails in a way `policy` allows; `on_retry(retry, exc, delay_s)` before each."""
    retry = 0
    while True:
        try:
            return attempt()
        except Exception as exc:
            retry += 1
            if not policy.allows(exc, retry) or interrupts.requested() is not None:  # never retry a stopped run
                raise
            delay = policy.delay_s(retry)
            on_retry(retry, exc, delay)
            sleep(delay)
