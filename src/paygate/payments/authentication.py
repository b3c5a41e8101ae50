"""The sandbox processor's 3-D Secure challenge (test mode only).

``pm_card_authenticationRequired`` and friends answer ``requires_action`` with ``next_action.redirect_to_url``
pointing here. The page lets a tester approve or fail the challenge; the outcome is applied to the payment
through the same monotonic path as any processor answer, and the customer is sent back to the ``return_url``
with Stripe's query parameters (``payment_intent``, ``payment_intent_client_secret``, ``redirect_status``).
Processor references are unguessable, so the page needs no API key, as with a real issuer's ACS page.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from paygate.db.tables import payment_attempts as pa
from paygate.http import gateway
from paygate.kit.errors import ResourceMissing
from paygate.kit.forms import decode_form
from paygate.kit.money import format_minor
from paygate.merchants.context import AuthContext
from paygate.payments import flows
from paygate.payments import repository as repo

router = APIRouter(prefix="/sandbox/3ds", tags=["Sandbox"], include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>3-D Secure test challenge</title>
<style>body{{font:16px system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.6rem 1.2rem;margin-right:.5rem}}</style></head>
<body><main><h1>3-D Secure test challenge</h1>
<p>paygate sandbox: authenticate a payment of <strong>{amount}</strong>.</p>
<form method="post"><button name="outcome" value="approve" type="submit">Complete authentication</button>
<button name="outcome" value="fail" type="submit">Fail authentication</button></form></main></body></html>"""


async def _attempt(request: Request, reference: str) -> dict[str, Any]:
    gw = gateway(request)
    async with gw.db.read() as conn:
        row = (
            (await conn.execute(select(pa).where(pa.c.processor_reference == reference, pa.c.processor == "sandbox")))
            .mappings()
            .first()
        )
    if row is None or row["livemode"]:
        raise ResourceMissing("authentication", reference)
    return dict(row)


@router.get("/{reference}")
async def challenge_page(request: Request, reference: str) -> Response:
    attempt = await _attempt(request, reference)
    amount = f"{format_minor(attempt['amount'], attempt['currency'])} {attempt['currency'].upper()}"
    headers = {
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    }
    return HTMLResponse(_PAGE.format(amount=html.escape(amount)), headers=headers)


@router.post("/{reference}")
async def challenge_submit(request: Request, reference: str) -> Response:
    gw = gateway(request)
    attempt = await _attempt(request, reference)
    approve = decode_form((await request.body()).decode(errors="replace")).get("outcome") == "approve"
    result = gw.sandbox.complete_action(reference, approve=approve)
    ctx = AuthContext(merchant_id=attempt["merchant_id"], livemode=False, key_kind="system")
    async with gw.db.write() as conn:
        intent = await repo.get_intent(conn, ctx, attempt["intent_id"], lock=True)
        current = await repo.get_attempt(conn, attempt["id"], lock=True)
        assert current is not None
        if current["status"] == "requires_action":
            current = await repo.update_attempt(conn, current, {"status": "pending"})
            await flows.apply_authorization(conn, ctx, intent, current, result)
            intent = await repo.get_intent(conn, ctx, intent["id"])
    succeeded = intent["status"] in ("succeeded", "requires_capture", "processing")
    if not intent["return_url"]:
        return HTMLResponse(
            f"<!doctype html><title>Done</title><p>Authentication {'complete' if succeeded else 'failed'}."
        )
    parts = urlsplit(intent["return_url"])
    query = urlencode(
        {
            "payment_intent": intent["id"],
            "payment_intent_client_secret": intent["client_secret"],
            "redirect_status": "succeeded" if succeeded else "failed",
        }
    )
    target = urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))
    return RedirectResponse(target, status_code=303)
