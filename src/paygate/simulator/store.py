"""The simulator's in-memory processor state, shared by every dialect.

Contracts:

* Money operations (:meth:`Store.authorize`, ``capture``, ``void``, ``refund``, ``complete_challenge``,
  ``open_dispute``) run under one :class:`asyncio.Lock`, so no two of them interleave; each either changes
  state, appends exactly one :class:`Operation` and emits the resulting events, or raises :class:`Refused`
  and changes nothing.
* Refunds never exceed the captured amount; a capture happens at most once and never exceeds the
  authorization; final states (captured-and-fully-refunded, voided, failed) never move backwards.
* :meth:`Store.idempotent` gives each ``(dialect, idempotency key)`` one stored answer: the first request
  computes it, concurrent duplicates wait for it, later duplicates get it back, and a different request body
  under the same key is reported as a conflict. Answers marked ``store=False`` (500 before acceptance) are not
  kept, so the key can be used again.
* With a retention limit (``retain``, the ``retain_payments`` setting) the store keeps only the newest payments,
  their refunds and disputes, about four operations and idempotent answers per payment, and forgets older ones
  in insertion order, so memory stays flat over runs of any length. The authorization tally (``tally_key``, the
  ``tally_metadata_key`` setting) counts authorize operations per value of that metadata key and is never evicted:
  it is what a benchmark asks to prove "exactly one authorization per payment".

Representation (what a retained payment costs; ``tests/bench/test_bench_units.py`` holds the bound):

* A finished idempotent answer is one :class:`_Answer`: the request's SHA-256 digest (32 bytes), status, a
  right-sized copy of the body (orjson 3.13's ``dumps`` returns a ~650 byte payment inside an 8 KiB allocation),
  the headers only when they differ from :data:`JSON_HEADERS`, and the card fault. Only an answer still being
  computed is a :class:`_Pending` with an :class:`asyncio.Future` for concurrent duplicates; a replay rebuilds an
  equal :class:`Stored` (same status, body bytes and headers).
* Operations are a deque trimmed to ``OPERATIONS_PER_PAYMENT * retain`` as they are appended.
* A :class:`Txn` holds no empty lists (``refunds`` / ``disputes`` are tuples), makes its Stripe-only charge and
  payment method ids on first use, and shares one string per currency and per public base URL (:func:`_shared`).
"""

from __future__ import annotations

import asyncio
import secrets
import string
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from paygate.connectors.testcards import CardBehaviour, Fault, Outcome

__all__ = [
    "JSON_HEADERS",
    "Dispute",
    "Operation",
    "Refund",
    "Refused",
    "Store",
    "StoreEvent",
    "Stored",
    "Txn",
    "new_id",
]


_ID_ALPHABET = string.ascii_letters + string.digits
_PSP_ALPHABET = string.ascii_uppercase + string.digits


def _random_chars(alphabet: str, length: int) -> str:
    """``length`` random characters from one read of the OS random source (a byte per character is ample
    entropy; one syscall instead of one per character keeps the simulator cheap under benchmark load)."""
    n = int.from_bytes(secrets.token_bytes(length), "big")
    base = len(alphabet)
    out = []
    for _ in range(length):
        n, r = divmod(n, base)
        out.append(alphabet[r])
    return "".join(out)


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + _random_chars(_ID_ALPHABET, length)


def new_psp_reference() -> str:
    """Adyen-style 16 character reference."""
    return _random_chars(_PSP_ALPHABET, 16)


_SHARED: dict[str, str] = {}
_SHARED_LIMIT = 256


def _shared(value: str) -> str:
    """One kept object per distinct low-cardinality string (a currency, a public base URL), so retained payments
    do not each hold a copy. Bounded: past ``_SHARED_LIMIT`` distinct values new ones are returned unshared."""
    kept = _SHARED.get(value)
    if kept is not None:
        return kept
    if len(_SHARED) < _SHARED_LIMIT:
        _SHARED[value] = value
    return value


class Refused(Exception):
    """An operation the state forbids; ``code`` is Stripe-vocabulary, ``http`` a suggested status."""

    def __init__(self, code: str, message: str, http: int = 400, txn: Txn | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http = http
        self.txn = txn


@dataclass(slots=True)
class Refund:
    id: str
    txn_id: str
    amount: int
    currency: str
    status: str  # succeeded | failed | pending
    idempotency_key: str | None
    reference: str | None
    reason: str | None
    metadata: dict[str, str]
    created: int
    failure_reason: str | None = None


@dataclass(slots=True)
class Dispute:
    id: str
    txn_id: str
    amount: int
    currency: str
    reason: str
    status: str
    created: int


@dataclass(slots=True)
class Txn:
    id: str
    dialect: str
    amount: int
    currency: str
    capture_method: str  # automatic | manual
    status: str  # requires_confirmation | requires_action | authorized | captured | voided | failed
    card: CardBehaviour | None
    idempotency_key: str | None
    reference: str | None
    metadata: dict[str, str]
    return_url: str | None
    description: str | None
    created: int
    public_base: str = ""
    amount_authorized: int = 0
    amount_captured: int = 0
    amount_refunded: int = 0
    error_code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    retryable: bool = False
    refunds: tuple[str, ...] = ()  # ids, oldest first (tuples: the common empty one costs nothing per payment)
    disputes: tuple[str, ...] = ()
    network_transaction_id: str | None = None
    last_event_key: str | None = None  # idempotency key of the request that last changed it
    _charge_id: str | None = field(default=None, init=False, repr=False)
    _payment_method_id: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.currency = _shared(self.currency)
        self.public_base = _shared(self.public_base)

    @property
    def charge_id(self) -> str:
        """The Stripe dialect's charge id: random, made on first use, then fixed."""
        if self._charge_id is None:
            self._charge_id = new_id("ch_")
        return self._charge_id

    @property
    def payment_method_id(self) -> str:
        """The Stripe dialect's payment method id: random, made on first use, then fixed."""
        if self._payment_method_id is None:
            self._payment_method_id = new_id("pm_")
        return self._payment_method_id

    @property
    def challenge_url(self) -> str:
        return f"{self.public_base}/_sim/3ds/{self.id}"


@dataclass(frozen=True, slots=True)
class Operation:
    seq: int
    type: str  # authorize | capture | void | refund | challenge | dispute
    dialect: str
    txn_id: str
    refund_id: str | None
    idempotency_key: str | None
    amount: int
    currency: str
    outcome: str
    timestamp: float

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "type": self.type,
            "dialect": self.dialect,
            "txn_id": self.txn_id,
            "refund_id": self.refund_id,
            "idempotency_key": self.idempotency_key,
            "amount": self.amount,
            "currency": self.currency,
            "outcome": self.outcome,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True, slots=True)
class StoreEvent:
    """A state change the webhook sender turns into dialect-specific notifications."""

    kind: str  # authorized | captured | failed | voided | refunded | refund_failed | requires_action | dispute
    txn: Txn
    refund: Refund | None = None
    dispute: Dispute | None = None
    amount: int | None = None  # the amount this event moved (capture / refund)
    modification_ref: str | None = None  # the dialect's reference for a capture / cancel (Adyen pspReference)


JSON_HEADERS: Final[Mapping[str, str]] = MappingProxyType({"content-type": "application/json"})


@dataclass(slots=True)
class Stored:
    """One HTTP answer, as computed and as replayed. ``store=False`` (500 before acceptance) keeps it out of the
    idempotency store; ``fault`` replays the card's transport fault every time."""

    status: int
    body: bytes
    headers: dict[str, str]
    store: bool = True
    fault: Fault | None = None


@dataclass(slots=True)
class _Pending:
    """An idempotent answer still being computed: concurrent duplicates wait on ``future``."""

    fingerprint: bytes
    future: asyncio.Future[Stored]


@dataclass(slots=True)
class _Answer:
    """A finished idempotent answer as retained (see the module docstring): no future, one object."""

    fingerprint: bytes
    status: int
    body: bytes
    headers: dict[str, str] | None  # None: exactly JSON_HEADERS
    fault: Fault | None

    @classmethod
    def keep(cls, fingerprint: bytes, answer: Stored) -> _Answer:
        headers = None if answer.headers == JSON_HEADERS else answer.headers
        # a copy sized to the body: the serializer's bytes may sit in a much larger allocation
        return cls(fingerprint, answer.status, bytes(memoryview(answer.body)), headers, answer.fault)

    def replay(self) -> Stored:
        headers = dict(JSON_HEADERS) if self.headers is None else self.headers
        return Stored(self.status, self.body, headers, True, self.fault)


EventSink = Callable[[StoreEvent], None]
OPERATIONS_PER_PAYMENT = 4  # retention of operations and idempotent answers, relative to payments


class Store:
    """All processor state of one simulator instance (see the module docstring)."""

    def __init__(
        self,
        on_event: EventSink | None = None,
        *,
        retain: Callable[[], int | None] = lambda: None,
        tally_key: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.on_event: EventSink = on_event or (lambda _event: None)
        self.retain = retain
        self.tally_key = tally_key
        self.lock = asyncio.Lock()
        self.reset()

    def reset(self) -> None:
        self.txns: dict[str, Txn] = {}
        self.refunds: dict[str, Refund] = {}
        self.disputes: dict[str, Dispute] = {}
        self.operations: deque[Operation] = deque()
        self.by_key: dict[tuple[str, str], str] = {}  # (dialect, authorize idempotency key) → txn id
        self.tally: dict[str, int] = {}  # metadata value → authorize operations
        self._idem: dict[tuple[str, str], _Pending | _Answer] = {}
        self._seq = 0
        # insertion order for eviction (a dict popped at the front is slow to iterate: deques are not)
        self._txn_order: deque[str] = deque()
        self._key_order: deque[tuple[str, str]] = deque()
        self._idem_order: deque[tuple[str, str]] = deque()

    # ------------------------------------------------------------------ retention
    def _evict(self) -> None:
        limit = self.retain()
        if limit is None:
            return
        while len(self._txn_order) > limit:
            txn = self.txns.pop(self._txn_order.popleft(), None)
            if txn is not None:
                for refund_id in txn.refunds:
                    self.refunds.pop(refund_id, None)
                for dispute_id in txn.disputes:
                    self.disputes.pop(dispute_id, None)
        while len(self._key_order) > 2 * limit:
            self.by_key.pop(self._key_order.popleft(), None)
        ops_limit = OPERATIONS_PER_PAYMENT * limit
        while len(self.operations) > ops_limit:
            self.operations.popleft()
        while len(self._idem_order) > ops_limit:
            if isinstance(self._idem.get(self._idem_order[0]), _Pending):
                break  # still being answered: keep it (and everything newer)
            self._idem.pop(self._idem_order.popleft(), None)

    def _remember(self, txn: Txn, key: str | None) -> None:
        if txn.id not in self.txns:
            self._txn_order.append(txn.id)
        self.txns[txn.id] = txn
        if key:
            slot = (txn.dialect, key)
            if slot not in self.by_key:
                self._key_order.append(slot)
            self.by_key[slot] = txn.id
        self._evict()

    # ------------------------------------------------------------------ idempotency
    async def idempotent(
        self,
        dialect: str,
        key: str | None,
        fingerprint: bytes,
        compute: Callable[[], Awaitable[Stored]],
        conflict: Callable[[], Stored],
    ) -> Stored:
        """The answer for ``(dialect, key)`` (see the module docstring); ``fingerprint`` digests the request."""
        if not key:
            return await compute()
        slot = (dialect, key)
        entry = self._idem.get(slot)
        if entry is not None:
            if entry.fingerprint != fingerprint:
                return conflict()
            if isinstance(entry, _Answer):
                return entry.replay()
            return await asyncio.shield(entry.future)
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        pending = _Pending(fingerprint, future)
        self._idem[slot] = pending
        self._idem_order.append(slot)
        try:
            answer = await compute()
        except BaseException as exc:
            if self._idem.get(slot) is pending:  # (a reset meanwhile started a new table)
                del self._idem[slot]
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        if self._idem.get(slot) is pending:
            if answer.store:
                self._idem[slot] = _Answer.keep(fingerprint, answer)  # same key: keeps its place in the order
            else:
                del self._idem[slot]
        future.set_result(answer)
        return answer

    # ------------------------------------------------------------------ helpers
    def _record(
        self, kind: str, txn: Txn, key: str | None, amount: int, outcome: str, refund: str | None = None
    ) -> None:
        self._seq += 1
        self.operations.append(
            Operation(
                seq=self._seq,
                type=kind,
                dialect=txn.dialect,
                txn_id=txn.id,
                refund_id=refund,
                idempotency_key=key,
                amount=amount,
                currency=txn.currency,
                outcome=outcome,
                timestamp=time.time(),
            )
        )

    def get(self, txn_id: str) -> Txn:
        txn = self.txns.get(txn_id)
        if txn is None:
            raise Refused("resource_missing", f"No such payment: '{txn_id}'", 404)
        return txn

    def find_by_key(self, dialect: str, key: str) -> Txn | None:
        txn_id = self.by_key.get((dialect, key))
        return self.txns.get(txn_id) if txn_id else None

    def _authorize_now(self, txn: Txn) -> None:
        card = txn.card
        if card is None or card.outcome is Outcome.DECLINE:
            txn.status = "failed"
            if card is not None:
                txn.error_code, txn.decline_code = card.error_code, card.decline_code
                txn.message, txn.retryable = card.message, card.retryable_elsewhere
            self.on_event(StoreEvent("failed", txn))
            return
        txn.network_transaction_id = new_id("", 15).upper()
        txn.amount_authorized = txn.amount
        if txn.capture_method == "automatic":
            txn.status = "captured"
            txn.amount_captured = txn.amount
            self.on_event(StoreEvent("authorized", txn))
            self.on_event(StoreEvent("captured", txn, amount=txn.amount))
        else:
            txn.status = "authorized"
            self.on_event(StoreEvent("authorized", txn))

    # ------------------------------------------------------------------ operations
    async def create(self, txn: Txn) -> Txn:
        """Register a payment not yet confirmed (Stripe ``confirm=false``): no money operation yet."""
        async with self.lock:
            self._remember(txn, txn.idempotency_key)
            return txn

    async def authorize(self, txn: Txn, key: str | None) -> Txn:
        """Decide the payment from its card; records one ``authorize`` operation."""
        async with self.lock:
            if txn.status not in ("requires_confirmation", "requires_payment_method"):
                raise Refused("payment_intent_unexpected_state", "This payment cannot be confirmed.", 400, txn)
            self._remember(txn, key)
            txn.last_event_key = key
            if txn.card is not None and txn.card.outcome is Outcome.REQUIRES_ACTION:
                txn.status = "requires_action"
                self.on_event(StoreEvent("requires_action", txn))
            else:
                self._authorize_now(txn)
            self._record("authorize", txn, key, txn.amount, txn.status)
            self._count_authorization(txn)
            return txn

    async def complete_challenge(self, txn_id: str, approve: bool) -> Txn:
        async with self.lock:
            txn = self.get(txn_id)
            if txn.status != "requires_action":
                raise Refused("payment_intent_unexpected_state", "No authentication is pending.", 400, txn)
            if approve:
                self._authorize_now(txn)
            else:
                txn.status = "failed"
                txn.error_code, txn.decline_code = "card_declined", "authentication_required"
                txn.message = "The customer failed 3-D Secure authentication."
                self.on_event(StoreEvent("failed", txn))
            self._record("challenge", txn, None, txn.amount, txn.status)
            return txn

    async def capture(
        self, txn_id: str, amount: int | None, key: str | None, *, modification_ref: str | None = None
    ) -> Txn:
        async with self.lock:
            txn = self.get(txn_id)
            if txn.status != "authorized":
                raise Refused(
                    "payment_intent_unexpected_state",
                    f"This payment could not be captured because it has a status of {txn.status}.",
                    400,
                    txn,
                )
            amount = txn.amount_authorized if amount is None else amount
            if amount <= 0 or amount > txn.amount_authorized:
                raise Refused("amount_too_large", "The capture amount exceeds the authorized amount.", 400, txn)
            txn.status = "captured"
            txn.amount_captured = amount
            txn.last_event_key = key
            self.on_event(StoreEvent("captured", txn, amount=amount, modification_ref=modification_ref))
            self._record("capture", txn, key, amount, txn.status)
            return txn

    async def void(self, txn_id: str, key: str | None, *, modification_ref: str | None = None) -> Txn:
        async with self.lock:
            txn = self.get(txn_id)
            if txn.status not in ("authorized", "requires_action", "requires_confirmation"):
                raise Refused(
                    "payment_intent_unexpected_state",
                    f"This payment could not be canceled because it has a status of {txn.status}.",
                    400,
                    txn,
                )
            txn.status = "voided"
            txn.last_event_key = key
            self.on_event(StoreEvent("voided", txn, modification_ref=modification_ref))
            self._record("void", txn, key, txn.amount_authorized, txn.status)
            return txn

    async def refund(
        self,
        txn_id: str,
        amount: int | None,
        key: str | None,
        *,
        reference: str | None = None,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Refund:
        async with self.lock:
            txn = self.get(txn_id)
            if txn.status != "captured":
                raise Refused("charge_not_captured", "Only captured payments can be refunded.", 400, txn)
            remaining = txn.amount_captured - txn.amount_refunded
            amount = remaining if amount is None else amount
            if amount <= 0 or amount > remaining:
                if remaining == 0:
                    raise Refused("charge_already_refunded", "This payment has been fully refunded.", 400, txn)
                raise Refused(
                    "amount_too_large",
                    f"Refund amount ({amount}) is greater than unrefunded amount ({remaining}).",
                    400,
                    txn,
                )
            prefix = {"stripe": "re_", "native": "rf_"}.get(txn.dialect)
            refund_id = new_id(prefix) if prefix else new_psp_reference()
            refund = Refund(
                refund_id,
                txn.id,
                amount,
                txn.currency,
                "succeeded",
                key,
                reference,
                reason,
                dict(metadata or {}),
                int(time.time()),
            )
            self.refunds[refund_id] = refund
            txn.refunds = (*txn.refunds, refund_id)
            txn.amount_refunded += amount
            self.on_event(StoreEvent("refunded", txn, refund=refund, amount=amount))
            self._record("refund", txn, key, amount, refund.status, refund_id)
            return refund

    async def open_dispute(self, txn_id: str, amount: int | None, reason: str) -> Dispute:
        async with self.lock:
            txn = self.get(txn_id)
            if txn.status != "captured":
                raise Refused("charge_not_captured", "Only captured payments can be disputed.", 400, txn)
            dispute = Dispute(
                new_id("dp_"),
                txn.id,
                txn.amount_captured if amount is None else amount,
                txn.currency,
                reason,
                "needs_response",
                int(time.time()),
            )
            self.disputes[dispute.id] = dispute
            txn.disputes = (*txn.disputes, dispute.id)
            self.on_event(StoreEvent("dispute", txn, dispute=dispute, amount=dispute.amount))
            self._record("dispute", txn, None, dispute.amount, dispute.status)
            return dispute

    def _count_authorization(self, txn: Txn) -> None:
        name = self.tally_key()
        value = txn.metadata.get(name) if name else None
        if value is not None:
            self.tally[value] = self.tally.get(value, 0) + 1

    def tally_summary(self, prefix: str = "", expected: list[str] | None = None) -> dict[str, Any]:
        """Authorizations per tallied metadata value (those starting with ``prefix``): totals, values seen more
        than once, and with ``expected`` the expected values never authorized and the count of unexpected ones."""
        counts = self.tally if not prefix else {k: v for k, v in self.tally.items() if k.startswith(prefix)}
        out: dict[str, Any] = {
            "metadata_key": self.tally_key(),
            "authorizations": sum(counts.values()),
            "references": len(counts),
            "duplicates": {k: v for k, v in counts.items() if v > 1},
        }
        if expected is not None:
            wanted = set(expected)
            missing = [ref for ref in wanted if ref not in counts]
            out["missing_count"] = len(missing)
            out["missing"] = sorted(missing)[:100]
            out["unexpected_count"] = sum(1 for k in counts if k not in wanted)
        return out

    def operations_json(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        rows = [op.as_json() for op in self.operations]
        for name, wanted in filters.items():
            rows = [row for row in rows if name in row and str(row[name]) == wanted]
        return rows
