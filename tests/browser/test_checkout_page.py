"""The hosted checkout page in a real browser (headless Chromium): the customer's journeys end to end.

Each test saves a screenshot of its final page into test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from paygate.kit.clock import clock
from tests.browser.conftest import Shop, Watcher, new_context
from tests.checkout._page_support import DECLINE, THREE_DS, VISA, authorizations, session_row

FOCUS_VISIBLE = """el => {
  const cs = getComputedStyle(el);
  const outlined = cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) >= 2
    && cs.outlineColor !== "rgba(0, 0, 0, 0)" && cs.outlineColor !== "transparent";
  return outlined || cs.boxShadow !== "none";
}"""


def fill_card(page: Page, number: str, *, exp: str = "1234", cvc: str = "739", name: str = "Jane Doe") -> None:
    page.fill("#number", number)
    page.fill("#exp", exp)
    page.fill("#cvc", cvc)
    page.fill("#name", name)
    page.select_option("#country", "DE")
    page.fill("#postal_code", "10115")


def success_url(shop: Shop, session_id: str) -> str:
    return f"{shop.site.origin}/success?session={session_id}"


def test_card_payment_formats_the_card_disables_the_button_in_flight_and_lands_on_success_url(
    page: Page, shop: Shop, screenshots: Path
) -> None:
    session = shop.session()
    page.goto(shop.page_url(session["id"]))
    expect(page).to_have_title(re.compile(r"Pay Test Merchant"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.fill("#number", "378282246310005")
    expect(page.locator("#number")).to_have_value("3782 822463 10005")  # Amex grouping
    expect(page.locator("#number-brand")).to_have_text("Amex")
    page.fill("#number", VISA)
    expect(page.locator("#number")).to_have_value("4242 4242 4242 4242")
    expect(page.locator("#number-brand")).to_have_text("Visa")
    page.fill("#exp", "1234")
    expect(page.locator("#exp")).to_have_value("12 / 34")
    fill_card(page, VISA)
    page.screenshot(path=str(screenshots / "form-filled.png"), full_page=True)
    held: list[Route] = []  # the form POST, held in the browser until the in-flight state has been seen
    seen: list[str] = []

    def hold(route: Route) -> None:
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    page.route(re.compile(r"/c/pay/cs_"), hold)
    page.on("console", lambda msg: seen.append(msg.text) if msg.text.startswith("in-flight ") else None)
    # While a navigation is pending Playwright cannot evaluate in the page, so the page reports its own state
    # right after the submit (and tries a second submit, which must be swallowed).
    page.evaluate(
        """() => document.getElementById("pay-form").addEventListener("submit", () => setTimeout(() => {
            const button = document.getElementById("pay-button");
            const label = document.getElementById("pay-label").textContent;
            console.log("in-flight " + JSON.stringify([button.disabled, button.dataset.busy, label]));
            if (!window.resubmitted) {
                window.resubmitted = true;
                document.getElementById("pay-form").requestSubmit();
            }
        }, 0))"""
    )
    page.click("#pay-button", no_wait_after=True)
    deadline = time.monotonic() + 10
    while len(seen) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(20)
    assert seen[:2] == ['in-flight [true,"true","Processing…"]'] * 2
    page.wait_for_timeout(200)
    assert len(held) == 1  # one POST, however often the form is submitted
    held[0].continue_()
    page.wait_for_url(success_url(shop, session["id"]))
    assert authorizations(shop.server, session["payment_intent"]) == 1
    expect(page.locator("h1")).to_have_text("Thank you for your order")
    page.screenshot(path=str(screenshots / "success.png"), full_page=True)


def test_decline_shows_an_announced_error_then_another_card_succeeds(page: Page, shop: Shop, screenshots: Path) -> None:
    session = shop.session()
    page.goto(shop.page_url(session["id"]))
    fill_card(page, DECLINE, name="Jane Q. Doe")
    page.click("#pay-button")
    alert = page.locator("#form-alert")
    expect(alert).to_be_visible()
    expect(alert).to_have_attribute("role", "alert")
    expect(alert).to_contain_text("Payment declined")
    expect(alert).to_be_focused()  # moved there so screen readers read it at once
    expect(page.locator("#number")).to_have_value("")  # card data is never echoed back
    expect(page.locator("#cvc")).to_have_value("")
    expect(page.locator("#name")).to_have_value("Jane Q. Doe")
    page.screenshot(path=str(screenshots / "declined.png"), full_page=True)
    fill_card(page, VISA)
    page.click("#pay-button")
    page.wait_for_url(success_url(shop, session["id"]))
    page.screenshot(path=str(screenshots / "decline-then-success.png"), full_page=True)


def test_invalid_entries_get_inline_accessible_errors_without_a_round_trip(
    page: Page, shop: Shop, screenshots: Path
) -> None:
    session = shop.session()
    page.goto(shop.page_url(session["id"]))
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.fill("#number", "4242424242424241")  # fails Luhn
    page.fill("#exp", "0120")  # in the past
    page.fill("#cvc", "12")
    page.click("#pay-button")
    number = page.locator("#number")
    expect(number).to_have_attribute("aria-invalid", "true")
    expect(number).to_be_focused()
    expect(page.locator("#number-error")).to_have_text("Your card number is invalid.")
    assert number.get_attribute("aria-describedby") == "number-error"
    expect(page.locator("#exp-error")).to_have_text("Your card's expiry date is in the past.")
    expect(page.locator("#cvc-error")).to_have_text("Your card's security code is incomplete.")
    expect(page.locator("#form-alert")).to_contain_text("Please correct 5 fields")
    page.fill("#number", "4242424242424242")
    expect(number).not_to_have_attribute("aria-invalid", "true")  # fixed as you type
    page.screenshot(path=str(screenshots / "inline-errors.png"), full_page=True)
    assert posts == []


def test_three_d_secure_challenge_and_return_complete_the_payment(page: Page, shop: Shop, screenshots: Path) -> None:
    session = shop.session()
    page.goto(shop.page_url(session["id"]))
    fill_card(page, THREE_DS)
    page.click("#pay-button")
    page.wait_for_url(re.compile(r"/sandbox/3ds/"))
    page.screenshot(path=str(screenshots / "3ds-challenge.png"), full_page=True)
    page.click("text=Complete authentication")
    page.wait_for_url(success_url(shop, session["id"]))
    assert session_row(shop.server, session["id"])["status"] == "complete"
    page.screenshot(path=str(screenshots / "3ds-success.png"), full_page=True)


def test_failed_three_d_secure_returns_to_the_form_to_try_another_card(
    page: Page, shop: Shop, screenshots: Path
) -> None:
    session = shop.session()
    page.goto(shop.page_url(session["id"]))
    fill_card(page, THREE_DS)
    page.click("#pay-button")
    page.wait_for_url(re.compile(r"/sandbox/3ds/"))
    page.click("text=Fail authentication")
    expect(page.locator("#form-alert")).to_contain_text("Your payment was not completed")
    assert page.url == shop.page_url(session["id"])  # the return parameters are dropped from the address bar
    page.screenshot(path=str(screenshots / "3ds-failed.png"), full_page=True)
    fill_card(page, VISA)
    page.click("#pay-button")
    page.wait_for_url(success_url(shop, session["id"]))


def test_countdown_expires_the_form_and_the_expired_page_follows(page: Page, shop: Shop, screenshots: Path) -> None:
    session = shop.session()
    before = clock.offset
    clock.offset = before + (session["expires_at"] - clock.now()) - 3  # three seconds left
    try:
        page.goto(shop.page_url(session["id"]))
        expect(page.locator("#countdown-time")).to_have_text(re.compile(r"^0:0[0-3]$"))
        alert = page.locator("#form-alert")
        expect(alert).to_contain_text("This checkout has expired", timeout=8_000)
        expect(page.locator("#pay-button")).to_be_disabled()
        page.screenshot(path=str(screenshots / "expired-countdown.png"), full_page=True)
        clock.offset += 3600  # well past the grace period
        response = page.reload()
        assert response is not None and response.status == 410
        expect(page.locator("h1")).to_have_text("This checkout has expired")
        page.screenshot(path=str(screenshots / "expired.png"), full_page=True)
    finally:
        clock.offset = before
    assert authorizations(shop.server, session["payment_intent"]) == 0


def test_cancel_link_returns_to_the_cancel_url(page: Page, shop: Shop, screenshots: Path) -> None:
    session = shop.session()
    page.goto(shop.page_url(session["id"]))
    page.click("#cancel-link")
    page.wait_for_url(f"{shop.site.origin}/cancel")
    assert session_row(shop.server, session["id"])["status"] == "open"
    page.screenshot(path=str(screenshots / "cancelled.png"), full_page=True)


def test_keyboard_only_payment_with_a_logical_focus_order_and_visible_focus(
    page: Page, shop: Shop, screenshots: Path
) -> None:
    session = shop.session()
    page.goto(shop.page_url(session["id"]))
    order = []
    for _ in range(9):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id"))
        assert page.evaluate(f"({FOCUS_VISIBLE})(document.activeElement)"), f"no visible focus on #{order[-1]}"
    assert order == [
        "back-link",
        "number",
        "exp",
        "cvc",
        "name",
        "country",
        "postal_code",
        "pay-button",
        "cancel-link",
    ]
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")  # back to the pay button, then up to the postal code
    assert page.evaluate("document.activeElement.id") == "postal_code"
    for _ in range(6):
        page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "back-link"
    page.keyboard.press("Tab")
    page.keyboard.type("4242424242424242")
    page.keyboard.press("Tab")
    page.keyboard.type("1234")
    page.keyboard.press("Tab")
    page.keyboard.type("739")
    page.keyboard.press("Tab")
    page.keyboard.type("Jane Doe")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.value") == "US"  # en-US browser: United States pre-selected
    page.keyboard.press("Tab")
    page.keyboard.type("94107")
    page.screenshot(path=str(screenshots / "keyboard-filled.png"), full_page=True)
    page.keyboard.press("Enter")
    page.wait_for_url(success_url(shop, session["id"]))
    page.screenshot(path=str(screenshots / "keyboard-success.png"), full_page=True)


def test_phone_viewport_fits_without_horizontal_scroll_and_pays_by_touch(
    chromium: Browser, watcher: Watcher, shop: Shop, screenshots: Path
) -> None:
    context: BrowserContext = new_context(
        chromium, watcher, viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True
    )
    try:
        page = context.new_page()
        session = shop.session()
        page.goto(shop.page_url(session["id"]))
        no_scroll = "document.documentElement.scrollWidth <= window.innerWidth"
        assert page.evaluate(no_scroll)
        page.screenshot(path=str(screenshots / "mobile-form.png"), full_page=True)
        small = page.evaluate(
            """() => [...document.querySelectorAll('input, select, button')]
                 .filter(el => el.type !== 'hidden' && el.getBoundingClientRect().height < 44).map(el => el.id)"""
        )
        assert small == []  # touch targets at least 44 px tall
        fill_card(page, DECLINE)
        page.locator("#pay-button").tap()
        expect(page.locator("#form-alert")).to_contain_text("Payment declined")
        assert page.evaluate(no_scroll)
        fill_card(page, VISA)
        page.locator("#pay-button").tap()
        page.wait_for_url(success_url(shop, session["id"]))
        page.screenshot(path=str(screenshots / "mobile-success.png"), full_page=True)
    finally:
        context.close()


def test_already_paid_and_not_found_pages(context: BrowserContext, shop: Shop, screenshots: Path) -> None:
    page = context.new_page()
    session = shop.session()
    page.goto(shop.page_url(session["id"]))
    fill_card(page, VISA)
    page.click("#pay-button")
    page.wait_for_url(success_url(shop, session["id"]))
    page.go_back()
    expect(page.locator("h1")).to_have_text("Payment complete")
    page.screenshot(path=str(screenshots / "already-paid.png"), full_page=True)
    response = page.goto(shop.page_url("cs_test_" + "N" * 32))
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Checkout not found")
    page.screenshot(path=str(screenshots / "not-found.png"), full_page=True)
    time.sleep(0)  # pages above must not log errors: checked by the watcher when the context closes


def test_the_browser_enforces_the_csp_against_injected_inline_script_and_style(
    page: Page, shop: Shop, watcher: Watcher
) -> None:
    session = shop.session()
    page.goto(shop.page_url(session["id"]))
    ran = page.evaluate(
        """() => new Promise((resolve) => {
            document.addEventListener("securitypolicyviolation", () => resolve(window.injected === true), {once: true});
            const script = document.createElement("script");
            script.textContent = "window.injected = true";
            document.body.appendChild(script);
        })"""
    )
    assert ran is False
    page.evaluate("""() => document.body.insertAdjacentHTML("beforeend", "<div id='x' style='width: 1234px'></div>")""")
    assert page.evaluate("document.getElementById('x').getBoundingClientRect().width") != 1234
    assert any("CSP violation: script-src" in p for p in watcher.problems)
    assert any("CSP violation: style-src" in p for p in watcher.problems)
    watcher.problems.clear()  # these violations were the point of the test
