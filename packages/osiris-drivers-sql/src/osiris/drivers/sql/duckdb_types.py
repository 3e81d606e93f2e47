"""What `duckdb.processor` does so that types and names survive DuckDB exactly, or fail naming the column.

Going in, each input's Parquet file becomes a view. DuckDB reads most Arrow types as they are;
the exceptions are made explicit here:

- durations (MySQL TIME) would arrive as plain BIGINT: the view reads them as INTERVAL;
- text an earlier step tagged with `osiris.sql_type` (`interval`, `timetz`, `uuid`, `json`,
  `varbit`) is cast back to that DuckDB type;
- DECIMALs wider than DuckDB's 38 digits (DuckDB would read them as DOUBLE), nanosecond
  durations and wide-number text have no exact DuckDB type: a query that reads them fails
  naming the column (a query that does not touch them is fine);
- column names differing only in case (`Id`, `id`), which DuckDB cannot tell apart and would
  rename, fail naming both.

Coming out, DuckDB types with no exact Arrow form are converted by a projection over the
query (HUGEINT and UHUGEINT to DECIMAL(38,0), which fails loudly on a value that does not fit;
BIT, TIME WITH TIME ZONE, INTERVAL and BIGNUM to their text, tagged with `osiris.sql_type`),
UUID and JSON text is tagged, and UNION and VARIANT columns are refused. A result column the
query passes through unchanged from a single input (`SELECT *`, `SELECT a, b AS c … WHERE …`)
keeps that input column's nullability and field metadata (declared lengths, the source's key).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from osiris.core.errors import TerminalError, UserInputError
from osiris.drivers.sql._duckdb import quote_ident

if TYPE_CHECKING:
    import pyarrow as pa

SQL_TYPE_KEY = b"osiris.sql_type"
PRIMARY_KEY_KEY = b"osiris.primary_key"
DUCKDB_MAX_DECIMAL_PRECISION = 38
# Text tagged by an earlier step, read back as the DuckDB type it stands for.
TAGGED_TEXT = {"interval": "INTERVAL", "timetz": "TIMETZ", "uuid": "UUID", "json": "JSON", "varbit": "BIT"}
_DURATION_US = {"s": 1_000_000, "ms": 1_000, "us": 1}


def _tag(field: pa.Field) -> str | None:
    value = (field.metadata or {}).get(SQL_TYPE_KEY)
    return value.decode().strip().lower() if value else None


# -- inputs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputView:
    """One input as DuckDB sees it: the view's SELECT list, and the columns it cannot read exactly."""

    select: str
    unreadable: dict[str, str]  # column -> why DuckDB has no exact type for it


def input_view(schema: pa.Schema, *, view: str, step: str) -> InputView:
    """The SELECT list over `read_parquet(...)` that shows `schema` to DuckDB exactly."""
    import pyarrow.types as t

    lowered: dict[str, str] = {}
    for name in schema.names:
        other = lowered.setdefault(name.lower(), name)
        if other != name:
            raise UserInputError(
                f"Input `{view}` of step `{step}` has columns `{other}` and `{name}`, which DuckDB cannot tell apart "
                "(its names ignore case) and would rename: give one of them another name upstream",
                step=step,
            )
    items, unreadable = [], {}
    for f in schema:
        col = quote_ident(f.name)
        typ, tag = f.type, _tag(f)
        if t.is_duration(typ) and typ.unit in _DURATION_US:
            factor = _DURATION_US[typ.unit]
            items.append(f"to_microseconds({col}{f' * {factor}' if factor != 1 else ''}) AS {col}")
        elif t.is_duration(typ):
            unreadable[f.name] = f"`{typ}`: DuckDB's INTERVAL holds microseconds"
            items.append(col)
        elif t.is_decimal(typ) and typ.precision > DUCKDB_MAX_DECIMAL_PRECISION:
            unreadable[f.name] = (
                f"`{typ}`: DuckDB's DECIMAL holds at most {DUCKDB_MAX_DECIMAL_PRECISION} digits (it would read the "
                "column as DOUBLE)"
            )
            items.append(col)
        elif tag in TAGGED_TEXT and t.is_string(typ):
            items.append(f"CAST({col} AS {TAGGED_TEXT[tag]}) AS {col}")
        elif tag == "numeric" and t.is_string(typ):
            unreadable[f.name] = "a number wider than DuckDB's DECIMAL, kept as text"
            items.append(col)
        else:
            items.append(col)
    return InputView(", ".join(items), unreadable)


# -- the query's shape ----------------------------------------------------------------------


def parse(con: Any, query: str) -> dict[str, Any] | None:
    """DuckDB's parse tree of `query` (`json_serialize_sql`), or None when it cannot give one."""
    try:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [query]).fetchall()[0][0])
    except Exception:
        return None
    if tree.get("error") or len(tree.get("statements") or []) != 1:
        return None
    return tree


def nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every object node of a parse tree, depth first."""
    if isinstance(tree, dict):
        yield tree
        for v in tree.values():
            yield from nodes(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from nodes(v)


def reads(tree: dict[str, Any] | None, column: str, views: set[str], columns: set[str] | None = None) -> bool:
    """Whether the query may read `column` (conservative: a star, a positional or whole-row reference counts).

    `columns` (lower case) are every input's column names: a one-part reference to anything else
    may be a table alias used as a whole row (`SELECT s FROM src s`), so it counts too.
    """
    if tree is None:
        return True
    name = column.lower()
    known = columns if columns is not None else set()
    for node in nodes(tree):
        cls = node.get("class")
        if cls == "STAR":
            excluded = {str(x).lower() for x in node.get("exclude_list") or []}
            excluded |= {str(q.get("column_names", [""])[-1]).lower() for q in node.get("qualified_exclude_list") or []}
            if node.get("columns") or name not in excluded:
                return True
        elif cls == "COLUMN_REF":
            parts = [str(p).lower() for p in node.get("column_names") or []]
            if name in parts or (len(parts) == 1 and (parts[0] in views or parts[0] not in known)):
                return True
        elif cls == "POSITIONAL_REFERENCE" or (
            node.get("type") == "JOIN" and name in {str(c).lower() for c in node.get("using_columns") or []}
        ):
            return True
    return False


@dataclass(frozen=True)
class Lineage:
    """Which input column each result column passes through unchanged (None: computed)."""

    view: str
    sources: list[str | None]

    @property
    def all_passthrough(self) -> bool:
        """Every result column is an input column unchanged (so rows are input rows, filtered or ordered)."""
        return all(s is not None for s in self.sources)


_ROW_KEEPING_MODIFIERS = {"ORDER_MODIFIER", "LIMIT_MODIFIER", "LIMIT_PERCENT_MODIFIER", "DISTINCT_MODIFIER"}


def lineage(tree: dict[str, Any] | None, views: dict[str, list[str]]) -> Lineage | None:
    """For a single SELECT over one input (filters, ordering, limits, plain GROUP BY allowed): each result
    column's input column, when it passes one through unchanged. None for any other shape."""
    if tree is None:
        return None
    try:
        node = tree["statements"][0]["node"]
        if node.get("type") != "SELECT_NODE" or (node.get("cte_map") or {}).get("map"):
            return None
        src = node.get("from_table") or {}
        if src.get("type") != "BASE_TABLE" or src.get("schema_name") or src.get("catalog_name"):
            return None
        if src.get("column_name_alias") or src.get("sample") or src.get("at_clause"):
            return None
        view = str(src.get("table_name", "")).lower()
        if view not in views or node.get("sample") or len(node.get("group_sets") or []) > 1:
            return None
        if any(m.get("type") not in _ROW_KEEPING_MODIFIERS for m in node.get("modifiers") or []):
            return None
        names = {view, str(src.get("alias") or "").lower()} - {""}
        columns = views[view]
        by_lower = {c.lower(): c for c in columns}
        out: list[str | None] = []
        for item in node.get("select_list") or []:
            cls = item.get("class")
            if cls == "STAR":
                if (
                    item.get("columns")
                    or item.get("expr")
                    or item.get("rename_list")
                    or item.get("qualified_exclude_list")
                ):
                    return None
                if item.get("relation_name") and str(item["relation_name"]).lower() not in names:
                    return None
                excluded = {str(x).lower() for x in item.get("exclude_list") or []}
                replaced = {str(r.get("name", "")).lower() for r in item.get("replace_list") or []}
                for c in columns:
                    if c.lower() in excluded:
                        continue
                    out.append(None if c.lower() in replaced else c)
            elif cls == "COLUMN_REF":
                parts = [str(p) for p in item.get("column_names") or []]
                if len(parts) == 2 and parts[0].lower() in names:
                    parts = parts[1:]
                out.append(by_lower.get(parts[0].lower()) if len(parts) == 1 else None)
            else:
                out.append(None)
        return Lineage(view, out)
    except (KeyError, TypeError, IndexError, AttributeError):
        return None


# -- outputs --------------------------------------------------------------------------------

# DuckDB result types converted on the way out: (projection, osiris.sql_type tag).
_CONVERTED = {
    "hugeint": ("CAST({} AS DECIMAL(38,0))", None),
    "uhugeint": ("CAST({} AS DECIMAL(38,0))", None),
    "bit": ("CAST({} AS VARCHAR)", "varbit"),
    "time with time zone": ("CAST({} AS VARCHAR)", "timetz"),
    "interval": ("CAST({} AS VARCHAR)", "interval"),
    "bignum": ("CAST({} AS VARCHAR)", "numeric"),
    "varint": ("CAST({} AS VARCHAR)", "numeric"),
}
_TAGGED = {"uuid": "uuid"}
_REFUSED = {
    "union": "a UNION has no single type: cast it to one type, or to JSON, in the query",
    "variant": "a VARIANT has no single type: cast it to JSON in the query",
}
_NESTED = {"list", "struct", "map", "array"}


def _nested_problem(typ: Any) -> str | None:
    """Why a nested DuckDB type cannot leave exactly (a converted or refused type inside it), or None."""
    ident = str(typ.id)
    if ident in _CONVERTED or ident in _REFUSED:
        return f"`{typ}` inside it"
    if ident not in _NESTED:
        return None
    for _, child in typ.children:
        if hasattr(child, "id"):
            problem = _nested_problem(child)
            if problem:
                return problem
    return None


@dataclass(frozen=True)
class OutputPlan:
    """How the query's result leaves DuckDB: a projection when some column needs one, and each column's tag."""

    projection: str | None
    tags: list[str | None]


def output_plan(names: list[str], types: list[Any], *, step: str) -> OutputPlan:
    """Check the result's names and types; the conversions that make every column exact."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UserInputError(
                f"The query of step `{step}` returns two columns named `{name}`; give them distinct names (`AS`)",
                step=step,
            )
        seen.add(name)
    exprs, tags, convert = [], [], False
    for i, (name, typ) in enumerate(zip(names, types, strict=True), start=1):
        ident = str(typ.id)
        ref = f"#{i}"
        tag = None
        if ident in _REFUSED:
            raise TerminalError(f"Column `{name}` of step `{step}` is `{typ}`: {_REFUSED[ident]}", step=step)
        if ident in _CONVERTED:
            template, tag = _CONVERTED[ident]
            ref = template.format(ref)
            convert = True
        elif ident in _NESTED:
            for _, child in typ.children:
                problem = _nested_problem(child) if hasattr(child, "id") else None
                if problem:
                    raise TerminalError(
                        f"Column `{name}` of step `{step}` is `{typ}`: {problem} has no exact form there; cast the "
                        "value inside (e.g. to VARCHAR or DECIMAL) or the whole column to JSON",
                        step=step,
                    )
        elif str(typ) == "JSON":
            tag = "json"
        elif ident in _TAGGED:
            tag = _TAGGED[ident]
        exprs.append(f"{ref} AS {quote_ident(name)}")
        tags.append(tag)
    return OutputPlan(", ".join(exprs) if convert else None, tags)


def result_schema(
    arrow: pa.Schema,
    plan: OutputPlan,
    line: Lineage | None,
    inputs: dict[str, pa.Schema],
) -> pa.Schema:
    """The result's Arrow schema with what survives: tags for converted columns, and for columns passed
    through unchanged the input field's nullability and metadata (its key positions only when every result
    column passes through and the whole key is there)."""
    import pyarrow as pa

    source = inputs.get(line.view) if line is not None else None
    keep_key = False
    if source is not None and line is not None and line.all_passthrough:
        key_cols = {f.name for f in source if (f.metadata or {}).get(PRIMARY_KEY_KEY)}
        keep_key = bool(key_cols) and key_cols <= {s for s in line.sources if s}
    fields = []
    for i, f in enumerate(arrow):
        tag = plan.tags[i]
        origin = line.sources[i] if line is not None and i < len(line.sources) else None
        src = source.field(origin) if origin is not None and source is not None else None
        meta: dict[bytes, bytes] = {}
        nullable = True
        if src is not None:
            nullable = src.nullable
            meta = dict(src.metadata or {})
            if not keep_key:
                meta.pop(PRIMARY_KEY_KEY, None)
            if not _same_values(src.type, f.type):
                meta.pop(SQL_TYPE_KEY, None)
        if tag is not None:
            meta[SQL_TYPE_KEY] = tag.encode()
        fields.append(pa.field(f.name, f.type, nullable=nullable, metadata=meta or None))
    return pa.schema(fields)


def _same_values(a: Any, b: Any) -> bool:
    """Whether a column of Arrow type `a` read by DuckDB comes out as type `b` with the same values."""
    import pyarrow.types as t

    if a.equals(b):
        return True
    if t.is_dictionary(a):
        return _same_values(a.value_type, b)
    string = (t.is_string, t.is_large_string)
    return any(f(a) for f in string) and any(f(b) for f in string)
