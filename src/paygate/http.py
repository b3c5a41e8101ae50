"""Request/response helpers shared by every endpoint module: body and query decoding, idempotent execution,
JSON responses, and OpenAPI request-body documentation for form + JSON bodies."""

from __future__ import annotations

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

__all__ = ["body_params", "documented", "gateway", "json", "query_params", "reply", "run"]

M = TypeVar("M", bound=BaseModel)

# Models whose JSON schema must be added to the OpenAPI components (filled by ``documented``).
DOCUMENTED_MODELS: dict[str, type[BaseModel]] = {}


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def body_params(request: Request, model: type[M]) -> tuple[M, dict[str, Any]]:
    """Decode the body (form or JSON) and validate it into ``model``. Returns the model and the raw dict (the
    raw dict is what the idempotency fingerprint covers)."""
    raw = decode_body(await request.body(), request.headers.get("content-type"))
    if request.url.query:  # Stripe accepts parameters in the query string of a POST too
        for k, v in decode_form(request.url.query).items():
            raw.setdefault(k, v)
    return parse(model, raw), raw


def query_params(request: Request, model: type[M]) -> M:
    return parse(model, decode_form(request.url.query) if request.url.query else {})


def json(obj: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


def reply(r: Reply) -> Response:
    resp = Response(r.body, status_code=r.status, media_type="application/json")
    if r.replayed:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp


async def run(
    request: Request, ctx: AuthContext, raw: dict[str, Any], handler: Callable[[Guard], Awaitable[Reply]]
) -> Response:
    """Execute a POST handler under the request's Idempotency-Key (if any)."""
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= 255:
        raise InvalidRequest("Idempotency-Key must be 1-255 characters", param="Idempotency-Key")
    gw = gateway(request)
    result = await run_idempotent(
        gw.db, ctx, key=key, method=request.method, path=request.url.path, params=raw, handler=handler
    )
    return reply(result)


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` describing a request body of ``model`` as form-encoded (Stripe's wire format) or JSON."""
    DOCUMENTED_MODELS[model.__name__] = model
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {
            "required": False,
            "content": {"application/x-www-form-urlencoded": {"schema": ref}, "application/json": {"schema": ref}},
        }
    }
