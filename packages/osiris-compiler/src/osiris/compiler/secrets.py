"""Finding secrets written inline in a pipeline, without ever echoing them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from osiris.compiler.params import SECRET_NAME

ENV_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
# `scheme://user:PASSWORD@`. A scheme may start at any letter of a run of scheme characters, so a
# pattern that starts with `[A-Za-z][A-Za-z0-9+.-]*://` is tried from every letter of a long word and
# takes quadratic time. This one starts only where a run starts, takes the run whole (possessive
# `*+`, `++`: nothing to backtrack into) and asks for a letter in it afterwards: linear time.
URL_USERINFO = re.compile(r"(?<![A-Za-z0-9+.-])(?P<scheme>[A-Za-z0-9+.-]*+)://[^/\s:@]*+:(?P<pw>[^@\s/]++)@")
_LETTER = re.compile(r"[A-Za-z]")


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


def url_passwords(text: str) -> Iterator[str]:
    """Every password written in a URL's user info (`postgresql://user:PASSWORD@host`) in `text`.

    The scheme must hold a letter (RFC 3986: a letter, then letters, digits, `+`, `.` or `-`).
    """
    for m in URL_USERINFO.finditer(text):
        if _LETTER.search(m.group("scheme")):
            yield m.group("pw")


def _url_secret(value: str, parts: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if "://" not in value:
        return
    if any(not ENV_REF.match(pw) for pw in url_passwords(value)):
        yield parts, "a URL holds a literal password"
