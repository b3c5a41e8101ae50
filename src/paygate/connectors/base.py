"""The contract between paygate and a payment processor (PSP).

A connector is a *pure translator*: it turns one of paygate's narrow per-flow requests into its vendor's wire
format, sends it through the shared :class:`ConnectorClient` seam, and maps the vendor's answer back into a
:class:`PaymentResult` / :class:`RefundResult`. Connectors import no domain package and touch no database.

Outcome rules (ARCHITECTURE.md, "Rules that keep money safe"):

* Declines are data: ``PaymentResult(status=FAILED, decline_code=...)``, never an exception.
* A processor outcome is ``PENDING`` unless the processor explicitly said success or failure.
* Infrastructure faults are exceptions from :mod:`paygate.connectors.errors`:
  ``ProcessorUnavailable`` means the request provably did not take effect (connection refused, 5xx *before*
  acceptance, circuit open) and failover is safe; ``OutcomeUnknown`` means the request may have reached the
  processor (read timeout, dropped response) so the caller must ``sync`` and must never fail over.
* Every money-moving call carries ``idempotency_key`` (derived from paygate's attempt / refund id) so a retry
  after a crash can never move money twice.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from paygate.kit.secret import Secret

__all__ = [
    "AuthorizeRequest",
    "CaptureRequest",
    "CardData",
    "Connector",
    "ConnectorClient",
    "ConnectorEvent",
    "InboundWebhook",
    "NextAction",
    "PaymentResult",
    "PaymentStatus",
    "ProcessorCredentials",
    "RefundRequest",
    "RefundResult",
    "RefundStatus",
    "SyncRequest",
    "VoidRequest",
]


class PaymentStatus(enum.StrEnum):
    """What the processor says about an authorization (and its later capture / void)."""

    AUTHORIZED = "authorized"  # funds held, capture pending
    CAPTURED = "captured"  # money moved
    VOIDED = "voided"  # authorization released
    FAILED = "failed"  # explicit decline or failure: no money moved
    REQUIRES_ACTION = "requires_action"  # customer must authenticate (3-D Secure); see next_action
    PENDING = "pending"  # processor accepted but has not decided; also the default for anything unmapped


class RefundStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PENDING = "pending"


@dataclass(frozen=True, slots=True)
class CardData:
    """Card details handed to a connector for exactly one authorization.

    Only the vault constructs this (detokenize). ``cvc`` is ``None`` for saved cards. ``__repr__`` is redacted so
    a stray log of a request object can never print the PAN or CVC.
    """

    number: str
    exp_month: int
    exp_year: int
    cvc: str | None = None
    holder_name: str | None = None

    def __repr__(self) -> str:
        return f"CardData(number='{self.number[:6]}…{self.number[-4:]}', exp={self.exp_month:02d}/{self.exp_year})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class ProcessorCredentials:
    """Per processor-account settings. ``api_key`` and ``webhook_secret`` are secrets: never log them."""

    account_id: str
    base_url: str
    api_key: Secret | None = None
    webhook_secret: Secret | None = None
    merchant_account: str | None = None  # e.g. Adyen merchantAccount


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    idempotency_key: str  # deterministic: derived from paygate's attempt id
    attempt_id: str
    amount: int  # minor units
    currency: str  # ISO 4217, lower case
    capture: bool  # True: authorize and capture in one step (capture_method=automatic)
    credentials: ProcessorCredentials
    card: CardData | None = None  # raw card (from the vault) ...
    payment_method_token: str | None = None  # ... or a processor/sandbox test token such as pm_card_visa
    return_url: str | None = None  # where 3-D Secure sends the customer back
    description: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CaptureRequest:
    idempotency_key: str
    processor_reference: str
    amount: int
    currency: str
    credentials: ProcessorCredentials


@dataclass(frozen=True, slots=True)
class VoidRequest:
    idempotency_key: str
    processor_reference: str
    credentials: ProcessorCredentials
    amount: int = 0
    currency: str = ""


@dataclass(frozen=True, slots=True)
class RefundRequest:
    idempotency_key: str  # derived from paygate's refund id
    refund_id: str
    processor_reference: str  # the payment's reference at the processor
    amount: int
    currency: str
    credentials: ProcessorCredentials
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """Ask the processor what happened. ``processor_reference`` may be unknown (the response was lost), in which
    case the connector looks the payment up by ``idempotency_key``."""

    idempotency_key: str
    credentials: ProcessorCredentials
    processor_reference: str | None = None
    amount: int = 0
    currency: str = ""


@dataclass(frozen=True, slots=True)
class NextAction:
    """Customer action required before the processor decides, e.g. a 3-D Secure challenge page."""

    redirect_url: str


@dataclass(frozen=True, slots=True)
class PaymentResult:
    status: PaymentStatus
    processor_reference: str | None = None
    amount_authorized: int | None = None
    amount_captured: int | None = None
    decline_code: str | None = None  # paygate / Stripe decline code, e.g. "insufficient_funds"
    error_code: str | None = None  # Stripe error code, e.g. "card_declined", "expired_card", "incorrect_cvc"
    message: str | None = None  # safe to show to the merchant; never contains card data
    retryable_elsewhere: bool = False  # a decline another processor may accept (failover allowed)
    next_action: NextAction | None = None
    network_transaction_id: str | None = None
    raw_status: str | None = None  # the vendor's own status string, for debugging


@dataclass(frozen=True, slots=True)
class RefundResult:
    status: RefundStatus
    processor_reference: str | None = None
    failure_reason: str | None = None
    raw_status: str | None = None


@dataclass(frozen=True, slots=True)
class InboundWebhook:
    """A processor webhook exactly as it arrived: raw bytes and headers (lower-cased names)."""

    body: bytes
    headers: Mapping[str, str]
    received_at: int  # unix seconds


@dataclass(frozen=True, slots=True)
class ConnectorEvent:
    """A processor webhook translated into paygate's terms."""

    event_id: str  # the processor's own event id: the dedup key
    kind: str  # "payment" | "refund" | "dispute"
    processor_reference: str | None
    idempotency_key: str | None  # our attempt/refund id when the processor echoes it
    payment_status: PaymentStatus | None = None
    refund_status: RefundStatus | None = None
    amount: int | None = None
    currency: str | None = None
    occurred_at: int | None = None
    raw_type: str | None = None


@runtime_checkable
class ConnectorClient(Protocol):
    """The one HTTP seam every connector talks through (implemented in :mod:`paygate.connectors.client`).

    ``request`` sends one HTTP request and returns ``(status_code, headers, body_bytes)``. It owns timeouts,
    retries (only when ``idempotent`` is true, with backoff and jitter), redaction of card data in logs, and raises
    ``ProcessorUnavailable`` when the request provably never reached the processor, ``OutcomeUnknown`` when it may
    have. It never raises for an HTTP status: the connector interprets status codes.
    """

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        idempotent: bool,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-call read timeout, not a cancel scope
    ) -> tuple[int, Mapping[str, str], bytes]: ...


class Connector(Protocol):
    """A processor integration. See the module docstring for the outcome rules every method follows."""

    name: ClassVar[str]

    async def authorize(self, req: AuthorizeRequest, http: ConnectorClient) -> PaymentResult: ...
    async def capture(self, req: CaptureRequest, http: ConnectorClient) -> PaymentResult: ...
    async def void(self, req: VoidRequest, http: ConnectorClient) -> PaymentResult: ...
    async def refund(self, req: RefundRequest, http: ConnectorClient) -> RefundResult: ...
    async def sync(self, req: SyncRequest, http: ConnectorClient) -> PaymentResult: ...
    def verify_webhook(self, hook: InboundWebhook, secret: Secret) -> bool: ...
    def parse_webhook(self, hook: InboundWebhook) -> ConnectorEvent: ...
