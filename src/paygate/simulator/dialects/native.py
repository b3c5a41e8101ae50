"""The native dialect: a small JSON API under ``/native/v1`` (documented in docs/simulator.md).

Auth ``Authorization: Bearer <key>``; ``Idempotency-Key`` on every POST. Declines are ``200`` with
``status: "failed"``. Errors are ``{"error": {"type", "code", "message", "payment"?}}`` with 400 (bad
request), 401, 404, 409 (wrong state, idempotency conflict), 422 (amount) and 500 ``not_processed`` (nothing
recorded). Webhooks: ``Paygate-Sim-Signature: t=…,v1=hex(HMAC-SHA256(secret, "{t}.{body}"))``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from paygate.connectors.testcards import Fault, resolve
from paygate.simulator.config import SimConfig
from paygate.simulator.runtime import Runtime, json_answer, to_response
from paygate.simulator.store import Refund, Refused, Stored, StoreEvent, Txn, new_id
from paygate.simulator.webhooks import OutboundEvent

__all__ = ["render_webhooks", "routes"]

DIALECT = "native"


def _error(status: int, code: str, message: str, *, kind: str = "invalid_request", txn: Txn | None = None) -> Stored:
    err: dict[str, Any] = {"type": kind, "code": code, "message": message}
    if txn is not None:
        err["payment"] = payment_json(txn)
    return json_answer(status, {"error": err}, store=status < 500)


def _not_processed() -> Stored:
    return _error(500, "not_processed", "Temporary failure; the request was not processed.", kind="api_error")


def _conflict() -> Stored:
    return _error(409, "idempotency_conflict", "This Idempotency-Key was used with a different request.")


def payment_json(txn: Txn, *, status: str | None = None) -> dict[str, Any]:
    status = status or txn.status
    failed = status == "failed"
    return {
        "object": "payment",
        "id": txn.id,
        "status": status,
        "amount": txn.amount,
        "currency": txn.currency,
        "capture": txn.capture_method == "automatic",
        "amount_authorized": txn.amount_authorized,
        "amount_captured": txn.amount_captured if status != "authorized" else 0,
        "amount_refunded": txn.amount_refunded,
        "reference": txn.reference,
        "idempotency_key": txn.idempotency_key,
        "metadata": txn.metadata,
        "decline_code": txn.decline_code if failed else None,
        "error_code": txn.error_code if failed else None,
        "message": txn.message if failed else None,
        "retryable": txn.retryable if failed else False,
        "next_action": {"type": "redirect", "redirect_url": txn.challenge_url} if status == "requires_action" else None,
        "network_transaction_id": txn.network_transaction_id,
        "card": {"brand": txn.card.brand, "last4": txn.card.last4} if txn.card else None,
        "refunds": list(txn.refunds),
        "created": txn.created,
    }


def refund_json(refund: Refund) -> dict[str, Any]:
    return {
        "object": "refund",
        "id": refund.id,
        "payment_id": refund.txn_id,
        "status": refund.status,
        "amount": refund.amount,
        "currency": refund.currency,
        "reference": refund.reference,
        "reason": refund.reason,
        "idempotency_key": refund.idempotency_key,
        "metadata": refund.metadata,
        "failure_reason": refund.failure_reason,
        "created": refund.created,
    }


def _refusal(exc: Refused) -> Stored:
    status = 404 if exc.code == "resource_missing" else 422 if exc.code == "amount_too_large" else 409
    return _error(status, exc.code, exc.message, txn=exc.txn)


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def routes(rt: Runtime) -> list[Route]:
    async def mutate(request: Request, work: Any) -> Response:
        if not rt.authorized(_bearer(request)):
            return to_response(_error(401, "unauthorized", "Invalid API key.", kind="authentication_error"))
        body = await request.body()
        data = _json(body)
        if data is None:
            return to_response(_error(400, "invalid_json", "The body must be a JSON object."))

        key = request.headers.get("idempotency-key")  # read once: the store and the payment share the string

        async def compute() -> Stored:
            try:
                answer: Stored = await work(data, key)
                return answer
            except Refused as exc:
                return _refusal(exc)

        return await rt.handle(request, DIALECT, key, body, compute, conflict=_conflict, not_processed=_not_processed)

    async def create_payment(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")

        async def work(data: dict[str, Any], key: str | None) -> Stored:
            amount, currency = data.get("amount"), data.get("currency")
            if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
                return _error(400, "invalid_amount", "amount must be a positive integer (minor units).")
            if not isinstance(currency, str) or len(currency) != 3:
                return _error(400, "invalid_currency", "currency must be an ISO 4217 code.")
            card_in = data.get("card") if isinstance(data.get("card"), dict) else None
            token = data.get("payment_method") if isinstance(data.get("payment_method"), str) else None
            if card_in is None and token is None:
                return _error(400, "payment_method_required", "Provide card or payment_method.")
            card = resolve(
                number=str(card_in.get("number", "")) if card_in else None,
                token=token,
                holder_name=str(card_in.get("holder_name") or "") if card_in else None,
            )
            if card is None:
                return _error(400, "resource_missing", f"No such payment method: '{token}'.")
            if card.fault is Fault.ERROR_BEFORE_ACCEPT:
                return _not_processed()
            metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
            assert isinstance(metadata, dict)
            txn = Txn(
                id=new_id("txn_"),
                dialect=DIALECT,
                amount=amount,
                currency=currency.lower(),
                capture_method="automatic" if data.get("capture", True) else "manual",
                status="requires_confirmation",
                card=card,
                idempotency_key=key,
                reference=data.get("reference") if isinstance(data.get("reference"), str) else None,
                metadata={str(k): str(v) for k, v in metadata.items()},
                return_url=data.get("return_url") if isinstance(data.get("return_url"), str) else None,
                description=data.get("description") if isinstance(data.get("description"), str) else None,
                created=int(time.time()),
                public_base=base,
            )
            await rt.store.authorize(txn, key)
            return dataclasses.replace(json_answer(200, payment_json(txn)), fault=card.fault)

        return await mutate(request, work)

    async def capture(request: Request) -> Response:
        txn_id = request.path_params["txn_id"]

        async def work(data: dict[str, Any], key: str | None) -> Stored:
            amount = data.get("amount")
            if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool)):
                return _error(400, "invalid_amount", "amount must be an integer.")
            return json_answer(200, payment_json(await rt.store.capture(txn_id, amount, key)))

        return await mutate(request, work)

    async def void(request: Request) -> Response:
        txn_id = request.path_params["txn_id"]

        async def work(data: dict[str, Any], key: str | None) -> Stored:
            return json_answer(200, payment_json(await rt.store.void(txn_id, key)))

        return await mutate(request, work)

    async def refund(request: Request) -> Response:
        txn_id = request.path_params["txn_id"]

        async def work(data: dict[str, Any], key: str | None) -> Stored:
            amount = data.get("amount")
            if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool)):
                return _error(400, "invalid_amount", "amount must be an integer.")
            metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
            assert isinstance(metadata, dict)
            created = await rt.store.refund(
                txn_id,
                amount,
                key,
                reference=data.get("reference") if isinstance(data.get("reference"), str) else None,
                reason=data.get("reason") if isinstance(data.get("reason"), str) else None,
                metadata={str(k): str(v) for k, v in metadata.items()},
            )
            return json_answer(201, refund_json(created))

        return await mutate(request, work)

    async def read(request: Request) -> Response:
        if not rt.authorized(_bearer(request)):
            return to_response(_error(401, "unauthorized", "Invalid API key.", kind="authentication_error"))
        early = rt.before_accept(_not_processed)
        if early is not None:
            return early
        await rt.latency()
        if "txn_id" in request.path_params:
            txn = rt.store.txns.get(request.path_params["txn_id"])
            if txn is None:
                return to_response(_error(404, "resource_missing", "No such payment."))
            return to_response(json_answer(200, payment_json(txn)))
        if "refund_id" in request.path_params:
            found = rt.store.refunds.get(request.path_params["refund_id"])
            if found is None:
                return to_response(_error(404, "resource_missing", "No such refund."))
            return to_response(json_answer(200, refund_json(found)))
        key = request.query_params.get("idempotency_key")
        if key is None:
            rows = [payment_json(t) for t in rt.store.txns.values() if t.dialect == DIALECT]
        else:
            match = rt.store.find_by_key(DIALECT, key)
            rows = [payment_json(match)] if match else []
        return to_response(json_answer(200, {"object": "list", "data": rows}))

    prefix = "/native/v1"
    return [
        Route(f"{prefix}/payments", create_payment, methods=["POST"]),
        Route(f"{prefix}/payments", read, methods=["GET"]),
        Route(f"{prefix}/payments/{{txn_id}}", read, methods=["GET"]),
        Route(f"{prefix}/payments/{{txn_id}}/capture", capture, methods=["POST"]),
        Route(f"{prefix}/payments/{{txn_id}}/void", void, methods=["POST"]),
        Route(f"{prefix}/payments/{{txn_id}}/refunds", refund, methods=["POST"]),
        Route(f"{prefix}/refunds/{{refund_id}}", read, methods=["GET"]),
    ]


_EVENT_TYPES = {
    "authorized": "payment.authorized",
    "captured": "payment.captured",
    "failed": "payment.failed",
    "voided": "payment.voided",
    "requires_action": "payment.requires_action",
    "refunded": "refund.succeeded",
    "dispute": "dispute.opened",
}


def sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Paygate-Sim-Signature": f"t={timestamp},v1={digest}"}


def render_webhooks(event: StoreEvent, config: SimConfig) -> list[OutboundEvent]:
    kind = event.kind
    data: dict[str, Any]
    if kind == "refunded" and event.refund is not None:
        data = refund_json(event.refund)
    elif kind == "dispute" and event.dispute is not None:
        d = event.dispute
        data = {
            "object": "dispute",
            "id": d.id,
            "payment_id": d.txn_id,
            "amount": d.amount,
            "currency": d.currency,
            "reason": d.reason,
            "status": d.status,
            "created": d.created,
        }
    else:
        data = payment_json(event.txn, status="authorized" if kind == "authorized" else None)
    event_id = new_id("evt_")
    body = orjson.dumps(
        {"id": event_id, "type": _EVENT_TYPES.get(kind, kind), "created": int(time.time()), "data": data}
    )
    secret = config.webhook_secret or ""
    return [OutboundEvent(event_id, _EVENT_TYPES.get(kind, kind), body, lambda b, t: sign(secret, b, t))]
