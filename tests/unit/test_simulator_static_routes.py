"""The simulator answers its routes without path parameters directly (``kit.directroutes.static_routes``) and
leaves every other request to Starlette, so both kinds behave as they did behind Starlette's router alone."""

from __future__ import annotations

import asyncio

import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from paygate.kit.directroutes import DirectRoutes, static_routes
from paygate.simulator.app import create_app


async def _echo(request: Request) -> Response:
    return JSONResponse({"path": request.url.path, "params": request.path_params, "method": request.method})


def _call(app: DirectRoutes, method: str, path: str) -> httpx2.Response:
    async def go() -> httpx2.Response:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://sim") as client:
            return await client.request(method, path)

    return asyncio.run(go())


def test_a_static_route_is_answered_without_the_router_and_the_rest_go_through_it() -> None:
    routes = [Route("/v1/payments", _echo, methods=["POST"]), Route("/v1/payments/{txn_id}", _echo, methods=["GET"])]
    seen: list[str] = []
    starlette = Starlette(routes=routes)

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(f"{scope['method']} {scope['path']}")
        await starlette(scope, receive, send)

    app = DirectRoutes(inner, routes=static_routes(routes), handlers={}, status_handlers={})
    direct = _call(app, "POST", "/v1/payments")
    assert direct.status_code == 200 and direct.json() == {"path": "/v1/payments", "params": {}, "method": "POST"}
    assert seen == []  # the router never saw it
    with_param = _call(app, "GET", "/v1/payments/txn_1")
    assert with_param.json()["params"] == {"txn_id": "txn_1"}
    wrong_method = _call(app, "PUT", "/v1/payments")
    assert wrong_method.status_code == 405  # Starlette's answer, as before
    assert seen == ["GET /v1/payments/txn_1", "PUT /v1/payments"]


def test_the_simulator_app_exposes_its_runtime_and_serves_health_directly() -> None:
    app = create_app()
    assert app.state.runtime.store is not None  # type: ignore[attr-defined]

    async def go() -> httpx2.Response:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://sim") as client:
            return await client.get("/_sim/health")

    assert asyncio.run(go()).json()["ok"] is True


def test_only_coroutine_routes_without_path_parameters_are_served_directly() -> None:
    def sync_endpoint(request: Request) -> Response:
        return Response()

    routes = [
        Route("/a", _echo, methods=["GET", "POST"]),
        Route("/a/{x}", _echo, methods=["GET"]),
        Route("/sync", sync_endpoint, methods=["GET"]),
    ]
    # GET brings HEAD, as Starlette's router answers it
    assert sorted((r.method, r.path) for r in static_routes(routes)) == [("GET", "/a"), ("HEAD", "/a"), ("POST", "/a")]
