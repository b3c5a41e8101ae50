"""Adyen Checkout connector. ``credentials.base_url`` includes the version (``https://checkout-test.adyen.com/v71``
or ``http://127.0.0.1:8765/adyen/v71``); ``api_key`` goes in ``X-API-Key``; ``merchant_account`` is required.

Adyen modifications are asynchronous: capture / void answer ``status: received`` → ``PENDING`` (the CAPTURE /
CANCELLATION notification or ``sync`` gives the outcome); refunds answer ``RefundStatus.PENDING``. A 422 on a
modification → the current payment (via ``sync``) with ``error_code``; on a refund → ``RefundResult(FAILED)``.
A 5xx with ``errorCode == "not_processed"`` (the simulator's marker) or 503 → ProcessorUnavailable; other 5xx
→ OutcomeUnknown. ``sync`` uses the simulator's lookup extension (``/_sim/payments``): real Adyen has no
payment lookup, production relies on notifications.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from paygate.connectors._wire import dumps, loads_object, raise_for_rejected_call, raise_for_server_error
from paygate.connectors.adyen import transformers, webhooks
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

if TYPE_CHECKING:
    from paygate.kit.secret import Secret

__all__ = ["AdyenConnector"]


class AdyenConnector:
    name: ClassVar[str] = "adyen"

    async def _call(
        self,
        http: ConnectorClient,
        method: str,
        creds: ProcessorCredentials,
        path: str,
        body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        headers = {"accept": "application/json", "content-type": "application/json"}
        if creds.api_key is not None:
            headers["x-api-key"] = creds.api_key.reveal()
        if idempotency_key is not None:
            headers["idempotency-key"] = idempotency_key
        status, _h, raw = await http.request(
            method,
            creds.base_url.rstrip("/") + path,
            headers=headers,
            content=dumps(body) if body is not None else None,
            idempotent=True,  # POSTs carry an Idempotency-Key Adyen dedupes on; GETs are reads
        )
        raise_for_rejected_call(status, path)
        parsed = loads_object(raw) if raw else {}
        raise_for_server_error(status, not_processed=parsed.get("errorCode") == "not_processed", what=path)
        return status, parsed

    async def authorize(self, req: AuthorizeRequest, http: ConnectorClient) -> PaymentResult:
        body = transformers.authorize_body(req, req.credentials.merchant_account)
        status, answer = await self._call(http, "POST", req.credentials, "/payments", body, req.idempotency_key)
        if status == 200:
            return transformers.payment_result(answer, capture=req.capture)
        if status in (400, 422):
            return PaymentResult(
                status=PaymentStatus.FAILED,
                error_code="invalid_request",
                message=answer.get("message") if isinstance(answer.get("message"), str) else None,
                raw_status=str(answer.get("errorCode")),
            )
        raise ProcessorProtocolError(f"authorize: unexpected status {status}")

    async def _modify(
        self,
        http: ConnectorClient,
        creds: ProcessorCredentials,
        psp: str,
        kind: str,
        body: dict[str, Any],
        key: str,
    ) -> PaymentResult:
        path = f"/payments/{quote(psp, safe='')}/{kind}"
        status, answer = await self._call(
            http, "POST", creds, path, {"merchantAccount": creds.merchant_account, **body}, key
        )
        if status in (200, 201):
            return PaymentResult(
                status=PaymentStatus.PENDING, processor_reference=psp, raw_status=str(answer.get("status"))
            )
        if status in (404, 422):
            code = answer.get("errorCode")
            current = await self.sync(
                SyncRequest(idempotency_key=key, credentials=creds, processor_reference=psp), http
            )
            return PaymentResult(
                status=current.status,
                processor_reference=current.processor_reference,
                amount_authorized=current.amount_authorized,
                amount_captured=current.amount_captured,
                error_code=code if isinstance(code, str) else "invalid_request",
                message=answer.get("message") if isinstance(answer.get("message"), str) else None,
                raw_status=current.raw_status,
            )
        raise ProcessorProtocolError(f"{kind}: unexpected status {status}")

    async def capture(self, req: CaptureRequest, http: ConnectorClient) -> PaymentResult:
        body = {
            "amount": {"value": req.amount, "currency": req.currency.upper()},
            "reference": req.idempotency_key,
        }
        return await self._modify(http, req.credentials, req.processor_reference, "captures", body, req.idempotency_key)

    async def void(self, req: VoidRequest, http: ConnectorClient) -> PaymentResult:
        body = {"reference": req.idempotency_key}
        return await self._modify(http, req.credentials, req.processor_reference, "cancels", body, req.idempotency_key)

    async def refund(self, req: RefundRequest, http: ConnectorClient) -> RefundResult:
        path = f"/payments/{quote(req.processor_reference, safe='')}/refunds"
        body = {
            "merchantAccount": req.credentials.merchant_account,
            "amount": {"value": req.amount, "currency": req.currency.upper()},
            "reference": req.refund_id,
        }
        status, answer = await self._call(http, "POST", req.credentials, path, body, req.idempotency_key)
        if status in (200, 201):
            psp = answer.get("pspReference")
            return RefundResult(
                status=RefundStatus.PENDING,
                processor_reference=psp if isinstance(psp, str) else None,
                raw_status=str(answer.get("status")),
            )
        if status in (404, 422):
            code = answer.get("errorCode")
            return RefundResult(
                status=RefundStatus.FAILED,
                failure_reason=code if isinstance(code, str) else "invalid_request",
            )
        raise ProcessorProtocolError(f"refund: unexpected status {status}")

    async def sync(self, req: SyncRequest, http: ConnectorClient) -> PaymentResult:
        if req.processor_reference is not None:
            path = f"/_sim/payments/{quote(req.processor_reference, safe='')}"
        else:
            path = f"/_sim/payments?idempotencyKey={quote(req.idempotency_key, safe='')}"
        status, answer = await self._call(http, "GET", req.credentials, path)
        if status == 404:
            return PaymentResult(status=PaymentStatus.FAILED, error_code="resource_missing", message="no such payment")
        if status != 200:
            raise ProcessorProtocolError(f"sync: unexpected status {status}")
        return transformers.status_result(answer)

    def verify_webhook(self, hook: InboundWebhook, secret: Secret) -> bool:
        return webhooks.verify(hook, secret)

    def parse_webhook(self, hook: InboundWebhook) -> ConnectorEvent:
        return webhooks.parse(hook)
