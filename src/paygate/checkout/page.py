"""The hosted checkout page: ``/c/pay/{session_id}`` (server-rendered HTML, progressive enhancement).

Routes (none in the OpenAPI schema; every answer is an HTML page, never the JSON error envelope):

* ``GET  /c/pay/{id}``         the payment form; 404 unknown, 410 expired, "already paid" page once complete.
* ``POST /c/pay/{id}``         the form (``application/x-www-form-urlencoded``). Order of checks: rate limits
  (429 + ``Retry-After``), session state, CSRF (403, nothing charged), field validation (422), then
  ``CheckoutService.pay``. Success → 303 to ``success_url``; 3-D Secure → 303 to the challenge; a decline or an
  invalid card → 422 with the form again (only name, country and postal code are echoed back, never the card
  number, expiry or CVC).
* ``GET  /c/pay/{id}/return``  where the 3-D Secure challenge sends the customer back (``finish_return``).
* ``GET  /c/static/{digest}/{name}``  the page's CSS and JS (immutable; SRI-pinned by the page).

Card values are never logged, never put into a message, never rendered. Unexpected exceptions are logged by
type and code location only (an exception's text could quote its input) and answer a 500 page.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from babel import Locale
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from paygate.checkout.cardform import FIELDS, POSTAL_REQUIRED, UI_LOCALE, read_form, safe_values, validate_card
from paygate.checkout.format import (
    country_options,
    default_country,
    format_duration,
    format_money,
    negotiate_locale,
)
from paygate.checkout.ratelimit import SubmitLimiter
from paygate.checkout.schemas import PageSession, PayOutcome
from paygate.checkout.security import (
    ASSETS,
    browser_id_from,
    content_security_policy,
    csrf_cookie_header,
    csrf_key,
    csrf_token,
    csrf_valid,
    new_browser_id,
    origin_of,
    page_headers,
    static_headers,
)
from paygate.checkout.service import CheckoutService
from paygate.http import gateway
from paygate.kit.clock import clock

__all__ = ["PageRuntime", "page_runtime", "router"]

log = structlog.get_logger("paygate.checkout.page")

router = APIRouter(include_in_schema=False)

_SESSION_ID = re.compile(r"cs_(?:test|live)_[0-9A-Za-z]{16,64}")
_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(("html",)),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_PARAM_FIELD = {"number": "number", "exp_month": "exp", "exp_year": "exp", "cvc": "cvc", "name": "name"}
_PARAM_FIELD |= {"country": "country", "postal_code": "postal_code"}


@dataclass(frozen=True)
class PageRuntime:
    """Per-application state of the page: the rate limiter, the CSRF key and origin facts from the settings."""

    limiter: SubmitLimiter
    csrf_key: bytes
    secure_cookies: bool
    base_url: str
    challenge_origins: tuple[str, ...]  # where 3-D Secure challenges live (the sandbox, the simulator)


def page_runtime(app: Any) -> PageRuntime:
    """The app's :class:`PageRuntime`, built on first use (no await inside, so exactly one per app)."""
    runtime: PageRuntime | None = getattr(app.state, "checkout_page", None)
    if runtime is None:
        gw = app.state.gateway
        settings = gw.settings
        base_url = settings.base_url().rstrip("/")
        runtime = PageRuntime(
            limiter=SubmitLimiter(
                per_session=settings.checkout_submit_limit_per_session,
                per_ip=settings.checkout_submit_limit_per_ip,
                redis_url=settings.redis_url,
            ),
            csrf_key=csrf_key(gw.vault.secret.reveal()),
            secure_cookies=base_url.startswith("https://"),
            base_url=base_url,
            challenge_origins=tuple(o for o in (origin_of(base_url), origin_of(settings.simulator_url)) if o),
        )
        app.state.checkout_page = runtime
    return runtime


def _service(request: Request) -> CheckoutService:
    service: CheckoutService = gateway(request).checkout
    return service


# --- rendering -------------------------------------------------------------------------------------------------


def _form_action_origins(runtime: PageRuntime, session: PageSession) -> list[str | None]:
    return [origin_of(session.success_url), *runtime.challenge_origins]


def _respond(
    template: str,
    status: int,
    context: dict[str, Any],
    *,
    session: PageSession | None,
    form_action: list[str | None] | None = None,
    cookie: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    ancestors = session.frame_ancestors if session else []
    csp = content_security_policy(form_action=form_action or [], frame_ancestors=ancestors)
    body = _ENV.get_template(template).render(assets=ASSETS, **context)
    response = HTMLResponse(body, status_code=status, headers={**page_headers(csp, framed=bool(ancestors))})
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if cookie:
        response.headers.append("set-cookie", cookie)
    return response


def _redirect(url: str) -> Response:
    """303 with the page headers (no-referrer matters most here: the target must not learn the page URL)."""
    response = RedirectResponse(url, status_code=303)
    for name, value in page_headers(content_security_policy(), framed=False).items():
        response.headers[name] = value
    return response


def _locale(request: Request, session: PageSession | None) -> Locale:
    return negotiate_locale(session.locale if session else None, request.headers.get("accept-language"))


def _lang(locale: Locale) -> str:
    return str(locale).replace("_", "-")


def _merchant_bits(session: PageSession | None) -> dict[str, Any]:
    name = session.merchant_name if session else ""
    initial = next((ch.upper() for ch in name if ch.isalnum()), "•") if name else ""
    return {"merchant_name": name, "merchant_initial": initial, "livemode": session.livemode if session else None}


def _message(
    request: Request,
    status: int,
    *,
    title: str,
    paragraphs: list[str],
    tone: str = "error",
    session: PageSession | None = None,
    action: tuple[str, str] | None = None,
    secondary: tuple[str, str] | None = None,
    amount: bool = False,
    refresh: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    locale = _locale(request, session)
    context = {
        **_merchant_bits(session),
        "title": title,
        "paragraphs": paragraphs,
        "tone": tone,
        "amount": format_money(session.amount_total, session.currency, locale) if session and amount else "",
        "format_lang": _lang(locale),
        "action_url": action[0] if action else "",
        "action_label": action[1] if action else "",
        "secondary_url": secondary[0] if secondary else "",
        "secondary_label": secondary[1] if secondary else "",
        "refresh": refresh or "",
        "with_script": False,
    }
    return _respond("message.html", status, context, session=session, headers=headers)


def _not_found(request: Request) -> HTMLResponse:
    return _message(
        request,
        404,
        title="Checkout not found",
        paragraphs=[
            "This payment link is not valid. Check that you copied the whole address, or return to the merchant "
            "and start checkout again."
        ],
    )


def _expired(request: Request, session: PageSession | None) -> HTMLResponse:
    back = (session.cancel_url, f"Return to {session.merchant_name}") if session and session.cancel_url else None
    return _message(
        request,
        410,
        title="This checkout has expired",
        paragraphs=[
            "For your security, checkout links expire after a while. You have not been charged.",
            "Return to the merchant to start a new checkout.",
        ],
        session=session,
        action=back,
    )


def _already_paid(request: Request, session: PageSession, status: int = 200) -> HTMLResponse:
    return _message(
        request,
        status,
        title="Payment complete",
        paragraphs=[f"This checkout has already been paid. Thank you for your payment to {session.merchant_name}."],
        tone="success",
        session=session,
        amount=True,
        action=(session.success_url, f"Continue to {session.merchant_name}"),
    )


def _paid_and_leaving(request: Request, session: PageSession, success_url: str) -> HTMLResponse:
    """After 3-D Secure: a confirmation that moves on to ``success_url`` by itself (meta refresh, no script).

    Not a 303: this response ends a redirect chain that began with the challenge page's form POST, and a browser
    checks every redirect of that chain against the *challenge page's* ``form-action``, which need not list the
    merchant's origin. A refresh is a new navigation, outside that check.
    """
    return _message(
        request,
        200,
        title="Payment complete",
        paragraphs=[f"Thank you. Taking you back to {session.merchant_name}…"],
        tone="success",
        session=session,
        amount=True,
        refresh=f"0; url={success_url}",
        action=(success_url, f"Continue to {session.merchant_name}"),
    )


def _processing(request: Request, session: PageSession, *, poll_url: str, status: int = 202) -> HTMLResponse:
    return _message(
        request,
        status,
        title="Your payment is processing",
        paragraphs=[
            "We are waiting for your bank to confirm the payment. This page refreshes by itself; please do not pay "
            "again."
        ],
        tone="pending",
        session=session,
        amount=True,
        refresh=f"5; url={poll_url}",
        action=(poll_url, "Check status now"),
    )


def _failure(request: Request, exc: Exception, session_id: str, session: PageSession | None) -> HTMLResponse:
    frames = [f"{Path(f.filename).name}:{f.lineno}:{f.name}" for f in traceback.extract_tb(exc.__traceback__)[-6:]]
    log.error("checkout_page_error", error_type=type(exc).__name__, frames=frames, path=request.url.path)
    retry = (f"/c/pay/{session_id}", "Check your payment status")
    return _message(
        request,
        500,
        title="Something went wrong",
        paragraphs=[
            "We could not finish loading this step. If a payment was made it is not lost: check its status "
            "before paying again."
        ],
        session=session,
        action=retry,
    )


def _browser(request: Request, runtime: PageRuntime, session: PageSession) -> tuple[str, str | None]:
    """The browser id from the CSRF cookie, or a new one with the ``Set-Cookie`` value that installs it."""
    existing = browser_id_from(request.cookies, secure=runtime.secure_cookies)
    if existing:
        return existing, None
    fresh = new_browser_id()
    return fresh, csrf_cookie_header(fresh, secure=runtime.secure_cookies, embeddable=bool(session.frame_ancestors))


def _pay_page(
    request: Request,
    session: PageSession,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    alert: str = "",
    alert_title: str = "",
    alert_kind: str = "",
    clean_url: str = "",
) -> HTMLResponse:
    runtime = page_runtime(request.app)
    browser_id, cookie = _browser(request, runtime, session)
    locale = _locale(request, session)
    now = clock.now()
    given = values or {}
    country = given.get("country") or default_country(locale, request.headers.get("accept-language")) or ""
    context = {
        **_merchant_bits(session),
        "total": format_money(session.amount_total, session.currency, locale),
        "format_lang": _lang(locale),
        "line_items": [
            {
                "description": item.description,
                "quantity": item.quantity,
                "unit_amount": format_money(item.unit_amount, session.currency, locale),
                "amount_total": format_money(item.amount_total, session.currency, locale),
            }
            for item in session.line_items
        ],
        "cancel_url": session.cancel_url or "",
        "customer_email": session.customer_email or "",
        "action_url": f"/c/pay/{session.id}",
        "expires_at": session.expires_at,
        "server_now": now,
        "expires_in": format_duration(session.expires_at - now),
        "clean_url": clean_url,
        "csrf_token": csrf_token(runtime.csrf_key, session.id, browser_id),
        "errors": {name: (errors or {}).get(name, "") for name in FIELDS},
        "values": {"name": given.get("name", ""), "country": country, "postal_code": given.get("postal_code", "")},
        "countries": country_options(UI_LOCALE),
        "postal_required": country in POSTAL_REQUIRED,
        "postal_required_for": " ".join(POSTAL_REQUIRED),
        "alert": alert,
        "alert_title": alert_title,
        "alert_kind": alert_kind,
        "refresh": "",
        "with_script": True,
    }
    return _respond(
        "pay.html",
        status,
        context,
        session=session,
        form_action=_form_action_origins(runtime, session),
        cookie=cookie,
    )


# --- routes ----------------------------------------------------------------------------------------------------


@router.get("/c/pay/{session_id}")
async def show(request: Request, session_id: str) -> Response:
    if not _SESSION_ID.fullmatch(session_id):
        return _not_found(request)
    session: PageSession | None = None
    try:
        session = await _service(request).load_page(session_id)
        if session is None:
            return _not_found(request)
        if session.status == "expired":
            return _expired(request, session)
        if session.status == "complete" or session.payment_status == "paid":
            return _already_paid(request, session)
        return _pay_page(request, session)
    except Exception as exc:
        return _failure(request, exc, session_id, session)


@router.post("/c/pay/{session_id}")
async def submit(request: Request, session_id: str) -> Response:
    if not _SESSION_ID.fullmatch(session_id):
        return _not_found(request)
    try:
        return await _submit(request, session_id)
    except Exception as exc:
        return _failure(request, exc, session_id, None)


async def _submit(request: Request, session_id: str) -> Response:
    runtime = page_runtime(request.app)
    form = await read_form(request)
    client_ip = request.client.host if request.client else "unknown"
    retry_after = await runtime.limiter.hit(session_id, client_ip)
    service = _service(request)
    if retry_after is not None:
        session = await service.load_page(session_id)
        if session is None:
            return _not_found(request)
        return _message(
            request,
            429,
            title="Too many attempts",
            paragraphs=[
                "For your security, payment attempts on this page are limited.",
                f"Please wait {format_duration(retry_after) if retry_after >= 60 else f'{retry_after} seconds'} "
                "and try again.",
            ],
            session=session,
            action=(f"/c/pay/{session_id}", "Back to payment"),
            headers={"Retry-After": str(retry_after)},
        )
    session = await service.load_page(session_id)
    if session is None:
        return _not_found(request)
    if session.status == "expired":
        return _expired(request, session)
    if session.status == "complete" or session.payment_status == "paid":
        return _already_paid(request, session, status=409)
    if form is None:
        return _pay_page(
            request, session, status=400, alert_title="We could not read the form", alert="Please try again."
        )
    fetch_site = request.headers.get("sec-fetch-site")
    browser_id = browser_id_from(request.cookies, secure=runtime.secure_cookies)
    if fetch_site not in (None, "same-origin", "none") or not csrf_valid(
        runtime.csrf_key, session.id, browser_id, form.get("csrf_token")
    ):
        log.info("checkout_page_csrf_rejected", session=session.id, fetch_site=fetch_site)
        return _pay_page(
            request,
            session,
            status=403,
            values=safe_values(form),
            alert_kind="info",
            alert_title="Please enter your card details again",
            alert="For your security, this form was refreshed before it could be submitted. You have not been charged.",
        )
    card, errors = validate_card(form, clock.now())
    if card is None:
        return _pay_page(
            request,
            session,
            status=422,
            errors=errors,
            values=safe_values(form),
            alert_title="Please correct " + ("1 field" if len(errors) == 1 else f"{len(errors)} fields"),
        )
    outcome = await service.pay(session.id, card, return_url=f"{runtime.base_url}/c/pay/{session.id}/return")
    log.info("checkout_page_submit", session=session.id, outcome=outcome.kind, decline_code=outcome.decline_code)
    return _after_outcome(request, runtime, session, outcome, values=safe_values(form))


def _after_outcome(
    request: Request,
    runtime: PageRuntime,
    session: PageSession,
    outcome: PayOutcome,
    *,
    values: dict[str, str] | None = None,
    returning: bool = False,
) -> Response:
    kind = outcome.kind
    clean = f"/c/pay/{session.id}" if returning else ""
    if returning and kind in ("succeeded", "already_paid"):
        return _paid_and_leaving(request, session, outcome.redirect_url or session.success_url)
    if kind == "succeeded":
        return _redirect(outcome.redirect_url or session.success_url)
    if kind == "already_paid":
        return _already_paid(request, session, status=409)
    if kind == "requires_action" and outcome.redirect_url:
        target = outcome.redirect_url
        if origin_of(target) in {o for o in _form_action_origins(runtime, session) if o}:
            return _redirect(target)
        return _message(  # an origin the form's CSP does not list: leave through a plain navigation
            request,
            200,
            title="Verify your payment",
            paragraphs=["Your bank needs to confirm this payment. You are being taken to its verification page."],
            tone="pending",
            session=session,
            refresh=f"0; url={target}",
            action=(target, "Continue to verification"),
        )
    if kind == "declined":
        message = outcome.message or "Your card was declined."
        if returning and "authenticat" in message.lower():  # processor wording ("The customer failed …")
            message = "Your bank could not verify this payment."
        if "another card" not in message:
            message += " Please try another card, or contact your card issuer."
        return _pay_page(
            request,
            session,
            status=200 if returning else 422,
            values=values,
            alert_title="Your payment was not completed" if returning else "Payment declined",
            alert=message,
            clean_url=clean,
        )
    if kind == "invalid":
        field = _PARAM_FIELD.get(outcome.param or "", "")
        message = outcome.message or "Please check your card details."
        return _pay_page(
            request,
            session,
            status=422,
            values=values,
            errors={field: message} if field else {},
            alert_title="Please check your card details",
            alert="" if field else message,
            clean_url=clean,
        )
    if kind == "processing":
        return _processing(request, session, poll_url=f"/c/pay/{session.id}/return")
    if kind == "in_progress":
        return _message(
            request,
            409,
            title="Your payment is already being processed",
            paragraphs=["Another attempt to pay this checkout is in progress. Please wait a moment; do not pay again."],
            tone="pending",
            session=session,
            refresh=f"5; url=/c/pay/{session.id}",
            action=(f"/c/pay/{session.id}", "Check status"),
        )
    if kind == "expired":
        return _expired(request, session)
    return _not_found(request)


@router.get("/c/pay/{session_id}/return")
async def return_from_authentication(request: Request, session_id: str) -> Response:
    if not _SESSION_ID.fullmatch(session_id):
        return _not_found(request)
    session: PageSession | None = None
    try:
        service = _service(request)
        session = await service.load_page(session_id)
        if session is None:
            return _not_found(request)
        outcome = await service.finish_return(session_id)
        log.info("checkout_page_return", session=session.id, outcome=outcome.kind)
        fresh = await service.load_page(session_id) or session
        return _after_outcome(request, page_runtime(request.app), fresh, outcome, returning=True)
    except Exception as exc:
        return _failure(request, exc, session_id, session)


@router.get("/c/static/{digest}/{name}")
async def static_file(digest: str, name: str) -> Response:
    asset = ASSETS.get(name)
    if asset is None or asset.digest != digest:
        return Response(
            "Not found", status_code=404, media_type="text/plain", headers={"X-Content-Type-Options": "nosniff"}
        )
    return Response(asset.body, media_type=asset.media_type, headers=static_headers(asset))


@router.api_route("/c/{rest:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
async def unknown_page(request: Request, rest: str) -> Response:
    return _not_found(request)
