"""The suite's pytest plugin (`-p testkit` in the root pyproject): the fixtures every test folder shares.

- `mysql_db` / `pg_db`: one throwaway database per test module (MariaDB: its connection
  fields; PostgreSQL: its name); `mysql_admin(database=None)`: root connections.
- `new_mysql_db()` / `new_pg_db()`: as many throwaway databases as a test wants, dropped after it.
- `osiris_dists`: every package's wheel and sdist, built once per session (scripts/build_dists.py).

A server that is down fails these fixtures loudly (see `databases`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from databases import Database, mariadb_database, mysql_connect, postgres_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def mysql_admin() -> Callable[..., Any]:
    """A factory of root connections to MariaDB: `mysql_admin(database=None)`."""
    return mysql_connect


@pytest.fixture(scope="module")
def mysql_db() -> Iterator[dict[str, Any]]:
    """A fresh MariaDB database for the test module; yields its resolved connection fields."""
    with mariadb_database("osiris_test_mysql") as db:
        yield db.connection


@pytest.fixture(scope="module")
def pg_db() -> Iterator[str]:
    """A fresh PostgreSQL database for the test module; yields its name."""
    with postgres_database("osiris_test_pg") as db:
        yield db.name


@pytest.fixture
def new_mysql_db() -> Iterator[Callable[..., Database]]:
    """`new_mysql_db(prefix="osiris_test")`: a fresh MariaDB database, dropped after the test."""
    with ExitStack() as stack:
        yield lambda prefix="osiris_test": stack.enter_context(mariadb_database(prefix))


@pytest.fixture
def new_pg_db() -> Iterator[Callable[..., Database]]:
    """`new_pg_db(prefix="osiris_test")`: a fresh PostgreSQL database, dropped after the test."""
    with ExitStack() as stack:
        yield lambda prefix="osiris_test": stack.enter_context(postgres_database(prefix))


@pytest.fixture(scope="session")
def osiris_dists(tmp_path_factory) -> Path:
    """Every package's wheel and sdist, built once per session as they would be published
    (scripts/build_dists.py): the folder holding them."""
    out = tmp_path_factory.mktemp("dist")
    _script("build_dists").build(out)
    return out


def _script(name: str) -> Any:
    """A module of scripts/ (imported once)."""
    import importlib.util
    import sys

    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
