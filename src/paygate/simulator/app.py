"""The simulator ASGI app: dialect routes, the ``/_sim`` admin / inspection API and the 3-D Secure page.

``create_app(config)`` builds a Starlette app; ``serve(...)`` runs it under uvicorn (``paygate simulator``).
"""

from __future__ import annotations

import html
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paygate.kit.directroutes import DirectRoutes, static_routes
from paygate.simulator.config import ConfigError, SimConfig
from paygate.simulator.dialects import adyen, native, stripe
from paygate.simulator.runtime import DROP_HEADER, Runtime
from paygate.simulator.store import Refused

__all__ = ["create_app", "serve"]


def _admin_routes(rt: Runtime) -> list[Route]:
    async def get_config(request: Request) -> Response:
        return JSONResponse(rt.config.public())

    async def set_config(request: Request) -> Response:
        try:
            changes = orjson.loads(await request.body() or b"{}")
            if not isinstance(changes, dict):
                raise ConfigError("body must be a JSON object")
            rt.config.update(changes)
        except (ConfigError, orjson.JSONDecodeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(rt.config.public())

    async def reset(request: Request) -> Response:
        rt.reset()
        return JSONResponse({"reset": True})

    async def operations(request: Request) -> Response:
        rows = rt.store.operations_json(dict(request.query_params))
        return JSONResponse({"count": len(rows), "data": rows})

    async def tally(request: Request) -> Response:
        return JSONResponse(rt.store.tally_summary(request.query_params.get("prefix", "")))

    async def tally_check(request: Request) -> Response:
        try:
            data = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            data = None
        expected = data.get("expected") if isinstance(data, dict) else None
        prefix = data.get("prefix", "") if isinstance(data, dict) else ""
        if (
            not isinstance(expected, list)
            or not all(isinstance(v, str) for v in expected)
            or not isinstance(prefix, str)
        ):
            return JSONResponse({"error": 'body must be {"expected": [str, ...], "prefix"?: str}'}, 400)
        return Response(orjson.dumps(rt.store.tally_summary(prefix, expected)), media_type="application/json")

    async def webhook_attempts(request: Request) -> Response:
        rows = list(rt.webhooks.attempts)
        for name, wanted in request.query_params.items():
            rows = [row for row in rows if name in row and str(row[name]) == wanted]
        return JSONResponse({"count": len(rows), "data": rows})

    async def open_dispute(request: Request) -> Response:
        data = orjson.loads(await request.body() or b"{}")
        txn_id = data.get("txn_id") if isinstance(data, dict) else None
        if not isinstance(txn_id, str):
            return JSONResponse({"error": "txn_id is required"}, status_code=400)
        amount = data.get("amount")
        try:
            dispute = await rt.store.open_dispute(
                txn_id, amount if isinstance(amount, int) else None, str(data.get("reason") or "fraudulent")
            )
        except Refused as exc:
            return JSONResponse({"error": exc.message, "code": exc.code}, status_code=exc.http)
        return JSONResponse({"id": dispute.id, "txn_id": txn_id, "amount": dispute.amount, "status": dispute.status})

    async def challenge_page(request: Request) -> Response:
        txn = rt.store.txns.get(request.path_params["txn_id"])
        if txn is None:
            return HTMLResponse("<h1>Unknown transaction</h1>", status_code=404)
        amount = f"{txn.amount} {txn.currency.upper()} (minor units)"
        pending = txn.status == "requires_action"
        buttons = (
            '<button name="result" value="approve">Approve</button> <button name="result" value="fail">Fail</button>'
            if pending
            else f"<p>This challenge is finished: {html.escape(txn.status)}.</p>"
        )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>3-D Secure test page</title></head>"
            "<body><h1>paygate simulator &mdash; 3-D Secure</h1>"
            f"<p>Payment <code>{html.escape(txn.id)}</code> for {html.escape(amount)}.</p>"
            f"<form method='post' action='/_sim/3ds/{html.escape(txn.id)}'>{buttons}</form></body></html>"
        )
        return HTMLResponse(page)

    async def challenge_submit(request: Request) -> Response:
        txn_id = request.path_params["txn_id"]
        form = dict(parse_qsl((await request.body()).decode()))
        try:
            txn = await rt.store.complete_challenge(txn_id, form.get("result") == "approve")
        except Refused as exc:
            return HTMLResponse(f"<h1>{html.escape(exc.message)}</h1>", status_code=exc.http)
        if not txn.return_url:
            return HTMLResponse(f"<p>Done: {html.escape(txn.status)}</p>")
        params = {"payment_intent": txn.id} if txn.dialect == "stripe" else {"txn": txn.id}
        if txn.dialect == "adyen":
            params = {"redirectResult": txn.id}
        params["status"] = txn.status
        parts = urlsplit(txn.return_url)
        query = "&".join(q for q in (parts.query, urlencode(params)) if q)
        return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=303)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "time": int(time.time())})

    return [
        Route("/_sim/health", health, methods=["GET"]),
        Route("/_sim/config", get_config, methods=["GET"]),
        Route("/_sim/config", set_config, methods=["POST"]),
        Route("/_sim/reset", reset, methods=["POST"]),
        Route("/_sim/operations", operations, methods=["GET"]),
        Route("/_sim/tally", tally, methods=["GET"]),
        Route("/_sim/tally/check", tally_check, methods=["POST"]),
        Route("/_sim/webhooks", webhook_attempts, methods=["GET"]),
        Route("/_sim/disputes", open_dispute, methods=["POST"]),
        Route("/_sim/3ds/{txn_id}", challenge_page, methods=["GET"]),
        Route("/_sim/3ds/{txn_id}", challenge_submit, methods=["POST"]),
    ]


class _DropConnections:
    """Outermost ASGI layer: turns the private ``x-sim-drop`` marker into a closed / reset connection.

    Under uvicorn the ASGI ``send`` callable is bound to the request cycle that owns the socket transport; we
    close (``close``: FIN, no response) or abort (``reset``: RST) it. Without such a transport (in-process test
    clients) the app raises instead, which such clients surface as a transport error too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: State | None = None  # the Starlette app's, for callers of create_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        dropped = False

        async def guarded_send(message: Message) -> None:
            nonlocal dropped
            if dropped:
                return
            if message["type"] == "http.response.start":
                marker = dict(message.get("headers", [])).get(DROP_HEADER.encode())
                if marker is not None:
                    dropped = True
                    cycle: Any = getattr(send, "__self__", None)
                    transport = getattr(cycle, "transport", None)
                    if transport is None:
                        raise ConnectionResetError("simulator dropped the connection")
                    if marker == b"reset":
                        transport.abort()
                    else:
                        transport.close()
                    cycle.disconnected = True
                    return
            await send(message)

        await self.app(scope, receive, guarded_send)


def create_app(config: SimConfig | None = None) -> ASGIApp:
    """Build the simulator. The runtime (store, config, webhook sender) is reachable as ``app.state.runtime``."""
    rt = Runtime(
        config or SimConfig(),
        {"native": native.render_webhooks, "stripe": stripe.render_webhooks, "adyen": adyen.render_webhooks},
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await rt.webhooks.stop()

    routes = [*_admin_routes(rt), *native.routes(rt), *stripe.routes(rt), *adyen.routes(rt)]
    # Routes without path parameters (each dialect's create-payment call) skip the router's route-by-route
    # regular expressions and the exception middleware; the simulator has no exception handlers.
    direct = Middleware(DirectRoutes, routes=static_routes(routes), handlers={}, status_handlers={})
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[direct])
    app.state.runtime = rt
    outer = _DropConnections(app)
    outer.state = app.state
    return outer


def serve(
    host: str,
    port: int,
    latency_ms: int = 0,
    error_rate: float = 0.0,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    **settings: Any,
) -> None:
    """Run the simulator under uvicorn until interrupted. Extra keyword arguments are :class:`SimConfig` fields."""
    import uvicorn

    config = SimConfig()
    config.update(
        {
            "latency_ms": latency_ms,
            "error_rate": error_rate,
            "webhook_url": webhook_url,
            "webhook_secret": webhook_secret,
            **settings,
        }
    )
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=1,
        access_log=False,
        proxy_headers=False,  # nobody proxies a processor sandbox; and it is one ASGI layer fewer per request
    )
