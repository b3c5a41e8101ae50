"""Customers and their saved payment methods.

Contracts:

* Customers are tenant-scoped like every object (another merchant's or mode's id is 404 ``resource_missing``).
  Delete is soft: the row stays for payment history, reads answer ``{"id", "object", "deleted": true}``, its
  payment methods are detached.
* A payment method belongs to at most one customer. Attaching it to another is 400
  ``payment_method_unexpected_state``; re-attaching to the same customer is a no-op. Detaching clears the
  customer's default if it was the default.
* ``invoice_settings[default_payment_method]`` must name a payment method attached to the customer.
* :meth:`save_after_payment` (``customer`` + ``setup_future_usage`` on a successful PaymentIntent) attaches the
  payment method in the caller's transaction; sandbox test tokens are not vaulted and are left alone.
* Every write records its idempotent reply in the transaction of its state change and emits the Stripe
  event (``customer.*``, ``payment_method.attached`` / ``detached``) through the outbox.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.customers import repository as repo
from paygate.customers.schemas import (
    CreateParams,
    CustomerListParams,
    PaymentMethodsParams,
    UpdateParams,
    customer_object,
    deleted_object,
)
from paygate.db.engine import Database
from paygate.db.pagination import list_page
from paygate.events import service as events
from paygate.idempotency.service import Guard, Reply
from paygate.kit import jsonx
from paygate.kit.clock import clock
from paygate.kit.errors import InvalidRequest, ResourceMissing
from paygate.kit.ids import new_id
from paygate.kit.params import merge_metadata
from paygate.merchants.context import AuthContext
from paygate.vault import usage
from paygate.vault.schemas import PaymentMethodListParams, billing_details_object, payment_method_object
from paygate.vault.service import VaultService
from paygate.vault.tables import customers

__all__ = ["CustomerService"]

_UNEXPECTED = "payment_method_unexpected_state"


async def _finish(conn: AsyncConnection, guard: Guard, obj: dict[str, Any]) -> Reply:
    reply = Reply(200, orjson.dumps(obj))
    await guard.finish(conn, reply.status, reply.body)
    return reply


def _address(value: Any) -> str | None:
    if value is None:
        return None
    return jsonx.dumps(billing_details_object(None)["address"] | value.model_dump(exclude_none=True))


class CustomerService:
    def __init__(self, db: Database, vault: VaultService) -> None:
        self.db = db
        self.vault = vault

    async def _get(
        self, conn: AsyncConnection, ctx: AuthContext, customer_id: str, *, lock: bool = False, param: str = "id"
    ) -> dict[str, Any]:
        row = await repo.get_customer(conn, ctx.merchant_id, ctx.livemode, customer_id, lock=lock)
        if row is None:
            raise ResourceMissing("customer", customer_id, param=param)
        return row

    async def _live(
        self, conn: AsyncConnection, ctx: AuthContext, customer_id: str, *, param: str = "id"
    ) -> dict[str, Any]:
        row = await self._get(conn, ctx, customer_id, lock=True, param=param)
        if row["deleted"]:
            raise ResourceMissing("customer", customer_id, param=param)
        return row

    async def referenced(self, ctx: AuthContext, customer_id: str, *, param: str = "customer") -> dict[str, Any]:
        """The row of a customer another object names in ``param`` (a PaymentIntent's, a Checkout Session's),
        read in a transaction of its own; 400 ``resource_missing`` when it is not a live customer of this
        merchant and mode."""
        async with self.db.read() as conn:
            row = await repo.get_customer(conn, ctx.merchant_id, ctx.livemode, customer_id)
        if row is None or row["deleted"]:
            raise _no_such_customer(customer_id, param)
        return row

    # ------------------------------------------------------------------ customers
    async def create(self, ctx: AuthContext, p: CreateParams, guard: Guard) -> Reply:
        now = clock.now()
        row: dict[str, Any] = {
            "id": new_id("cus"),
            "merchant_id": ctx.merchant_id,
            "livemode": ctx.livemode,
            "email": p.email,
            "name": p.name,
            "description": p.description,
            "phone": p.phone,
            "address": _address(p.address),
            "metadata": jsonx.dumps(p.metadata),
            "default_payment_method": None,
            "deleted": False,
            "created": now,
            "updated": now,
        }
        async with self.db.write() as conn:
            await repo.insert_customer(conn, row)
            if p.payment_method:
                await self._attach(conn, ctx, p.payment_method, row["id"], param="payment_method")
            default = p.invoice_settings.default_payment_method if p.invoice_settings else None
            if default:
                await self._check_default(conn, ctx, row["id"], default)
                row = await repo.update_customer(conn, row, {"default_payment_method": default})
            obj = customer_object(row)
            await events.emit(conn, ctx, "customer.created", obj)
            return await _finish(conn, guard, obj)

    async def retrieve(self, ctx: AuthContext, customer_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return customer_object(await self._get(conn, ctx, customer_id))

    async def update(self, ctx: AuthContext, customer_id: str, p: UpdateParams, guard: Guard) -> Reply:
        async with self.db.write() as conn:
            row = await self._live(conn, ctx, customer_id)
            values: dict[str, Any] = {"updated": clock.now()}
            for name in ("email", "name", "description", "phone"):
                value = getattr(p, name)
                if value is not None:
                    values[name] = value or None
            if p.address is not None:
                values["address"] = _address(p.address)
            if p.metadata is not None:
                values["metadata"] = merge_metadata(row["metadata"], p.metadata)
            if p.invoice_settings is not None and p.invoice_settings.default_payment_method is not None:
                default = p.invoice_settings.default_payment_method or None
                if default:
                    await self._check_default(conn, ctx, customer_id, default)
                values["default_payment_method"] = default
            previous = {k: customer_object(row).get(k) for k in values if k in ("email", "name", "description")}
            row = await repo.update_customer(conn, row, values)
            obj = customer_object(row)
            await events.emit(conn, ctx, "customer.updated", obj, previous or None)
            return await _finish(conn, guard, obj)

    async def delete(self, ctx: AuthContext, customer_id: str, guard: Guard) -> Reply:
        async with self.db.write() as conn:
            row = await self._live(conn, ctx, customer_id)
            now = clock.now()
            await repo.detach_all(conn, customer_id, now)
            obj = customer_object(row)
            await repo.update_customer(conn, row, {"deleted": True, "default_payment_method": None, "updated": now})
            await events.emit(conn, ctx, "customer.deleted", obj)
            return await _finish(conn, guard, deleted_object(customer_id))

    async def list(self, ctx: AuthContext, p: CustomerListParams) -> dict[str, Any]:
        t = customers
        scope = [t.c.merchant_id == ctx.merchant_id, t.c.livemode == ctx.livemode, t.c.deleted.is_(False)]
        if p.email is not None:
            scope.append(t.c.email == p.email)
        async with self.db.read() as conn:
            return await list_page(
                conn, t, scope=scope, params=p, url="/v1/customers", kind="customer", serialize=customer_object
            )

    async def _check_default(self, conn: AsyncConnection, ctx: AuthContext, customer_id: str, pm_id: str) -> None:
        pm = await self.vault.get_row(conn, ctx, pm_id, param="invoice_settings[default_payment_method]")
        if pm["customer"] != customer_id:
            raise InvalidRequest(
                f"The customer does not have a payment method with the ID {pm_id[:64]}. The payment method must "
                "be attached to the customer.",
                param="invoice_settings[default_payment_method]",
                code="resource_missing",
            )

    # ------------------------------------------------------------------ payment methods
    async def _attach(
        self, conn: AsyncConnection, ctx: AuthContext, pm_id: str, customer_id: str, *, param: str = "id"
    ) -> dict[str, Any]:
        pm = await self.vault.get_row(conn, ctx, pm_id, lock=True, param=param)
        if pm["customer"] == customer_id:
            return pm
        if pm["customer"] is not None:
            raise InvalidRequest(
                "The payment method you provided has already been attached to a customer.",
                param=param,
                code=_UNEXPECTED,
            )
        usage.check_attachable(pm, param=param)
        pm = await self.vault.set_customer(conn, pm, customer_id)
        await events.emit(conn, ctx, "payment_method.attached", payment_method_object(pm))
        return pm

    async def attach(self, ctx: AuthContext, pm_id: str, customer_id: str, guard: Guard) -> Reply:
        async with self.db.write() as conn:
            await self._live(conn, ctx, customer_id, param="customer")
            pm = await self._attach(conn, ctx, pm_id, customer_id)
            return await _finish(conn, guard, payment_method_object(pm))

    async def detach(self, ctx: AuthContext, pm_id: str, guard: Guard) -> Reply:
        async with self.db.write() as conn:
            pm = await self.vault.get_row(conn, ctx, pm_id, lock=True)
            if pm["customer"] is None:
                raise InvalidRequest(
                    "The payment method you provided is not attached to a customer so detachment is impossible.",
                    code=_UNEXPECTED,
                )
            owner = await repo.get_customer(conn, ctx.merchant_id, ctx.livemode, pm["customer"], lock=True)
            if owner is not None and owner["default_payment_method"] == pm_id:
                await repo.update_customer(conn, owner, {"default_payment_method": None, "updated": clock.now()})
            pm = await self.vault.set_customer(conn, pm, None)
            obj = payment_method_object(pm)
            await events.emit(conn, ctx, "payment_method.detached", obj)
            return await _finish(conn, guard, obj)

    async def payment_methods(self, ctx: AuthContext, customer_id: str, p: PaymentMethodsParams) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await self._get(conn, ctx, customer_id)
        if row["deleted"]:
            raise ResourceMissing("customer", customer_id)
        params = PaymentMethodListParams(
            limit=p.limit, starting_after=p.starting_after, ending_before=p.ending_before, customer=customer_id
        )
        return await self.vault.list(ctx, params, url=f"/v1/customers/{customer_id}/payment_methods")

    async def save_after_payment(
        self, conn: AsyncConnection, ctx: AuthContext, customer_id: str, pm_id: str, intent_id: str
    ) -> bool:
        """Attach a vaulted ``pm_id`` to ``customer_id`` after the PaymentIntent ``intent_id`` paid with it and
        ``setup_future_usage`` (the one way a card used while attached to no customer gets attached).

        Returns False (and changes nothing) for sandbox tokens, unknown / deleted customers, payment methods
        already attached elsewhere, detached, or used by another intent: the payment itself has succeeded and
        must not fail for this."""
        pm = await repo_pm(conn, self.vault, ctx, pm_id)
        owner = await repo.get_customer(conn, ctx.merchant_id, ctx.livemode, customer_id)
        if pm is None or owner is None or owner["deleted"] or pm["customer"] not in (None, customer_id):
            return False
        if pm["detached_at"] is not None or pm["consumed_by"] not in (None, intent_id):
            return False
        if pm["customer"] is None:
            pm = await self.vault.set_customer(conn, pm, customer_id)
            await events.emit(conn, ctx, "payment_method.attached", payment_method_object(pm))
        return True


def _no_such_customer(customer_id: str, param: str) -> InvalidRequest:
    """The 400 for a parameter naming a customer that does not exist (or was deleted) in this merchant's mode."""
    return InvalidRequest(f"No such customer: '{customer_id[:64]}'", param=param, code="resource_missing")


async def referenced_customer(
    customers: CustomerService | None, ctx: AuthContext, customer_id: str, *, param: str = "customer"
) -> dict[str, Any]:
    """:meth:`CustomerService.referenced` for services built without customers (where none exists)."""
    if customers is None:
        raise _no_such_customer(customer_id, param)
    return await customers.referenced(ctx, customer_id, param=param)


async def repo_pm(conn: AsyncConnection, vault: VaultService, ctx: AuthContext, pm_id: str) -> dict[str, Any] | None:
    if not pm_id.startswith("pm_") or not await vault.exists(conn, ctx, pm_id):
        return None
    return await vault.get_row(conn, ctx, pm_id, lock=True)
