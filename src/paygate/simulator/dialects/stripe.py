"""Stripe's wire format under ``/stripe/v1`` (form-encoded requests, Stripe JSON objects and errors).

Served: ``POST /payment_intents`` (+ ``/{id}/confirm|capture|cancel``), ``GET /payment_intents/{id}``,
``GET /payment_intents/search?query=metadata['k']:'v'``, ``POST /refunds``, ``GET /refunds/{id}``, and the
simulator extension ``GET /payment_intents?idempotency_key=…`` (the PaymentIntent created with that
``Idempotency-Key``). Declines answer 402 ``card_error`` with ``decline_code`` and the PaymentIntent in
``error.payment_intent``; a 500 before acceptance carries ``Stripe-Should-Retry: true``. Webhooks are Stripe
events signed with ``Stripe-Signature: t=…,v1=…``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from paygate.connectors.testcards import CardBehaviour, Fault, resolve
from paygate.simulator.config import SimConfig
from paygate.simulator.runtime import Runtime, json_answer, parse_form, to_response
from paygate.simulator.store import Refund, Refused, Stored, StoreEvent, Txn, new_id
from paygate.simulator.webhooks import OutboundEvent

__all__ = ["render_webhooks", "routes"]

DIALECT = "stripe"
API_VERSION = "2024-06-20"

_STATUS = {
    "requires_confirmation": "requires_confirmation",
    "requires_action": "requires_action",
    "authorized": "requires_capture",
    "captured": "succeeded",
    "voided": "canceled",
    "failed": "requires_payment_method",
}


def _error(status: int, kind: str, message: str, **extra: Any) -> Stored:
    err = {"type": kind, "message": message, **{k: v for k, v in extra.items() if v is not None}}
    headers = {"stripe-should-retry": "true"} if status >= 500 else None
    return json_answer(status, {"error": err}, headers=headers, store=status < 500)


def _not_processed() -> Stored:
    return _error(500, "api_error", "An error occurred with our connection to Stripe. Request was not processed.")


def _conflict() -> Stored:
    return _error(400, "idempotency_error", "This idempotency key was already used with different parameters.")


def _card_json(card: CardBehaviour | None) -> dict[str, Any] | None:
    if card is None:
        return None
    return {"brand": card.brand, "last4": card.last4, "exp_month": 12, "exp_year": 2034, "funding": "credit"}


def intent_json(txn: Txn, *, status: str | None = None) -> dict[str, Any]:
    internal = status or txn.status
    stripe_status = _STATUS.get(internal, "processing")
    if internal == "requires_confirmation" and txn.card is None:
        stripe_status = "requires_payment_method"
    last_error = None
    if internal == "failed":
        last_error = {
            "type": "card_error",
            "code": txn.error_code,
            "decline_code": txn.decline_code,
            "message": txn.message,
            "payment_method": {"id": txn.payment_method_id, "object": "payment_method", "type": "card"},
        }
    next_action = None
    if internal == "requires_action":
        next_action = {
            "type": "redirect_to_url",
            "redirect_to_url": {"url": txn.challenge_url, "return_url": txn.return_url},
        }
    attempted = internal not in ("requires_confirmation", "requires_action")
    return {
        "id": txn.id,
        "object": "payment_intent",
        "amount": txn.amount,
        "amount_capturable": txn.amount_authorized if internal == "authorized" else 0,
        "amount_received": txn.amount_captured if internal == "captured" else 0,
        "canceled_at": int(time.time()) if internal == "voided" else None,
        "cancellation_reason": "requested_by_customer" if internal == "voided" else None,
        "capture_method": txn.capture_method,
        "client_secret": f"{txn.id}_secret_sim",
        "confirmation_method": "automatic",
        "created": txn.created,
        "currency": txn.currency,
        "customer": None,
        "description": txn.description,
        "last_payment_error": last_error,
        "latest_charge": txn.charge_id if attempted else None,
        "livemode": False,
        "metadata": txn.metadata,
        "next_action": next_action,
        "payment_method": txn.payment_method_id if txn.card else None,
        "payment_method_types": ["card"],
        "status": stripe_status,
    }


def refund_json(refund: Refund, txn: Txn) -> dict[str, Any]:
    return {
        "id": refund.id,
        "object": "refund",
        "amount": refund.amount,
        "charge": txn.charge_id,
        "created": refund.created,
        "currency": refund.currency,
        "metadata": refund.metadata,
        "payment_intent": txn.id,
        "reason": refund.reason,
        "status": refund.status,
        "failure_reason": refund.failure_reason,
    }


def _auth_key(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() == "bearer":
        return token.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(token).decode().split(":", 1)[0]
        except ValueError:
            return None
    return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and str(value).lstrip("-").isdigit() else None
    except ValueError:
        return None


def _card_from(params: dict[str, Any]) -> tuple[CardBehaviour | None, str | None]:
    """(card, unknown-token) from payment_method / payment_method_data[card][…]."""
    pmd = params.get("payment_method_data")
    if isinstance(pmd, dict) and isinstance(pmd.get("card"), dict):
        card = pmd["card"]
        holder = pmd.get("billing_details", {}).get("name") if isinstance(pmd.get("billing_details"), dict) else None
        return resolve(number=str(card.get("number", "")), holder_name=holder), None
    token = params.get("payment_method")
    if isinstance(token, str) and token:
        return resolve(token=token), token
    return None, None


def _refusal(exc: Refused) -> Stored:
    if exc.code == "resource_missing":
        return _error(404, "invalid_request_error", exc.message, code=exc.code, param="intent")
    return _error(
        400,
        "invalid_request_error",
        exc.message,
        code=exc.code,
        payment_intent=intent_json(exc.txn) if exc.txn else None,
    )


def _confirm_answer(txn: Txn) -> Stored:
    body = intent_json(txn)
    if txn.status == "failed":
        answer = _error(
            402,
            "card_error",
            txn.message or "Your card was declined.",
            code=txn.error_code,
            decline_code=txn.decline_code,
            charge=txn.charge_id,
            payment_intent=body,
        )
    else:
        answer = json_answer(200, body)
    return dataclasses.replace(answer, fault=txn.card.fault if txn.card else None)


def routes(rt: Runtime) -> list[Route]:
    async def mutate(request: Request, work: Any) -> Response:
        if not rt.authorized(_auth_key(request)):
            return to_response(_error(401, "invalid_request_error", "Invalid API Key provided."))
        body = await request.body()
        params = parse_form(body)

        key = request.headers.get("idempotency-key")  # read once: the store and the payment share the string

        async def compute() -> Stored:
            try:
                answer: Stored = await work(params, key)
                return answer
            except Refused as exc:
                return _refusal(exc)

        return await rt.handle(
            request,
            DIALECT,
            key,
            body,
            compute,
            conflict=_conflict,
            not_processed=_not_processed,
        )

    async def confirm(txn: Txn, params: dict[str, Any], key: str | None) -> Stored:
        card, unknown = _card_from(params)
        if card is None and unknown is not None:
            return _error(400, "invalid_request_error", f"No such PaymentMethod: '{unknown}'", code="resource_missing")
        if card is not None:
            txn.card = card
        if txn.card is None:
            return _error(400, "invalid_request_error", "You must provide a payment method.", code="parameter_missing")
        if txn.card.fault is Fault.ERROR_BEFORE_ACCEPT:
            return _not_processed()
        if isinstance(params.get("return_url"), str):
            txn.return_url = params["return_url"]
        await rt.store.authorize(txn, key)
        return _confirm_answer(txn)

    async def create_intent(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")

        async def work(params: dict[str, Any], key: str | None) -> Stored:
            amount = _int(params.get("amount"))
            currency = params.get("currency")
            if amount is None or amount <= 0:
                return _error(400, "invalid_request_error", "Invalid positive integer", param="amount")
            if not isinstance(currency, str) or len(currency) != 3:
                return _error(400, "invalid_request_error", "Invalid currency", param="currency")
            metadata = params.get("metadata") if isinstance(params.get("metadata"), dict) else {}
            assert isinstance(metadata, dict)
            capture_method = str(params.get("capture_method") or "automatic")
            txn = Txn(
                id=new_id("pi_"),
                dialect=DIALECT,
                amount=amount,
                currency=currency.lower(),
                capture_method="manual" if capture_method == "manual" else "automatic",
                status="requires_confirmation",
                card=None,
                idempotency_key=key,
                reference=None,
                metadata={str(k): str(v) for k, v in metadata.items()},
                return_url=params.get("return_url") if isinstance(params.get("return_url"), str) else None,
                description=params.get("description") if isinstance(params.get("description"), str) else None,
                created=int(time.time()),
                public_base=base,
            )
            if str(params.get("confirm", "false")).lower() == "true":
                return await confirm(txn, params, key)
            card, _unknown = _card_from(params)
            txn.card = card
            await rt.store.create(txn)
            return json_answer(200, intent_json(txn))

        return await mutate(request, work)

    async def confirm_intent(request: Request) -> Response:
        txn_id = request.path_params["pi"]

        async def work(params: dict[str, Any], key: str | None) -> Stored:
            return await confirm(rt.store.get(txn_id), params, key)

        return await mutate(request, work)

    async def capture_intent(request: Request) -> Response:
        txn_id = request.path_params["pi"]

        async def work(params: dict[str, Any], key: str | None) -> Stored:
            amount = _int(params.get("amount_to_capture"))
            return json_answer(200, intent_json(await rt.store.capture(txn_id, amount, key)))

        return await mutate(request, work)

    async def cancel_intent(request: Request) -> Response:
        txn_id = request.path_params["pi"]

        async def work(params: dict[str, Any], key: str | None) -> Stored:
            return json_answer(200, intent_json(await rt.store.void(txn_id, key)))

        return await mutate(request, work)

    async def create_refund(request: Request) -> Response:
        async def work(params: dict[str, Any], key: str | None) -> Stored:
            txn_id = params.get("payment_intent")
            if not isinstance(txn_id, str):
                charge = params.get("charge")
                txn_id = next(
                    (t.id for t in rt.store.txns.values() if t.dialect == DIALECT and t.charge_id == charge), None
                )
            if not isinstance(txn_id, str):
                return _error(400, "invalid_request_error", "Missing payment_intent.", code="parameter_missing")
            metadata = params.get("metadata") if isinstance(params.get("metadata"), dict) else {}
            assert isinstance(metadata, dict)
            refund = await rt.store.refund(
                txn_id,
                _int(params.get("amount")),
                key,
                reason=params.get("reason") if isinstance(params.get("reason"), str) else None,
                metadata={str(k): str(v) for k, v in metadata.items()},
            )
            return json_answer(200, refund_json(refund, rt.store.get(txn_id)))

        return await mutate(request, work)

    async def read(request: Request) -> Response:
        if not rt.authorized(_auth_key(request)):
            return to_response(_error(401, "invalid_request_error", "Invalid API Key provided."))
        early = rt.before_accept(_not_processed)
        if early is not None:
            return early
        await rt.latency()
        if "pi" in request.path_params:
            txn = rt.store.txns.get(request.path_params["pi"])
            if txn is None or txn.dialect != DIALECT:
                return to_response(
                    _error(404, "invalid_request_error", "No such payment_intent", code="resource_missing")
                )
            return to_response(json_answer(200, intent_json(txn)))
        if "re" in request.path_params:
            refund = rt.store.refunds.get(request.path_params["re"])
            if refund is None:
                return to_response(_error(404, "invalid_request_error", "No such refund", code="resource_missing"))
            return to_response(json_answer(200, refund_json(refund, rt.store.get(refund.txn_id))))
        rows: list[Txn]
        if request.url.path.endswith("/search"):
            match = re.fullmatch(
                r"\s*metadata\[['\"]([^'\"]+)['\"]\]\s*:\s*['\"]([^'\"]*)['\"]\s*",
                request.query_params.get("query", ""),
            )
            if match is None:
                return to_response(
                    _error(400, "invalid_request_error", "Unsupported search query (simulator).", param="query")
                )
            name, value = match.groups()
            rows = [t for t in rt.store.txns.values() if t.dialect == DIALECT and t.metadata.get(name) == value]
        elif "idempotency_key" in request.query_params:
            found = rt.store.find_by_key(DIALECT, request.query_params["idempotency_key"])
            rows = [found] if found else []
        else:
            rows = [t for t in rt.store.txns.values() if t.dialect == DIALECT]
        rows.sort(key=lambda t: t.created, reverse=True)
        listing = {
            "object": "search_result" if request.url.path.endswith("/search") else "list",
            "data": [intent_json(t) for t in rows],
            "has_more": False,
            "url": "/v1/payment_intents",
        }
        return to_response(json_answer(200, listing))

    p = "/stripe/v1"
    return [
        Route(f"{p}/payment_intents", create_intent, methods=["POST"]),
        Route(f"{p}/payment_intents", read, methods=["GET"]),
        Route(f"{p}/payment_intents/search", read, methods=["GET"]),
        Route(f"{p}/payment_intents/{{pi}}", read, methods=["GET"]),
        Route(f"{p}/payment_intents/{{pi}}/confirm", confirm_intent, methods=["POST"]),
        Route(f"{p}/payment_intents/{{pi}}/capture", capture_intent, methods=["POST"]),
        Route(f"{p}/payment_intents/{{pi}}/cancel", cancel_intent, methods=["POST"]),
        Route(f"{p}/refunds", create_refund, methods=["POST"]),
        Route(f"{p}/refunds/{{re}}", read, methods=["GET"]),
    ]


def sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={digest}"}


def _charge_json(txn: Txn, refunds: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": txn.charge_id,
        "object": "charge",
        "amount": txn.amount,
        "amount_captured": txn.amount_captured,
        "amount_refunded": txn.amount_refunded,
        "captured": txn.amount_captured > 0,
        "currency": txn.currency,
        "metadata": txn.metadata,
        "paid": True,
        "payment_intent": txn.id,
        "refunded": txn.amount_refunded >= txn.amount_captured > 0,
        "status": "succeeded",
        "refunds": {"object": "list", "data": refunds, "has_more": False},
    }


def render_webhooks(event: StoreEvent, config: SimConfig) -> list[OutboundEvent]:
    txn = event.txn
    objects: list[tuple[str, dict[str, Any]]] = []
    kind = event.kind
    if kind == "authorized" and txn.capture_method == "manual":
        objects.append(("payment_intent.amount_capturable_updated", intent_json(txn, status="authorized")))
    elif kind == "captured":
        objects.append(("payment_intent.succeeded", intent_json(txn, status="captured")))
    elif kind == "failed":
        objects.append(("payment_intent.payment_failed", intent_json(txn)))
    elif kind == "voided":
        objects.append(("payment_intent.canceled", intent_json(txn)))
    elif kind == "requires_action":
        objects.append(("payment_intent.requires_action", intent_json(txn)))
    elif kind == "refunded" and event.refund is not None:
        refund = refund_json(event.refund, txn)
        objects.append(("refund.created", refund))
        objects.append(("charge.refunded", _charge_json(txn, [refund])))
    elif kind == "dispute" and event.dispute is not None:
        d = event.dispute
        dispute = {
            "id": d.id,
            "object": "dispute",
            "amount": d.amount,
            "charge": txn.charge_id,
            "currency": d.currency,
            "created": d.created,
            "metadata": {},
            "payment_intent": txn.id,
            "reason": d.reason,
            "status": d.status,
        }
        objects.append(("charge.dispute.created", dispute))
    secret = config.webhook_secret or ""
    out: list[OutboundEvent] = []
    for event_type, obj in objects:
        event_id = new_id("evt_")
        key = event.refund.idempotency_key if event.refund else txn.last_event_key
        body = orjson.dumps(
            {
                "id": event_id,
                "object": "event",
                "api_version": API_VERSION,
                "created": int(time.time()),
                "data": {"object": obj},
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": new_id("req_", 14), "idempotency_key": key},
                "type": event_type,
            }
        )
        out.append(OutboundEvent(event_id, event_type, body, lambda b, t: sign(secret, b, t)))
    return out
