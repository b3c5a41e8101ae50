"""/v1/payment_methods routes (attach / detach live with customers, in :mod:`paygate.customers.endpoints`).

Creating a payment method accepts a publishable key (the checkout page tokenizes in the browser) or a secret
key of a merchant with raw card access. The idempotency fingerprint of a create never covers the raw card:
:func:`paygate.vault.fingerprint.idempotency_view` (applied by ``paygate.http.run`` to every POST) replaces
``card[number]`` and ``card[cvc]`` with keyed HMACs before the request parameters reach the idempotency store.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paygate.http import body_params, documented, gateway, json, queried, query_params, run
from paygate.kit.params import Expand, Params
from paygate.vault.schemas import PaymentMethodData, PaymentMethodListParams, UpdateParams

__all__ = ["router"]

router = APIRouter(prefix="/v1/payment_methods", tags=["PaymentMethods"])


class RetrieveParams(Params):
    expand: Expand = []


@router.post("", openapi_extra=documented(PaymentMethodData), summary="Create (tokenize) a PaymentMethod")
async def create_payment_method(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request, secret_required=False)
    p, raw = await body_params(request, PaymentMethodData)

    return await run(request, ctx, raw, lambda g: gw.vault.create(ctx, p, g))


@router.get("", summary="List PaymentMethods, newest first", openapi_extra=queried(PaymentMethodListParams))
async def list_payment_methods(request: Request) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    return json(await gw.vault.list(ctx, query_params(request, PaymentMethodListParams), url="/v1/payment_methods"))


@router.get("/{pm_id}", summary="Retrieve a PaymentMethod", openapi_extra=queried(RetrieveParams))
async def retrieve_payment_method(request: Request, pm_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    query_params(request, RetrieveParams)
    return json(await gw.vault.retrieve(ctx, pm_id))


@router.post("/{pm_id}", openapi_extra=documented(UpdateParams), summary="Update a PaymentMethod")
async def update_payment_method(request: Request, pm_id: str) -> Response:
    gw = gateway(request)
    ctx = await gw.authenticate(request)
    p, raw = await body_params(request, UpdateParams)

    return await run(request, ctx, raw, lambda guard: gw.vault.update(ctx, pm_id, p, guard))
