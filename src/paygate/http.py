"""Request/response helpers shared by every endpoint module: body and query decoding, idempotent execution,
JSON responses, and OpenAPI request-body documentation for form + JSON bodies."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel

from paygate.app import Gateway
from paygate.idempotency.service import Guard, Reply, run_idempotent
from paygate.kit.errors import InvalidRequest
from paygate.kit.forms import decode_body, decode_form
from paygate.kit.params import parse
from paygate.merchants.context import AuthContext
from paygate.vault.fingerprint import idempotency_view

__all__ = ["body_params", "documented", "gateway", "json", "queried", "query_params", "reply", "run"]

M = TypeVar("M", bound=BaseModel)

_PLAIN_PATH = re.compile(r"(?:/[A-Za-z0-9_.\-]+)+")
_URL_SPECIAL = re.compile(rb"[#\t\r\n]")

# Models whose JSON schema must be added to the OpenAPI components (filled by ``documented``).
DOCUMENTED_MODELS: dict[str, type[BaseModel]] = {}
# Schemas that documented query parameters refer to, by component name (filled by ``queried``).
QUERY_SCHEMAS: dict[str, dict[str, Any]] = {}


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def _query(request: Request) -> str:
    """``request.url.query`` without building the URL: the scope's query string as Starlette decodes it, unless
    it holds a character the URL parser would cut or drop (``#``, tab, CR, LF)."""
    raw: bytes = request.scope.get("query_string", b"")
    if not raw:
        return ""
    return request.url.query if _URL_SPECIAL.search(raw) else raw.decode()


def _path(request: Request) -> str:
    """``request.url.path`` (the path the idempotency key records). Building the URL costs ~6 µs a request;
    for a plain path (segments of ``[A-Za-z0-9_.-]``, which Starlette neither escapes nor re-parses) it is
    the scope's path itself."""
    path: str = request.scope["path"]
    return path if _PLAIN_PATH.fullmatch(path) else request.url.path


async def body_params(request: Request, model: type[M]) -> tuple[M, dict[str, Any]]:
    """Decode the body (form or JSON) and validate it into ``model``. Returns the model and the raw dict (the
    raw dict is what the idempotency fingerprint covers)."""
    raw = decode_body(await request.body(), request.headers.get("content-type"))
    query = _query(request)
    if query:  # Stripe accepts parameters in the query string of a POST too
        for k, v in decode_form(query).items():
            raw.setdefault(k, v)
    return parse(model, raw), raw


def query_params(request: Request, model: type[M]) -> M:
    query = _query(request)
    return parse(model, decode_form(query) if query else {})


def json(obj: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


def reply(r: Reply) -> Response:
    resp = Response(r.body, status_code=r.status, media_type="application/json")
    for name, value in r.headers:
        resp.headers[name] = value
    if r.replayed:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp


async def run(
    request: Request,
    ctx: AuthContext,
    raw: dict[str, Any],
    handler: Callable[[Guard], Awaitable[Reply]],
    *,
    claim_with_first_write: bool = False,
) -> Response:
    """Execute a POST handler under the request's Idempotency-Key (if any). ``claim_with_first_write``: see
    :func:`paygate.idempotency.service.run_idempotent` (only for handlers that meet its contract)."""
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= 255:
        raise InvalidRequest("Idempotency-Key must be 1-255 characters", param="Idempotency-Key")
    gw = gateway(request)
    if key is not None:  # the stored fingerprint must never be derivable from a card number or CVC
        raw = idempotency_view(raw, gw.vault.secret)
    result = await run_idempotent(
        gw.db,
        ctx,
        key=key,
        method=request.method,
        path=_path(request),
        params=raw,
        handler=handler,
        claim_with_first_write=claim_with_first_write,
    )
    return reply(result)


def queried(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` listing the fields of ``model`` — what :func:`query_params` parses for the route — as
    its query parameters, in the styles of Stripe's own spec: scalars ``form``, objects and arrays
    (``created[gte]=…``, ``expand[]=…``) ``deepObject``. Schemas they refer to are added to the components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        if QUERY_SCHEMAS.setdefault(name, sub) != sub:
            raise ValueError(f"two query parameter schemas would share the OpenAPI component name {name}")
    parameters = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        prop = schema["properties"][key]
        nested = any(p.get("type") in ("object", "array") or "$ref" in p for p in (prop, *prop.get("anyOf", [])))
        style = {"style": "deepObject", "explode": True} if nested else {"style": "form"}
        parameters.append({"name": key, "in": "query", "required": field.is_required(), "schema": prop, **style})
    return {"parameters": parameters}


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` describing a request body of ``model`` as form-encoded (Stripe's wire format) or JSON.

    The component name is qualified by the domain (``PaymentsCreateParams``, ``RefundsCreateParams``): domains
    use the same class names, and a bare ``__name__`` let one domain's schema silently replace another's."""
    domain = model.__module__.removeprefix("paygate.").split(".")[0]
    name = domain.title().replace("_", "") + model.__name__
    if DOCUMENTED_MODELS.setdefault(name, model) is not model:
        raise ValueError(f"two request models would share the OpenAPI component name {name}")
    ref = {"$ref": f"#/components/schemas/{name}"}
    return {
        "requestBody": {
            "required": False,
            "content": {"application/x-www-form-urlencoded": {"schema": ref}, "application/json": {"schema": ref}},
        }
    }
