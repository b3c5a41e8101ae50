"""The PSP simulator as a separate OS process on a free loopback port (never called in-process)."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import httpx2

from tests.support.server import free_port


class SimulatorProcess:
    def __init__(self, **config: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = ", ".join(f"{k}={v!r}" for k, v in config.items())
        code = f"from paygate.simulator import serve; serve('127.0.0.1', {self.port}{', ' + args if args else ''})"
        self.proc = subprocess.Popen([sys.executable, "-c", code])
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx2.get(f"{self.url}/_sim/health", timeout=0.5).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("simulator did not start")
            time.sleep(0.05)

    def configure(self, **changes: Any) -> None:
        r = httpx2.post(f"{self.url}/_sim/config", json=changes, timeout=5)
        r.raise_for_status()

    def operations(self, **filters: str) -> list[dict[str, Any]]:
        r = httpx2.get(f"{self.url}/_sim/operations", params=filters, timeout=5)
        r.raise_for_status()
        body = r.json()
        return list(body["data"] if isinstance(body, dict) else body)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
