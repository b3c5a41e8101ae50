"""Request-parameter validation with Stripe's error semantics, on top of pydantic v2.

Form-encoded values arrive as strings; JSON values arrive typed. The annotated types below accept both but never
a float or a boolean where an integer amount is expected. :func:`parse` converts pydantic's first error into a
Stripe ``invalid_request_error`` with ``param`` in bracket form (``metadata[order_id]``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from paygate.kit import jsonx
from paygate.kit.errors import InvalidRequest

__all__ = ["Expand", "Metadata", "MetadataUpdate", "Params", "PositiveInt", "StrictBool", "param_path", "parse"]

M = TypeVar("M", bound=BaseModel)
_INT = re.compile(r"-?[0-9]+")


class Params(BaseModel):
    """Base for request parameter models: unknown parameters are errors, as in Stripe."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _int(value: Any) -> int:
    if isinstance(value, bool | float):
        raise ValueError("must be an integer")
    if isinstance(value, int):
        return value
    # ASCII only: str.isdigit() is also true for "²" (int() then raises) and "١٢" (int() accepts it).
    if isinstance(value, str) and _INT.fullmatch(value.strip()) and len(value) < 20:
        return int(value.strip())
    raise ValueError("must be an integer")


def _positive(value: Any) -> int:
    n = _int(value)
    if n <= 0:
        raise ValueError("must be a positive integer")
    return n


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("must be a boolean (true or false)")


def _metadata(value: Any, *, allow_unset: bool) -> dict[str, str]:
    if value == "" or value is None:
        if allow_unset:
            return {}
        raise ValueError("must be an object")
    if not isinstance(value, dict):
        raise ValueError("must be an object of string keys and values")
    if len(value) > 50:
        raise ValueError("can have at most 50 keys")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not k or len(k) > 40 or "[" in k or "]" in k:
            raise ValueError("keys must be 1-40 characters without square brackets")
        if isinstance(v, bool | dict | list):
            raise ValueError("values must be strings")
        sv = "" if v is None else str(v)
        if len(sv) > 500:
            raise ValueError("values must be at most 500 characters")
        out[k] = sv
    return out


def _expand(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of strings")
    return value


PositiveInt = Annotated[int, BeforeValidator(_positive)]
StrictBool = Annotated[bool, BeforeValidator(_bool)]
Metadata = Annotated[dict[str, str], BeforeValidator(lambda v: _metadata(v, allow_unset=False))]
MetadataUpdate = Annotated[dict[str, str], BeforeValidator(lambda v: _metadata(v, allow_unset=True))]
Expand = Annotated[list[str], BeforeValidator(_expand)]


def merge_metadata(stored: str, update: dict[str, str]) -> str:
    """Stripe's metadata update rule, as stored JSON: ``metadata=""`` (an empty update) clears every key, a key
    set to ``""`` is removed, other keys are added or replaced."""
    merged = {**jsonx.loads(stored), **update} if update else {}
    return jsonx.dumps({k: v for k, v in merged.items() if v != ""})


def param_path(loc: tuple[int | str, ...]) -> str:
    head, *rest = [str(p) for p in loc] or ["body"]
    return head + "".join(f"[{p}]" for p in rest)


def parse(model: type[M], data: dict[str, Any]) -> M:
    """Validate ``data`` into ``model`` or raise ``InvalidRequest`` for the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        param = param_path(loc)
        etype = err["type"]
        if etype == "missing":
            raise InvalidRequest(f"Missing required param: {param}.", param=param, code="parameter_missing") from None
        if etype == "extra_forbidden":
            raise InvalidRequest(
                f"Received unknown parameter: {param}", param=param, code="parameter_unknown"
            ) from None
        msg = str(err.get("msg", "is invalid")).removeprefix("Value error, ")
        if etype == "literal_error":
            msg = f"must be one of {err.get('ctx', {}).get('expected', '')}"
        raise InvalidRequest(f"Invalid {param}: {msg}", param=param, code="parameter_invalid") from None
