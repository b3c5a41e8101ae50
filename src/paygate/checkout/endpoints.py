"""``/v1/checkout/sessions`` (Stripe-compatible) and ``/v1/checkout/settings`` (paygate extension).

POSTs run under the request's Idempotency-Key; their parameters are fully checked before anything is written,
and a rejected request neither writes nor stores anything. A session create's checks run under the key (they
depend on the time and on the customer), so a replay gets its stored answer even once they would fail.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paygate.checkout.schemas import (
    CreateSessionParams,
    ExpireParams,
    LineItemListParams,
    RetrieveParams,
    SessionListParams,
    SettingsParams,
)
from paygate.http import body_params, documented, gateway, json, queried, query_params, run
from paygate.idempotency.service import Guard, Rejected, Reply
from paygate.kit.errors import ApiError

__all__ = ["router"]

router = APIRouter(prefix="/v1/checkout", tags=["Checkout"])


@router.post("/sessions", openapi_extra=documented(CreateSessionParams), summary="Create a Checkout Session")
async def create_session(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, CreateSessionParams)

    async def create(guard: Guard) -> Reply:
        # Under the key: its checks depend on the time (the expires_at window) and on other objects (the
        # customer), so a replay must get its stored answer before they run; a refusal is not stored.
        try:
            new = await gw.checkout.validate_create(ctx, p)
        except ApiError as exc:
            raise Rejected(exc) from exc
        return await gw.checkout.create(ctx, new, guard)

    return await run(request, ctx, raw, create)


@router.get("/sessions", summary="List Checkout Sessions, newest first", openapi_extra=queried(SessionListParams))
async def list_sessions(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return json(await gw.checkout.list_sessions(ctx, query_params(request, SessionListParams)))


@router.get("/sessions/{session_id}", summary="Retrieve a Checkout Session", openapi_extra=queried(RetrieveParams))
async def retrieve_session(request: Request, session_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p = query_params(request, RetrieveParams)
    return json(await gw.checkout.retrieve(ctx, session_id, p.expand))


@router.get(
    "/sessions/{session_id}/line_items",
    summary="List a Checkout Session's line items",
    openapi_extra=queried(LineItemListParams),
)
async def list_line_items(request: Request, session_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return json(await gw.checkout.list_line_items(ctx, session_id, query_params(request, LineItemListParams)))


@router.post(
    "/sessions/{session_id}/expire", openapi_extra=documented(ExpireParams), summary="Expire a Checkout Session"
)
async def expire_session(request: Request, session_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, ExpireParams)
    return await run(request, ctx, raw, lambda guard: gw.checkout.expire(ctx, session_id, p.expand, guard))


@router.get("/settings", summary="Retrieve the merchant's checkout settings (paygate extension)")
async def get_settings(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return json(await gw.checkout.get_settings(ctx))


@router.post("/settings", openapi_extra=documented(SettingsParams), summary="Update the merchant's checkout settings")
async def update_settings(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, SettingsParams)
    expires_in, origins = gw.checkout.validate_settings(p)
    return await run(request, ctx, raw, lambda guard: gw.checkout.update_settings(ctx, expires_in, origins, guard))
