"""Compile-time checks of `incremental` blocks: combinations that could lose or duplicate rows are refused.

The block's shape is the extractor spec's `configSchema`; this module checks what spans steps:
the extractor's component reads incrementally (`capabilities.incremental`), every `write` step
downstream keeps state in its own transaction (`capabilities.incremental_state`) and upserts on a
`primary_key` (an incremental read re-reads its lag window and the rows sharing the boundary, so an
`append` would store them twice and a `replace` would delete every row outside the window), and
the read is not cut short by a `limit` (rows past it would fall behind the watermark).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Add = Callable[[str, tuple[str | int, ...], str], None]


def _downstream_writers(step_id: str, needs: Mapping[str, list[str]], modes: Mapping[str, str]) -> list[str]:
    below, changed = {step_id}, True
    while changed:
        changed = False
        for sid, ups in needs.items():
            if sid not in below and any(u in below for u in ups):
                below.add(sid)
                changed = True
    return sorted(s for s in below if modes.get(s) == "write")


def check_incremental(
    steps: list[Any],
    components: Mapping[str, Any],
    configs: Mapping[str, dict[str, Any]],
    needs: Mapping[str, list[str]],
    modes: Mapping[str, str],
    add: Add,
) -> None:
    """Add an error (message, path parts, step) for every unsafe incremental combination."""
    index = {s.id: i for i, s in enumerate(steps)}
    for sid, config in configs.items():
        block = config.get("incremental")
        if not isinstance(block, dict):
            continue
        where = ("steps", index[sid], "config", "incremental")
        caps = components[sid].spec.capabilities or {}
        if not caps.get("incremental"):
            add(f"component `{components[sid].name}` does not read incrementally", where, sid)
            continue
        if config.get("limit") is not None:
            add(
                "`limit` with `incremental` would cut the window short: the rows past the limit would fall "
                "behind the new watermark and never be loaded; remove `limit`",
                ("steps", index[sid], "config", "limit"),
                sid,
            )
        writers = _downstream_writers(sid, needs, modes)
        if not writers:
            add(
                "an incremental read keeps its watermark in the destination, in the same transaction as the "
                "rows; add a `write` step downstream (`supabase.writer` or `duckdb.writer`, `write_mode: upsert`)",
                where,
                sid,
            )
        for w in writers:
            wcfg = configs.get(w, {})
            wwhere = ("steps", index[w], "config")
            wcaps = components[w].spec.capabilities or {}
            if not wcaps.get("incremental_state"):
                add(
                    f"`{components[w].name}` cannot commit a watermark in the same transaction as its rows, so a "
                    f"failed or repeated load of the incremental step `{sid}` could lose or duplicate rows; "
                    "write to `supabase.writer` or `duckdb.writer`",
                    ("steps", index[w], "component"),
                    w,
                )
                continue
            mode = wcfg.get("write_mode") or "append"
            if mode != "upsert" or not wcfg.get("primary_key"):
                reason = {
                    "append": "an incremental read re-reads its `lag` window and the rows sharing the boundary "
                    "value, which `append` would store twice",
                    "replace": "`replace` would delete every row outside the window read",
                }.get(mode, "the rows re-read in the overlap must land on their key")
                if mode == "upsert":
                    reason = "`upsert` needs the key the overlap lands on"
                add(
                    f"the incremental step `{sid}` upstream needs `write_mode: upsert` with a `primary_key`: "
                    f"{reason} (`osiris run --full-refresh` replaces the table once when needed)",
                    (*wwhere, "write_mode") if "write_mode" in wcfg else wwhere,
                    w,
                )
