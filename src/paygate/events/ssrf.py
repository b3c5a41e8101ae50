"""SSRF protection for merchant webhook URLs.

Merchants choose where paygate sends requests, so a URL must never let them reach paygate's own network:
loopback, private (RFC 1918, unique-local), link-local (which includes cloud metadata at 169.254.169.254),
shared (100.64/10, e.g. Alibaba's metadata at 100.100.100.200), multicast, reserved and unspecified addresses
are refused. Rule: an address is allowed only if it is globally routable (:attr:`ipaddress.IPv4Address.is_global`)
and not multicast; IPv4-mapped IPv6 addresses are judged by their IPv4 address.

The check runs at **delivery time on every hop** (the first request and each redirect) **after DNS resolution**,
and the connection then goes to the address that was checked (no second lookup), so DNS rebinding cannot slip
past it. :class:`Allowlist` (``PAYGATE_WEBHOOK_ALLOWLIST``: comma-separated host names or CIDRs) exempts named
hosts or networks so local development (``http://127.0.0.1:…``) still works.

Scheme rule (:func:`check_scheme`): ``https`` always; ``http`` only for test-mode endpoints or when
``PAYGATE_WEBHOOK_ALLOW_HTTP`` is set.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["Allowlist", "BlockedDestination", "Destination", "check_address", "check_scheme", "resolve"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedDestination(Exception):
    """The URL may not be contacted; the message says why (safe to show the merchant)."""


@dataclass(frozen=True)
class Allowlist:
    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, spec: str) -> Allowlist:
        """``"localhost, 127.0.0.1, 10.0.0.0/8"`` → hosts and networks (a bare IP is a /32 or /128)."""
        hosts: set[str] = set()
        nets: list[IPNetwork] = []
        for item in (x.strip() for x in spec.split(",")):
            if not item:
                continue
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(nets))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self.networks)


def check_scheme(url: str, *, livemode: bool, allow_http: bool) -> None:
    """Raise ValueError unless ``url`` is an absolute http(s) URL with a host that this mode may use."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("Invalid URL: must be an absolute https:// URL.")
    if parts.scheme == "http" and livemode and not allow_http:
        raise ValueError("Invalid URL: live mode webhook endpoints must use https.")
    if parts.username or parts.password:
        raise ValueError("Invalid URL: credentials in the URL are not allowed.")


def _effective(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def check_address(ip: IPAddress, allowlist: Allowlist) -> None:
    """Raise :class:`BlockedDestination` for an address paygate must not contact."""
    if allowlist.allows_address(ip):
        return
    eff = _effective(ip)
    if allowlist.allows_address(eff):
        return
    if eff.is_global and not eff.is_multicast:
        return
    if eff.is_loopback:
        kind = "loopback"
    elif eff.is_link_local:
        kind = "link-local (cloud metadata)"
    elif eff.is_private:
        kind = "private"
    else:
        kind = "non-public"
    raise BlockedDestination(f"{ip} is a {kind} address; webhook deliveries may only reach public addresses")


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one hop connects: the URL's host (for Host / TLS SNI) and the checked address to dial."""

    host: str
    port: int
    address: str


async def resolve(url: str, allowlist: Allowlist) -> Destination:
    """Resolve ``url``'s host and check every address it resolves to; returns the first (checked) address.

    Hosts named in the allow-list skip the address rules. Raises :class:`BlockedDestination` when any address
    is forbidden or the name does not resolve."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise BlockedDestination(f"could not resolve {host}: {exc.strerror or exc}") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses:
            raise BlockedDestination(f"could not resolve {host}")
    if not allowlist.allows_host(host):
        for ip in addresses:
            check_address(ip, allowlist)
    return Destination(host=host, port=port, address=str(addresses[0]))
