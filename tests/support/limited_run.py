"""`osiris ARGS` with the host's disk "full" from the moment the load is committed.

When the run records the event named by `OSIRIS_TEST_FULL_AFTER` (default `write.complete`,
which the writer emits once PostgreSQL committed), this process's file size limit drops to one
byte (`RLIMIT_FSIZE`; Python ignores SIGXFSZ, so every later write to a file fails with EFBIG,
as a full disk fails with ENOSPC). Processes started before that (a sandbox worker) keep their
limit. Test support, not shipped.
"""

from __future__ import annotations

import os
import resource
import sys

from osiris.core.cli import main
from osiris.runtime import runlog

TRIGGER = os.environ.get("OSIRIS_TEST_FULL_AFTER", "write.complete")
_write_event = runlog.RunLog.write_event


def _write_event_then_fill(self: runlog.RunLog, record: dict) -> dict:
    if record.get("event") == TRIGGER:
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))
    return _write_event(self, record)


runlog.RunLog.write_event = _write_event_then_fill  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
