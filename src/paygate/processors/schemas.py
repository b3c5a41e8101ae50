"""Request parameters and API objects for processor accounts and routing rules."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, field_validator

from paygate.kit import jsonx
from paygate.kit.money import normalize_currency
from paygate.kit.params import Metadata, MetadataUpdate, Params, StrictBool, _int

__all__ = [
    "CreateProcessorParams",
    "CreateRuleParams",
    "Credentials",
    "RuleConditions",
    "UpdateProcessorParams",
    "UpdateRuleParams",
    "processor_object",
    "rule_object",
]

Int = Annotated[int, BeforeValidator(_int)]
ConnectorName = Literal["simulator", "stripe", "adyen"]


def _url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


Url = Annotated[str, BeforeValidator(_url)]


class Credentials(Params):
    api_key: str | None = None
    webhook_secret: str | None = None
    merchant_account: str | None = None  # Adyen merchantAccount


class CreateProcessorParams(Params):
    connector: ConnectorName
    base_url: Url
    credentials: Credentials = Credentials()
    priority: Int = 100
    enabled: StrictBool = True
    description: str | None = None
    metadata: Metadata = {}


class UpdateProcessorParams(Params):
    base_url: Url | None = None
    credentials: Credentials | None = None
    priority: Int | None = None
    enabled: StrictBool | None = None
    description: str | None = None
    metadata: MetadataUpdate | None = None


class RuleConditions(Params):
    currency: list[str] | None = None
    card_brand: list[str] | None = None
    country: list[str] | None = None  # card country (BIN) or customer country, ISO 3166-1 alpha-2
    amount_gte: Int | None = None
    amount_lte: Int | None = None

    @field_validator("currency", mode="before")
    @classmethod
    def _currencies(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        return None if v is None else [normalize_currency(c, param="conditions[currency]") for c in v]

    @field_validator("card_brand", "country", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("country")
    @classmethod
    def _countries(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        for c in v:
            if len(c) != 2 or not c.isalpha():
                raise ValueError("countries are ISO 3166-1 alpha-2 codes")
        return [c.upper() for c in v]


class CreateRuleParams(Params):
    processors: Annotated[list[str], Field(min_length=1, max_length=10)]
    conditions: RuleConditions = RuleConditions()
    weights: dict[str, Int] | None = None
    priority: Int = 100
    enabled: StrictBool = True
    description: str | None = None


class UpdateRuleParams(Params):
    processors: Annotated[list[str], Field(min_length=1, max_length=10)] | None = None
    conditions: RuleConditions | None = None
    weights: dict[str, Int] | None = None
    priority: Int | None = None
    enabled: StrictBool | None = None
    description: str | None = None


def processor_object(row: dict[str, Any], *, credentials: Credentials, health: dict[str, Any]) -> dict[str, Any]:
    """Credentials are never returned: only which of them are set."""
    return {
        "id": row["id"],
        "object": "processor",
        "connector": row["connector"],
        "base_url": row["base_url"],
        "created": row["created"],
        "description": row["description"],
        "enabled": bool(row["enabled"]),
        "livemode": bool(row["livemode"]),
        "metadata": jsonx.loads(row["metadata"]),
        "priority": row["priority"],
        "credentials": {
            "api_key_set": bool(credentials.api_key),
            "webhook_secret_set": bool(credentials.webhook_secret),
            "merchant_account": credentials.merchant_account,
        },
        "health": health,
    }


def rule_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "routing_rule",
        "conditions": jsonx.loads(row["conditions"]),
        "created": row["created"],
        "description": row["description"],
        "enabled": bool(row["enabled"]),
        "livemode": bool(row["livemode"]),
        "priority": row["priority"],
        "processors": jsonx.loads(row["processors"]),
        "weights": jsonx.loads(row["weights"]),
    }
