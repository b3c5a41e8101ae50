"""/v1/refunds routes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paygate.http import body_params, documented, gateway, json, queried, query_params, run
from paygate.refunds.schemas import CreateParams, RefundListParams, UpdateParams

router = APIRouter(prefix="/v1/refunds", tags=["Refunds"])


@router.post("", openapi_extra=documented(CreateParams), summary="Refund a payment, fully or partially")
async def create_refund(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, CreateParams)
    return await run(request, ctx, raw, lambda guard: gw.refunds.create(ctx, p, guard), claim_with_first_write=True)


@router.get("", summary="List refunds, newest first", openapi_extra=queried(RefundListParams))
async def list_refunds(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return json(await gw.refunds.list_refunds(ctx, query_params(request, RefundListParams)))


@router.get("/{refund_id}", summary="Retrieve a refund")
async def retrieve_refund(request: Request, refund_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return json(await gw.refunds.retrieve(ctx, refund_id))


@router.post("/{refund_id}", openapi_extra=documented(UpdateParams), summary="Update a refund's metadata")
async def update_refund(request: Request, refund_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, UpdateParams)
    return await run(request, ctx, raw, lambda guard: gw.refunds.update(ctx, refund_id, p, guard))
