"""Who is calling: the authenticated merchant, mode and key kind for one request."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AuthContext"]


@dataclass(frozen=True, slots=True)
class AuthContext:
    merchant_id: str
    livemode: bool
    key_kind: str  # "secret" | "publishable"
    request_id: str = ""
    idempotency_key: str | None = None

    @property
    def mode(self) -> str:
        return "live" if self.livemode else "test"
