"""List endpoints page like Stripe's: newest first, bounded ``limit``, cursors that neither skip nor repeat,
``created`` range filters, and cursors that only resolve inside the caller's own account."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from paygate.kit.clock import clock
from tests.conftest import Merchant
from tests.integration.api._support import create_intent, ok, stripe_error, succeeded_intent

pytestmark = pytest.mark.db


@pytest.fixture
def moving_clock() -> Iterator[Any]:
    """The gateway's clock (shared with the in-process server); restored afterwards."""
    before = clock.offset
    yield clock
    clock.offset = before


def _ids(page: dict[str, Any]) -> list[str]:
    return [o["id"] for o in page["data"]]


def _created_intents(m: Merchant, n: int) -> list[str]:
    """``n`` intents' ids in the order a list must show them: newest first by ``(created, id)``. (Ids carry their
    creation millisecond, so this is creation order; sorting instead of reversing keeps two creates in the same
    millisecond from making the expectation flaky.)"""
    made = [create_intent(m, amount=1000 + i) for i in range(n)]
    return [pi["id"] for pi in sorted(made, key=lambda pi: (pi["created"], pi["id"]), reverse=True)]


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5"])
def test_limit_outside_1_to_100_is_rejected(merchant: Merchant, limit: str) -> None:
    stripe_error(merchant.get("/v1/payment_intents", params={"limit": limit}), 400, param="limit")


@pytest.mark.parametrize("path", ["/v1/refunds", "/v1/events"])
def test_limit_bounds_hold_on_every_list(merchant: Merchant, path: str) -> None:
    stripe_error(merchant.get(path, params={"limit": "0"}), 400, param="limit")
    stripe_error(merchant.get(path, params={"limit": "101"}), 400, param="limit")
    assert ok(merchant.get(path, params={"limit": "100"}))["object"] == "list"


def test_limit_1_and_100_are_accepted_and_the_list_envelope_is_stripe_s(merchant: Merchant) -> None:
    newest_first = _created_intents(merchant, 3)
    page = ok(merchant.get("/v1/payment_intents", params={"limit": "1"}))
    assert page["object"] == "list"
    assert page["url"] == "/v1/payment_intents"
    assert page["has_more"] is True
    assert _ids(page) == newest_first[:1]
    full = ok(merchant.get("/v1/payment_intents", params={"limit": "100"}))
    assert _ids(full) == newest_first
    assert full["has_more"] is False


def test_default_limit_is_10(merchant: Merchant) -> None:
    _created_intents(merchant, 11)
    page = ok(merchant.get("/v1/payment_intents"))
    assert len(page["data"]) == 10
    assert page["has_more"] is True


def test_starting_after_walks_every_object_once_with_no_gap(merchant: Merchant) -> None:
    newest_first = _created_intents(merchant, 7)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "3", **({"starting_after": cursor} if cursor else {})}
        page = ok(merchant.get("/v1/payment_intents", params=params))
        seen += _ids(page)
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    assert seen == newest_first


def test_ending_before_walks_back_to_the_newest_with_no_gap(merchant: Merchant) -> None:
    newest_first = _created_intents(merchant, 7)
    oldest = newest_first[-1]
    pages: list[list[str]] = []
    cursor = oldest
    while True:
        page = ok(merchant.get("/v1/payment_intents", params={"limit": "3", "ending_before": cursor}))
        pages.append(_ids(page))
        if not page["has_more"]:
            break
        cursor = page["data"][0]["id"]
    # every page is listed newest first and the pages, newest page last, tile the list exactly
    assert [i for p in reversed(pages) for i in p] == newest_first[:-1]
    assert pages[0] == newest_first[-4:-1]


def test_starting_after_and_ending_before_are_inverse_cursors(merchant: Merchant) -> None:
    newest_first = _created_intents(merchant, 6)
    middle = newest_first[2]
    after = ok(merchant.get("/v1/payment_intents", params={"starting_after": middle, "limit": "2"}))
    before = ok(merchant.get("/v1/payment_intents", params={"ending_before": middle, "limit": "2"}))
    assert _ids(after) == newest_first[3:5]
    assert _ids(before) == newest_first[0:2]
    assert middle not in _ids(after) + _ids(before)


def test_both_cursors_at_once_is_rejected(merchant: Merchant) -> None:
    a, b = _created_intents(merchant, 2)
    stripe_error(merchant.get("/v1/payment_intents", params={"starting_after": a, "ending_before": b}), 400)


def test_created_range_filters(merchant: Merchant, moving_clock: Any) -> None:
    first = create_intent(merchant)
    moving_clock.offset += 1000
    second = create_intent(merchant)
    moving_clock.offset += 1000
    third = create_intent(merchant)
    assert first["created"] < second["created"] < third["created"]

    def listed(**params: str) -> list[str]:
        return _ids(ok(merchant.get("/v1/payment_intents", params={"limit": "100", **params})))

    assert listed(**{"created[gte]": str(second["created"])}) == [third["id"], second["id"]]
    assert listed(**{"created[gt]": str(second["created"])}) == [third["id"]]
    assert listed(**{"created[lt]": str(second["created"])}) == [first["id"]]
    assert listed(**{"created[lte]": str(second["created"])}) == [second["id"], first["id"]]
    assert listed(**{"created[gte]": str(second["created"]), "created[lt]": str(third["created"])}) == [second["id"]]
    assert listed(created=str(third["created"])) == [third["id"]]
    assert listed(**{"created[gte]": str(third["created"] + 1)}) == []


def test_created_filter_combines_with_cursor(merchant: Merchant, moving_clock: Any) -> None:
    old = create_intent(merchant)
    moving_clock.offset += 1000
    made = [create_intent(merchant) for _ in range(3)]
    recent = [pi["id"] for pi in sorted(made, key=lambda pi: (pi["created"], pi["id"]), reverse=True)]
    params = {"created[gt]": str(old["created"]), "limit": "2"}
    page1 = ok(merchant.get("/v1/payment_intents", params=params))
    page2 = ok(merchant.get("/v1/payment_intents", params={**params, "starting_after": page1["data"][-1]["id"]}))
    assert _ids(page1) + _ids(page2) == recent
    assert page2["has_more"] is False


@pytest.mark.parametrize("params", [{"created[gte]": "yesterday"}, {"created[between]": "1"}, {"created": "1.5"}])
def test_invalid_created_filters_are_400(merchant: Merchant, params: dict[str, str]) -> None:
    stripe_error(merchant.get("/v1/payment_intents", params=params), 400)


@pytest.mark.parametrize("cursor", ["starting_after", "ending_before"])
def test_cursor_from_another_merchant_is_404(merchant: Merchant, other_merchant: Merchant, cursor: str) -> None:
    foreign = create_intent(other_merchant)["id"]
    create_intent(merchant)
    err = stripe_error(
        merchant.get("/v1/payment_intents", params={cursor: foreign}), 404, "resource_missing", param=cursor
    )
    assert err["type"] == "invalid_request_error"


def test_cursor_that_does_not_exist_is_404(merchant: Merchant) -> None:
    stripe_error(
        merchant.get("/v1/payment_intents", params={"starting_after": "pi_doesnotexist"}), 404, "resource_missing"
    )


def test_refund_and_event_lists_page_without_overlap(merchant: Merchant) -> None:
    pi = succeeded_intent(merchant, amount=5000)
    made = [ok(merchant.post("/v1/refunds", {"payment_intent": pi["id"], "amount": "100"})) for _ in range(4)]
    refunds = [r["id"] for r in sorted(made, key=lambda r: (r["created"], r["id"]))]
    page1 = ok(merchant.get("/v1/refunds", params={"limit": "2"}))
    page2 = ok(merchant.get("/v1/refunds", params={"limit": "2", "starting_after": page1["data"][-1]["id"]}))
    assert _ids(page1) + _ids(page2) == refunds[::-1]
    assert page2["has_more"] is False

    events = _ids(ok(merchant.get("/v1/events", params={"limit": "100"})))
    assert len(events) == len(set(events)) >= 3
    walked: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"starting_after": cursor} if cursor else {})}
        page = ok(merchant.get("/v1/events", params=params))
        walked += _ids(page)
        if not page["has_more"]:
            break
        cursor = walked[-1]
    assert walked == events
