"""Customers and saved payment methods over HTTP (Stripe shapes), on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.conftest import Merchant
from tests.integration.api._support import stripe_error
from tests.integration.vault._support import card_form, enable_raw_card_access, publishable, tokenize


def test_customer_create_retrieve_update_list_and_delete(merchant: Merchant) -> None:
    cus = merchant.post("/v1/customers", {"email": "a@example.com", "name": "Ann", "metadata[tier]": "gold"}).json()
    assert cus["id"].startswith("cus_") and cus["object"] == "customer" and cus["metadata"] == {"tier": "gold"}
    assert cus["invoice_settings"]["default_payment_method"] is None
    assert merchant.get(f"/v1/customers/{cus['id']}").json() == cus
    updated = merchant.post(f"/v1/customers/{cus['id']}", {"name": "Anne", "address[city]": "Paris"}).json()
    assert updated["name"] == "Anne" and updated["address"]["city"] == "Paris" and updated["email"] == "a@example.com"
    listed = merchant.get("/v1/customers", params={"email": "a@example.com"}).json()
    assert [c["id"] for c in listed["data"]] == [cus["id"]]
    gone = merchant.http.delete(f"/v1/customers/{cus['id']}").json()
    assert gone == {"id": cus["id"], "object": "customer", "deleted": True}
    assert merchant.get(f"/v1/customers/{cus['id']}").json()["deleted"] is True
    stripe_error(merchant.post(f"/v1/customers/{cus['id']}", {"name": "x"}), 404, "resource_missing")
    types = [e["type"] for e in merchant.get("/v1/events", params={"limit": 100}).json()["data"]]
    assert {"customer.created", "customer.updated", "customer.deleted"} <= set(types)


def test_attach_detach_list_and_default_payment_method(merchant: Merchant, other_merchant: Merchant) -> None:
    cus = merchant.post("/v1/customers", {"email": "b@example.com"}).json()["id"]
    other = merchant.post("/v1/customers", {}).json()["id"]
    with publishable(merchant) as pk:
        pm1 = tokenize(pk, "4242424242424242")["id"]
        pm2 = tokenize(pk, "5555555555554444")["id"]
    stripe_error(
        merchant.post(f"/v1/customers/{cus}", {"invoice_settings[default_payment_method]": pm1}),
        400,
        "resource_missing",
        param="invoice_settings[default_payment_method]",
    )
    assert merchant.post(f"/v1/payment_methods/{pm1}/attach", {"customer": cus}).json()["customer"] == cus
    assert merchant.post(f"/v1/payment_methods/{pm2}/attach", {"customer": cus}).json()["customer"] == cus
    stripe_error(
        merchant.post(f"/v1/payment_methods/{pm1}/attach", {"customer": other}), 400, "payment_method_unexpected_state"
    )
    stripe_error(other_merchant.post(f"/v1/payment_methods/{pm1}/attach", {"customer": cus}), 404, "resource_missing")
    listed = merchant.get(f"/v1/customers/{cus}/payment_methods").json()
    assert {p["id"] for p in listed["data"]} == {pm1, pm2} and listed["url"].endswith("/payment_methods")
    with_default = merchant.post(f"/v1/customers/{cus}", {"invoice_settings[default_payment_method]": pm1}).json()
    assert with_default["invoice_settings"]["default_payment_method"] == pm1
    detached = merchant.post(f"/v1/payment_methods/{pm1}/detach").json()
    assert detached["customer"] is None
    assert merchant.get(f"/v1/customers/{cus}").json()["invoice_settings"]["default_payment_method"] is None
    stripe_error(merchant.post(f"/v1/payment_methods/{pm1}/detach"), 400, "payment_method_unexpected_state")
    merchant.http.delete(f"/v1/customers/{cus}")
    assert merchant.get(f"/v1/payment_methods/{pm2}").json()["customer"] is None
    types = [e["type"] for e in merchant.get("/v1/events", params={"limit": 100}).json()["data"]]
    assert {"payment_method.attached", "payment_method.detached"} <= set(types)


def test_setup_future_usage_saves_the_card_to_the_customer_and_it_pays_again_without_cvc(merchant: Merchant) -> None:
    enable_raw_card_access(merchant.server, merchant.id)
    cus = merchant.post("/v1/customers", {"email": "c@example.com"}).json()["id"]
    first = merchant.post(
        "/v1/payment_intents",
        {
            "amount": 4200,
            "currency": "eur",
            "confirm": "true",
            "customer": cus,
            "setup_future_usage": "off_session",
            **card_form("4000002500000003", "321", prefix="payment_method_data"),
        },
    ).json()
    assert first["status"] == "succeeded"
    saved = merchant.get(f"/v1/customers/{cus}/payment_methods").json()["data"]
    assert [p["id"] for p in saved] == [first["payment_method"]] and saved[0]["card"]["country"] == "FR"
    later = merchant.post(
        "/v1/payment_intents",
        {
            "amount": 1000,
            "currency": "eur",
            "customer": cus,
            "payment_method": saved[0]["id"],
            "confirm": "true",
            "off_session": "true",
        },
    ).json()
    assert later["status"] == "succeeded"


def test_a_declined_payment_does_not_save_the_card(merchant: Merchant) -> None:
    with publishable(merchant) as pk:
        pm = tokenize(pk, "4000000000000002")["id"]
    cus = merchant.post("/v1/customers", {}).json()["id"]
    resp = merchant.post(
        "/v1/payment_intents",
        {
            "amount": 1000,
            "currency": "usd",
            "customer": cus,
            "setup_future_usage": "off_session",
            "payment_method": pm,
            "confirm": "true",
        },
    )
    assert resp.status_code == 402
    assert merchant.get(f"/v1/customers/{cus}/payment_methods").json()["data"] == []


def test_a_payment_intent_names_only_a_live_customer_of_its_merchant_and_keeps_it(
    merchant: Merchant, other_merchant: Merchant
) -> None:
    theirs = other_merchant.post("/v1/customers", {}).json()["id"]
    deleted = merchant.post("/v1/customers", {}).json()["id"]
    merchant.http.delete(f"/v1/customers/{deleted}").raise_for_status()
    for customer in ("cus_doesnotexist", theirs, deleted):
        resp = merchant.post("/v1/payment_intents", {"amount": 500, "currency": "usd", "customer": customer})
        stripe_error(resp, 400, "resource_missing", param="customer")
    assert merchant.get("/v1/payment_intents").json()["data"] == []  # nothing was written
    first = merchant.post("/v1/customers", {}).json()["id"]
    second = merchant.post("/v1/customers", {}).json()["id"]
    bare = merchant.post("/v1/payment_intents", {"amount": 500, "currency": "usd"}).json()
    stripe_error(merchant.post(f"/v1/payment_intents/{bare['id']}", {"customer": theirs}), 400, "resource_missing")
    assert merchant.post(f"/v1/payment_intents/{bare['id']}", {"customer": first}).json()["customer"] == first
    assert merchant.post(f"/v1/payment_intents/{bare['id']}", {"customer": first}).status_code == 200  # same one
    moved = merchant.post(f"/v1/payment_intents/{bare['id']}", {"customer": second})
    stripe_error(moved, 400, param="customer")
    assert merchant.get(f"/v1/payment_intents/{bare['id']}").json()["customer"] == first
