import pytest

from osiris.core.errors import ConnectionConfigError
from osiris.runtime.resolve import MissingVariableError, resolve_connection, substitute_env

CONNS = {"pg": {"main": {"default": True, "host": "h", "password": "${PG_PW}"}, "other": {"host": "o"}}}


def test_env_substitution_and_defaults():
    alias, fields = resolve_connection(
        CONNS, "pg", None, schema={"properties": {"port": {"default": 5432}}}, environ={"PG_PW": "pw"}
    )
    assert alias == "main" and fields == {"host": "h", "password": "pw", "port": 5432}


def test_missing_variable_names_variable_family_and_alias():
    with pytest.raises(MissingVariableError, match=r"`PG_PW`.*`@pg.main`"):
        resolve_connection(CONNS, "pg", "main", environ={})


def test_unknown_alias():
    with pytest.raises(ConnectionConfigError, match=r"Unknown connection `@pg\.nope`"):
        resolve_connection(CONNS, "pg", "nope", environ={})


def test_substitute_env_leaves_params_and_plain_text():
    assert substitute_env({"a": ["${X}-y", 1]}, {"X": "x"}, where="w") == {"a": ["x-y", 1]}
