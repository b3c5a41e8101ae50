"""The payment flows the load generator drives, as a merchant's server would call paygate.

Every flow sends ``Idempotency-Key`` on each POST (as careful merchants do) and tags the PaymentIntent with
``metadata[bench_ref]`` so the processor's own record can be matched to the bench's, independently of the gateway's
database. A flow never retries: a transport error or an unexpected answer ends the payment and is reported as an
error of a named type.

Kinds (what :mod:`paygate.bench.verify` expects to find afterwards):

==================  ==========================================================  =====================
kind                calls                                                       final state
==================  ==========================================================  =====================
``card``            create with ``confirm=true`` (automatic capture)            ``succeeded``
``decline``         the same with a declining test card → 402 ``card_error``    ``requires_payment_method``
``two-step``        create, then ``/confirm``                                   ``succeeded``
``manual-capture``  create ``capture_method=manual`` + confirm, ``/capture``,    ``succeeded`` + one refund
                    then a partial refund (a quarter of the amount)
==================  ==========================================================  =====================

Scenario ``mixed`` picks per payment: 76 % card, 4 % decline (5 % of the card share), 15 % two-step, 5 %
manual-capture. Every kind makes exactly one authorization at the processor.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from paygate.bench.httpclient import Connection

__all__ = [
    "EXPECTED_STATUS",
    "KINDS",
    "Api",
    "Outcome",
    "parse_server_timing",
    "pick_kind",
    "run_payment",
]

KINDS = ("card", "decline", "two-step", "manual-capture")
EXPECTED_STATUS = {
    "card": "succeeded",
    "decline": "requires_payment_method",
    "two-step": "succeeded",
    "manual-capture": "succeeded",
}
APPROVE_CARD = "pm_card_visa"
DECLINE_CARD = "pm_card_chargeDeclined"
_MIXED = (("card", 76), ("decline", 4), ("two-step", 15), ("manual-capture", 5))
_MIXED_KINDS = [k for k, _ in _MIXED]
_MIXED_WEIGHTS = [w for _, w in _MIXED]


def pick_kind(scenario: str, rng: random.Random) -> str:
    if scenario == "mixed":
        return rng.choices(_MIXED_KINDS, _MIXED_WEIGHTS)[0]
    return scenario


def refund_amount(amount: int) -> int:
    """The partial refund of the manual-capture flow."""
    return amount // 4


@dataclass(slots=True)
class Outcome:
    """How one payment went. ``processor_s`` sums the gateway's ``Server-Timing: processor`` over the payment's
    calls (``None`` when the gateway sent no such header)."""

    kind: str
    intent_id: str | None
    error: str | None
    processor_s: float | None
    amount: int


class Failed(Exception):
    """Ends a flow: ``kind`` is the error type reported (``http 500 api_error``, ``timeout``, …)."""

    def __init__(self, kind: str, intent_id: str | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.intent_id = intent_id


def parse_server_timing(value: bytes | None) -> float | None:
    """Seconds of the ``processor`` metric in a ``Server-Timing`` header (``processor;dur=12.5`` is ms)."""
    if not value:
        return None
    for metric in value.split(b","):
        name, _, params = metric.partition(b";")
        if name.strip() != b"processor":
            continue
        for param in params.split(b";"):
            key, _, number = param.strip().partition(b"=")
            if key == b"dur":
                try:
                    return float(number) / 1000
                except ValueError:
                    return None
    return None


class Api:
    """The calls a flow makes, over one keep-alive :class:`Connection`, with the merchant's secret key."""

    def __init__(self, conn: Connection, secret_key: str, base_path: str = "") -> None:
        self.conn = conn
        self.base = base_path.rstrip("/").encode()
        self.headers = (
            b"Authorization: Bearer " + secret_key.encode() + b"\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        )
        self.processor_s: float | None = None

    async def post(self, path: str, body: str, idempotency_key: str, expect: int) -> dict[str, Any]:
        """POST and return the JSON body; anything but status ``expect`` raises :class:`Failed`."""
        try:
            resp = await self.conn.request(
                b"POST",
                self.base + path.encode(),
                self.headers + b"Idempotency-Key: " + idempotency_key.encode() + b"\r\n",
                body.encode(),
            )
        except TimeoutError as exc:
            raise Failed("timeout") from exc
        except OSError as exc:  # ConnectionError and connect failures
            raise Failed("connection error") from exc
        spent = parse_server_timing(resp.headers.get(b"server-timing"))
        if spent is not None:
            self.processor_s = (self.processor_s or 0.0) + spent
        try:
            data = orjson.loads(resp.body)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise Failed(f"http {resp.status} (not JSON)")
        if resp.status != expect:
            err = data.get("error") if isinstance(data.get("error"), dict) else {}
            assert isinstance(err, dict)
            pi = err.get("payment_intent")
            intent_id = pi.get("id") if isinstance(pi, dict) else None
            raise Failed(f"http {resp.status} {err.get('code') or err.get('type') or ''}".strip(), intent_id)
        return data


def _expect_status(obj: dict[str, Any], wanted: str, what: str) -> str:
    raw_id = obj.get("id")
    intent_id = raw_id if isinstance(raw_id, str) else None
    if obj.get("status") != wanted or intent_id is None:
        raise Failed(f"{what}: status {obj.get('status')} instead of {wanted}", intent_id)
    return intent_id


def _create_body(amount: int, ref: str, payment_method: str, *, confirm: bool, manual: bool = False) -> str:
    parts = [
        f"amount={amount}",
        "currency=usd",
        f"payment_method={payment_method}",
        f"metadata[bench_ref]={quote(ref)}",
        f"metadata[order_id]={quote(ref)}",
        "description=paygate+bench",
    ]
    if confirm:
        parts.append("confirm=true")
    if manual:
        parts.append("capture_method=manual")
    return "&".join(parts)


async def _card(api: Api, ref: str, amount: int) -> str:
    obj = await api.post("/v1/payment_intents", _create_body(amount, ref, APPROVE_CARD, confirm=True), ref, 200)
    return _expect_status(obj, "succeeded", "create+confirm")


async def _decline(api: Api, ref: str, amount: int) -> str:
    obj = await api.post("/v1/payment_intents", _create_body(amount, ref, DECLINE_CARD, confirm=True), ref, 402)
    err = obj.get("error") if isinstance(obj.get("error"), dict) else {}
    assert isinstance(err, dict)
    pi = err.get("payment_intent") if isinstance(err.get("payment_intent"), dict) else {}
    assert isinstance(pi, dict)
    if err.get("code") != "card_declined":
        raise Failed(f"decline: code {err.get('code')} instead of card_declined", pi.get("id"))
    return _expect_status(pi, "requires_payment_method", "decline")


async def _two_step(api: Api, ref: str, amount: int) -> str:
    obj = await api.post("/v1/payment_intents", _create_body(amount, ref, APPROVE_CARD, confirm=False), ref, 200)
    intent_id = _expect_status(obj, "requires_confirmation", "create")
    obj = await api.post(f"/v1/payment_intents/{intent_id}/confirm", "", ref + ".c", 200)
    return _expect_status(obj, "succeeded", "confirm")


async def _manual_capture(api: Api, ref: str, amount: int) -> str:
    body = _create_body(amount, ref, APPROVE_CARD, confirm=True, manual=True)
    obj = await api.post("/v1/payment_intents", body, ref, 200)
    intent_id = _expect_status(obj, "requires_capture", "authorize")
    obj = await api.post(f"/v1/payment_intents/{intent_id}/capture", "", ref + ".k", 200)
    _expect_status(obj, "succeeded", "capture")
    refund = await api.post(
        "/v1/refunds", f"payment_intent={intent_id}&amount={refund_amount(amount)}", ref + ".r", 200
    )
    if refund.get("status") != "succeeded":
        raise Failed(f"refund: status {refund.get('status')} instead of succeeded", intent_id)
    return intent_id


_FLOWS: dict[str, Callable[[Api, str, int], Awaitable[str]]] = {
    "card": _card,
    "decline": _decline,
    "two-step": _two_step,
    "manual-capture": _manual_capture,
}


async def run_payment(api: Api, kind: str, ref: str, amount: int) -> Outcome:
    """Run one payment of ``kind`` to its end; never raises for a failed payment (the outcome says why)."""
    api.processor_s = None
    try:
        intent_id = await _FLOWS[kind](api, ref, amount)
    except Failed as exc:
        return Outcome(kind, exc.intent_id, exc.kind, api.processor_s, amount)
    return Outcome(kind, intent_id, None, api.processor_s, amount)
