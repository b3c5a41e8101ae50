"""API errors in Stripe's envelope. Every error a client can see is one of these.

Hierarchy (HTTP status, Stripe ``type``)::

    ApiError
    ├── InvalidRequest          400 invalid_request_error   (bad parameter, illegal state transition)
    │   └── ResourceMissing     404 invalid_request_error   code=resource_missing (also for other tenants' objects)
    ├── IdempotencyMismatch     400 idempotency_error       same key, different parameters
    ├── IdempotencyInUse        409 invalid_request_error   same key, first request still running
    ├── AuthenticationFailed    401 invalid_request_error   missing / bad API key
    ├── PermissionDenied        403 invalid_request_error   e.g. a publishable key on a secret-key endpoint
    ├── CardDeclined            402 card_error              decline_code, code, payment_intent
    ├── LockTimeout             429 invalid_request_error   code=lock_timeout: object busy with another request
    ├── RateLimited             429 invalid_request_error   code=rate_limit
    └── ApiFailure              500 api_error
        └── ProcessorTemporarilyUnavailable  503  code=processor_unavailable: nothing moved, retry

``headers`` go out with the response (``Stripe-Should-Retry``, ``Retry-After``), stored replies aside.

``to_body()`` produces ``{"error": {...}}``; messages must never contain card data (the exception filter
redacts them anyway).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "ApiFailure",
    "AuthenticationFailed",
    "CardDeclined",
    "IdempotencyInUse",
    "IdempotencyMismatch",
    "InvalidRequest",
    "LockTimeout",
    "PermissionDenied",
    "ProcessorTemporarilyUnavailable",
    "RateLimited",
    "ResourceMissing",
]


class ApiError(Exception):
    status: int = 500
    type: str = "api_error"
    default_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            err["code"] = self.code
            err["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            err["param"] = self.param
        if self.decline_code:
            err["decline_code"] = self.decline_code
        err.update(self.extra)
        return {"error": err}


class InvalidRequest(ApiError):
    status = 400
    type = "invalid_request_error"


class ResourceMissing(InvalidRequest):
    status = 404
    default_code = "resource_missing"

    def __init__(self, kind: str, object_id: str, *, param: str = "id") -> None:
        super().__init__(f"No such {kind}: '{object_id[:64]}'", param=param)


class IdempotencyMismatch(ApiError):
    status = 400
    type = "idempotency_error"

    def __init__(self, key: str) -> None:
        super().__init__(
            "Keys for idempotent requests can only be used with the same parameters they were first used with. "
            f"Try using a key other than '{key[:255]}' if you meant to execute a different request."
        )


class IdempotencyInUse(ApiError):
    status = 409
    type = "invalid_request_error"
    default_code = "idempotency_key_in_use"

    def __init__(self) -> None:
        super().__init__(
            "There is currently another in-progress request using this idempotency key (that probably means "
            "you submitted twice, and the other request is still going through). Please try again later."
        )


class AuthenticationFailed(ApiError):
    status = 401
    type = "invalid_request_error"


class PermissionDenied(ApiError):
    status = 403
    type = "invalid_request_error"


class CardDeclined(ApiError):
    status = 402
    type = "card_error"


class LockTimeout(ApiError):
    status = 429
    type = "invalid_request_error"
    default_code = "lock_timeout"

    def __init__(self, object_id: str) -> None:
        super().__init__(
            f"This object cannot be accessed right now because another API request or paygate process is "
            f"currently accessing it ({object_id}). Please retry the request.",
            headers={"Stripe-Should-Retry": "true"},
        )


class RateLimited(ApiError):
    status = 429
    type = "invalid_request_error"
    default_code = "rate_limit"


class ApiFailure(ApiError):
    status = 500
    type = "api_error"


class ProcessorTemporarilyUnavailable(ApiFailure):
    """The processor could not be reached and provably did nothing; the same request may be retried — with the
    same idempotency key too: this answer is never stored under the key (paygate.idempotency.service)."""

    status = 503

    def __init__(self) -> None:
        super().__init__(
            "The payment processor is temporarily unavailable. No money moved; please retry the request.",
            code="processor_unavailable",
            headers={"Stripe-Should-Retry": "true", "Retry-After": "1"},
        )
