"""What a MySQL result says besides its types reaches Arrow: NOT NULL, declared lengths, the table's key;
and a `CALL` is read only when it returns exactly one result set. Every read path, the real MariaDB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from osiris.core.errors import UserInputError
from osiris.drivers.sql.mysql_extractor import MySQLExtractor

pytestmark = [pytest.mark.mysql]
PATHS = ["native", "connectorx", "pymysql"]
STEP = "x"  # the step id of every run here (and of the `recorder` context)


@pytest.fixture(scope="module")
def shaped(mysql_db: dict[str, Any], mysql_admin: Any) -> dict[str, Any]:
    with mysql_admin(mysql_db["database"]) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE emp (dept CHAR(4) NOT NULL, emp_no INT NOT NULL, name VARCHAR(40) NOT NULL, "
            "nick VARCHAR(10) CHARACTER SET latin1, note TEXT, flags BIT(5) NOT NULL, doc JSON, "
            "hired DATE NOT NULL, PRIMARY KEY (dept, emp_no))"
        )
        cur.execute(
            "INSERT INTO emp VALUES ('d001', 1, 'Ann', NULL, NULL, b'10101', NULL, '2020-01-01'), "
            "('d002', 1, 'Bo', 'b', 'x', b'00001', '[]', '2021-02-03')"
        )
        cur.execute("CREATE PROCEDURE two_sets() BEGIN SELECT 1 AS a; SELECT 'x' AS b, 2 AS c; END")
        cur.execute("CREATE PROCEDURE no_set() BEGIN DO 1; END")
        cur.execute("CREATE PROCEDURE one_set() BEGIN SELECT emp_no, name FROM emp ORDER BY dept; END")
    return mysql_db


def extract(conn: dict[str, Any], read_path: str, recorder: Any, **config: Any) -> Any:
    """Run the extractor on `read_path` with the test's recording context; its whole output."""
    out = MySQLExtractor().run(
        step_id="x", config={"read_path": read_path, **config, "resolved_connection": conn}, ctx=recorder
    )["df"]
    return out.read_all()


def shape(table: Any) -> dict[str, tuple[bool, dict[str, str]]]:
    return {f.name: (f.nullable, {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}) for f in table.schema}


@pytest.mark.parametrize("path", PATHS)
def test_a_table_read_carries_not_null_lengths_and_its_key(
    shaped: Any, tmp_path: Path, recorder: Any, read_path: str, path: str
) -> None:
    table = extract(shaped, read_path, recorder, table="emp")
    assert shape(table) == {
        "dept": (False, {"osiris.sql_type": "char(4)", "osiris.primary_key": "1"}),
        "emp_no": (False, {"osiris.primary_key": "2"}),
        "name": (False, {"osiris.sql_type": "varchar(40)"}),
        "nick": (True, {"osiris.sql_type": "varchar(10)"}),
        "note": (True, {}),
        "flags": (False, {"osiris.sql_type": "bit(5)"}),
        "doc": (True, {}),
        "hired": (False, {}),
    }
    assert table.num_rows == 2
    assert recorder.event("extract.plan")["primary_key"] == ["dept", "emp_no"]


@pytest.mark.parametrize("path", PATHS)
def test_a_query_keeps_not_null_and_lengths_but_no_key(
    shaped: Any, tmp_path: Path, recorder: Any, read_path: str, path: str
) -> None:
    table = extract(shaped, read_path, recorder, query="SELECT e.emp_no, e.name, UPPER(e.name) AS loud FROM emp e")
    assert shape(table) == {
        "emp_no": (False, {}),
        "name": (False, {"osiris.sql_type": "varchar(40)"}),
        "loud": (True, {}),  # computed: its length is the server's guess, not a declaration
    }


@pytest.mark.parametrize("path", PATHS)
def test_a_column_subset_without_the_whole_key_carries_no_key(
    shaped: Any, tmp_path: Path, recorder: Any, read_path: str, path: str
) -> None:
    table = extract(shaped, read_path, recorder, table="emp", columns=["emp_no", "name"])
    assert all("osiris.primary_key" not in meta for _, meta in shape(table).values())


@pytest.mark.parametrize("path", PATHS)
def test_rollup_nulls_are_not_claimed_not_null(
    shaped: Any, tmp_path: Path, recorder: Any, read_path: str, path: str
) -> None:
    table = extract(shaped, read_path, recorder, query="SELECT dept, count(*) AS n FROM emp GROUP BY dept WITH ROLLUP")
    assert table.column("dept").to_pylist() == ["d001", "d002", None]
    assert table.schema.field("dept").nullable


@pytest.mark.parametrize("path", PATHS)
def test_a_call_returning_two_result_sets_is_refused(
    shaped: Any, tmp_path: Path, recorder: Any, read_path: str, path: str
) -> None:
    with pytest.raises(
        UserInputError, match=r"more than one result set \(the first has columns `a`; another has `b`, `c`\)"
    ):
        extract(shaped, read_path, recorder, query="CALL two_sets()")


@pytest.mark.parametrize("path", PATHS)
def test_a_call_returning_no_result_set_is_a_clear_error(
    shaped: Any, tmp_path: Path, recorder: Any, read_path: str, path: str
) -> None:
    with pytest.raises(UserInputError, match="returned no result set"):
        extract(shaped, read_path, recorder, query="CALL no_set()")


@pytest.mark.parametrize("path", PATHS)
def test_a_call_returning_one_result_set_is_read(
    shaped: Any, tmp_path: Path, recorder: Any, read_path: str, path: str
) -> None:
    table = extract(shaped, read_path, recorder, query="CALL one_set()")
    assert table.to_pylist() == [{"emp_no": 1, "name": "Ann"}, {"emp_no": 1, "name": "Bo"}]
