"""Settings from the environment (``PAYGATE_*``), validated once at start-up."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYGATE_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./var/paygate.db",
        description="SQLite file (default) or postgresql+psycopg://user@host/db",
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
    simulator_url: str | None = Field(default=None, description="Route test-mode payments to this PSP simulator")

    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
