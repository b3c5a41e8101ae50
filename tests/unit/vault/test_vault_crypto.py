"""Envelope encryption and the KeyProvider contract, run against every provider (file and SoftHSM2)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paygate.vault.crypto import SealedCard, needs_rewrap, open_card, open_sealed, rewrap, seal, seal_card
from paygate.vault.errors import UnknownKekError, VaultIntegrityError
from paygate.vault.keys.base import KeyProvider, parse_kek_id
from paygate.vault.keys.file import FileKeyProvider

PAN = "4242424242424242"
TOKEN = "pm_1AbCdEf"
MERCHANT = "acct_1"


def seal_test_card(provider: KeyProvider, token: str = TOKEN, merchant: str = MERCHANT) -> SealedCard:
    return seal_card(
        number=PAN,
        exp_month=12,
        exp_year=2030,
        holder_name="Jane Doe",
        token=token,
        merchant_id=merchant,
        provider=provider,
    )


def test_card_round_trips_and_cvc_is_never_returned(provider: KeyProvider) -> None:
    sealed = seal_test_card(provider)
    card = open_card(sealed, token=TOKEN, merchant_id=MERCHANT, provider=provider)
    assert (card.number, card.exp_month, card.exp_year, card.holder_name, card.cvc) == (
        PAN,
        12,
        2030,
        "Jane Doe",
        None,
    )


def test_sealed_card_stores_no_pan_material(provider: KeyProvider) -> None:
    sealed = seal_test_card(provider)
    blob = sealed.to_bytes()
    assert PAN.encode() not in blob and b"4242" not in sealed.ciphertext
    assert PAN not in repr(sealed) and "4242" not in str(sealed)
    assert len(sealed.nonce) == 12 and len(sealed.wrapped_dek) == 60


def test_each_record_gets_a_fresh_data_key_and_nonce(provider: KeyProvider) -> None:
    a, b = seal_test_card(provider), seal_test_card(provider)
    assert a.wrapped_dek != b.wrapped_dek and a.nonce != b.nonce and a.ciphertext != b.ciphertext


def test_serialisation_round_trips(provider: KeyProvider) -> None:
    sealed = seal_test_card(provider)
    assert SealedCard.from_bytes(sealed.to_bytes()) == sealed


def test_ciphertext_is_bound_to_its_token(provider: KeyProvider) -> None:
    sealed = seal_test_card(provider)
    with pytest.raises(VaultIntegrityError):
        open_card(sealed, token="pm_other", merchant_id=MERCHANT, provider=provider)


def test_ciphertext_is_bound_to_its_merchant(provider: KeyProvider) -> None:
    sealed = seal_test_card(provider)
    with pytest.raises(VaultIntegrityError):
        open_card(sealed, token=TOKEN, merchant_id="acct_2", provider=provider)


def test_aad_encoding_is_unambiguous(provider: KeyProvider) -> None:
    sealed = seal(b"x", token="ab", merchant_id="c", provider=provider)
    with pytest.raises(VaultIntegrityError):
        open_sealed(sealed, token="a", merchant_id="bc", provider=provider)


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "wrapped_dek"])
def test_flipping_any_bit_of_a_field_fails_closed(provider: KeyProvider, field: str) -> None:
    sealed = seal_test_card(provider)
    original: bytes = getattr(sealed, field)
    for index in (0, len(original) // 2, len(original) - 1):
        tampered = bytearray(original)
        tampered[index] ^= 0x01
        bad = dataclasses.replace(sealed, **{field: bytes(tampered)})
        with pytest.raises(VaultIntegrityError):
            open_card(bad, token=TOKEN, merchant_id=MERCHANT, provider=provider)


def test_swapping_wrapped_keys_between_records_fails_closed(provider: KeyProvider) -> None:
    a, b = seal_test_card(provider), seal_test_card(provider, token="pm_b")
    with pytest.raises(VaultIntegrityError):
        open_card(
            dataclasses.replace(a, wrapped_dek=b.wrapped_dek),
            token=TOKEN,
            merchant_id=MERCHANT,
            provider=provider,
        )


def test_edited_kek_version_fails_closed(provider: KeyProvider) -> None:
    sealed = seal_test_card(provider)
    provider.rotate()
    with pytest.raises(VaultIntegrityError):
        open_card(dataclasses.replace(sealed, kek_version=2), token=TOKEN, merchant_id=MERCHANT, provider=provider)
    namespace, _ = parse_kek_id(sealed.kek_id)
    relabelled = dataclasses.replace(sealed, kek_id=f"{namespace}:v2", kek_version=2)
    with pytest.raises(VaultIntegrityError):  # the KEK id is the wrap's associated data
        open_card(relabelled, token=TOKEN, merchant_id=MERCHANT, provider=provider)


def test_unknown_kek_id_fails_closed(provider: KeyProvider) -> None:
    sealed = seal_test_card(provider)
    namespace, _ = parse_kek_id(sealed.kek_id)
    for kek_id, version in (("other-set:v1", 1), (f"{namespace}:v99", 99), ("garbage", 1)):
        with pytest.raises(UnknownKekError):
            open_card(
                dataclasses.replace(sealed, kek_id=kek_id, kek_version=version),
                token=TOKEN,
                merchant_id=MERCHANT,
                provider=provider,
            )


def test_rotation_keeps_old_records_readable_and_rewrap_moves_them(provider: KeyProvider) -> None:
    first = provider.current_kek_id()
    before = seal_test_card(provider, token="pm_before")
    second = provider.rotate()
    assert second != first and provider.current_kek_id() == second
    assert provider.kek_ids() == [first, second]
    after = seal_test_card(provider, token="pm_after")
    assert (before.kek_id, before.kek_version) == (first, 1)
    assert (after.kek_id, after.kek_version) == (second, 2)

    for sealed, token in ((before, "pm_before"), (after, "pm_after")):
        assert open_card(sealed, token=token, merchant_id=MERCHANT, provider=provider).number == PAN

    assert needs_rewrap(before, provider) and not needs_rewrap(after, provider)
    moved = rewrap(before, provider)
    assert (moved.kek_id, moved.kek_version) == (second, 2)
    assert (moved.nonce, moved.ciphertext) == (before.nonce, before.ciphertext)  # payload untouched
    assert moved.wrapped_dek != before.wrapped_dek
    assert open_card(moved, token="pm_before", merchant_id=MERCHANT, provider=provider).number == PAN
    assert rewrap(moved, provider) is moved  # idempotent


def test_rewrap_refuses_a_record_whose_wrapped_key_was_tampered(provider: KeyProvider) -> None:
    sealed = seal_test_card(provider)
    provider.rotate()
    tampered = bytearray(sealed.wrapped_dek)
    tampered[-1] ^= 0x80
    with pytest.raises(VaultIntegrityError):
        rewrap(dataclasses.replace(sealed, wrapped_dek=bytes(tampered)), provider)


def test_provider_rejects_wrong_size_data_keys(provider: KeyProvider) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        provider.wrap(b"short")


# -- property: random tampering of the serialised record never yields plaintext (file provider: fast) --------


@pytest.fixture(scope="module")
def module_provider(tmp_path_factory: pytest.TempPathFactory) -> FileKeyProvider:
    return FileKeyProvider(tmp_path_factory.mktemp("prop") / "kek.json")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_tampering_of_the_serialised_record_fails_closed(
    module_provider: FileKeyProvider, data: st.DataObject
) -> None:
    blob = seal_test_card(module_provider).to_bytes()
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend", "splice"]))
    if kind == "flip":
        index = data.draw(st.integers(0, len(blob) - 1))
        mask = data.draw(st.integers(1, 255))
        tampered = blob[:index] + bytes([blob[index] ^ mask]) + blob[index + 1 :]
    elif kind == "truncate":
        tampered = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "extend":
        tampered = blob + data.draw(st.binary(min_size=1, max_size=8))
    else:
        start = data.draw(st.integers(0, len(blob) - 1))
        chunk = data.draw(st.binary(min_size=1, max_size=16))
        tampered = blob[:start] + chunk + blob[start + len(chunk) :]
        if tampered == blob:
            return
    with pytest.raises(VaultIntegrityError):
        sealed = SealedCard.from_bytes(tampered)
        open_card(sealed, token=TOKEN, merchant_id=MERCHANT, provider=module_provider)
