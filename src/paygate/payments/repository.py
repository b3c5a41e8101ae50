"""PaymentIntent and attempt rows (SQLAlchemy Core). Every read is scoped to the caller's merchant and mode:
another merchant's id is indistinguishable from a missing one (404, never 403).

The statements are built once, at import, with bound parameters, and run through
:class:`paygate.db.prepared.Prepared` with a parameter dict: building a statement per call
(``insert(t).values(**row)``) made SQLAlchemy construct a bind parameter and a cache key for every value each
time, and executing it through SQLAlchemy cost several times the driver's own work (docs/performance.md). An
``UPDATE`` takes its ``SET`` columns from the keys of the parameter dict.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, bindparam, cast, insert, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement

from paygate.db.prepared import Prepared, fetch_two, guarded_update
from paygate.db.tables import payment_attempts as pa
from paygate.db.tables import payment_intents as pi
from paygate.kit import jsonx
from paygate.kit.errors import ResourceMissing
from paygate.merchants.context import AuthContext

__all__ = [
    "UNGUARDED",
    "Versions",
    "get_attempt",
    "get_intent",
    "get_intent_and_attempt",
    "get_intent_and_latest_attempt",
    "insert_attempt",
    "insert_intent",
    "intent_for_change",
    "intent_for_update",
    "new_intent_row",
    "update_attempt",
    "update_intent",
]


def new_intent_row(
    ctx: AuthContext, intent_id: str, *, amount: int, currency: str, status: str, now: int, **fields: Any
) -> dict[str, Any]:
    """A complete ``payment_intents`` row for a new intent: every column, Stripe's defaults for those not given
    (``fields`` overrides them; ``metadata`` / ``payment_method_types`` are given as Python values). The one
    place a new intent's shape is written, so every creator inserts the same column set."""
    row: dict[str, Any] = {
        "id": intent_id,
        "merchant_id": ctx.merchant_id,
        "livemode": ctx.livemode,
        "amount": amount,
        "currency": currency,
        "capture_method": "automatic",
        "confirmation_method": "automatic",
        "status": status,
        "amount_capturable": 0,
        "amount_received": 0,
        "amount_refunded": 0,
        "amount_refund_pending": 0,
        "payment_method": None,
        "description": None,
        "last_payment_error": None,
        "next_action": None,
        "cancellation_reason": None,
        "canceled_at": None,
        "customer": None,
        "receipt_email": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "setup_future_usage": None,
        "return_url": None,
        "latest_charge": None,
        "client_secret": f"{intent_id}_secret_{secrets.token_urlsafe(18)}",
        "pending_op": None,
        "processor": None,
        "processor_reference": None,
        "created": now,
        "updated": now,
    }
    row.update(fields)
    row["metadata"] = jsonx.dumps(fields.get("metadata") or {})
    row["payment_method_types"] = jsonx.dumps(fields.get("payment_method_types") or ["card"])
    return row


_INSERT_INTENT = Prepared(insert(pi))
_INSERT_ATTEMPT = Prepared(insert(pa))
_UPDATE_INTENT = Prepared(update(pi).where(pi.c.id == bindparam("_id")))
_UPDATE_ATTEMPT = Prepared(update(pa).where(pa.c.id == bindparam("_id")))


_UPDATE_INTENT_GUARDED = guarded_update(pi)
_UPDATE_ATTEMPT_GUARDED = guarded_update(pa)
# An intent by id, within the caller's merchant and mode (bound as _id, _merchant, _livemode: _scope()).
_IN_SCOPE = (
    pi.c.id == bindparam("_id"),
    pi.c.merchant_id == bindparam("_merchant"),
    pi.c.livemode == bindparam("_livemode"),
)
_INTENT_VERSION = cast(literal_column("payment_intents.xmin"), Text).label("intent_version")
_intent_by_id = select(pi).where(*_IN_SCOPE)
_GET_INTENT = Prepared(_intent_by_id)
_GET_INTENT_LOCKED = Prepared(_intent_by_id.with_for_update())
_attempt_by_id = select(pa).where(pa.c.id == bindparam("_id"))
_GET_ATTEMPT = Prepared(_attempt_by_id)
_GET_ATTEMPT_LOCKED = Prepared(_attempt_by_id.with_for_update())
# Both rows in one statement (PostgreSQL). FOR UPDATE without OF locks the rows in FROM order, intent first, as
# everywhere else (get_intent, then get_attempt), so it adds no lock-order inversion.
_INTENT_LABELS = tuple((f"i_{c.name}", c.name) for c in pi.c)  # (label in the joined row, column)
_ATTEMPT_LABELS = tuple((f"a_{c.name}", c.name) for c in pa.c)
_BOTH_COLUMNS = (
    *(pi.c[name].label(label) for label, name in _INTENT_LABELS),
    *(pa.c[name].label(label) for label, name in _ATTEMPT_LABELS),
)
_GET_BOTH_LOCKED = Prepared(
    select(*_BOTH_COLUMNS)
    .select_from(pi)
    .join(pa, pa.c.id == bindparam("_attempt"))
    .where(*_IN_SCOPE)
    .with_for_update()
)

# The intent with its latest attempt (PostgreSQL), for operations on the current charge (capture, cancel).
_GET_WITH_LATEST_LOCKED = Prepared(
    select(*_BOTH_COLUMNS).select_from(pi).join(pa, pa.c.id == pi.c.latest_charge).where(*_IN_SCOPE).with_for_update()
)

# The same pair read unlocked with both rows' versions (PostgreSQL, an optimistic transaction's read): an outer
# join, so an intent without an attempt is still one statement.
_GET_WITH_LATEST_VERSIONS = Prepared(
    select(
        *_BOTH_COLUMNS, _INTENT_VERSION, cast(literal_column("payment_attempts.xmin"), Text).label("attempt_version")
    )
    .select_from(pi.outerjoin(pa, pa.c.id == pi.c.latest_charge))
    .where(*_IN_SCOPE)
)
_GET_INTENT_VERSION = Prepared(select(pi, _INTENT_VERSION).where(*_IN_SCOPE))


def _scope(ctx: AuthContext, intent_id: str) -> dict[str, Any]:
    """The parameters of ``_IN_SCOPE``."""
    return {"_id": intent_id, "_merchant": ctx.merchant_id, "_livemode": ctx.livemode}


@dataclass(frozen=True, slots=True)
class Versions:
    """The row versions (``xmin::text``) an optimistic transaction read an intent and its latest attempt at; its
    writes to them are guarded by these (``None``: read locked, writes unguarded)."""

    intent: str | None = None
    attempt: str | None = None


UNGUARDED = Versions()


def _split(both: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A joined row of an intent and an attempt, as the two rows."""
    return (
        {name: both[label] for label, name in _INTENT_LABELS},
        {name: both[label] for label, name in _ATTEMPT_LABELS},
    )


def _for_update(conn: AsyncConnection, lock: bool) -> bool:
    """Row locks exist on PostgreSQL only; a SQLite write transaction already holds the database write lock."""
    return lock and conn.dialect.name == "postgresql"


def _has_expressions(values: dict[str, Any]) -> bool:
    return any(isinstance(v, ClauseElement) for v in values.values())


async def insert_intent(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await _INSERT_INTENT.execute(conn, row)


async def get_intent(
    conn: AsyncConnection, ctx: AuthContext, intent_id: str, *, lock: bool = False, param: str = "intent"
) -> dict[str, Any]:
    """The intent, or ``ResourceMissing``. ``lock=True`` takes a row lock (PostgreSQL) inside a write txn."""
    stmt = _GET_INTENT_LOCKED if _for_update(conn, lock) else _GET_INTENT
    row = await stmt.fetch_one(conn, _scope(ctx, intent_id))
    if row is None:
        raise ResourceMissing("payment_intent", intent_id, param=param)
    return row


async def get_intent_and_attempt(
    conn: AsyncConnection, ctx: AuthContext, intent_id: str, attempt_id: str, *, lock: bool = False
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """:func:`get_intent` then :func:`get_attempt` (same order, same locks). Locked on PostgreSQL, both rows
    come in one statement (one round trip); when one is missing, the two reads tell which."""
    pg = _for_update(conn, lock)
    intent_params = _scope(ctx, intent_id)
    if pg:
        both = await _GET_BOTH_LOCKED.fetch_one(conn, {**intent_params, "_attempt": attempt_id})
        if both is not None:
            return _split(both)
    intent, attempt = await fetch_two(
        conn,
        (_GET_INTENT_LOCKED if pg else _GET_INTENT, intent_params),
        (_GET_ATTEMPT_LOCKED if pg else _GET_ATTEMPT, {"_id": attempt_id}),
    )
    if intent is None:
        raise ResourceMissing("payment_intent", intent_id, param="intent")
    return intent, attempt


async def get_intent_and_latest_attempt(
    conn: AsyncConnection, ctx: AuthContext, intent_id: str, *, lock: bool = False, param: str = "intent"
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The intent (or ``ResourceMissing`` naming ``param``) and its latest attempt (``latest_charge``; ``None``
    without one), with the locks of :func:`get_intent` then :func:`get_attempt`. Locked on PostgreSQL, one
    statement when the intent has an attempt."""
    if _for_update(conn, lock):
        params = _scope(ctx, intent_id)
        both = await _GET_WITH_LATEST_LOCKED.fetch_one(conn, params)
        if both is not None:
            return _split(both)
    intent = await get_intent(conn, ctx, intent_id, lock=lock, param=param)
    attempt = await get_attempt(conn, intent["latest_charge"], lock=lock) if intent["latest_charge"] else None
    return intent, attempt


async def intent_for_change(
    conn: AsyncConnection, ctx: AuthContext, intent_id: str, *, optimistic: bool, param: str = "intent"
) -> tuple[dict[str, Any], dict[str, Any] | None, Versions]:
    """The intent (or ``ResourceMissing`` naming ``param``) and its latest attempt, for a write transaction that
    changes them: ``optimistic`` (PostgreSQL), read unlocked by the transaction's first statement
    (:meth:`Prepared.fetch_unbound <paygate.db.prepared.Prepared.fetch_unbound>`) with their :class:`Versions`,
    which the caller's writes to them must be guarded by; otherwise read locked
    (:func:`get_intent_and_latest_attempt`), with :data:`UNGUARDED`."""
    if not optimistic:
        intent, attempt = await get_intent_and_latest_attempt(conn, ctx, intent_id, lock=True, param=param)
        return intent, attempt, UNGUARDED
    params = _scope(ctx, intent_id)
    both = await _GET_WITH_LATEST_VERSIONS.fetch_unbound(conn, params)
    if both is None:
        raise ResourceMissing("payment_intent", intent_id, param=param)
    intent, attempt = _split(both)
    if attempt["id"] is None:
        return intent, None, Versions(both["intent_version"], None)
    return intent, attempt, Versions(both["intent_version"], both["attempt_version"])


async def intent_for_update(
    conn: AsyncConnection, ctx: AuthContext, intent_id: str, *, optimistic: bool
) -> tuple[dict[str, Any], str | None]:
    """The intent alone, as :func:`intent_for_change` reads it with its latest attempt: ``optimistic``, unlocked
    with its version (guard the caller's writes to it by that); otherwise locked, with ``None``."""
    if not optimistic:
        return await get_intent(conn, ctx, intent_id, lock=True), None
    params = _scope(ctx, intent_id)
    row = await _GET_INTENT_VERSION.fetch_unbound(conn, params)
    if row is None:
        raise ResourceMissing("payment_intent", intent_id, param="intent")
    version = row.pop("intent_version")
    return row, version


async def update_intent(
    conn: AsyncConnection, intent: dict[str, Any], values: dict[str, Any], *, version: str | None = None
) -> dict[str, Any]:
    """Write ``values`` and return the intent with them applied. With ``version`` (PostgreSQL, plain values)
    the write is guarded: it applies only while the row is that version (:meth:`Prepared.queue_guarded`)."""
    if version is not None:
        _UPDATE_INTENT_GUARDED.queue_guarded(conn, {**values, "_id": intent["id"], "_version": version})
    elif _has_expressions(values):
        await conn.execute(update(pi).where(pi.c.id == intent["id"]).values(**values))
    else:
        await _UPDATE_INTENT.execute(conn, {**values, "_id": intent["id"]})
    return {**intent, **values}


async def insert_attempt(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await _INSERT_ATTEMPT.execute(conn, row)


async def get_attempt(
    conn: AsyncConnection, attempt_id: str, *, lock: bool = False, unbound: bool = False
) -> dict[str, Any] | None:
    """The attempt, or ``None``. ``unbound``: read as an optimistic transaction's reads are, outside it
    (:meth:`Prepared.fetch_unbound <paygate.db.prepared.Prepared.fetch_unbound>`; not with ``lock``)."""
    if unbound:
        return await _GET_ATTEMPT.fetch_unbound(conn, {"_id": attempt_id})
    stmt = _GET_ATTEMPT_LOCKED if _for_update(conn, lock) else _GET_ATTEMPT
    return await stmt.fetch_one(conn, {"_id": attempt_id})


async def update_attempt(
    conn: AsyncConnection, attempt: dict[str, Any], values: dict[str, Any], *, version: str | None = None
) -> dict[str, Any]:
    """As :func:`update_intent`, for an attempt."""
    if version is not None:
        _UPDATE_ATTEMPT_GUARDED.queue_guarded(conn, {**values, "_id": attempt["id"], "_version": version})
    elif _has_expressions(values):
        await conn.execute(update(pa).where(pa.c.id == attempt["id"]).values(**values))
    else:
        await _UPDATE_ATTEMPT.execute(conn, {**values, "_id": attempt["id"]})
    return {**attempt, **values}
