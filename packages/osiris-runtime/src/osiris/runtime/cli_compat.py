"""The CLI value types of `osiris.core.cli_types`, with stand-ins for osiris-core 0.3 (the range's floor).

Core 0.3 has no `cli_types`; there the options take plain values, as before. Raise the runtime's
floor on osiris-core to the release that has `cli_types` and import it directly, then drop this.
"""

from __future__ import annotations

from typing import Any

import click

try:
    from osiris.core.cli_types import Folder, positive_seconds, refuse_unused
except ImportError:

    def Folder(*, writable: bool = True) -> click.ParamType:  # type: ignore[misc]
        """A folder path (not checked further on osiris-core 0.3)."""
        return click.Path(file_okay=False)

    def positive_seconds() -> click.FloatRange:  # type: ignore[misc]
        """A duration in seconds greater than zero."""
        return click.FloatRange(min=0, min_open=True)

    def refuse_unused(ctx: click.Context, reason: str, *names: str) -> None:  # type: ignore[misc]
        """Nothing on osiris-core 0.3."""
        _: Any = (ctx, reason, names)


__all__ = ["Folder", "positive_seconds", "refuse_unused"]
