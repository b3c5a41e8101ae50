"""The hosted page's half of the checkout service: ``load_page``, ``pay`` and ``finish_return``.

``pay`` contract:

* **At most one payment per session.** A submit first takes the session's claim with one conditional UPDATE
  (:func:`paygate.checkout.repository.claim_pay`); a concurrent submit that loses gets ``in_progress`` and never
  reaches the processor. The claim is a lease (:data:`CLAIM_LEASE_SECONDS`) so a dead process cannot block the
  session for ever; behind it, the PaymentIntent's own ``pending_op`` / status checks still refuse a second
  confirmation.
* **Grace.** A submit is accepted until ``expires_at + grace`` if the session is still open; past that, or once
  the session expired, it gets ``expired`` (and a due expiry is applied).
* The card goes through the existing path: the PaymentService confirms the session's intent with inline
  ``payment_method_data`` (the vault seals the PAN, the CVC waits in memory for this one authorization). The page
  has no API key, so paygate acts as the merchant's publishable key would (which may tokenize cards).
* Outcomes: card data rejected by the vault → ``invalid`` (with ``param``: ``number`` / ``exp_month`` /
  ``exp_year`` / ``cvc``); a decline → ``declined`` and the session stays open for another card; 3-D Secure →
  ``requires_action`` with the challenge URL; an unknown processor outcome → ``processing`` (the status sync and
  the expiry job complete the session later); success → the session completes in the same step
  (``checkout.session.completed``) and the customer goes to ``success_url``.
* Messages are customer-safe and never contain card data; the claim is always released when the submit ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import structlog

from paygate.checkout import repository as repo
from paygate.checkout.lifecycle import PAID, system_context
from paygate.checkout.schemas import CardInput, LineItemView, PageSession, PayOutcome
from paygate.idempotency.service import Guard
from paygate.kit import jsonx
from paygate.kit.clock import clock
from paygate.kit.errors import ApiError, CardDeclined, LockTimeout
from paygate.kit.ids import new_id
from paygate.merchants.context import AuthContext
from paygate.payments import repository as payments_repo
from paygate.payments.model import Status
from paygate.payments.schemas import ConfirmParams

if TYPE_CHECKING:
    from paygate.checkout.service import CheckoutService

__all__ = ["CLAIM_LEASE_SECONDS", "finish_return", "load_page", "pay"]

log = structlog.get_logger("paygate.checkout")

# Longer than the slowest confirmation (processor timeout x attempts, with failover); see the module docstring.
CLAIM_LEASE_SECONDS = 120
_GENERIC_DECLINE = "Your payment could not be completed. Please try again or use another card."
_NOT_COMPLETED = "Authentication was not completed. Please try again or use another card."


def success_url(session: dict[str, Any]) -> str:
    return str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session["id"])


def _challenge_url(intent: dict[str, Any]) -> str | None:
    action = jsonx.loads(intent["next_action"]) if intent["next_action"] else None
    if not isinstance(action, dict):
        return None
    url = (action.get("redirect_to_url") or {}).get("url")
    return str(url) if url else None


def _field(param: str | None) -> str | None:
    """``payment_method_data[card][exp_month]`` → ``exp_month``."""
    if not param:
        return None
    return param.rstrip("]").rsplit("[", 1)[-1]


async def _intent(svc: CheckoutService, session: dict[str, Any]) -> dict[str, Any]:
    async with svc.db.read() as conn:
        return await payments_repo.get_intent(conn, system_context(session), session["payment_intent"])


async def _state(svc: CheckoutService, session: dict[str, Any], *, own_claim: bool = False) -> PayOutcome:
    """The outcome that describes where a session stands when this submit cannot pay it (``own_claim``: the
    claim on ``session`` is this submit's own, not a concurrent one)."""
    if session["status"] == "complete":
        return PayOutcome("already_paid", redirect_url=success_url(session))
    if session["status"] == "expired":
        return PayOutcome("expired")
    claimed = session["pay_claim_until"] is not None and session["pay_claim_until"] >= clock.now()
    if claimed and not own_claim:
        return PayOutcome("in_progress")  # another submit is being processed right now
    intent = await _intent(svc, session)
    if intent["status"] == Status.REQUIRES_ACTION:
        return PayOutcome("requires_action", redirect_url=_challenge_url(intent))
    if intent["status"] == Status.PROCESSING or intent["pending_op"]:
        return PayOutcome("processing")
    if clock.now() > session["expires_at"] + svc.grace or intent["status"] == Status.CANCELED:
        return PayOutcome("expired")
    return PayOutcome("in_progress")


# ---------------------------------------------------------------------------------------------- load_page
async def load_page(svc: CheckoutService, session_id: str) -> PageSession | None:
    async with svc.db.read() as conn:
        row = await repo.get_session(conn, session_id)
    if row is None:
        return None
    row = await svc.lifecycle.settle_on_access(row)
    async with svc.db.read() as conn:
        lines = await repo.line_items(conn, session_id)
        merchant_name = await repo.merchant_name(conn, row["merchant_id"])
        settings = await repo.get_settings(conn, row["merchant_id"], bool(row["livemode"]))
    details = jsonx.loads(row["customer_details"]) if row["customer_details"] else {}
    return PageSession(
        id=row["id"],
        livemode=bool(row["livemode"]),
        status=row["status"],
        payment_status=row["payment_status"],
        merchant_name=merchant_name,
        currency=row["currency"],
        amount_total=row["amount_total"],
        line_items=[
            LineItemView(
                description=x["name"],
                quantity=x["quantity"],
                unit_amount=x["unit_amount"],
                amount_total=x["amount_total"],
            )
            for x in lines
        ],
        locale=row["locale"],
        customer_email=row["customer_email"] or details.get("email"),
        expires_at=row["expires_at"],
        success_url=success_url(row),
        cancel_url=row["cancel_url"],
        frame_ancestors=list(jsonx.loads(settings["allowed_frame_ancestors"])) if settings else [],
    )


# ---------------------------------------------------------------------------------------------- pay
async def pay(svc: CheckoutService, session_id: str, card: CardInput, *, return_url: str) -> PayOutcome:
    async with svc.db.read() as conn:
        session = await repo.get_session(conn, session_id)
    if session is None:
        return PayOutcome("not_found")
    if session["status"] != "open":
        return await _state(svc, session)
    stored = jsonx.loads(session["customer_details"]) if session["customer_details"] else {}
    details = {
        "email": stored.get("email"),
        "name": card.name or None,
        "address": {"country": card.country or None, "postal_code": card.postal_code or None},
    }
    token = new_id("claim")
    async with svc.db.write() as conn:
        claimed = await repo.claim_pay(
            conn,
            session_id,
            token=token,
            now=clock.now(),
            lease_seconds=CLAIM_LEASE_SECONDS,
            grace_seconds=svc.grace,
            customer_details=jsonx.dumps(details),
        )
    if not claimed:
        current = await svc.lifecycle.settle(session_id)  # expiry / completion on access
        return await _state(svc, current or session)
    try:
        return await _pay_claimed(svc, session, card, return_url)
    finally:
        async with svc.db.write() as conn:
            await repo.release_pay(conn, session_id, token)


async def _pay_claimed(svc: CheckoutService, session: dict[str, Any], card: CardInput, return_url: str) -> PayOutcome:
    intent = await _intent(svc, session)
    if intent["status"] in PAID:  # paid meanwhile (e.g. a status sync): complete instead of paying again
        row = await svc.lifecycle.settle(session["id"])
        return PayOutcome("already_paid", redirect_url=success_url(row or session))
    if intent["status"] not in (Status.REQUIRES_PAYMENT_METHOD, Status.REQUIRES_CONFIRMATION) or intent["pending_op"]:
        return await _state(svc, session, own_claim=True)
    ctx = AuthContext(merchant_id=session["merchant_id"], livemode=bool(session["livemode"]), key_kind="publishable")
    billing: dict[str, Any] = {}
    if card.name:
        billing["name"] = card.name
    if card.country or card.postal_code:
        billing["address"] = {k: v for k, v in (("country", card.country), ("postal_code", card.postal_code)) if v}
    data: dict[str, Any] = {
        "type": "card",
        "card": {"number": card.number, "exp_month": card.exp_month, "exp_year": card.exp_year, "cvc": card.cvc},
    }
    if billing:
        data["billing_details"] = billing
    params = ConfirmParams.model_validate({"payment_method_data": data, "return_url": return_url})
    try:
        reply = await svc.payments.confirm(ctx, intent["id"], params, Guard(None, None))
    except CardDeclined as exc:  # the vault rejected the card data before anything was stored or sent
        return PayOutcome("invalid", message=exc.message, param=_field(exc.param))
    except LockTimeout:
        return PayOutcome("in_progress")
    except ApiError as exc:
        log.warning("checkout.pay_refused", session=session["id"], code=exc.code, status=exc.status)
        async with svc.db.read() as conn:
            current = await repo.get_session(conn, session["id"])
        return await _state(svc, current or session, own_claim=True)
    body = orjson.loads(reply.body)
    if reply.status == 200:
        status = body.get("status")
        if status in PAID:
            row = await svc.lifecycle.settle(session["id"])
            return PayOutcome("succeeded", redirect_url=success_url(row or session))
        if status == Status.REQUIRES_ACTION:
            action = body.get("next_action") or {}
            return PayOutcome("requires_action", redirect_url=(action.get("redirect_to_url") or {}).get("url"))
        return PayOutcome("processing")
    error = body.get("error") or {}
    if reply.status == 402:
        return PayOutcome(
            "declined", message=error.get("message") or _GENERIC_DECLINE, decline_code=error.get("decline_code")
        )
    return PayOutcome("declined", message=_GENERIC_DECLINE)


# ---------------------------------------------------------------------------------------------- finish_return
async def finish_return(svc: CheckoutService, session_id: str) -> PayOutcome:
    """``succeeded`` (session completed now or before), ``declined`` (authentication failed: try again),
    ``requires_action`` (challenge not finished), ``processing`` (outcome not known yet), ``expired``, or
    ``not_found``."""
    async with svc.db.read() as conn:
        session = await repo.get_session(conn, session_id)
    if session is None:
        return PayOutcome("not_found")
    session = await svc.lifecycle.settle(session_id) or session
    if session["status"] == "complete":
        return PayOutcome("succeeded", redirect_url=success_url(session))
    if session["status"] == "expired":
        return PayOutcome("expired")
    intent = await _intent(svc, session)
    if intent["status"] == Status.REQUIRES_ACTION:
        return PayOutcome("requires_action", redirect_url=_challenge_url(intent))
    if intent["status"] == Status.PROCESSING or intent["pending_op"]:
        return PayOutcome("processing")
    if intent["status"] == Status.CANCELED:
        return PayOutcome("expired")
    error = jsonx.loads(intent["last_payment_error"]) if intent["last_payment_error"] else None
    if isinstance(error, dict):
        return PayOutcome(
            "declined", message=error.get("message") or _NOT_COMPLETED, decline_code=error.get("decline_code")
        )
    return PayOutcome("declined", message=_NOT_COMPLETED)
