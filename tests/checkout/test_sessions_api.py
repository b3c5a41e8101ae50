"""The Checkout Sessions API through the official stripe SDK and raw HTTP: create, retrieve, list, line items,
expire, the PaymentIntent a session owns, idempotency, tenancy and the checkout settings extension."""

from __future__ import annotations

import pytest
import stripe

from paygate.kit.clock import clock
from tests.checkout._sessions_support import (
    card,
    clock_moved,
    count_rows,
    create_session,
    events_for,
    intent_row,
    session_form,
)
from tests.conftest import Merchant

pytestmark = pytest.mark.db


def test_stripe_sdk_creates_retrieves_lists_line_items_and_expires_a_session(merchant: Merchant) -> None:
    client = merchant.stripe
    created = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "success_url": "https://shop.example/ok?cs={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://shop.example/cart",
            "line_items": [
                {
                    "price_data": {
                        "currency": "eur",
                        "unit_amount": 1250,
                        "product_data": {"name": "Mug", "description": "Blue, 300 ml"},
                    },
                    "quantity": 2,
                },
                {
                    "price_data": {"currency": "eur", "unit_amount": 500, "product_data": {"name": "Coaster"}},
                    "quantity": 1,
                },
            ],
            "client_reference_id": "order-77",
            "customer_email": "buyer@example.com",
            "metadata": {"order_id": "77"},
            "locale": "fr",
        }
    )
    assert created.object == "checkout.session"
    assert created.id.startswith("cs_test_")
    assert created.status == "open" and created.payment_status == "unpaid" and created.mode == "payment"
    assert created.amount_subtotal == created.amount_total == 3000
    assert created.currency == "eur"
    assert created.url == f"{merchant.server.base_url}/c/pay/{created.id}"
    assert created.success_url == "https://shop.example/ok?cs={CHECKOUT_SESSION_ID}"
    assert created.client_reference_id == "order-77"
    assert created.customer_email == "buyer@example.com"
    assert created.metadata.to_dict() == {"order_id": "77"}
    assert created.locale == "fr"
    assert created.livemode is False
    assert created.payment_intent and created.payment_intent.startswith("pi_")
    assert created.expires_at - created.created == 600  # the default lifetime

    again = client.v1.checkout.sessions.retrieve(created.id)
    assert again.id == created.id and again.status == "open"

    listed = client.v1.checkout.sessions.list(params={"payment_intent": created.payment_intent})
    assert [s.id for s in listed.data] == [created.id]

    items = client.v1.checkout.sessions.line_items.list(created.id)
    assert [(i.description, i.quantity, i.amount_total, i.price.unit_amount) for i in items.data] == [
        ("Mug", 2, 2500, 1250),
        ("Coaster", 1, 500, 500),
    ]
    assert all(i.object == "item" and i.currency == "eur" for i in items.data)

    expired = client.v1.checkout.sessions.expire(created.id)
    assert expired.status == "expired" and expired.url is None
    assert client.v1.payment_intents.retrieve(created.payment_intent).status == "canceled"


def test_session_owns_a_payment_intent_with_its_total_currency_metadata_and_customer(merchant: Merchant) -> None:
    customer = merchant.post("/v1/customers", {"email": "known@example.com"}).json()["id"]
    session = create_session(
        merchant,
        customer=customer,
        **{
            "metadata[order_id]": "9",
            "line_items[1][price_data][currency]": "usd",
            "line_items[1][price_data][unit_amount]": "199",
            "line_items[1][price_data][product_data][name]": "Sticker",
            "line_items[1][quantity]": "3",
        },
    )
    assert session["amount_total"] == 2 * 1500 + 3 * 199
    assert session["customer"] == customer
    assert session["customer_email"] is None
    intent = merchant.get(f"/v1/payment_intents/{session['payment_intent']}").json()
    assert intent["amount"] == session["amount_total"]
    assert intent["currency"] == "usd"
    assert intent["metadata"] == {"order_id": "9"}
    assert intent["customer"] == customer
    assert intent["status"] == "requires_payment_method"
    page = merchant.server.call(merchant.server.gateway.checkout.load_page(session["id"]))
    assert page is not None and page.customer_email == "known@example.com"  # prefilled from the customer


def test_one_line_session_from_amount_and_currency(merchant: Merchant) -> None:
    form = session_form(amount="4200", currency="JPY", description="Donation")
    for key in [k for k in form if k.startswith("line_items")]:
        del form[key]
    resp = merchant.post("/v1/checkout/sessions", form)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["amount_total"], body["currency"]) == (4200, "jpy")
    items = merchant.get(f"/v1/checkout/sessions/{body['id']}/line_items").json()
    assert [(i["description"], i["quantity"], i["amount_total"]) for i in items["data"]] == [("Donation", 1, 4200)]


def test_retrieve_expands_line_items_and_payment_intent(merchant: Merchant) -> None:
    session = create_session(merchant)
    body = merchant.get(
        f"/v1/checkout/sessions/{session['id']}", params={"expand[0]": "line_items", "expand[1]": "payment_intent"}
    ).json()
    assert body["line_items"]["object"] == "list"
    assert body["line_items"]["data"][0]["amount_total"] == 3000
    assert body["payment_intent"]["object"] == "payment_intent"
    assert body["payment_intent"]["amount"] == 3000


def test_list_filters_by_status_and_payment_intent_and_paginates(merchant: Merchant) -> None:
    ids = [create_session(merchant)["id"] for _ in range(3)]
    expired = merchant.post(f"/v1/checkout/sessions/{ids[0]}/expire").json()
    assert expired["status"] == "expired"
    open_ids = [s["id"] for s in merchant.get("/v1/checkout/sessions", params={"status": "open"}).json()["data"]]
    assert ids[1] in open_ids and ids[2] in open_ids and ids[0] not in open_ids
    only = merchant.get("/v1/checkout/sessions", params={"status": "expired"}).json()["data"]
    assert [s["id"] for s in only] == [ids[0]]
    page1 = merchant.get("/v1/checkout/sessions", params={"limit": 2}).json()
    assert page1["has_more"] is True and [s["id"] for s in page1["data"]] == [ids[2], ids[1]]
    page2 = merchant.get("/v1/checkout/sessions", params={"limit": 2, "starting_after": ids[1]}).json()
    assert [s["id"] for s in page2["data"]] == [ids[0]] and page2["has_more"] is False


def test_line_items_paginate_in_order(merchant: Merchant) -> None:
    form = session_form()
    for i in range(1, 5):
        form[f"line_items[{i}][price_data][currency]"] = "usd"
        form[f"line_items[{i}][price_data][unit_amount]"] = str(100 * i)
        form[f"line_items[{i}][price_data][product_data][name]"] = f"item {i}"
        form[f"line_items[{i}][quantity]"] = "1"
    session = merchant.post("/v1/checkout/sessions", form).json()
    url = f"/v1/checkout/sessions/{session['id']}/line_items"
    first = merchant.get(url, params={"limit": 2}).json()
    assert [i["description"] for i in first["data"]] == ["T-shirt", "item 1"] and first["has_more"] is True
    rest = merchant.get(url, params={"limit": 10, "starting_after": first["data"][-1]["id"]}).json()
    assert [i["description"] for i in rest["data"]] == ["item 2", "item 3", "item 4"] and rest["has_more"] is False
    back = merchant.get(url, params={"limit": 1, "ending_before": rest["data"][0]["id"]}).json()
    assert [i["description"] for i in back["data"]] == ["item 1"]


def test_create_with_idempotency_key_replays_the_same_session(merchant: Merchant) -> None:
    headers = {"Idempotency-Key": "checkout-order-1"}
    first = merchant.http.post("/v1/checkout/sessions", data=session_form(), headers=headers)
    second = merchant.http.post("/v1/checkout/sessions", data=session_form(), headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert first.json()["id"] == second.json()["id"]
    assert count_rows(merchant.server, merchant.id)[0] == 1


def test_a_create_replayed_after_its_expires_at_passed_gets_its_stored_session(merchant: Merchant) -> None:
    """A retry of a create that succeeded (an SDK retrying after a lost answer, hours later) is a replay, even
    though its expires_at would now be refused."""
    headers = {"Idempotency-Key": "checkout-expiring-1"}
    form = session_form(expires_at=str(clock.now() + 3600))
    first = merchant.http.post("/v1/checkout/sessions", data=form, headers=headers)
    assert first.status_code == 200, first.text
    with clock_moved(2 * 3600):
        again = merchant.http.post("/v1/checkout/sessions", data=form, headers=headers)
        fresh = merchant.http.post("/v1/checkout/sessions", data=form, headers={"Idempotency-Key": "checkout-late"})
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true", again.text
    assert again.content == first.content
    assert fresh.status_code == 400 and fresh.json()["error"]["param"] == "expires_at"  # a new request is checked
    assert count_rows(merchant.server, merchant.id)[0] == 1


def test_a_create_refused_by_its_checks_is_not_stored_under_its_key(merchant: Merchant) -> None:
    headers = {"Idempotency-Key": "checkout-retry-after-fix"}
    too_soon = merchant.http.post(
        "/v1/checkout/sessions", data=session_form(expires_at=str(clock.now() + 60)), headers=headers
    )
    assert too_soon.status_code == 400 and too_soon.json()["error"]["param"] == "expires_at", too_soon.text
    unknown = merchant.http.post("/v1/checkout/sessions", data=session_form(customer="cus_missing"), headers=headers)
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "customer", unknown.text
    fixed = merchant.http.post("/v1/checkout/sessions", data=session_form(), headers=headers)  # other parameters
    assert fixed.status_code == 200 and fixed.headers.get("Idempotent-Replayed") is None, fixed.text
    assert count_rows(merchant.server, merchant.id)[0] == 1


def test_another_merchant_gets_404_for_every_session_route(merchant: Merchant, other_merchant: Merchant) -> None:
    session = create_session(merchant)
    sid = session["id"]
    for resp in (
        other_merchant.get(f"/v1/checkout/sessions/{sid}"),
        other_merchant.get(f"/v1/checkout/sessions/{sid}/line_items"),
        other_merchant.post(f"/v1/checkout/sessions/{sid}/expire"),
    ):
        assert resp.status_code == 404, resp.text
        assert resp.json()["error"]["code"] == "resource_missing"
    assert other_merchant.get("/v1/checkout/sessions").json()["data"] == []
    with pytest.raises(stripe.InvalidRequestError):
        other_merchant.stripe.v1.checkout.sessions.retrieve(sid)
    assert merchant.get(f"/v1/checkout/sessions/{sid}").json()["status"] == "open"


def test_live_and_test_mode_sessions_are_separate(merchant: Merchant) -> None:
    session = create_session(merchant)
    live = merchant.http.get(f"/v1/checkout/sessions/{session['id']}", auth=(merchant.live_secret_key, ""))
    assert live.status_code == 404


def test_publishable_key_cannot_create_sessions(merchant: Merchant) -> None:
    resp = merchant.http.post("/v1/checkout/sessions", data=session_form(), auth=(merchant.publishable_key, ""))
    assert resp.status_code == 403


def test_expire_twice_is_a_typed_error_and_completed_sessions_cannot_expire(merchant: Merchant) -> None:
    server = merchant.server
    session = create_session(merchant)
    assert merchant.post(f"/v1/checkout/sessions/{session['id']}/expire").status_code == 200
    again = merchant.post(f"/v1/checkout/sessions/{session['id']}/expire")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "checkout_session_unexpected_state"
    assert len(events_for(server, session["id"], "checkout.session.expired")) == 1

    paid = create_session(merchant)
    outcome = server.call(server.gateway.checkout.pay(paid["id"], card(), return_url="https://r.example/x"))
    assert outcome.kind == "succeeded"
    refused = merchant.post(f"/v1/checkout/sessions/{paid['id']}/expire")
    assert refused.status_code == 400
    assert merchant.get(f"/v1/checkout/sessions/{paid['id']}").json()["status"] == "complete"
    assert intent_row(server, paid["payment_intent"])["status"] == "succeeded"


def test_expire_emits_the_session_event_and_cancels_the_intent(merchant: Merchant) -> None:
    server = merchant.server
    session = create_session(merchant)
    body = merchant.post(f"/v1/checkout/sessions/{session['id']}/expire").json()
    evts = events_for(server, session["id"], "checkout.session.expired")
    assert len(evts) == 1 and evts[0]["data"]["object"]["status"] == "expired"
    assert evts[0]["data"]["object"] == body
    assert intent_row(server, session["payment_intent"])["cancellation_reason"] == "abandoned"
    assert [e["type"] for e in events_for(server, session["payment_intent"])] == [
        "payment_intent.created",
        "payment_intent.canceled",
    ]


def test_checkout_settings_default_and_update(merchant: Merchant, other_merchant: Merchant) -> None:
    got = merchant.get("/v1/checkout/settings").json()
    assert got == {
        "object": "checkout.settings",
        "livemode": False,
        "default_expires_in": 600,
        "allowed_frame_ancestors": [],
        "updated": 0,
    }
    resp = merchant.post(
        "/v1/checkout/settings",
        {
            "default_expires_in": "1800",
            "allowed_frame_ancestors[0]": "https://Shop.Example.com",
            "allowed_frame_ancestors[1]": "https://admin.example.com:8443/",
        },
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["allowed_frame_ancestors"] == ["https://shop.example.com", "https://admin.example.com:8443"]
    assert merchant.get("/v1/checkout/settings").json()["default_expires_in"] == 1800
    session = create_session(merchant)
    assert session["expires_at"] - session["created"] == 1800
    page = merchant.server.call(merchant.server.gateway.checkout.load_page(session["id"]))
    assert page is not None
    assert page.frame_ancestors == ["https://shop.example.com", "https://admin.example.com:8443"]
    # per merchant and per mode
    assert other_merchant.get("/v1/checkout/settings").json()["default_expires_in"] == 600
    live = merchant.http.get("/v1/checkout/settings", auth=(merchant.live_secret_key, "")).json()
    assert live["livemode"] is True and live["default_expires_in"] == 600
    # clearing the list keeps the lifetime
    cleared = merchant.post("/v1/checkout/settings", {"allowed_frame_ancestors": ""}).json()
    assert cleared["allowed_frame_ancestors"] == [] and cleared["default_expires_in"] == 1800


@pytest.mark.parametrize(
    ("form", "param"),
    [
        ({"default_expires_in": "299"}, "default_expires_in"),
        ({"default_expires_in": "86401"}, "default_expires_in"),
        ({"allowed_frame_ancestors[0]": "http://shop.example.com"}, "allowed_frame_ancestors[0]"),
        ({"allowed_frame_ancestors[0]": "https://shop.example.com/path"}, "allowed_frame_ancestors[0]"),
        ({"allowed_frame_ancestors[0]": "https://*.example.com"}, "allowed_frame_ancestors[0]"),
        ({"allowed_frame_ancestors[0]": "https://a.example.com; script-src *"}, "allowed_frame_ancestors[0]"),
        ({"allowed_frame_ancestors[0]": "'self'"}, "allowed_frame_ancestors[0]"),
    ],
)
def test_checkout_settings_reject_bad_values(merchant: Merchant, form: dict[str, str], param: str) -> None:
    resp = merchant.post("/v1/checkout/settings", form)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param
    assert merchant.get("/v1/checkout/settings").json()["updated"] == 0  # nothing stored


def test_completed_session_shows_paid_and_customer_details(merchant: Merchant) -> None:
    server = merchant.server
    session = create_session(merchant, customer_email="payer@example.com")
    outcome = server.call(
        server.gateway.checkout.pay(
            session["id"], card(name="Ada Lovelace", country="GB", postal_code="N1 9GU"), return_url="https://r.x/y"
        )
    )
    assert outcome.kind == "succeeded"
    assert outcome.redirect_url == f"https://shop.example/success?session_id={session['id']}"
    body = merchant.stripe.v1.checkout.sessions.retrieve(session["id"])
    assert body.status == "complete" and body.payment_status == "paid" and body.url is None
    assert body.customer_details is not None
    assert body.customer_details.email == "payer@example.com"
    assert body.customer_details.name == "Ada Lovelace"
    assert body.customer_details.address.country == "GB"
    completed = events_for(server, session["id"], "checkout.session.completed")
    assert len(completed) == 1 and completed[0]["data"]["object"]["payment_status"] == "paid"
    assert merchant.get(f"/v1/payment_intents/{session['payment_intent']}").json()["status"] == "succeeded"


def test_openapi_documents_the_checkout_routes(merchant: Merchant) -> None:
    paths = merchant.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/checkout/sessions",
        "/v1/checkout/sessions/{session_id}",
        "/v1/checkout/sessions/{session_id}/line_items",
        "/v1/checkout/sessions/{session_id}/expire",
        "/v1/checkout/settings",
    ):
        assert path in paths
