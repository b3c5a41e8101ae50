"""/v1/events routes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paygate.events.queries import EventListParams, list_events, retrieve_event
from paygate.http import gateway, json, queried, query_params

router = APIRouter(prefix="/v1/events", tags=["Events"])


@router.get("", summary="List events, newest first", openapi_extra=queried(EventListParams))
async def list_events_endpoint(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return json(await list_events(gw.db, ctx, query_params(request, EventListParams)))


@router.get("/{event_id}", summary="Retrieve an event")
async def retrieve_event_endpoint(request: Request, event_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return json(await retrieve_event(gw.db, ctx, event_id))
