"""/v1/payment_intents routes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paygate.http import body_params, documented, gateway, json, queried, query_params, run
from paygate.kit.params import Expand, Params
from paygate.payments.schemas import (
    CancelParams,
    CaptureParams,
    ConfirmParams,
    CreateParams,
    IntentListParams,
    UpdateParams,
)

router = APIRouter(prefix="/v1/payment_intents", tags=["PaymentIntents"])


class RetrieveParams(Params):
    expand: Expand = []
    client_secret: str | None = None


@router.post("", openapi_extra=documented(CreateParams), summary="Create a PaymentIntent")
async def create_payment_intent(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, CreateParams)
    # create's first write transaction checkpoints or finishes: the key is claimed in it (one transaction fewer)
    return await run(request, ctx, raw, lambda guard: gw.payments.create(ctx, p, guard), claim_with_first_write=True)


@router.get("", summary="List PaymentIntents, newest first", openapi_extra=queried(IntentListParams))
async def list_payment_intents(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return json(await gw.payments.list_intents(ctx, query_params(request, IntentListParams)))


@router.get("/{intent_id}", summary="Retrieve a PaymentIntent", openapi_extra=queried(RetrieveParams))
async def retrieve_payment_intent(request: Request, intent_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p = query_params(request, RetrieveParams)
    return json(await gw.payments.retrieve(ctx, intent_id, p.expand))


@router.post("/{intent_id}", openapi_extra=documented(UpdateParams), summary="Update a PaymentIntent")
async def update_payment_intent(request: Request, intent_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, UpdateParams)
    return await run(request, ctx, raw, lambda guard: gw.payments.update(ctx, intent_id, p, guard))


@router.post("/{intent_id}/confirm", openapi_extra=documented(ConfirmParams), summary="Confirm a PaymentIntent")
async def confirm_payment_intent(request: Request, intent_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, ConfirmParams)
    return await run(
        request, ctx, raw, lambda guard: gw.payments.confirm(ctx, intent_id, p, guard), claim_with_first_write=True
    )


@router.post("/{intent_id}/capture", openapi_extra=documented(CaptureParams), summary="Capture a PaymentIntent")
async def capture_payment_intent(request: Request, intent_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, CaptureParams)
    return await run(
        request, ctx, raw, lambda guard: gw.payments.capture(ctx, intent_id, p, guard), claim_with_first_write=True
    )


@router.post("/{intent_id}/cancel", openapi_extra=documented(CancelParams), summary="Cancel a PaymentIntent")
async def cancel_payment_intent(request: Request, intent_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, CancelParams)
    return await run(
        request, ctx, raw, lambda guard: gw.payments.cancel(ctx, intent_id, p, guard), claim_with_first_write=True
    )
