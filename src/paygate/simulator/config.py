"""Simulator settings: constructor flags, changeable at run time through ``POST /_sim/config``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConfigError", "SimConfig"]


class ConfigError(ValueError):
    """An admin config update named an unknown field or gave a value of the wrong type / range."""


_RATES = (
    "error_rate",
    "reset_rate",
    "drop_response_rate",
    "webhook_drop_rate",
    "webhook_duplicate_rate",
    "webhook_reorder_rate",
)
_SECRETS = ("webhook_secret", "adyen_hmac_key", "api_keys")


@dataclass(slots=True)
class SimConfig:
    """Every knob of the simulator. Rates are shares in [0, 1]; durations are seconds unless named ``_ms``."""

    # latency added to every dialect API request: fixed + random part
    latency_ms: int = 0
    latency_jitter_ms: int = 0
    latency_distribution: str = "uniform"  # "uniform": U(0, jitter); "exponential": Exp(mean=jitter)
    # transport faults on dialect API requests
    error_rate: float = 0.0  # answered 500 "not processed" before acceptance: nothing recorded
    reset_rate: float = 0.0  # connection reset before acceptance: nothing recorded
    drop_response_rate: float = 0.0  # operation recorded, then the connection closes with no response
    # fault cards
    slow_seconds: float = 3.0  # how late the "slow" card answers
    hang_seconds: float = 600.0  # how long the "timeout" card holds the response after recording it
    # authentication: None accepts any non-empty key
    api_keys: list[str] | None = None
    # webhooks
    webhook_url: str | None = None  # may contain "{dialect}"; overridden per dialect by webhook_urls
    webhook_urls: dict[str, str] = field(default_factory=dict)
    webhook_secret: str | None = None  # HMAC secret for the native and stripe dialects
    adyen_hmac_key: str | None = None  # hex HMAC key for adyen; defaults to webhook_secret's UTF-8 bytes as hex
    adyen_merchant_account: str = "PaygateSimMerchant"
    webhook_drop_rate: float = 0.0  # event never sent (recorded as "dropped")
    webhook_duplicate_rate: float = 0.0  # event delivered twice
    webhook_reorder_rate: float = 0.0  # event held back and delivered after the next one
    webhook_delay_ms: int = 0  # every event waits this long before its first delivery
    webhook_max_attempts: int = 6
    webhook_retry_base_seconds: float = 0.5  # attempt n waits base * 2**(n-1)
    webhook_timeout_seconds: float = 5.0
    seed: int | None = None  # makes the random faults reproducible
    # long runs (benchmarks): keep only the newest N payments (with their operations, refunds and idempotent
    # answers); None keeps everything. Evicted payments are unknown afterwards (404, keys reusable).
    retain_payments: int | None = None
    # count authorizations per value of this metadata key (GET /_sim/tally); kept even for evicted payments
    tally_metadata_key: str | None = None

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update, validating names, types and ranges; nothing changes on error."""
        known = {f.name: f for f in dataclasses.fields(self)}
        staged: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise ConfigError(f"unknown setting {name!r}")
            current = getattr(self, name)
            if isinstance(current, bool) or (value is None and name in _NULLABLE):
                staged[name] = value
                continue
            if isinstance(current, float) or name in _FLOATS:
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ConfigError(f"{name} must be a number")
                value = float(value)
            elif isinstance(current, int) and name not in _NULLABLE:
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ConfigError(f"{name} must be an integer")
            elif name == "webhook_urls":
                if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                    raise ConfigError("webhook_urls must map dialect names to URLs")
            elif name == "api_keys":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ConfigError("api_keys must be a list of strings or null")
            elif name == "seed":
                if not isinstance(value, int):
                    raise ConfigError("seed must be an integer or null")
            elif name == "retain_payments":
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise ConfigError("retain_payments must be a positive integer or null")
            elif not isinstance(value, str):
                raise ConfigError(f"{name} must be a string")
            if name in _RATES and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be within [0, 1]")
            if isinstance(value, int | float) and value < 0:
                raise ConfigError(f"{name} must not be negative")
            if name == "latency_distribution" and value not in ("uniform", "exponential"):
                raise ConfigError("latency_distribution must be 'uniform' or 'exponential'")
            staged[name] = value
        for name, value in staged.items():
            setattr(self, name, value)

    def public(self) -> dict[str, Any]:
        """The settings as JSON, secrets masked."""
        out = dataclasses.asdict(self)
        for name in _SECRETS:
            if out[name] is not None:
                out[name] = "********"
        return out

    def copy(self) -> SimConfig:
        return dataclasses.replace(self, webhook_urls=dict(self.webhook_urls))

    def adyen_key_hex(self) -> str:
        if self.adyen_hmac_key:
            return self.adyen_hmac_key
        return (self.webhook_secret or "").encode().hex()

    def webhook_target(self, dialect: str) -> str | None:
        url = self.webhook_urls.get(dialect) or self.webhook_url
        return url.replace("{dialect}", dialect) if url else None


_FLOATS = frozenset({*_RATES, "slow_seconds", "hang_seconds", "webhook_retry_base_seconds", "webhook_timeout_seconds"})
_NULLABLE = frozenset(
    {"api_keys", "webhook_url", "webhook_secret", "adyen_hmac_key", "seed", "retain_payments", "tally_metadata_key"}
)
