"""The vault against the real database: fail-closed integrity, detokenization audit chain, KEK rotation,
SoftHSM2 round trip and the ``paygate vault rotate-kek`` / ``paygate audit verify`` commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from typer.testing import CliRunner

from paygate.cli import app as cli
from paygate.kit.secret import Secret
from paygate.merchants.context import AuthContext
from paygate.settings import get_settings
from paygate.vault.errors import VaultError, VaultIntegrityError
from paygate.vault.keys.base import KeyProvider
from paygate.vault.schemas import PaymentMethodData
from paygate.vault.service import VaultService
from paygate.vault.tables import payment_methods, vault_audit
from tests.conftest import Merchant
from tests.integration.api._support import stripe_error
from tests.integration.vault._support import publishable, tokenize
from tests.support.server import RunningServer

SOFTHSM_LIBRARY = os.environ.get("PAYGATE_SOFTHSM_LIB", "/usr/lib/softhsm/libsofthsm2.so")


def _detokenize(server: RunningServer, merchant_id: str, token: str, vault: VaultService | None = None) -> Any:
    v = vault or server.gateway.vault
    return server.call(
        v.detokenize(merchant_id=merchant_id, livemode=False, token=token, purpose="test", actor="pytest")
    )


def _sealed(server: RunningServer, pm_id: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with server.gateway.db.read() as conn:
            row = (await conn.execute(select(payment_methods).where(payment_methods.c.id == pm_id))).mappings().one()
            return dict(row)

    return server.call(go())


def _set(server: RunningServer, pm_id: str, **values: Any) -> None:
    async def go() -> None:
        async with server.gateway.db.write() as conn:
            await conn.execute(update(payment_methods).where(payment_methods.c.id == pm_id).values(**values))

    server.call(go())


def test_tampered_ciphertext_or_moved_record_fails_closed(merchant: Merchant) -> None:
    server = merchant.server
    with publishable(merchant) as pk:
        a = tokenize(pk, "4242424242424242")["id"]
        b = tokenize(pk, "5555555555554444")["id"]
    assert _detokenize(server, merchant.id, a).number == "4242424242424242"
    original = _sealed(server, a)["sealed"]
    flipped = bytes(original[:-1]) + bytes([original[-1] ^ 1])
    _set(server, a, sealed=flipped)
    with pytest.raises(VaultIntegrityError):
        _detokenize(server, merchant.id, a)
    _set(server, b, sealed=original)  # a's ciphertext under b's token: wrong AAD
    with pytest.raises(VaultIntegrityError):
        _detokenize(server, merchant.id, b)
    _set(server, a, kek_version=_sealed(server, a)["kek_version"] + 7)
    with pytest.raises(VaultIntegrityError):
        _detokenize(server, merchant.id, a)
    pi = merchant.post(
        "/v1/payment_intents", {"amount": 500, "currency": "usd", "payment_method": b, "confirm": "true"}
    )
    err = stripe_error(pi, 402, "processing_error")
    assert "vault" in err["message"]
    with pytest.raises(VaultError):
        _detokenize(server, "acct_other", b)


def _audit_rows(server: RunningServer) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        async with server.gateway.db.read() as conn:
            return [dict(r) for r in (await conn.execute(select(vault_audit).order_by(vault_audit.c.seq))).mappings()]

    return server.call(go())


def _exec(server: RunningServer, stmt: Any) -> None:
    async def go() -> None:
        async with server.gateway.db.write() as conn:
            await conn.execute(stmt)

    server.call(go())


def test_every_detokenization_is_audited_and_the_chain_detects_edits_and_deletions(
    merchant: Merchant, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = merchant.server
    with publishable(merchant) as pk:
        pm = tokenize(pk, "4242424242424242")["id"]
    before = len(_audit_rows(server))
    resp = merchant.post(
        "/v1/payment_intents", {"amount": 700, "currency": "usd", "payment_method": pm, "confirm": "true"}
    )
    assert resp.json()["status"] == "succeeded"
    _detokenize(server, merchant.id, pm)
    rows = _audit_rows(server)
    assert len(rows) == before + 2
    first, last = rows[-2], rows[-1]
    assert first["token"] == pm and first["outcome"] == "granted" and first["purpose"].startswith("authorize:ch_")
    assert first["actor"] == f"payments:{merchant.id}"
    assert server.call(server.gateway.vault.verify_audit()).ok

    monkeypatch.setenv("PAYGATE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        assert runner.invoke(cli, ["audit", "verify"]).exit_code == 0
        _exec(server, update(vault_audit).where(vault_audit.c.seq == first["seq"]).values(purpose="export"))
        edited = server.call(server.gateway.vault.verify_audit())
        assert not edited.ok and edited.broken_seq == first["seq"]
        result = runner.invoke(cli, ["audit", "verify"])
        assert result.exit_code == 1 and f"seq {first['seq']}" in result.output
        _exec(server, update(vault_audit).where(vault_audit.c.seq == first["seq"]).values(purpose=first["purpose"]))
        _exec(server, delete(vault_audit).where(vault_audit.c.seq == last["seq"]))  # cut the tail
        cut = server.call(server.gateway.vault.verify_audit())
        assert not cut.ok and cut.broken_seq == last["seq"]
    finally:
        get_settings.cache_clear()
        _exec(server, delete(vault_audit).where(vault_audit.c.seq == last["seq"]))
        _exec(server, insert(vault_audit).values({k: v for k, v in last.items() if k != "id"}))
    assert server.call(server.gateway.vault.verify_audit()).ok


def test_kek_rotation_rewraps_old_records_and_both_generations_keep_decrypting(merchant: Merchant) -> None:
    server = merchant.server
    vault = server.gateway.vault
    with publishable(merchant) as pk:
        old = tokenize(pk, "4242424242424242")["id"]
        old_kek = _sealed(server, old)["kek_id"]
        new_kek = vault.provider.rotate()  # rotation under way: nothing re-wrapped yet
        assert _detokenize(server, merchant.id, old).number == "4242424242424242"
        new = tokenize(pk, "5555555555554444")["id"]
    assert _sealed(server, new)["kek_id"] == new_kek != old_kek
    report = server.call(vault.rotate_kek(rotate=False))
    assert report.kek_id == new_kek and report.rewrapped >= 1
    assert _sealed(server, old)["kek_id"] == new_kek
    assert _detokenize(server, merchant.id, old).number == "4242424242424242"
    assert _detokenize(server, merchant.id, new).number == "5555555555554444"
    confirmed = merchant.post(
        "/v1/payment_intents", {"amount": 300, "currency": "usd", "payment_method": old, "confirm": "true"}
    )
    assert confirmed.json()["status"] == "succeeded"


@pytest.fixture(scope="module")
def hsm_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyProvider]:
    if not Path(SOFTHSM_LIBRARY).exists() or shutil.which("softhsm2-util") is None:
        if os.environ.get("CI"):
            pytest.fail("SoftHSM2 is required in CI (scripts/install-softhsm.sh)")
        pytest.skip("SoftHSM2 not installed (scripts/install-softhsm.sh)")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir(mode=0o700)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    label = f"pgv{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", "1234", "--so-pin", "123456"],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        check=True,
        capture_output=True,
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    import pkcs11

    from paygate.vault.keys.hsm import Pkcs11KeyProvider, close_sessions

    pkcs11.lib(SOFTHSM_LIBRARY).reinitialize()
    provider = Pkcs11KeyProvider(SOFTHSM_LIBRARY, token_label=label, pin=Secret("1234"), namespace="vault-it")
    yield provider
    provider.close()
    close_sessions()
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


def test_softhsm_provider_round_trips_and_rotates_stored_cards(merchant: Merchant, hsm_provider: KeyProvider) -> None:
    server = merchant.server
    vault = VaultService(server.gateway.db, server.gateway.settings, provider=hsm_provider, secret=Secret("s" * 32))
    ctx = AuthContext(merchant.id, False, "publishable")
    data = PaymentMethodData.model_validate(
        {"type": "card", "card": {"number": "378282246310005", "exp_month": "3", "exp_year": "2033", "cvc": "1234"}}
    )

    async def store() -> str:
        prepared = vault.prepare(ctx, data)
        async with vault.db.write() as conn:
            await vault.store(conn, prepared)
        return prepared.id

    pm = server.call(store())
    try:
        card = _detokenize(server, merchant.id, pm, vault)
        assert (card.number, card.exp_month, card.exp_year, card.cvc) == ("378282246310005", 3, 2033, "1234")
        assert _sealed(server, pm)["kek_id"] == hsm_provider.current_kek_id()
        new_kek = hsm_provider.rotate()
        server.call(vault.rotate_kek(rotate=False))
        assert _sealed(server, pm)["kek_id"] == new_kek
        again = _detokenize(server, merchant.id, pm, vault)
        assert again.number == "378282246310005" and again.cvc is None  # the CVC was for one use only
    finally:
        _exec(server, delete(payment_methods).where(payment_methods.c.id == pm))


def test_rotate_kek_command_rewraps_with_the_configured_provider(
    merchant: Merchant, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with publishable(merchant) as pk:
        pm = tokenize(pk, "4242424242424242")["id"]
    before = _sealed(merchant.server, pm)["kek_version"]
    monkeypatch.setenv("PAYGATE_DATABASE_URL", database_url)
    monkeypatch.setenv("PAYGATE_VAULT_KEY_FILE", merchant.server.gateway.settings.vault_key_file)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["vault", "rotate-kek"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert _sealed(merchant.server, pm)["kek_version"] == before + 1
    assert _detokenize(merchant.server, merchant.id, pm).number == "4242424242424242"
