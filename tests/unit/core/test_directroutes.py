"""Direct routes answer exactly as FastAPI's routed stack would, and refuse endpoints they could not serve."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from paygate.kit.directroutes import DirectRoutes, direct_route, exception_handlers

pytestmark = pytest.mark.anyio


class Refused(Exception):
    pass


router = APIRouter(prefix="/v1/things")
seen: list[dict[str, Any]] = []


@router.post("", summary="Create a thing")
async def create_thing(request: Request) -> Response:
    seen.append({"route": request.scope.get("route"), "endpoint": request.scope.get("endpoint")})
    body = await request.body()
    if body == b"refuse":
        raise Refused()
    if body == b"crash":
        raise RuntimeError("boom")
    return Response(b'{"ok":' + (body or b"0") + b"}", media_type="application/json")


@router.get("/{thing_id}")
async def get_thing(thing_id: str) -> dict[str, str]:
    return {"id": thing_id}


def make_app(*, direct: bool) -> FastAPI:
    app = FastAPI()

    @app.exception_handler(Refused)
    async def refused(_request: Request, _exc: Refused) -> Response:
        return JSONResponse({"error": {"type": "refused"}}, status_code=402)

    app.include_router(router)
    if direct:
        by_class, by_status = exception_handlers(app)
        app.add_middleware(
            DirectRoutes, routes=[direct_route(router, create_thing)], handlers=by_class, status_handlers=by_status
        )
    return app


async def call(app: FastAPI, method: str, path: str, body: bytes = b"") -> httpx2.Response:
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, content=body)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/things", b"7"),  # served directly
        ("POST", "/v1/things", b"refuse"),  # the app's exception handler answers
        ("GET", "/v1/things", b""),  # other methods: FastAPI's 405
        ("POST", "/v1/things/", b"7"),  # other paths: FastAPI's routing (slash redirect)
        ("GET", "/v1/things/th_1", b""),
    ],
)
async def test_direct_route_answers_exactly_as_the_routed_stack(method: str, path: str, body: bytes) -> None:
    routed = await call(make_app(direct=False), method, path, body)
    direct = await call(make_app(direct=True), method, path, body)
    assert (direct.status_code, direct.content, dict(direct.headers)) == (
        routed.status_code,
        routed.content,
        dict(routed.headers),
    )


async def test_direct_route_gives_the_endpoint_the_scope_keys_the_router_sets() -> None:
    seen.clear()
    await call(make_app(direct=False), "POST", "/v1/things", b"1")
    await call(make_app(direct=True), "POST", "/v1/things", b"1")
    routed, direct = seen
    assert direct == routed
    assert direct["endpoint"] is create_thing


async def test_unhandled_exception_propagates_from_a_direct_route_as_from_the_router() -> None:
    routed = await call(make_app(direct=False), "POST", "/v1/things", b"crash")
    direct = await call(make_app(direct=True), "POST", "/v1/things", b"crash")
    assert direct.status_code == routed.status_code == 500


def test_direct_route_refuses_an_endpoint_with_parameters_or_dependencies() -> None:
    with pytest.raises(ValueError, match="request-only"):
        direct_route(router, get_thing)

    deps = APIRouter()

    async def dependency() -> int:
        return 1

    @deps.post("/x")
    async def with_dependency(request: Request, n: int = Depends(dependency)) -> Response:
        return Response()

    with pytest.raises(ValueError, match="request-only"):
        direct_route(deps, with_dependency)


def test_direct_route_refuses_an_endpoint_the_router_does_not_serve() -> None:
    async def stray(request: Request) -> Response:
        return Response()

    with pytest.raises(ValueError, match="exactly one route"):
        direct_route(router, stray)


def test_paygate_serves_payment_creation_directly_and_still_documents_it() -> None:
    from paygate.payments.endpoints import create_payment_intent
    from paygate.payments.endpoints import router as payments_router

    direct = direct_route(payments_router, create_payment_intent)
    assert (direct.method, direct.path) == ("POST", "/v1/payment_intents")
    assert direct.route.include_in_schema
