"""Value-based secret redaction.

A `Redactor` knows the secret VALUES of a run (every resolved connection
password, key, token...) and masks them wherever they appear: in events,
metrics, log lines, error messages and artifacts, whatever key they sit under.
It also masks, without knowing the value, passwords inside DSNs
(``postgresql://user:PASSWORD@host``), ``Authorization`` and ``apikey`` headers,
and any mapping value whose key names a secret.

Values shorter than `MIN_SECRET_LENGTH` are not searched for inside text
(masking every ``"a"`` would destroy the output); they are still masked when
they sit under a secret-looking key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET_LENGTH = 4

SECRET_KEY = re.compile(
    r"(^|[_\-.])(password|passwd|pwd|secret|secrets|token|apikey|api_key|api-key|private_key|access_key|"
    r"secret_key|anon_key|service_role_key|service_key|credential|credentials|dsn|authorization|conn_str|"
    r"connection_string)$|^key$",
    re.IGNORECASE,
)
# `scheme://user:PASSWORD@`, matched only where a run of scheme characters starts and with
# possessive quantifiers, so masking is linear in the text (a pattern that may start at any letter,
# `[A-Za-z][A-Za-z0-9+.-]*://`, is quadratic on `a.a.a.…`); the scheme must hold a letter.
_DSN_USERINFO = re.compile(r"(?<![A-Za-z0-9+.-])(?P<scheme>[A-Za-z0-9+.-]*+)://[^/\s:@'\"]*+:(?P<pw>[^@\s/'\"]++)@")
_LETTER = re.compile(r"[A-Za-z]")
_AUTH_HEADER = re.compile(
    r"(?P<pre>\b(?:authorization|proxy-authorization)\b['\"]?\s*[:=]\s*['\"]?(?:(?:bearer|basic|token)\s+)?)"
    r"(?P<val>[^\s'\",;}]+)",
    re.IGNORECASE,
)
_APIKEY_HEADER = re.compile(
    r"(?P<pre>\b(?:apikey|api-key|x-api-key|api_key)\b['\"]?\s*[:=]\s*['\"]?)(?P<val>[^\s'\",;}&]+)", re.IGNORECASE
)
_DSN_KV_PASSWORD = re.compile(r"(?P<pre>\bpassword\s*=\s*)(?P<val>'[^']*'|[^\s;'\"]+)", re.IGNORECASE)


def _dsn_passwords(text: str) -> Iterator[re.Match[str]]:
    """The `scheme://user:PASSWORD@` matches in `text` (group `pw`), in linear time."""
    if "://" not in text:
        return
    for m in _DSN_USERINFO.finditer(text):
        if _LETTER.search(m.group("scheme")):
            yield m


def is_secret_key(name: str) -> bool:
    """True when a field called `name` holds a secret (`password`, `service_role_key`, `dsn`...)."""
    return bool(SECRET_KEY.search(str(name)))


class Redactor:
    """Masks known secret values and well-known secret patterns in text and plain data."""

    def __init__(self, secrets: Iterable[str] = (), mask: str = MASK) -> None:
        self.mask = mask
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for s in secrets:
            self.add(s)

    def add(self, value: Any) -> None:
        """Register one more secret value (and its URL-encoded forms)."""
        if value is None or isinstance(value, bool):
            return
        text = str(value)
        if len(text) < MIN_SECRET_LENGTH:
            return
        for form in {text, quote(text, safe=""), quote_plus(text)}:
            self._values.add(form)
        self._pattern = None

    @property
    def secrets(self) -> frozenset[str]:
        """The secret values registered so far."""
        return frozenset(self._values)

    def _compiled(self) -> re.Pattern[str] | None:
        if self._pattern is None and self._values:
            # Longest first, so a secret containing another is masked whole.
            alternatives = sorted(self._values, key=lambda v: (-len(v), v))
            self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))
        return self._pattern

    def redact_text(self, text: str) -> str:
        """`text` with every known secret value and every secret pattern masked."""
        if not text:
            return text
        pattern = self._compiled()
        if pattern is not None:
            text = pattern.sub(self.mask, text)
        text = self._mask_dsn_passwords(text)
        text = _AUTH_HEADER.sub(lambda m: m.group("pre") + self.mask, text)
        text = _APIKEY_HEADER.sub(lambda m: m.group("pre") + self.mask, text)
        text = _DSN_KV_PASSWORD.sub(lambda m: m.group("pre") + self.mask, text)
        return text

    def _mask_dsn_passwords(self, text: str) -> str:
        out: list[str] = []
        done = 0
        for m in _dsn_passwords(text):
            out.append(text[done : m.start("pw")])
            out.append(self.mask)
            done = m.end("pw")
        out.append(text[done:])
        return "".join(out)

    def redact(self, value: Any) -> Any:
        """A copy of plain data (dicts, lists, strings...) with secrets masked.

        A non-empty value under a secret-looking key is masked whole; every
        string anywhere is searched for known secret values and patterns.
        """
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for k, v in value.items():
                if is_secret_key(str(k)) and v not in (None, "") and not isinstance(v, (dict, list, bool)):
                    out[k] = self.mask
                else:
                    out[k] = self.redact(v)
            return out
        if isinstance(value, (list, tuple)):
            return [self.redact(v) for v in value]
        return value

    def contains_secret(self, text: str) -> bool:
        """True when `text` contains a known secret value."""
        pattern = self._compiled()
        return bool(pattern and pattern.search(text))


def secret_values(data: Any, pointers: Iterable[str] = ()) -> set[str]:
    """Every secret value in `data`: values at the JSON `pointers` plus values under secret-looking keys."""
    found: set[str] = set()
    for pointer in pointers:
        value = resolve_pointer(data, pointer)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            found.add(str(value))
    _collect_by_key(data, found)
    for text in list(found):
        found.update(m.group("pw") for m in _dsn_passwords(text))
    return {v for v in found if v}


def _collect_by_key(data: Any, found: set[str]) -> None:
    if isinstance(data, dict):
        for k, v in data.items():
            if isinstance(v, (dict, list)):
                _collect_by_key(v, found)
            elif is_secret_key(str(k)) and isinstance(v, (str, int, float)) and not isinstance(v, bool):
                found.add(str(v))
    elif isinstance(data, list):
        for v in data:
            _collect_by_key(v, found)


def resolve_pointer(data: Any, pointer: str) -> Any:
    """The value at JSON pointer `pointer` (RFC 6901) in `data`, or None when absent."""
    if pointer in ("", "/"):
        return data
    current = data
    for raw in pointer.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, dict):
            if part not in current:
                return None
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current
