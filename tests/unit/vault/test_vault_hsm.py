"""PKCS#11 provider specifics against SoftHSM2 (the shared contract runs in test_vault_crypto.py)."""

from __future__ import annotations

from typing import Protocol

import pytest

from paygate.vault.crypto import open_card, seal_card
from paygate.vault.errors import KeyProviderError
from paygate.vault.keys.base import KeyProvider


class SoftHsmToken(Protocol):  # shape of the ``softhsm_token`` fixture in conftest.py
    library: str
    label: str
    pin: str


def _provider(token: SoftHsmToken, namespace: str, pin: str | None = None) -> KeyProvider:
    from paygate.vault.keys.hsm import Pkcs11KeyProvider

    return Pkcs11KeyProvider(token.library, token_label=token.label, pin=pin or token.pin, namespace=namespace)


def test_kek_is_generated_inside_the_token_non_extractable_and_labelled(softhsm_token: SoftHsmToken) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    provider = _provider(softhsm_token, "labelcheck")
    assert provider.current_kek_id() == "labelcheck:v1"
    assert provider.rotate() == "labelcheck:v2"
    lib = pkcs11.lib(softhsm_token.library)
    # The provider's session has logged this process in (PKCS#11 login is per application), so a plain
    # session sees the private key objects; logging in again would fail with UserAlreadyLoggedIn.
    with lib.get_token(token_label=softhsm_token.label).open() as session:
        for label in ("labelcheck:v1", "labelcheck:v2"):
            key = session.get_key(object_class=ObjectClass.SECRET_KEY, label=label)
            assert key[Attribute.EXTRACTABLE] is False
            assert key[Attribute.SENSITIVE] is True
            assert key[Attribute.TOKEN] is True
            with pytest.raises(pkcs11.exceptions.AttributeSensitive):
                key[Attribute.VALUE]


def test_keys_live_in_the_token_not_the_process(softhsm_token: SoftHsmToken) -> None:
    first = _provider(softhsm_token, "persist")
    sealed = seal_card(
        number="5555555555554444", exp_month=3, exp_year=2032, token="pm_x", merchant_id="m", provider=first
    )
    from paygate.vault.keys.hsm import close_sessions

    close_sessions()  # log out: nothing cached in the process survives
    second = _provider(softhsm_token, "persist")
    assert open_card(sealed, token="pm_x", merchant_id="m", provider=second).number == "5555555555554444"


@pytest.mark.parametrize("logged_in_already", [False, True])
def test_wrong_pin_is_a_provider_error_not_an_integrity_error(
    softhsm_token: SoftHsmToken, logged_in_already: bool
) -> None:
    from paygate.vault.keys.hsm import close_sessions

    close_sessions()
    if logged_in_already:
        _provider(softhsm_token, "goodpin").current_kek_id()
    provider = _provider(softhsm_token, "badpin", pin="9999")
    with pytest.raises(KeyProviderError) as info:
        provider.current_kek_id()
    assert "9999" not in str(info.value)


def test_unknown_token_is_a_provider_error(softhsm_token: SoftHsmToken) -> None:
    from paygate.vault.keys.hsm import Pkcs11KeyProvider

    provider = Pkcs11KeyProvider(softhsm_token.library, token_label="no-such-token", pin="1234")
    with pytest.raises(KeyProviderError, match="not found"):
        provider.kek_ids()
