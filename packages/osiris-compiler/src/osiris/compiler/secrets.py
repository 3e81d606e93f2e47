"""Finding secrets written inline in a pipeline, without ever echoing them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from osiris.compiler.params import SECRET_NAME

ENV_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:(?P<pw>[^@\s/]+)@")


def _pointer(parts: tuple[str | int, ...]) -> str:
    return "/" + "/".join(str(p) for p in parts)


def find_inline_secrets(
    config: Any, secret_pointers: list[str], parts: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Yield (path, reason) for every literal secret in `config`.

    A secret is a value at one of the spec's `secrets` pointers, a value under a
    key that names a secret (`password`, `api_key`, `token`…), or a password
    inside a URL (`postgresql://user:pw@host`). An `${ENV}` reference is fine.
    """
    if isinstance(config, dict):
        for key, value in config.items():
            sub = (*parts, key)
            if isinstance(value, (dict, list)):
                yield from find_inline_secrets(value, secret_pointers, sub)
            elif _is_literal(value) and (_pointer(sub) in secret_pointers or SECRET_NAME.search(str(key))):
                yield sub, f"`{key}` holds a literal secret"
            elif isinstance(value, str):
                yield from _url_secret(value, sub)
    elif isinstance(config, list):
        for i, value in enumerate(config):
            sub = (*parts, i)
            if isinstance(value, (dict, list)):
                yield from find_inline_secrets(value, secret_pointers, sub)
            elif isinstance(value, str):
                yield from _url_secret(value, sub)


def _is_literal(value: Any) -> bool:
    if value is None or value == "":
        return False
    return not (isinstance(value, str) and ENV_REF.match(value))


def _url_secret(value: str, parts: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    m = URL_PASSWORD.search(value)
    if m and not ENV_REF.match(m.group("pw")):
        yield parts, "a URL holds a literal password"
