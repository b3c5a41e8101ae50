"""Which PaymentIntents may use a vaulted PaymentMethod (Stripe's rules), and the claim that makes single use
hold under concurrency.

Contract:

* A card attached to a customer is reusable, but only by PaymentIntents of that customer; an intent without a
  customer, or with another one, is refused (400 ``invalid_request_error``, ``param=payment_method``).
* A card attached to no customer is good for one PaymentIntent: the first intent confirmed with it consumes it
  (``consumed_by``). That intent may be confirmed with it again (after a decline, say); any other intent is refused,
  and so is attaching it to a customer afterwards — except by the consuming intent's own ``setup_future_usage``.
* A card detached from its customer (``detached_at``) may not be used or attached again.
* :func:`claim` runs inside the confirming transaction: an unattached card is consumed by one conditional UPDATE,
  so of two intents confirmed concurrently with it exactly one proceeds (on PostgreSQL the second UPDATE waits for
  the first's commit and then matches nothing; SQLite serialises writers). A rolled-back confirmation releases its
  claim with everything else it wrote.
* Sandbox test tokens (``pm_card_visa``…) are not vaulted and stay reusable; callers do not pass them here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.kit.errors import InvalidRequest, ResourceMissing
from paygate.merchants.context import AuthContext
from paygate.vault import repository as repo
from paygate.vault.tables import payment_methods as pm

__all__ = ["check_attachable", "check_use", "claim"]

_SPENT = (
    "The provided PaymentMethod was used with a PaymentIntent while attached to no Customer, or was detached from "
    "a Customer, so it may not be used again. To use a PaymentMethod more than once, attach it to a Customer "
    "before its first payment."
)


def check_use(row: dict[str, Any], *, customer: str | None, intent_id: str, param: str = "payment_method") -> None:
    """Raise :class:`InvalidRequest` unless the PaymentIntent ``intent_id`` of ``customer`` may use the vaulted
    payment method ``row`` (the rules in this module's docstring). A check only: :func:`claim` consumes."""
    pm_id = row["id"]
    if row["detached_at"] is not None:
        raise InvalidRequest(_SPENT, param=param)
    owner = row["customer"]
    if owner is not None:
        if customer is None:
            raise InvalidRequest(
                f"The payment_method {pm_id} belongs to the Customer {owner}. Include that Customer in the "
                "customer parameter of the PaymentIntent.",
                param=param,
            )
        if customer != owner:
            raise InvalidRequest(
                f"The payment_method {pm_id} belongs to the Customer {owner}, not to this PaymentIntent's "
                f"Customer {customer}.",
                param=param,
            )
        return
    if row["consumed_by"] not in (None, intent_id):
        raise InvalidRequest(_SPENT, param=param)


def check_attachable(row: dict[str, Any], *, param: str = "id") -> None:
    """Raise :class:`InvalidRequest` if a merchant may not attach ``row`` to a customer: it was detached before, or
    a PaymentIntent used it while it was attached to no customer."""
    if row["detached_at"] is not None or (row["customer"] is None and row["consumed_by"] is not None):
        raise InvalidRequest(
            "This PaymentMethod was used while attached to no Customer, or was detached from a Customer, and may "
            "not be attached again. Attach a new PaymentMethod to the Customer instead.",
            param=param,
            code="payment_method_unexpected_state",
        )


async def claim(conn: AsyncConnection, ctx: AuthContext, pm_id: str, *, customer: str | None, intent_id: str) -> None:
    """Let the PaymentIntent ``intent_id`` (of ``customer``) use the vaulted ``pm_id``, in the caller's write
    transaction: consume it if it is attached to no customer, else check it belongs to ``customer``. Raises
    :class:`ResourceMissing` for an unknown id and :class:`InvalidRequest` when the rules refuse."""
    claimed = await conn.execute(
        update(pm)
        .where(
            pm.c.id == pm_id,
            pm.c.merchant_id == ctx.merchant_id,
            pm.c.livemode == ctx.livemode,
            pm.c.customer.is_(None),
            pm.c.detached_at.is_(None),
            or_(pm.c.consumed_by.is_(None), pm.c.consumed_by == intent_id),
        )
        .values(consumed_by=intent_id)
        .returning(pm.c.id)
    )
    if claimed.first() is not None:
        return
    row = await repo.get_payment_method(conn, ctx.merchant_id, ctx.livemode, pm_id)
    if row is None:
        raise ResourceMissing("PaymentMethod", pm_id, param="payment_method")
    check_use(row, customer=customer, intent_id=intent_id)
