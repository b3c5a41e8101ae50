"""Routes: ``/v1/webhook_endpoints`` (Stripe-compatible, plus ``roll_secret``), and the paygate extensions
``POST /v1/events/{id}/redeliver`` and ``GET /v1/events/{id}/deliveries``. POSTs run under the Idempotency-Key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paygate.events.delivery_service import RedeliverParams, list_deliveries, redeliver
from paygate.events.webhook_endpoints import (
    CreateEndpointParams,
    EndpointListParams,
    RollSecretParams,
    UpdateEndpointParams,
    WebhookEndpointService,
)
from paygate.http import body_params, documented, gateway, json, queried, query_params, run

__all__ = ["events_extension_router", "router"]

router = APIRouter(prefix="/v1/webhook_endpoints", tags=["Webhook endpoints"])
events_extension_router = APIRouter(prefix="/v1/events", tags=["Events"])


def _service(request: Request) -> WebhookEndpointService:
    gw = gateway(request)
    return WebhookEndpointService(gw.db, gw.key_provider, allow_http=gw.settings.webhook_allow_http)


@router.post("", openapi_extra=documented(CreateEndpointParams), summary="Create a webhook endpoint")
async def create_endpoint(request: Request) -> Response:
    ctx = await gateway(request).authenticate(request)
    p, raw = await body_params(request, CreateEndpointParams)
    svc = _service(request)
    return await run(request, ctx, raw, lambda guard: svc.create(ctx, p, guard))


@router.get("", summary="List webhook endpoints, newest first", openapi_extra=queried(EndpointListParams))
async def list_endpoints(request: Request) -> Response:
    ctx = await gateway(request).authenticate(request)
    return json(await _service(request).list_endpoints(ctx, query_params(request, EndpointListParams)))


@router.get("/{endpoint_id}", summary="Retrieve a webhook endpoint")
async def retrieve_endpoint(request: Request, endpoint_id: str) -> Response:
    ctx = await gateway(request).authenticate(request)
    return json(await _service(request).retrieve(ctx, endpoint_id))


@router.post("/{endpoint_id}", openapi_extra=documented(UpdateEndpointParams), summary="Update a webhook endpoint")
async def update_endpoint(request: Request, endpoint_id: str) -> Response:
    ctx = await gateway(request).authenticate(request)
    p, raw = await body_params(request, UpdateEndpointParams)
    svc = _service(request)
    return await run(request, ctx, raw, lambda guard: svc.update(ctx, endpoint_id, p, guard))


@router.delete("/{endpoint_id}", summary="Delete a webhook endpoint")
async def delete_endpoint(request: Request, endpoint_id: str) -> Response:
    ctx = await gateway(request).authenticate(request)
    svc = _service(request)
    return await run(request, ctx, {}, lambda guard: svc.delete(ctx, endpoint_id, guard))


@router.post(
    "/{endpoint_id}/roll_secret",
    openapi_extra=documented(RollSecretParams),
    summary="Roll the signing secret (paygate extension); the old one keeps signing for expires_in seconds",
)
async def roll_secret(request: Request, endpoint_id: str) -> Response:
    ctx = await gateway(request).authenticate(request)
    p, raw = await body_params(request, RollSecretParams)
    svc = _service(request)
    return await run(request, ctx, raw, lambda guard: svc.roll_secret(ctx, endpoint_id, p, guard))


@events_extension_router.post(
    "/{event_id}/redeliver",
    openapi_extra=documented(RedeliverParams),
    summary="Send an event again to its webhook endpoints (paygate extension)",
)
async def redeliver_event(request: Request, event_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, RedeliverParams)
    return await run(request, ctx, raw, lambda guard: redeliver(gw.db, ctx, event_id, p, guard))


@events_extension_router.get(
    "/{event_id}/deliveries", summary="Delivery attempts of an event to each webhook endpoint (paygate extension)"
)
async def event_deliveries(request: Request, event_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return json(await list_deliveries(gw.db, ctx, event_id))
