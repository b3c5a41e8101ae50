"""The hosted page's browser security: static assets with Subresource Integrity, the Content-Security-Policy,
the CSRF double-submit token, and the response headers every page carries.

Contracts:

* :data:`ASSETS` is computed once at import (process start): each file in ``static/`` with its bytes, its SRI
  value (``sha384-<base64>``) and a URL that embeds a digest of the content (``/c/static/<hex>/<name>``), so
  the files can be cached for a year and a changed file is a new URL.
* :func:`content_security_policy` never allows inline script or style, ``eval``, or any third-party origin for
  subresources; ``form-action`` lists ``'self'`` plus the origins a form POST may be redirected to; the page
  can be framed only by origins the merchant listed (``frame-ancestors 'none'`` otherwise).
* CSRF: a per-browser random id lives in an HttpOnly cookie; the form carries
  ``HMAC(key, session_id | browser id)``. A POST is accepted only if the cookie and the token agree
  (:func:`csrf_valid`, constant-time). The key is derived from the vault's secret, so every API process of a
  deployment accepts the tokens of the others.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

__all__ = [
    "ASSETS",
    "CSRF_COOKIE",
    "CSRF_COOKIE_SECURE",
    "STATIC_PREFIX",
    "Asset",
    "browser_id_from",
    "content_security_policy",
    "csrf_cookie_header",
    "csrf_key",
    "csrf_token",
    "csrf_valid",
    "new_browser_id",
    "origin_of",
    "page_headers",
    "static_headers",
]

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/c/static"
CSRF_COOKIE = "pg_checkout_csrf"
CSRF_COOKIE_SECURE = "__Host-pg_checkout_csrf"  # __Host-: Secure, Path=/, no Domain; cannot be set by a subdomain

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


@dataclass(frozen=True, slots=True)
class Asset:
    name: str
    body: bytes
    media_type: str
    integrity: str  # "sha384-<base64>", for the integrity="" attribute
    digest: str  # short hex digest of the content, part of the URL

    @property
    def url(self) -> str:
        return f"{STATIC_PREFIX}/{self.digest}/{self.name}"


def _load_assets(directory: Path) -> Mapping[str, Asset]:
    assets: dict[str, Asset] = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.suffix not in _TYPES:
            continue
        body = path.read_bytes()
        integrity = "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()
        assets[path.name] = Asset(
            name=path.name,
            body=body,
            media_type=_TYPES[path.suffix],
            integrity=integrity,
            digest=hashlib.sha256(body).hexdigest()[:16],
        )
    return MappingProxyType(assets)


ASSETS: Mapping[str, Asset] = _load_assets(STATIC_DIR)


def origin_of(url: str | None) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, else ``None`` (never a wildcard, never a path)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _source_list(origins: Iterable[str | None]) -> list[str]:
    seen: list[str] = []
    for origin in origins:
        clean = origin_of(origin)
        if clean and clean not in seen:
            seen.append(clean)
    return seen


def content_security_policy(*, form_action: Iterable[str | None] = (), frame_ancestors: Iterable[str] = ()) -> str:
    """The page's CSP. ``form_action``: extra origins a POST may redirect to; ``frame_ancestors``: embedders."""
    ancestors = _source_list(frame_ancestors)
    directives = [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "form-action " + " ".join(["'self'", *_source_list(form_action)]),
        "base-uri 'none'",
        "frame-ancestors " + (" ".join(ancestors) if ancestors else "'none'"),
    ]
    return "; ".join(directives)


def page_headers(csp: str, *, framed: bool) -> dict[str, str]:
    """Headers for every HTML page response (payment form and the error / status pages)."""
    headers = {
        "Content-Security-Policy": csp,
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(self)",
    }
    if not framed:
        headers["X-Frame-Options"] = "DENY"  # for browsers that predate frame-ancestors
    return headers


def static_headers(asset: Asset) -> dict[str, str]:
    return {
        "Cache-Control": "public, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
        "Referrer-Policy": "no-referrer",
    }


# --- CSRF ------------------------------------------------------------------------------------------------------


def csrf_key(vault_secret: str) -> bytes:
    """The CSRF MAC key: a one-way derivation of the vault secret (the secret itself never signs tokens)."""
    return hmac.new(vault_secret.encode(), b"paygate/checkout/csrf/v1", hashlib.sha256).digest()


def new_browser_id() -> str:
    return secrets.token_urlsafe(32)


def _valid_browser_id(value: str | None) -> bool:
    return bool(value) and 32 <= len(value or "") <= 64 and (value or "").replace("-", "").replace("_", "").isalnum()


def csrf_token(key: bytes, session_id: str, browser_id: str) -> str:
    mac = hmac.new(key, f"{session_id}|{browser_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_valid(key: bytes, session_id: str, browser_id: str | None, token: str | None) -> bool:
    """True when the form's ``token`` was issued for this session to the browser holding cookie ``browser_id``."""
    if not token or not browser_id or not _valid_browser_id(browser_id) or len(token) > 128:
        return False
    return hmac.compare_digest(csrf_token(key, session_id, browser_id), token)


def browser_id_from(cookies: Mapping[str, str], *, secure: bool) -> str | None:
    value = cookies.get(CSRF_COOKIE_SECURE if secure else CSRF_COOKIE)
    return value if _valid_browser_id(value) else None


def csrf_cookie_header(browser_id: str, *, secure: bool, embeddable: bool) -> str:
    """``Set-Cookie`` value for the browser id.

    SameSite=Strict keeps the cookie out of every cross-site request. A page the merchant allows to be framed
    lives in a third-party context, where a Strict cookie is never sent; there (HTTPS only) the cookie is
    ``SameSite=None; Partitioned`` instead, so it is kept per embedding site and the double submit still works.
    """
    name = CSRF_COOKIE_SECURE if secure else CSRF_COOKIE
    attrs = [f"{name}={browser_id}", "Path=/", "HttpOnly", "Max-Age=86400"]
    if secure:
        attrs.append("Secure")
        attrs.extend(["SameSite=None", "Partitioned"] if embeddable else ["SameSite=Strict"])
    else:
        attrs.append("SameSite=Strict")
    return "; ".join(attrs)
