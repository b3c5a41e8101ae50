"""/v1/customers routes, plus ``/v1/payment_methods/{id}/attach`` and ``/detach`` (they link a vaulted payment
method to a customer, which is this domain's concern)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paygate.customers.schemas import CreateParams, CustomerListParams, PaymentMethodsParams, UpdateParams
from paygate.http import body_params, documented, gateway, json, queried, query_params, run
from paygate.kit.params import Expand, Params
from paygate.vault.schemas import AttachParams, DetachParams

__all__ = ["router"]

router = APIRouter(tags=["Customers"])


class RetrieveParams(Params):
    expand: Expand = []


class DeleteParams(Params):
    pass


@router.post("/v1/customers", openapi_extra=documented(CreateParams), summary="Create a Customer")
async def create_customer(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, CreateParams)
    return await run(request, ctx, raw, lambda guard: gw.customers.create(ctx, p, guard))


@router.get("/v1/customers", summary="List Customers, newest first", openapi_extra=queried(CustomerListParams))
async def list_customers(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return json(await gw.customers.list(ctx, query_params(request, CustomerListParams)))


@router.get("/v1/customers/{customer_id}", summary="Retrieve a Customer", openapi_extra=queried(RetrieveParams))
async def retrieve_customer(request: Request, customer_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    query_params(request, RetrieveParams)
    return json(await gw.customers.retrieve(ctx, customer_id))


@router.post("/v1/customers/{customer_id}", openapi_extra=documented(UpdateParams), summary="Update a Customer")
async def update_customer(request: Request, customer_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, UpdateParams)
    return await run(request, ctx, raw, lambda guard: gw.customers.update(ctx, customer_id, p, guard))


@router.delete("/v1/customers/{customer_id}", summary="Delete a Customer")
async def delete_customer(request: Request, customer_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    _, raw = await body_params(request, DeleteParams)
    return await run(request, ctx, raw, lambda guard: gw.customers.delete(ctx, customer_id, guard))


@router.get(
    "/v1/customers/{customer_id}/payment_methods",
    summary="List a Customer's PaymentMethods",
    openapi_extra=queried(PaymentMethodsParams),
)
async def list_customer_payment_methods(request: Request, customer_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return json(await gw.customers.payment_methods(ctx, customer_id, query_params(request, PaymentMethodsParams)))


@router.post(
    "/v1/payment_methods/{pm_id}/attach",
    openapi_extra=documented(AttachParams),
    summary="Attach a PaymentMethod to a Customer",
    tags=["PaymentMethods"],
)
async def attach_payment_method(request: Request, pm_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, AttachParams)
    return await run(request, ctx, raw, lambda guard: gw.customers.attach(ctx, pm_id, p.customer, guard))


@router.post(
    "/v1/payment_methods/{pm_id}/detach",
    openapi_extra=documented(DetachParams),
    summary="Detach a PaymentMethod from its Customer",
    tags=["PaymentMethods"],
)
async def detach_payment_method(request: Request, pm_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    _, raw = await body_params(request, DetachParams)
    return await run(request, ctx, raw, lambda guard: gw.customers.detach(ctx, pm_id, guard))
