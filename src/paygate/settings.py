"""Settings from the environment (``PAYGATE_*``), validated once at start-up."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from limits import parse as parse_rate_limit
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYGATE_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./var/paygate.db",
        description="SQLite file (default) or postgresql://user@host/db",
    )
    db_pool_size: int = 10
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = Field(
        default="FULL", description="FULL survives power loss; NORMAL (WAL) survives process crashes only"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(default=None, description="Base URL customers and merchants reach paygate at")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    access_log: bool = True
    gc_gen0_threshold: int = Field(
        default=10_000,
        description="Serving processes freeze start-up objects and run young GC collections this rarely; 0: defaults",
    )
    simulator_url: str | None = Field(default=None, description="Route test-mode payments to this PSP simulator")
    simulator_api_key: str = Field(default="sim_test_key", description="Bearer key sent to the simulator")
    processor_connect_timeout: float = Field(default=3.0, gt=0, description="Seconds to connect to a processor")
    processor_timeout: float = Field(
        default=20.0, gt=0, description="Seconds to wait for a processor's answer; then the outcome is unknown"
    )
    processor_aiohttp: bool = Field(
        default=True, description="Processor calls through aiohttp (about 4x less CPU); false: httpx2 for every call"
    )
    processor_max_attempts: int = Field(
        default=2, ge=1, description="Tries per processor call (retries carry the same idempotency key)"
    )
    breaker_open_seconds: float = Field(default=30.0, gt=0, description="How long an open circuit stays open")
    breaker_min_calls: int = Field(default=5, ge=1, description="Calls in the window before a circuit can open")
    breaker_failure_threshold: float = Field(
        default=0.5, gt=0, le=1, description="Share of failed calls in the window that opens the circuit"
    )
    vault_key_file: str = Field(
        default="var/vault-keys.json", description="Key-encrypting keys for the vault and processor credentials"
    )
    # Card vault (docs/vault.md)
    vault_key_provider: Literal["file", "pkcs11"] = Field(
        default="file", description="Where the vault's key-encrypting keys live: the key file or a PKCS#11 HSM"
    )
    vault_secret: str | None = Field(
        default=None, description="Card fingerprint HMAC secret (>= 32 bytes); unset: generated into vault_secret_file"
    )
    vault_secret_file: str | None = Field(
        default=None, description="Where a generated fingerprint secret is kept (0600); default <key file>.secret"
    )
    vault_pkcs11_library: str = Field(default="/usr/lib/softhsm/libsofthsm2.so", description="PKCS#11 module path")
    vault_pkcs11_token_label: str = Field(default="paygate", description="PKCS#11 token holding the KEKs")
    vault_pkcs11_pin: str | None = Field(default=None, description="PKCS#11 user PIN")
    vault_pkcs11_namespace: str = Field(default="paygate-kek", description="Label prefix of the KEK objects")
    vault_cvc_ttl_seconds: float = Field(
        default=600.0, gt=0, description="How long a CVC waits in memory for the confirmation it came with"
    )
    simulator_webhook_secret: str | None = Field(
        default=None, description="Secret the simulator / sandbox signs inbound webhooks with (/hooks/…)"
    )
    # Merchant webhooks and the worker (docs/webhooks.md)
    webhook_allowlist: str = Field(
        default="", description="Comma-separated hosts or CIDRs webhook deliveries may reach despite SSRF rules"
    )
    webhook_allow_http: bool = Field(default=False, description="Allow http:// endpoint URLs in live mode too")
    webhook_timeout_seconds: float = Field(default=15.0, gt=0, description="A 2xx within this time is success")
    webhook_retry_schedule: str = Field(
        default="", description="Comma-separated retry delays in seconds (default: about 3 days of backoff)"
    )
    webhook_disable_after_seconds: int = Field(default=5 * 86400, description="Disable endpoints failing this long")
    worker_lease_seconds: int = Field(default=60, ge=1, description="A claimed job returns to the queue after this")
    worker_batch_size: int = Field(default=20, ge=1, description="Jobs claimed per round (deliveries run at once)")
    nats_url: str | None = Field(default=None, description="Publish every event to NATS JetStream too")
    nats_stream: str = "PAYGATE_EVENTS"
    nats_subject_prefix: str = "paygate.events"
    checkout_grace_seconds: int = Field(
        default=60, ge=0, le=600, description="A checkout submit is still accepted this long after expires_at"
    )
    # Hosted checkout page (docs/checkout.md)
    checkout_submit_limit_per_session: str = Field(
        default="10/minute", description="Card submits allowed per checkout session (moving window, limits syntax)"
    )
    checkout_submit_limit_per_ip: str = Field(
        default="30/minute", description="Card submits allowed per client IP across all sessions (moving window)"
    )
    redis_url: str | None = Field(
        default=None, description="Redis for limits shared by every API process (redis://host:6379/0); unset: memory"
    )

    @field_validator("checkout_submit_limit_per_session", "checkout_submit_limit_per_ip")
    @classmethod
    def _rate_limit_syntax(cls, value: str) -> str:
        try:
            parse_rate_limit(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit such as '10/minute': {value!r}") from exc
        return value

    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
