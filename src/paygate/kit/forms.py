"""Decode request bodies the way Stripe does: bracketed form encoding or JSON, into plain nested structures.

``metadata[order_id]=42&expand[0]=customer&items[0][price]=p&tags[]=a`` becomes
``{"metadata": {"order_id": "42"}, "expand": ["customer"], "items": [{"price": "p"}], "tags": ["a"]}``.
Form values stay strings; the schema layer converts and validates them. Malformed keys raise ``InvalidRequest``.
A ``metadata`` hash, wherever it is nested, stays a hash whatever its keys: ``metadata[0]=x`` is the key ``"0"``,
as at Stripe, not a list.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import orjson

from paygate.kit.errors import InvalidRequest

__all__ = ["decode_body", "decode_form"]

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
MAX_BODY_BYTES = 256 * 1024
MAX_INDEX = 1000
MAX_FIELDS = 2000


def _finish(node: dict[Any, Any], path: str = "") -> Any:
    """Turn dicts whose keys are all list indices into lists (``{"0": a, "1": b}`` → ``[a, b]``).

    A key used both as a list (``a[0]``/``a[]``) and as an object (``a[b]``) is a conflict, not a dict with
    mixed int and str keys (which no schema, and no JSON encoder, can handle). Leaves are kept as they are."""
    ints = sum(isinstance(k, int) for k in node)
    if ints and ints != len(node):
        raise InvalidRequest(f"Conflicting values for parameter {path[:64]}", param=path[:64] or None)
    if ints:
        return [_finish(v, f"{path}[{k}]") if isinstance(v := node[k], dict) else v for k in sorted(node)]
    return {k: _finish(v, f"{path}[{k}]" if path else str(k)) if isinstance(v, dict) else v for k, v in node.items()}


def _pairs(raw: str) -> list[tuple[str, str]]:
    """``parse_qsl(raw, keep_blank_values=True, max_num_fields=MAX_FIELDS)``, without its per-field overhead:
    the same pairs and the same ``ValueError`` beyond ``MAX_FIELDS`` (the payment hot path decodes every body)."""
    if not raw:
        return []
    if 1 + raw.count("&") > MAX_FIELDS:
        raise ValueError("Max number of fields exceeded")
    out = []
    for field in raw.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        if "+" in name:
            name = name.replace("+", " ")
        if "%" in name:
            name = unquote(name)
        if "+" in value:
            value = value.replace("+", " ")
        if "%" in value:
            value = unquote(value)
        out.append((name, value))
    return out


def decode_form(raw: str) -> dict[str, Any]:
    root: dict[Any, Any] = {}
    for full_key, value in _pairs(raw):
        if full_key and "[" not in full_key and "]" not in full_key:  # a plain name (most parameters)
            if isinstance(root.get(full_key), dict):
                raise InvalidRequest(f"Conflicting values for parameter {full_key[:64]}", param=full_key[:64])
            root[full_key] = value
            continue
        m = _KEY.match(full_key)
        if not m:
            raise InvalidRequest(f"Invalid parameter name: {full_key[:64]}", param=full_key[:64])
        parts: list[str] = [m.group(1), *_PART.findall(m.group(2))]
        node: dict[Any, Any] = root
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            key: Any = part
            if part == "":  # "tags[]=a": append
                key = len(node)
            elif part.isdigit() and depth > 0 and parts[depth - 1] != "metadata":
                key = int(part)
                if key > MAX_INDEX:
                    raise InvalidRequest(f"Array index too large in {full_key[:64]}", param=full_key[:64])
            if last:
                if isinstance(node.get(key), dict):
                    raise InvalidRequest(f"Conflicting values for parameter {full_key[:64]}", param=full_key[:64])
                node[key] = value
            else:
                child = node.setdefault(key, {})
                if not isinstance(child, dict):
                    raise InvalidRequest(f"Conflicting values for parameter {full_key[:64]}", param=full_key[:64])
                node = child
    result = _finish(root)
    assert isinstance(result, dict)
    return result


def decode_body(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """Decode a request body by its content type (JSON or form; empty body → ``{}``)."""
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidRequest("Request body too large")
    if not raw.strip():
        return {}
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype == "application/json":
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidRequest("Invalid JSON body") from None
        if not isinstance(data, dict):
            raise InvalidRequest("The JSON body must be an object")
        return data
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("Request body must be UTF-8") from None
    return decode_form(text)
