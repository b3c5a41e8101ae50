"""The ASGI application: routers, Stripe-style error envelopes, request ids, access logs, OpenAPI and health."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paygate import __version__
from paygate.app import Gateway
from paygate.checkout.endpoints import router as checkout_router
from paygate.checkout.page import router as checkout_page_router
from paygate.customers.endpoints import router as customers_router
from paygate.events.endpoints import router as events_router
from paygate.events.webhook_api import events_extension_router
from paygate.events.webhook_api import router as webhook_endpoints_router
from paygate.hooks.endpoints import router as hooks_router
from paygate.http import DOCUMENTED_MODELS, QUERY_SCHEMAS, json
from paygate.kit import timing
from paygate.kit.directroutes import DirectRoutes, direct_route, exception_handlers
from paygate.kit.errors import ApiError, ApiFailure, InvalidRequest
from paygate.kit.gctune import tune_for_serving
from paygate.kit.ids import new_id
from paygate.kit.redaction import redact_text
from paygate.payments.authentication import router as sandbox_3ds_router
from paygate.payments.endpoints import create_payment_intent
from paygate.payments.endpoints import router as payments_router
from paygate.processors.endpoints import router as processors_router
from paygate.refunds.endpoints import router as refunds_router
from paygate.vault.endpoints import router as payment_methods_router

__all__ = ["create_app"]

log = structlog.get_logger("paygate.api")


class RequestContextMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware): assigns ``req_…`` ids, sets the ``Request-Id`` and
    ``Server-Timing`` (time waiting on processors, :mod:`paygate.kit.timing`) response headers, binds the id into
    log context, writes one access-log line per request, and turns any unexpected exception into Stripe's 500
    ``api_error`` envelope (logged once, redacted) instead of letting it reach the server, which would drop the
    connection."""

    def __init__(self, app: ASGIApp, *, access_log: bool) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_id("req")
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False
        processor_ms, timing_token = timing.start_request()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"request-id", request_id.encode()),
                    timing.header(processor_ms),
                ]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            log.error(
                "unhandled_error",
                error_type=type(exc).__name__,
                error=redact_text(str(exc))[:500],
                path=scope["path"],
                exc_info=exc,
            )
            if not response_started:
                body = ApiFailure(f"An unexpected error occurred; request id {request_id}.").to_body()
                await send_wrapper(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": orjson.dumps(body)})
        finally:
            if self.access_log:
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    ms=round((time.perf_counter() - started) * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id")
            timing.end_request(timing_token)


def _error_response(exc: ApiError) -> Response:
    body = exc.to_body()
    body["error"]["message"] = redact_text(body["error"]["message"])
    resp = json(body, exc.status)
    for k, v in exc.headers.items():
        resp.headers[k] = v
    return resp


def create_app(gateway: Gateway) -> FastAPI:
    """Build the API around an existing :class:`Gateway` (the caller owns its lifecycle unless ``serve``)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tune_for_serving(gateway.settings.gc_gen0_threshold)  # p99: no long GC pauses (paygate.kit.gctune)
        yield

    app = FastAPI(
        title="paygate",
        version=__version__,
        summary="Open-source payment gateway with a Stripe-compatible API",
        description="Point the official Stripe SDKs at this server by changing the API base URL. Bodies are "
        "form-encoded (Stripe's wire format) or JSON; errors use Stripe's envelope.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.gateway = gateway

    @app.exception_handler(ApiError)
    async def api_error_handler(_request: Request, exc: ApiError) -> Response:
        return _error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error_handler(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            err: ApiError = InvalidRequest(f"Unrecognized request URL ({request.method}: {request.url.path}).")
            err.status = 404
        elif exc.status_code == 405:
            err = InvalidRequest(f"Unrecognized request URL ({request.method}: {request.url.path}).")
            err.status = 405
        else:
            err = InvalidRequest(str(exc.detail))
            err.status = exc.status_code
        return _error_response(err)

    @app.exception_handler(RequestValidationError)
    async def validation_error_handler(_request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return _error_response(InvalidRequest(f"Invalid request: {first.get('msg', 'invalid')}", param=param))

    @app.get("/healthz", tags=["Operations"], summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["Operations"], summary="Readiness: the database answers")
    async def readyz() -> Response:
        try:
            async with gateway.db.read() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # readiness must report, not raise
            return json({"status": "unavailable", "error": type(exc).__name__}, 503)
        return json({"status": "ok"})

    app.include_router(payments_router)
    app.include_router(refunds_router)
    app.include_router(events_router)
    app.include_router(payment_methods_router)
    app.include_router(customers_router)
    app.include_router(events_extension_router)
    app.include_router(webhook_endpoints_router)
    app.include_router(hooks_router)
    app.include_router(processors_router)
    app.include_router(sandbox_3ds_router)
    app.include_router(checkout_router)
    app.include_router(checkout_page_router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes
        )
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        comps.update(QUERY_SCHEMAS)
        for name, model in DOCUMENTED_MODELS.items():
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            comps.update(js.pop("$defs", {}))
            comps[name] = js
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearerAuth": {"type": "http", "scheme": "bearer", "description": "sk_test_… / sk_live_…"}
        }
        schema["security"] = [{"bearerAuth": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    # The payment hot path skips FastAPI's routing and dependency layers (paygate.kit.directroutes); added
    # first, so it runs inside RequestContextMiddleware (request id, access log, 500 envelope).
    by_class, by_status = exception_handlers(app)
    app.add_middleware(
        DirectRoutes,
        routes=[direct_route(payments_router, create_payment_intent)],
        handlers=by_class,
        status_handlers=by_status,
    )
    app.add_middleware(RequestContextMiddleware, access_log=gateway.settings.access_log)
    return app
