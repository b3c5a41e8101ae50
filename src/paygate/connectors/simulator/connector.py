"""Connector for the simulator's native dialect. ``credentials.base_url`` is the dialect root, e.g.
``http://127.0.0.1:8765/native``; ``credentials.api_key`` is sent as a Bearer token.

Outcome mapping (beyond :mod:`paygate.connectors.base`):

* 2xx → the payment / refund object mapped by :mod:`.transformers`; declines come back as 200 + ``failed``.
* 409 / 422 on capture / void (wrong state, amount too large) → the *current* payment with ``error_code`` set;
  on refund → ``RefundResult(FAILED, failure_reason=<code>)``.
* 404 on sync / capture / void → ``FAILED`` + ``error_code="resource_missing"`` (the processor has no record).
* 500 with ``error.code == "not_processed"`` or 503 → :class:`ProcessorUnavailable`; any other 5xx, an
  unparseable body, or an unexpected 4xx (401, 400) → :class:`OutcomeUnknown` / :class:`ProcessorProtocolError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from paygate.connectors._wire import dumps, loads_object, raise_for_server_error
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
from paygate.connectors.simulator import transformers, webhooks

if TYPE_CHECKING:
    from paygate.kit.secret import Secret

__all__ = ["SimulatorConnector"]


def _headers(creds: ProcessorCredentials, idempotency_key: str | None = None) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "application/json"}
    if creds.api_key is not None:
        headers["authorization"] = f"Bearer {creds.api_key.reveal()}"
    if idempotency_key is not None:
        headers["idempotency-key"] = idempotency_key
    return headers


def _error(body: dict[str, Any]) -> dict[str, Any]:
    err = body.get("error")
    return err if isinstance(err, dict) else {}


class SimulatorConnector:
    name: ClassVar[str] = "simulator"

    async def _call(
        self,
        http: ConnectorClient,
        method: str,
        creds: ProcessorCredentials,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        status, _headers_in, raw = await http.request(
            method,
            creds.base_url.rstrip("/") + path,
            headers=_headers(creds, idempotency_key),
            content=dumps(body) if body is not None else None,
            idempotent=True,  # every POST carries an Idempotency-Key the simulator dedupes on; GETs are reads
        )
        parsed = loads_object(raw) if raw else {}
        raise_for_server_error(status, not_processed=_error(parsed).get("code") == "not_processed", what=path)
        return status, parsed

    def _payment_or_refusal(self, status: int, body: dict[str, Any], what: str) -> PaymentResult:
        if 200 <= status < 300:
            return transformers.payment_result(body)
        err = _error(body)
        code = err.get("code") if isinstance(err.get("code"), str) else None
        if status == 404:
            return PaymentResult(status=PaymentStatus.FAILED, error_code="resource_missing", message=what)
        if status in (409, 422) and isinstance(err.get("payment"), dict):
            return transformers.payment_result(err["payment"], error_code=code or "invalid_request")
        raise ProcessorProtocolError(f"{what}: unexpected status {status} ({code})")

    async def authorize(self, req: AuthorizeRequest, http: ConnectorClient) -> PaymentResult:
        status, body = await self._call(
            http,
            "POST",
            req.credentials,
            "/v1/payments",
            body=transformers.authorize_body(req),
            idempotency_key=req.idempotency_key,
        )
        return self._payment_or_refusal(status, body, "authorize")

    async def capture(self, req: CaptureRequest, http: ConnectorClient) -> PaymentResult:
        path = f"/v1/payments/{quote(req.processor_reference, safe='')}/capture"
        status, body = await self._call(
            http,
            "POST",
            req.credentials,
            path,
            body={"amount": req.amount},
            idempotency_key=req.idempotency_key,
        )
        return self._payment_or_refusal(status, body, "capture")

    async def void(self, req: VoidRequest, http: ConnectorClient) -> PaymentResult:
        path = f"/v1/payments/{quote(req.processor_reference, safe='')}/void"
        status, body = await self._call(
            http, "POST", req.credentials, path, body={}, idempotency_key=req.idempotency_key
        )
        return self._payment_or_refusal(status, body, "void")

    async def refund(self, req: RefundRequest, http: ConnectorClient) -> RefundResult:
        path = f"/v1/payments/{quote(req.processor_reference, safe='')}/refunds"
        payload = {
            "amount": req.amount,
            "reference": req.refund_id,
            "reason": req.reason,
            "metadata": {"paygate_idempotency_key": req.idempotency_key},
        }
        status, body = await self._call(
            http, "POST", req.credentials, path, body=payload, idempotency_key=req.idempotency_key
        )
        if 200 <= status < 300:
            return transformers.refund_result(body)
        code = _error(body).get("code")
        if status in (404, 409, 422):
            reason = code if isinstance(code, str) else f"http_{status}"
            return RefundResult(status=RefundStatus.FAILED, failure_reason=reason)
        raise ProcessorProtocolError(f"refund: unexpected status {status}")

    async def sync(self, req: SyncRequest, http: ConnectorClient) -> PaymentResult:
        if req.processor_reference is not None:
            status, body = await self._call(
                http, "GET", req.credentials, f"/v1/payments/{quote(req.processor_reference, safe='')}"
            )
            return self._payment_or_refusal(status, body, "sync")
        path = f"/v1/payments?idempotency_key={quote(req.idempotency_key, safe='')}"
        status, body = await self._call(http, "GET", req.credentials, path)
        if status != 200:
            return self._payment_or_refusal(status, body, "sync")
        data = body.get("data")
        if not isinstance(data, list) or not data or not isinstance(data[0], dict):
            return PaymentResult(
                status=PaymentStatus.FAILED,
                error_code="resource_missing",
                message="no payment with this idempotency key",
            )
        return transformers.payment_result(data[0])

    def verify_webhook(self, hook: InboundWebhook, secret: Secret) -> bool:
        return webhooks.verify(hook, secret)

    def parse_webhook(self, hook: InboundWebhook) -> ConnectorEvent:
        return webhooks.parse(hook)
