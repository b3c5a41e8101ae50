"""Helpers shared by the simulator integration tests (imported by conftest and the test modules)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2

WEBHOOK_SECRET = "whsec_sim_test_secret"
ADYEN_HMAC_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
SLOW_SECONDS = 0.2
HANG_SECONDS = 4.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: int


@dataclass
class Receiver:
    url: str
    hooks: list[Received] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)  # path → remaining 500 answers
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [h for h in self.hooks if predicate(h)]
            if found:
                return found
            time.sleep(0.05)
        return []


def sim_get(sim_url: str, path: str, **params: str) -> dict[str, Any]:
    response = httpx2.get(f"{sim_url}{path}", params=params, timeout=5)
    response.raise_for_status()
    data: dict[str, Any] = json.loads(response.content)
    return data


def sim_post(sim_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx2.post(f"{sim_url}{path}", json=body, timeout=5)
    data: dict[str, Any] = json.loads(response.content)
    return data
