"""Whether input values fit an existing column exactly, how to check it, and the safe widenings.

Types here are PostgreSQL's own spellings (`format_type` output such as `numeric(9,2)`,
`character varying(40)`, `timestamp(3) without time zone`) or the writer's (`varchar(40)`,
`timestamptz`). `fits(source, target)` says every value of `source` is stored exactly in
`target`; when it is not, `misfit_condition` is SQL that is true for a value that would change,
and `widening` the smallest type that holds both (for `widen_columns: true`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ALIASES = {
    "int2": "smallint",
    "int4": "integer",
    "int": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "bool": "boolean",
    "decimal": "numeric",
    "character varying": "varchar",
    "character": "bpchar",
    "char": "bpchar",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "time without time zone": "time",
    "time with time zone": "timetz",
    "bit varying": "varbit",
}
_INTEGERS = {"smallint": 5, "integer": 10, "bigint": 19}  # decimal digits each holds in full
_TEXT = {"text", "varchar", "bpchar"}
_PARSED = re.compile(r"^(?P<head>[a-z ]+?)\s*(?:\((?P<mods>[-\d, ]+)\))?(?P<tail>(?: with(?:out)? time zone)?)$")


@dataclass(frozen=True)
class PgType:
    """A PostgreSQL type as a base name and its modifiers (`numeric(9,2)` → `numeric`, (9, 2))."""

    base: str
    mods: tuple[int, ...] = ()
    array: bool = False

    @property
    def sql(self) -> str:
        """The type as SQL (`numeric(9,2)`, `varchar(40)`, `timestamp(3)`)."""
        name = {"bpchar": "char", "varbit": "bit varying", "timetz": "time with time zone"}.get(self.base, self.base)
        mods = f"({','.join(str(m) for m in self.mods)})" if self.mods else ""
        if name == "time with time zone" and mods:
            name, mods = "time", f"{mods} with time zone"
        if name == "timestamptz" and mods:
            name, mods = "timestamp", f"{mods} with time zone"
        return f"{name}{mods}{'[]' if self.array else ''}"


def parse(text: str) -> PgType:
    """Parse a type name; unknown names keep their text as the base."""
    s = text.strip().lower()
    array = s.endswith("[]")
    if array:
        s = s[:-2].strip()
    m = _PARSED.match(s)
    if not m:
        return PgType(s, (), array)
    head = (m.group("head").strip() + m.group("tail")).strip()
    mods = tuple(int(x) for x in m.group("mods").split(",")) if m.group("mods") else ()
    if head == "bpchar" and not mods:
        mods = (1,)
    return PgType(_ALIASES.get(head, head), mods, array)


def _numeric(t: PgType) -> tuple[int, int] | None:
    """(integer digits, scale) of a bounded numeric or an integer type; None when unbounded."""
    if t.base in _INTEGERS:
        return _INTEGERS[t.base], 0
    if t.base == "numeric" and t.mods:
        p, s = (*t.mods, 0)[:2]
        return p - s, s
    return None


def fits(source: str | PgType, target: str | PgType) -> bool:
    """Whether every value of type `source` is stored in `target` unchanged (by type alone)."""
    s = parse(source) if isinstance(source, str) else source
    t = parse(target) if isinstance(target, str) else target
    if s == t:
        return True
    if s.array or t.array:
        return False
    if s.base in _INTEGERS and t.base in _INTEGERS:
        return _INTEGERS[s.base] <= _INTEGERS[t.base]
    if t.base == "numeric" and (s.base in _INTEGERS or s.base == "numeric"):
        if not t.mods:
            return True
        sn, tn = _numeric(s), _numeric(t)
        return sn is not None and tn is not None and sn[0] <= tn[0] and sn[1] <= tn[1]
    if s.base == "real" and t.base == "double precision":
        return True
    if t.base in _TEXT and s.base in _TEXT:
        if t.base == "text" or (t.base == "varchar" and not t.mods):
            return True
        if not s.mods or s.base == "text":
            return False
        same_kind = s.base == t.base or (s.base == "bpchar" and t.base == "varchar")
        return same_kind and s.mods[0] <= t.mods[0]
    if s.base == t.base and s.base in ("timestamp", "timestamptz", "time", "timetz", "interval"):
        return not t.mods or (bool(s.mods) and s.mods[0] <= t.mods[0])
    if s.base == t.base == "varbit":
        return not t.mods or (bool(s.mods) and s.mods[0] <= t.mods[0])
    if s.base == "bit" and t.base == "varbit":
        return not t.mods or s.mods[0] <= t.mods[0]
    return False


def unconstrained(t: PgType) -> PgType:
    """The type without its length, precision or scale (what a typmod cast is compared with)."""
    if t.base in ("varchar", "bpchar"):
        return PgType("text")
    if t.base == "bit":
        return PgType("varbit")
    return PgType(t.base, (), t.array)


def misfit_condition(column_sql: str, staged: str, target: str) -> str | None:
    """SQL true for a staged value of type `staged` that `target` would not store exactly; None: nothing to check.

    A typmod (length, precision, scale, fractional seconds) is checked by comparing the value
    cast to `target` with it cast to `target` without the typmod; a cast between kinds
    (float → integer, numeric → real) by casting it back. Text parsed into another kind (JSON,
    UUID, integer...) is PostgreSQL's parse: it stores the value or fails loudly.
    """
    s, t = parse(staged), parse(target)
    if fits(s, t) or t.base in ("json", "jsonb"):
        return None
    cast = f"CAST({column_sql} AS {t.sql})"
    if s.base in _TEXT:
        if t.base in _TEXT:
            return f"{cast}::text IS DISTINCT FROM {column_sql}::text"
        if t.mods:
            return f"{cast} IS DISTINCT FROM CAST({column_sql} AS {unconstrained(t).sql})"
        return None
    if s.base == t.base:
        return f"{cast} IS DISTINCT FROM {column_sql}"
    return f"CAST({cast} AS {s.sql}) IS DISTINCT FROM {column_sql}"


def widening(target: str, source: str) -> str | None:
    """The smallest type holding every value of `target` and of `source` unchanged; None when there is none."""
    t, s = parse(target), parse(source)
    if t.array or s.array:
        return None
    if fits(s, t):
        return t.sql
    if fits(t, s):
        return s.sql
    tn, sn = _numeric(t), _numeric(s)
    numbers = {*_INTEGERS, "numeric"}
    if t.base in numbers and s.base in numbers:
        if (t.base == "numeric" and not t.mods) or (s.base == "numeric" and not s.mods):
            return "numeric"
        assert tn is not None and sn is not None
        whole, scale = max(tn[0], sn[0]), max(tn[1], sn[1])
        return f"numeric({whole + scale},{scale})" if whole + scale <= 1000 else "numeric"
    if {t.base, s.base} == {"real", "double precision"}:
        return "double precision"
    if t.base in _TEXT and s.base in _TEXT:
        if "text" in (t.base, s.base) or not t.mods or not s.mods:
            return "text"
        n = max(t.mods[0], s.mods[0])
        return f"char({n})" if t.base == s.base == "bpchar" else f"varchar({n})"
    if t.base == s.base and t.base in ("timestamp", "timestamptz", "time", "timetz", "interval"):
        return PgType(t.base).sql
    if {t.base, s.base} <= {"bit", "varbit"}:
        if (t.base == "varbit" and not t.mods) or (s.base == "varbit" and not s.mods):
            return "bit varying"
        return f"bit varying({max(t.mods[0], s.mods[0])})"
    return None
