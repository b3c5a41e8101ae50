"""JSON helpers (orjson) for stored payloads and responses."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

__all__ = ["canonical_hash", "dumps", "loads"]


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def loads(text: str | bytes | None) -> Any:
    return None if text is None else orjson.loads(text)


def canonical_hash(obj: Any) -> str:
    """SHA-256 of the canonical (sorted-key) JSON of ``obj``: equal parameters hash equal."""
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).hexdigest()
