"""Adyen Checkout API shape under ``/adyen/v71`` (JSON, ``X-API-Key``, ``Idempotency-Key``).

``POST /payments`` answers ``resultCode`` Authorised / Refused / RedirectShopper / Error with ``refusalReason``
and ``refusalReasonCode``; ``POST /payments/{pspReference}/captures|refunds|cancels`` answer 201
``status: "received"`` (the result follows as a notification). Modifications the state forbids answer 422
synchronously here (a simplification: real Adyen may accept them and notify ``*_FAILED`` later).

Simulator extensions (Adyen has no lookup API): ``GET /_sim/payments/{pspReference}`` and
``GET /_sim/payments?idempotencyKey=…`` return ``{"pspReference", "status", "resultCode", …}``.

Notifications: standard ``notificationItems`` with ``additionalData.hmacSignature`` = base64(HMAC-SHA256(
hex-decoded key, "pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:eventCode:
success")).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from paygate.connectors.testcards import CardBehaviour, Fault, resolve
from paygate.simulator.config import SimConfig
from paygate.simulator.runtime import Runtime, json_answer, to_response
from paygate.simulator.store import Refused, Stored, StoreEvent, Txn, new_psp_reference
from paygate.simulator.webhooks import OutboundEvent

__all__ = ["notification_signature", "render_webhooks", "routes"]

DIALECT = "adyen"

# decline_code → (refusalReason, refusalReasonCode, refusalReasonRaw)
_REFUSALS: dict[str, tuple[str, str, str]] = {
    "generic_decline": ("Refused", "2", "05 : Do not honor"),
    "insufficient_funds": ("Not enough balance", "12", "51 : Insufficient funds"),
    "lost_card": ("Blocked Card", "5", "41 : Lost card"),
    "stolen_card": ("Blocked Card", "5", "43 : Stolen card"),
    "expired_card": ("Expired Card", "6", "54 : Expired card"),
    "incorrect_cvc": ("CVC Declined", "24", "N7 : CVV2 failure"),
    "processing_error": ("Acquirer Error", "4", "96 : System malfunction"),
    "fraudulent": ("FRAUD", "20", "59 : Suspected fraud"),
    "card_velocity_exceeded": ("Withdrawal count exceeded", "29", "65 : Exceeds withdrawal frequency"),
    "incorrect_number": ("Invalid Card Number", "8", "14 : Invalid card number"),
    "authentication_required": ("3D Not Authenticated", "11", "3DS authentication failed"),
}


def _error(status: int, code: str, message: str, kind: str = "validation") -> Stored:
    body = {"status": status, "errorCode": code, "message": message, "errorType": kind}
    return json_answer(status, body, store=status < 500)


def _not_processed() -> Stored:
    return _error(500, "not_processed", "Internal error; the request was not processed.", "internal")


def _conflict() -> Stored:
    return _error(422, "704", "Idempotency key was already used with a different request.")


def _refusal_fields(txn: Txn) -> dict[str, Any]:
    reason, code, raw = _REFUSALS.get(txn.decline_code or "", ("Refused", "2", "05 : Do not honor"))
    return {
        "refusalReason": reason,
        "refusalReasonCode": code,
        "additionalData": {"refusalReasonRaw": raw},
    }


def result_code(txn: Txn) -> str:
    if txn.status == "failed":
        return "Error" if txn.decline_code == "processing_error" else "Refused"
    if txn.status == "requires_action":
        return "RedirectShopper"
    if txn.status in ("authorized", "captured", "voided"):
        return "Authorised"
    return "Received"


def payment_response(txn: Txn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "pspReference": txn.id,
        "resultCode": result_code(txn),
        "amount": {"value": txn.amount, "currency": txn.currency.upper()},
        "merchantReference": txn.reference,
    }
    if txn.card is not None:
        body["paymentMethod"] = {
            "type": "scheme",
            "brand": "mc" if txn.card.brand == "mastercard" else txn.card.brand,
        }
    if txn.status == "failed":
        body.update(_refusal_fields(txn))
    if txn.status == "requires_action":
        body["action"] = {
            "type": "redirect",
            "method": "GET",
            "url": txn.challenge_url,
            "paymentMethodType": "scheme",
        }
    return body


def status_json(txn: Txn) -> dict[str, Any]:
    """The simulator's lookup object (extension)."""
    body = payment_response(txn)
    body.update(
        {
            "status": txn.status,
            "capturedAmount": txn.amount_captured,
            "authorisedAmount": txn.amount_authorized,
            "refundedAmount": txn.amount_refunded,
            "captureMethod": txn.capture_method,
            "idempotencyKey": txn.idempotency_key,
        }
    )
    return body


def _card(pm: dict[str, Any]) -> tuple[CardBehaviour | None, str | None]:
    holder = pm.get("holderName") if isinstance(pm.get("holderName"), str) else None
    stored = pm.get("storedPaymentMethodId")
    if isinstance(stored, str):
        return resolve(token=stored), stored
    number = pm.get("number")
    encrypted = pm.get("encryptedCardNumber")
    if not isinstance(number, str) and isinstance(encrypted, str) and encrypted.startswith("test_"):
        number = encrypted.removeprefix("test_")  # Adyen's unencrypted test values
    if isinstance(number, str):
        return resolve(number=number, holder_name=holder), None
    return None, None


def _amount(data: dict[str, Any]) -> tuple[int | None, str | None]:
    amount = data.get("amount")
    if not isinstance(amount, dict):
        return None, None
    value, currency = amount.get("value"), amount.get("currency")
    ok_value = value if isinstance(value, int) and not isinstance(value, bool) else None
    return ok_value, currency if isinstance(currency, str) else None


def routes(rt: Runtime) -> list[Route]:
    def unauthorized() -> Response:
        return to_response(_error(401, "000", "HTTP Status Response - Unauthorized", "security"))

    async def mutate(request: Request, work: Any) -> Response:
        if not rt.authorized(request.headers.get("x-api-key")):
            return unauthorized()
        body = await request.body()
        try:
            data = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            return to_response(_error(400, "702", "Structure of request is invalid (not JSON)."))
        if not isinstance(data, dict):
            return to_response(_error(400, "702", "Structure of request is invalid."))

        key = request.headers.get("idempotency-key")  # read once: the store and the payment share the string

        async def compute() -> Stored:
            try:
                answer: Stored = await work(data, key)
                return answer
            except Refused as exc:
                status = 404 if exc.code == "resource_missing" else 422
                return _error(status, exc.code, exc.message)

        return await rt.handle(
            request,
            DIALECT,
            key,
            body,
            compute,
            conflict=_conflict,
            not_processed=_not_processed,
        )

    async def payments(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")

        async def work(data: dict[str, Any], key: str | None) -> Stored:
            value, currency = _amount(data)
            if value is None or value <= 0 or currency is None or len(currency) != 3:
                return _error(422, "137", "Invalid amount specified")
            pm = data.get("paymentMethod") if isinstance(data.get("paymentMethod"), dict) else None
            if pm is None:
                return _error(422, "14_006", "Required object 'paymentMethod' is not provided.")
            card, token = _card(pm)
            if card is None:
                return _error(422, "101", f"Invalid card number or unknown stored method {token!r}")
            if card.fault is Fault.ERROR_BEFORE_ACCEPT:
                return _not_processed()
            extra = data.get("additionalData") if isinstance(data.get("additionalData"), dict) else {}
            assert isinstance(extra, dict)
            manual = str(extra.get("manualCapture", "")).lower() == "true"
            metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
            assert isinstance(metadata, dict)
            txn = Txn(
                id=new_psp_reference(),
                dialect=DIALECT,
                amount=value,
                currency=currency.lower(),
                capture_method="manual" if manual else "automatic",
                status="requires_confirmation",
                card=card,
                idempotency_key=key,
                reference=data.get("reference") if isinstance(data.get("reference"), str) else None,
                metadata={str(k): str(v) for k, v in metadata.items()},
                return_url=data.get("returnUrl") if isinstance(data.get("returnUrl"), str) else None,
                description=None,
                created=int(time.time()),
                public_base=base,
            )
            await rt.store.authorize(txn, key)
            return dataclasses.replace(json_answer(200, payment_response(txn)), fault=card.fault)

        return await mutate(request, work)

    def modification(kind: str) -> Any:
        async def endpoint(request: Request) -> Response:
            psp = request.path_params["psp"]

            async def work(data: dict[str, Any], key: str | None) -> Stored:
                value, _currency = _amount(data)
                reference = data.get("reference") if isinstance(data.get("reference"), str) else None
                if kind != "cancels" and value is None:
                    return _error(422, "137", "Invalid amount specified")
                mod_ref = new_psp_reference()
                if kind == "captures":
                    txn = await rt.store.capture(psp, value, key, modification_ref=mod_ref)
                elif kind == "cancels":
                    txn = await rt.store.void(psp, key, modification_ref=mod_ref)
                else:
                    refund = await rt.store.refund(psp, value, key, reference=reference)
                    mod_ref, txn = refund.id, rt.store.get(psp)
                body: dict[str, Any] = {
                    "merchantAccount": data.get("merchantAccount"),
                    "paymentPspReference": psp,
                    "pspReference": mod_ref,
                    "reference": reference,
                    "status": "received",
                }
                if kind != "cancels":
                    body["amount"] = {"value": value, "currency": txn.currency.upper()}
                return json_answer(201, body)

            return await mutate(request, work)

        return endpoint

    async def lookup(request: Request) -> Response:
        if not rt.authorized(request.headers.get("x-api-key")):
            return unauthorized()
        await rt.latency()
        if "psp" in request.path_params:
            txn = rt.store.txns.get(request.path_params["psp"])
        else:
            key = request.query_params.get("idempotencyKey", "")
            txn = rt.store.find_by_key(DIALECT, key)
        if txn is None or txn.dialect != DIALECT:
            return to_response(_error(404, "resource_missing", "No payment found."))
        return to_response(json_answer(200, status_json(txn)))

    p = "/adyen/v71"
    return [
        Route(f"{p}/payments", payments, methods=["POST"]),
        Route(f"{p}/payments/{{psp}}/captures", modification("captures"), methods=["POST"]),
        Route(f"{p}/payments/{{psp}}/refunds", modification("refunds"), methods=["POST"]),
        Route(f"{p}/payments/{{psp}}/cancels", modification("cancels"), methods=["POST"]),
        Route(f"{p}/_sim/payments", lookup, methods=["GET"]),
        Route(f"{p}/_sim/payments/{{psp}}", lookup, methods=["GET"]),
    ]


def notification_signature(item: dict[str, Any], hex_key: str) -> str:
    amount = item.get("amount") or {}
    fields = [
        item.get("pspReference"),
        item.get("originalReference"),
        item.get("merchantAccountCode"),
        item.get("merchantReference"),
        amount.get("value"),
        amount.get("currency"),
        item.get("eventCode"),
        item.get("success"),
    ]
    payload = ":".join("" if f is None else str(f) for f in fields)
    digest = hmac.new(bytes.fromhex(hex_key), payload.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def render_webhooks(event: StoreEvent, config: SimConfig) -> list[OutboundEvent]:
    txn = event.txn
    kind = event.kind
    success = "true"
    psp, original, reference, amount = txn.id, None, txn.reference, txn.amount
    reason = ""
    if kind in ("authorized", "failed"):
        code = "AUTHORISATION"
        if kind == "failed":
            success, reason = "false", _refusal_fields(txn)["refusalReason"]
    elif kind == "captured" and txn.capture_method == "manual":
        code, psp, original, amount = (
            "CAPTURE",
            event.modification_ref or new_psp_reference(),
            txn.id,
            event.amount or 0,
        )
    elif kind == "voided":
        code, psp, original = "CANCELLATION", event.modification_ref or new_psp_reference(), txn.id
    elif kind == "refunded" and event.refund is not None:
        code, psp, original = "REFUND", event.refund.id, txn.id
        reference, amount = event.refund.reference, event.refund.amount
    elif kind == "dispute" and event.dispute is not None:
        code, psp, original, amount = (
            "NOTIFICATION_OF_CHARGEBACK",
            new_psp_reference(),
            txn.id,
            event.dispute.amount,
        )
        reason = event.dispute.reason
    else:
        return []
    additional: dict[str, Any] = {f"metadata.{k}": v for k, v in txn.metadata.items()}
    item: dict[str, Any] = {
        "amount": {"value": amount, "currency": txn.currency.upper()},
        "eventCode": code,
        "eventDate": datetime.now(UTC).isoformat(timespec="seconds"),
        "merchantAccountCode": config.adyen_merchant_account,
        "merchantReference": reference or "",
        "pspReference": psp,
        "reason": reason,
        "success": success,
    }
    if original:
        item["originalReference"] = original
    if txn.card is not None:
        item["paymentMethod"] = "mc" if txn.card.brand == "mastercard" else txn.card.brand
    additional["hmacSignature"] = notification_signature(item, config.adyen_key_hex())
    item["additionalData"] = additional
    body = orjson.dumps({"live": "false", "notificationItems": [{"NotificationRequestItem": item}]})
    event_id = f"{psp}:{code}:{success}"
    return [OutboundEvent(event_id, code, body, lambda _b, _t: {})]
