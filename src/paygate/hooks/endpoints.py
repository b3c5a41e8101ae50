"""``POST /hooks/{connector}/{account}``: where processors send their webhooks (no API key: the signature is
the authentication). See :mod:`paygate.hooks.service` for the contract."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paygate.hooks.service import receive
from paygate.http import gateway, json

__all__ = ["router"]

router = APIRouter(prefix="/hooks", tags=["Processor webhooks"])


@router.post("/{connector}/{account}", summary="Receive a processor webhook", include_in_schema=True)
async def receive_webhook(request: Request, connector: str, account: str) -> Response:
    gw = gateway(request)
    result = await receive(gw, connector, account, await request.body(), dict(request.headers))
    if result.status == 404:
        return json({"error": {"type": "invalid_request_error", "message": "Unknown processor account."}}, 404)
    if result.status == 400:
        return json({"error": {"type": "invalid_request_error", "message": "Webhook rejected: " + result.outcome}}, 400)
    return json({"received": True, "outcome": result.outcome, "event_id": result.event_id})
