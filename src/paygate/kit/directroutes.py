"""Serve the hottest routes without FastAPI's per-request routing and dependency machinery.

A payment request passed through about ten ASGI layers between the app's own middleware and its endpoint
(exception middleware, exit stacks, router and included-router matching, ``request_response``, dependency
solving, ``run_endpoint_function``) — about a tenth of the API process's CPU per payment, for an endpoint that
takes only the :class:`~starlette.requests.Request` and returns a finished ``Response``.

Contract of :class:`DirectRoutes` (an ASGI middleware placed directly inside the app's own middleware):

* A request whose method and path exactly equal a direct route's (no ``root_path``, telemetry not recording
  the request) is answered by calling that route's endpoint with a ``Request``, exactly as FastAPI would; every
  other request goes down the normal stack unchanged. The route stays registered with FastAPI, so OpenAPI,
  ``HEAD``/``405`` answers and trailing-slash handling are FastAPI's.
* An exception from the endpoint is answered by the app's exception handler for it (looked up as Starlette
  does: status handlers for ``HTTPException``, then the exception's MRO); without one it propagates, as it
  would from the exception middleware.
* Only endpoints FastAPI would call with nothing but the request are accepted (:func:`direct_route` checks:
  no parameters, dependencies or body, a coroutine endpoint): for those, the skipped layers only route and
  provide dependency context the endpoint does not use. The scope gets the ``route``, ``endpoint`` and
  ``path_params`` keys the router sets.
* A plain Starlette app (the PSP simulator) uses :func:`static_routes`: its coroutine routes without path
  parameters, whose endpoints Starlette calls with the request alone.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["DirectRoute", "DirectRoutes", "direct_route", "static_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class DirectRoute:
    method: str
    path: str
    route: Route
    endpoint: Endpoint


def direct_route(router: APIRouter, endpoint: Callable[..., Any]) -> DirectRoute:
    """The single-method route of ``router`` served by ``endpoint``, checked to be one that may skip FastAPI's
    request handling (module docstring). Raises ``ValueError`` otherwise: a programming error, found at start."""
    found = [r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint]
    if len(found) != 1 or len(methods := found[0].methods or set()) != 1:
        raise ValueError(f"{endpoint.__name__}: needs exactly one route with one method")
    route = found[0]
    dep = route.dependant
    params = (dep.path_params, dep.query_params, dep.header_params, dep.cookie_params, dep.body_params)
    if (
        any(params)
        or dep.dependencies
        or route.dependencies
        or router.dependencies
        or dep.request_param_name is None
        or list(inspect.signature(endpoint).parameters) != [dep.request_param_name]
        or not inspect.iscoroutinefunction(endpoint)
        or "{" in route.path
        or getattr(route, "max_body_size", None) is not None
        or getattr(router, "max_body_size", None) is not None
    ):
        raise ValueError(f"{endpoint.__name__}: only request-only coroutine endpoints can be served directly")
    return DirectRoute(next(iter(methods)), route.path, route, endpoint)


def static_routes(routes: Iterable[BaseRoute]) -> list[DirectRoute]:
    """Every (method, route) of ``routes`` — a plain Starlette app's — that may be served directly: a ``Route``
    with no path parameters whose endpoint is a coroutine function (Starlette calls it with the request alone).
    Others are left to the router."""
    out: list[DirectRoute] = []
    for route in routes:
        if isinstance(route, Route) and not route.param_convertors and inspect.iscoroutinefunction(route.endpoint):
            out.extend(DirectRoute(method, route.path, route, route.endpoint) for method in sorted(route.methods or ()))
    return out


def exception_handlers(app: FastAPI) -> tuple[dict[type[BaseException], Handler], dict[int, Handler]]:
    """The handlers FastAPI's exception middleware uses (``500``/``Exception`` belong to the server-error
    middleware), by exception class and by ``HTTPException`` status code. All must be coroutines."""
    by_class: dict[type[BaseException], Handler] = {}
    by_status: dict[int, Handler] = {}
    for key, handler in app.exception_handlers.items():
        if key in (500, Exception):
            continue
        if not inspect.iscoroutinefunction(handler):
            raise ValueError(f"exception handler for {key!r} must be a coroutine function")
        if isinstance(key, int):
            by_status[key] = handler
        else:
            by_class[key] = handler
    return by_class, by_status


class DirectRoutes:
    """See the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Iterable[DirectRoute],
        handlers: Mapping[type[BaseException], Handler],
        status_handlers: Mapping[int, Handler],
    ) -> None:
        self.app = app
        self._routes = {(r.method, r.path): r for r in routes}
        self._handlers = dict(handlers)
        self._status_handlers = dict(status_handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path") and scope.get("fastapi.telemetry") is None:
            direct = self._routes.get((scope["method"], scope["path"]))
            if direct is not None:
                await self._serve(direct, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _serve(self, direct: DirectRoute, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"], scope["endpoint"], scope["path_params"] = direct.route, direct.endpoint, {}
        request = Request(scope, receive, send)
        try:
            response = await direct.endpoint(request)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> Handler | None:
        if isinstance(exc, HTTPException) and exc.status_code in self._status_handlers:
            return self._status_handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in self._handlers:
                return self._handlers[cls]
        return None
