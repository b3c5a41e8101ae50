"""Fixtures for vault tests: key providers (file, SoftHSM2) with fresh keys per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from paygate.vault.keys.base import KeyProvider
from paygate.vault.keys.file import FileKeyProvider

SOFTHSM_LIBRARY = os.environ.get("PAYGATE_SOFTHSM_LIB", "/usr/lib/softhsm/libsofthsm2.so")
TOKEN_LABEL = "paygate-test"
USER_PIN = "1234"
SO_PIN = "123456"


@dataclass(frozen=True)
class SoftHsmToken:
    library: str
    label: str
    pin: str


def _softhsm_missing() -> str | None:
    if not Path(SOFTHSM_LIBRARY).exists():
        return f"SoftHSM2 module {SOFTHSM_LIBRARY} not found (run scripts/install-softhsm.sh)"
    if shutil.which("softhsm2-util") is None:
        return "softhsm2-util not on PATH (run scripts/install-softhsm.sh)"
    return None


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmToken]:
    """A freshly initialised SoftHSM2 token in a temp dir, for the whole test session.

    SoftHSM2 reads ``SOFTHSM2_CONF`` when the library is initialised, so the variable is set for this process
    before python-pkcs11 loads the module (and the module is re-initialised if something loaded it earlier).
    Missing SoftHSM2 fails the test under CI (``CI`` set) and skips it locally.
    """
    missing = _softhsm_missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; CI must install SoftHSM2 before running tests")
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("softhsm")
    tokens = root / "tokens"
    tokens.mkdir(mode=0o700)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            TOKEN_LABEL,
            "--pin",
            USER_PIN,
            "--so-pin",
            SO_PIN,
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    import pkcs11

    pkcs11.lib(SOFTHSM_LIBRARY).reinitialize()  # pick up the new config even if loaded before
    yield SoftHsmToken(SOFTHSM_LIBRARY, TOKEN_LABEL, USER_PIN)
    from paygate.vault.keys.hsm import close_sessions

    close_sessions()
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


@pytest.fixture
def file_provider(tmp_path: Path) -> FileKeyProvider:
    return FileKeyProvider(tmp_path / "keys" / "kek.json")


@pytest.fixture
def hsm_provider(softhsm_token: SoftHsmToken) -> Iterator[KeyProvider]:
    from paygate.vault.keys.hsm import Pkcs11KeyProvider

    provider = Pkcs11KeyProvider(
        softhsm_token.library,
        token_label=softhsm_token.label,
        pin=softhsm_token.pin,
        namespace=f"t{uuid.uuid4().hex[:12]}",  # fresh key set per test on the shared token
    )
    yield provider
    provider.close()


@pytest.fixture(params=["file", "hsm"])
def provider(request: pytest.FixtureRequest) -> KeyProvider:
    """Every KeyProvider implementation; tests using it form the shared provider contract suite."""
    fixture = "file_provider" if request.param == "file" else "hsm_provider"
    result: KeyProvider = request.getfixturevalue(fixture)
    return result
