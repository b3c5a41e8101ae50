"""Posting journals and verifying the ledger.

Every money movement calls :func:`post` inside the transaction that changes the payment's state (rule 7). A
unique (kind, ref_id) constraint makes a journal for the same movement impossible to write twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.db.prepared import Prepared
from paygate.db.tables import ledger_journals, ledger_postings, payment_intents
from paygate.kit.clock import clock
from paygate.kit.ids import new_id
from paygate.ledger import accounts
from paygate.merchants.context import AuthContext

__all__ = ["VerifyReport", "post", "post_capture", "post_refund", "verify"]

# Compiled once, sent straight to the driver (paygate.db.prepared).
_INSERT_JOURNAL = Prepared(insert(ledger_journals))
_INSERT_POSTINGS = Prepared(insert(ledger_postings))


async def post(
    conn: AsyncConnection,
    ctx: AuthContext,
    *,
    kind: str,
    ref_id: str,
    currency: str,
    postings: Sequence[tuple[str, int]],
    payment_intent: str | None = None,
) -> str:
    """Write one balanced journal. Raises ``ValueError`` (a bug, never user input) if it does not sum to zero."""
    if sum(amount for _, amount in postings) != 0:
        raise ValueError(f"unbalanced journal {kind}/{ref_id}")
    jid = new_id("jr")
    await _INSERT_JOURNAL.execute(
        conn,
        {
            "id": jid,
            "merchant_id": ctx.merchant_id,
            "livemode": ctx.livemode,
            "kind": kind,
            "payment_intent": payment_intent,
            "ref_id": ref_id,
            "currency": currency,
            "created": clock.now(),
        },
    )
    await _INSERT_POSTINGS.execute_many(
        conn,
        [{"journal_id": jid, "account": acct, "amount": amount, "currency": currency} for acct, amount in postings],
    )
    return jid


async def post_capture(
    conn: AsyncConnection,
    ctx: AuthContext,
    *,
    intent_id: str,
    attempt_id: str,
    processor: str,
    amount: int,
    currency: str,
) -> str:
    """Captured money: the processor owes it to us, we owe it to the merchant."""
    return await post(
        conn,
        ctx,
        kind="capture",
        ref_id=attempt_id,
        currency=currency,
        payment_intent=intent_id,
        postings=[
            (accounts.processor_receivable(processor), amount),
            (accounts.merchant_balance(ctx.merchant_id), -amount),
        ],
    )


async def post_refund(
    conn: AsyncConnection,
    ctx: AuthContext,
    *,
    intent_id: str,
    refund_id: str,
    processor: str,
    amount: int,
    currency: str,
) -> str:
    """A refund reverses part of a capture."""
    return await post(
        conn,
        ctx,
        kind="refund",
        ref_id=refund_id,
        currency=currency,
        payment_intent=intent_id,
        postings=[
            (accounts.merchant_balance(ctx.merchant_id), amount),
            (accounts.processor_receivable(processor), -amount),
        ],
    )


@dataclass
class VerifyReport:
    journals: int = 0
    postings: int = 0
    intents_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify(conn: AsyncConnection, *, limit_problems: int = 100) -> VerifyReport:
    """Prove the ledger: (1) every journal has postings that sum to zero in its own currency; (2) for every
    PaymentIntent, the merchant balance postings referencing it equal ``amount_received - amount_refunded``."""
    report = VerifyReport()
    j, p = ledger_journals, ledger_postings
    report.journals = (await conn.execute(select(func.count()).select_from(j))).scalar_one()
    report.postings = (await conn.execute(select(func.count()).select_from(p))).scalar_one()

    unbalanced = await conn.execute(
        select(j.c.id, j.c.kind, j.c.ref_id, func.coalesce(func.sum(p.c.amount), 0), func.count(p.c.id))
        .select_from(j.outerjoin(p, p.c.journal_id == j.c.id))
        .group_by(j.c.id, j.c.kind, j.c.ref_id)
        .having((func.coalesce(func.sum(p.c.amount), 0) != 0) | (func.count(p.c.id) < 2))
    )
    for jid, kind, ref, total, n in unbalanced:
        report.problems.append(f"journal {jid} ({kind} {ref}) has {n} postings summing to {total}, not 0")

    wrong_currency = await conn.execute(
        select(p.c.journal_id, p.c.currency, j.c.currency)
        .join(j, p.c.journal_id == j.c.id)
        .where(p.c.currency != j.c.currency)
    )
    for jid, pcur, jcur in wrong_currency:
        report.problems.append(f"journal {jid} in {jcur} has a posting in {pcur}")

    # Per-intent agreement between operational state and the ledger.
    pi = payment_intents
    ledger_side = (
        select(j.c.payment_intent.label("pi"), func.sum(p.c.amount).label("net"))
        .join(p, p.c.journal_id == j.c.id)
        .where(p.c.account.like("merchant:%:balance"), j.c.payment_intent.is_not(None))
        .group_by(j.c.payment_intent)
        .subquery()
    )
    rows = await conn.execute(
        select(pi.c.id, pi.c.amount_received, pi.c.amount_refunded, func.coalesce(ledger_side.c.net, 0).label("net"))
        .select_from(pi.outerjoin(ledger_side, ledger_side.c.pi == pi.c.id))
        .where((pi.c.amount_received > 0) | (ledger_side.c.net.is_not(None)))
    )
    for intent_id, received, refunded, net in rows:
        report.intents_checked += 1
        # the merchant balance is a credit (negative) of what is still held for the merchant
        expected = cast(int, refunded) - cast(int, received)
        if net != expected:
            report.problems.append(
                f"payment_intent {intent_id}: ledger merchant balance {net} but received {received} - "
                f"refunded {refunded} requires {expected}"
            )
    del report.problems[limit_problems:]
    return report
