"""Browser tests: Playwright (sync API) driving Debian's Chromium headless against a paygate test server.

* The browser is ``/usr/bin/chromium`` (``PAYGATE_CHROMIUM`` overrides); when it is missing,
  ``scripts/install-chromium.sh`` installs it. Playwright's own browser download is never used. Under ``CI`` a
  browser that still cannot be found fails the run instead of skipping it.
* One SQLite-backed server for the whole browser suite (the page tests in tests/checkout run on every database);
  a tiny "merchant site" on another origin serves the success and cancel pages.
* Every test's pages are watched: uncaught script errors, console errors and CSP violations fail the test (a
  document the page deliberately answers with 4xx -- 410 expired, 422 decline -- is not an error).
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, sync_playwright

from tests.checkout._page_support import reset_limits, session_form
from tests.conftest import Merchant
from tests.support.databases import create_sqlite
from tests.support.server import RunningServer, free_port

CHROMIUM = os.environ.get("PAYGATE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
REPO = Path(__file__).resolve().parents[2]

# Reports CSP violations to the console (where the watcher sees them). Injected by the browser's debugging
# protocol, so it is not an inline script as far as the page's CSP is concerned.
_CSP_PROBE = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + e.blockedURI);
});
"""


def ensure_chromium() -> str:
    if not Path(CHROMIUM).exists():
        subprocess.run(["bash", str(REPO / "scripts" / "install-chromium.sh")], check=False)
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (scripts/install-chromium.sh could not install it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


class MerchantSite:
    """A stand-in for the merchant's shop on another origin: every GET answers a small HTML page."""

    def __init__(self) -> None:
        self.port = free_port()
        self.origin = f"http://localhost:{self.port}"
        self.hits: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.hits.append(self.path)
                title = "Thank you for your order" if self.path.startswith("/success") else "Your cart"
                body = (
                    f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
                    f'<link rel="icon" href="data:,"></head><body><h1>{title}</h1><p>Merchant site</p></body></html>'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="merchant-site", daemon=True)

    def start(self) -> MerchantSite:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def merchant_site() -> Iterator[MerchantSite]:
    site = MerchantSite().start()
    yield site
    site.stop()


@pytest.fixture(scope="session")
def browser_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = RunningServer(create_sqlite(tmp_path_factory.mktemp("browser-sqlite")), "sqlite").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="package")
def playwright_instance() -> Iterator[Playwright]:
    """Package-scoped: Playwright's sync API keeps an event loop running in the main thread while it is open,
    which would break every later test that calls ``asyncio.run``."""
    ensure_chromium()
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def chromium(playwright_instance: Playwright) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(executable_path=ensure_chromium(), args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def screenshots(artifacts_dir: Path) -> Path:
    path = artifacts_dir / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Shop:
    """The test's merchant on the browser server, with sessions that return to the merchant site."""

    def __init__(self, server: RunningServer, site: MerchantSite) -> None:
        self.server = server
        self.site = site
        self.merchant = Merchant(server)

    def session(self, **overrides: Any) -> dict[str, Any]:
        form = session_form(
            success_url=f"{self.site.origin}/success?session={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{self.site.origin}/cancel",
            **overrides,
        )
        resp = self.merchant.post("/v1/checkout/sessions", form)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def page_url(self, session_id: str) -> str:
        return f"{self.server.base_url}/c/pay/{session_id}"


@pytest.fixture
def shop(browser_server: RunningServer, merchant_site: MerchantSite) -> Iterator[Shop]:
    reset_limits(browser_server)
    s = Shop(browser_server, merchant_site)
    yield s
    s.merchant.http.close()


class Watcher:
    """Collects what must not happen in a page: script errors, console errors, CSP violations."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        location = msg.location.get("url", "") if msg.location else ""
        path = urlsplit(location).path
        if msg.text.startswith("Failed to load resource: the server responded with a status of 4") and (
            path.startswith("/c/pay/")
        ):
            return  # a page answered with its deliberate status (422 decline, 410 expired ...)
        self.problems.append(f"console error: {msg.text} ({location})")

    def page_error(self, error: Exception) -> None:
        self.problems.append(f"uncaught script error: {error}")

    def watch(self, page: Page) -> Page:
        page.on("console", self.console)
        page.on("pageerror", self.page_error)
        return page

    def assert_clean(self) -> None:
        assert self.problems == []


@pytest.fixture
def watcher() -> Iterator[Watcher]:
    w = Watcher()
    yield w
    w.assert_clean()  # after every context of the test has closed


def new_context(browser: Browser, watcher: Watcher, **options: Any) -> BrowserContext:
    context = browser.new_context(**{"locale": "en-US", "viewport": {"width": 1280, "height": 900}, **options})
    context.add_init_script(_CSP_PROBE)
    context.on("page", watcher.watch)
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def context(chromium: Browser, watcher: Watcher) -> Iterator[BrowserContext]:
    ctx = new_context(chromium, watcher)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
