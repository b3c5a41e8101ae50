"""/v1/processors and /v1/routing_rules routes (paygate extensions; secret keys only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.http import body_params, documented, gateway, json, run
from paygate.idempotency.service import Guard, Reply
from paygate.processors.schemas import (
    CreateProcessorParams,
    CreateRuleParams,
    UpdateProcessorParams,
    UpdateRuleParams,
)

router = APIRouter(tags=["Processors and routing"])


def _in_txn(
    request: Request, op: Callable[[AsyncConnection], Awaitable[dict[str, Any]]]
) -> Callable[[Guard], Awaitable[Reply]]:
    """A handler that runs ``op`` and stores its reply in one transaction."""

    async def handler(guard: Guard) -> Reply:
        async with gateway(request).db.write() as conn:
            reply = Reply(200, orjson.dumps(await op(conn)))
            await guard.finish(conn, reply.status, reply.body)
            return reply

    return handler


@router.post("/v1/processors", openapi_extra=documented(CreateProcessorParams), summary="Add a processor account")
async def create_processor(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, CreateProcessorParams)
    return await run(request, ctx, raw, _in_txn(request, lambda conn: gw.processors.create(conn, ctx, p)))


@router.get("/v1/processors", summary="List processor accounts with circuit-breaker health")
async def list_processors(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return json(await gw.processors.list_accounts(ctx))


@router.get("/v1/processors/{account_id}", summary="Retrieve a processor account")
async def retrieve_processor(request: Request, account_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return json(await gw.processors.retrieve(ctx, account_id))


@router.post(
    "/v1/processors/{account_id}", openapi_extra=documented(UpdateProcessorParams), summary="Update a processor"
)
async def update_processor(request: Request, account_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, UpdateProcessorParams)
    return await run(request, ctx, raw, _in_txn(request, lambda conn: gw.processors.update(conn, ctx, account_id, p)))


@router.post("/v1/routing_rules", openapi_extra=documented(CreateRuleParams), summary="Add a routing rule")
async def create_rule(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, CreateRuleParams)
    return await run(request, ctx, raw, _in_txn(request, lambda conn: gw.processors.create_rule(conn, ctx, p)))


@router.get("/v1/routing_rules", summary="List routing rules in evaluation order")
async def list_rules(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return json(await gw.processors.list_rules(ctx))


@router.get("/v1/routing_rules/{rule_id}", summary="Retrieve a routing rule")
async def retrieve_rule(request: Request, rule_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return json(await gw.processors.retrieve_rule(ctx, rule_id))


@router.post("/v1/routing_rules/{rule_id}", openapi_extra=documented(UpdateRuleParams), summary="Update a rule")
async def update_rule(request: Request, rule_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, UpdateRuleParams)
    return await run(request, ctx, raw, _in_txn(request, lambda conn: gw.processors.update_rule(conn, ctx, rule_id, p)))


@router.delete("/v1/routing_rules/{rule_id}", summary="Delete a routing rule")
async def delete_rule(request: Request, rule_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return await run(request, ctx, {}, _in_txn(request, lambda conn: gw.processors.delete_rule(conn, ctx, rule_id)))
