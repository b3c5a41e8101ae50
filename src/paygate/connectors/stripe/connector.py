"""Stripe PaymentIntents connector. ``credentials.base_url`` is the API root without ``/v1`` (``https://api.stripe.com``
or ``http://127.0.0.1:8765/stripe`` for the simulator); ``api_key`` is the secret key (Bearer).

Outcome mapping beyond :mod:`paygate.connectors.base`: 200 → the PaymentIntent; 402 ``card_error`` → FAILED with
the decline data of ``error.payment_intent``; 400 on authorize → FAILED with the Stripe error code (nothing was
charged); 400 on capture / cancel → the current PaymentIntent with ``error_code``; 400 on refunds →
``RefundResult(FAILED, failure_reason=code)``; 404 → FAILED + ``resource_missing``; 401/403/429 and 5xx carrying
``Stripe-Should-Retry: true`` (or 503) → ProcessorUnavailable; any other 5xx → OutcomeUnknown.

``sync`` without a reference searches ``metadata['paygate_idempotency_key']`` (Stripe's search API; on real
Stripe search is eventually consistent, so a miss shortly after a lost response is retried by the caller later).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from paygate.connectors._wire import (
    form_encode,
    loads_object,
    raise_for_rejected_call,
    raise_for_server_error,
)
from paygate.connectors.base import (
    AuthorizeRequest,
    CaptureRequest,
    ConnectorClient,
    ConnectorEvent,
    InboundWebhook,
    PaymentResult,
    PaymentStatus,
    ProcessorCredentials,
    RefundRequest,
    RefundResult,
    RefundStatus,
    SyncRequest,
    VoidRequest,
)
from paygate.connectors.errors import ProcessorProtocolError
from paygate.connectors.stripe import transformers, webhooks

if TYPE_CHECKING:
    from paygate.kit.secret import Secret

__all__ = ["StripeConnector"]


def _missing(what: str) -> PaymentResult:
    return PaymentResult(status=PaymentStatus.FAILED, error_code="resource_missing", message=what)


class StripeConnector:
    name: ClassVar[str] = "stripe"

    async def _call(
        self,
        http: ConnectorClient,
        method: str,
        creds: ProcessorCredentials,
        path: str,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        headers = {"accept": "application/json", "stripe-version": "2024-06-20"}
        if creds.api_key is not None:
            headers["authorization"] = f"Bearer {creds.api_key.reveal()}"
        if idempotency_key is not None:
            headers["idempotency-key"] = idempotency_key
        content = None
        if params is not None:
            headers["content-type"] = "application/x-www-form-urlencoded"
            content = form_encode(params).encode()
        status, resp_headers, raw = await http.request(
            method, creds.base_url.rstrip("/") + path, headers=headers, content=content, idempotent=True
        )
        raise_for_rejected_call(status, path)
        should_retry = resp_headers.get("stripe-should-retry", "").lower() == "true"
        raise_for_server_error(status, not_processed=should_retry, what=path)
        return status, loads_object(raw) if raw else {}

    @staticmethod
    def _err(body: dict[str, Any]) -> dict[str, Any]:
        err = body.get("error")
        return err if isinstance(err, dict) else {}

    def _intent_or_refusal(
        self, status: int, body: dict[str, Any], what: str, *, authorize: bool = False
    ) -> PaymentResult:
        if 200 <= status < 300:
            return transformers.intent_result(body)
        err = self._err(body)
        code = err.get("code") if isinstance(err.get("code"), str) else None
        message = err.get("message") if isinstance(err.get("message"), str) else None
        pi = err.get("payment_intent") if isinstance(err.get("payment_intent"), dict) else None
        if status == 402 and pi is not None:
            return transformers.intent_result(pi)
        if status == 404:
            return _missing(message or what)
        if status == 400 and pi is not None and not authorize:
            return transformers.intent_result(pi, error_code=code or "invalid_request", message=message)
        if status in (400, 402) and authorize:
            return PaymentResult(
                status=PaymentStatus.FAILED,
                processor_reference=pi.get("id") if pi else None,
                error_code=code
                or ("idempotency_error" if err.get("type") == "idempotency_error" else "invalid_request"),
                decline_code=err.get("decline_code") if isinstance(err.get("decline_code"), str) else None,
                message=message,
                raw_status=f"http_{status}",
            )
        raise ProcessorProtocolError(f"{what}: unexpected status {status} ({code})")

    async def authorize(self, req: AuthorizeRequest, http: ConnectorClient) -> PaymentResult:
        status, body = await self._call(
            http,
            "POST",
            req.credentials,
            "/v1/payment_intents",
            transformers.authorize_params(req),
            req.idempotency_key,
        )
        return self._intent_or_refusal(status, body, "authorize", authorize=True)

    async def capture(self, req: CaptureRequest, http: ConnectorClient) -> PaymentResult:
        path = f"/v1/payment_intents/{quote(req.processor_reference, safe='')}/capture"
        status, body = await self._call(
            http, "POST", req.credentials, path, {"amount_to_capture": req.amount}, req.idempotency_key
        )
        return self._intent_or_refusal(status, body, "capture")

    async def void(self, req: VoidRequest, http: ConnectorClient) -> PaymentResult:
        path = f"/v1/payment_intents/{quote(req.processor_reference, safe='')}/cancel"
        status, body = await self._call(http, "POST", req.credentials, path, {}, req.idempotency_key)
        return self._intent_or_refusal(status, body, "void")

    async def refund(self, req: RefundRequest, http: ConnectorClient) -> RefundResult:
        status, body = await self._call(
            http, "POST", req.credentials, "/v1/refunds", transformers.refund_params(req), req.idempotency_key
        )
        if 200 <= status < 300:
            return transformers.refund_result(body)
        code = self._err(body).get("code")
        if status in (400, 404):
            return RefundResult(
                status=RefundStatus.FAILED, failure_reason=code if isinstance(code, str) else f"http_{status}"
            )
        raise ProcessorProtocolError(f"refund: unexpected status {status}")

    async def sync(self, req: SyncRequest, http: ConnectorClient) -> PaymentResult:
        if req.processor_reference is not None:
            path = f"/v1/payment_intents/{quote(req.processor_reference, safe='')}"
            status, body = await self._call(http, "GET", req.credentials, path)
            return self._intent_or_refusal(status, body, "sync")
        query = f"metadata['{transformers.IDEMPOTENCY_METADATA}']:'{req.idempotency_key}'"
        path = f"/v1/payment_intents/search?query={quote(query, safe='')}"
        status, body = await self._call(http, "GET", req.credentials, path)
        if status != 200:
            return self._intent_or_refusal(status, body, "sync")
        data = body.get("data")
        if not isinstance(data, list) or not data or not isinstance(data[0], dict):
            return _missing("no PaymentIntent with this idempotency key")
        return transformers.intent_result(data[0])

    def verify_webhook(self, hook: InboundWebhook, secret: Secret) -> bool:
        return webhooks.verify(hook, secret)

    def parse_webhook(self, hook: InboundWebhook) -> ConnectorEvent:
        return webhooks.parse(hook)
