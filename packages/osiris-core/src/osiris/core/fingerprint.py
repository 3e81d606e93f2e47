"""Canonical JSON and sha256 fingerprints.

Canonical JSON: keys sorted, no insignificant whitespace, UTF-8. Two values that
are equal as data always give the same bytes, so their fingerprints match.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder(order="sorted")


def canonical_json(value: Any) -> bytes:
    """Encode `value` (plain data or msgspec structs) as canonical JSON bytes."""
    return _encoder.encode(value)


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def fingerprint(value: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of `value`."""
    return "sha256:" + sha256_hex(canonical_json(value))


def short(fp: str, length: int = 12) -> str:
    """The first `length` hex digits of a ``sha256:<hex>`` fingerprint."""
    return fp.split(":", 1)[-1][:length]
