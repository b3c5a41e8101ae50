from __future__ import annotations

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from paygate.kit.redaction import REDACTED, is_sensitive_key, mask_pan, redact, redact_event_dict, redact_text

TEST_PANS = [
    "4242424242424242",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "3566002020360505",
]


def luhn_complete(body: str) -> str:
    for d in "0123456789":
        candidate = body + d
        total = 0
        for i, ch in enumerate(reversed(candidate)):
            v = int(ch) * (2 if i % 2 else 1)
            total += v - 9 if v > 9 else v
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


@pytest.mark.parametrize("pan", TEST_PANS)
@pytest.mark.parametrize("template", ["{}", "card {} declined", "pan={}x", "[{}]", "pi_{}"])
def test_plain_pans_are_masked_to_bin_and_last4(pan: str, template: str) -> None:
    out = redact_text(template.format(pan))
    assert pan not in out
    assert pan[:6] + "*" * (len(pan) - 10) + pan[-4:] in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4242 4242 4242 4242 ok", "card 4242 42** **** 4242 ok"),
        ("card 4242-4242-4242-4242 ok", "card 4242-42**-****-4242 ok"),
        ("amex 3782 822463 10005 ok", "amex 3782 82**** *0005 ok"),
        ("card 4242 4242 4242 4242 123 (pan then cvc)", "card 4242 42** **** 4242 123 (pan then cvc)"),
    ],
)
def test_separated_pans_are_masked_keeping_their_shape(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_a_pan_next_to_a_luhn_valid_date_run_is_still_masked() -> None:
    # "2026-05-01-4242-4242" happens to pass Luhn as well: both spans are masked, the PAN included
    out = redact_text("on 2026-05-01 4242-4242-4242-4242 was used")
    assert "4242-4242-4242-4242" not in out
    assert out == "on 2026-05-** ****-42**-****-4242 was used"


def test_short_pans_keep_only_last4() -> None:
    assert mask_pan("4222222222222") == "*********2222"
    assert redact_text("visa13 4222222222222") == "visa13 *********2222"


@pytest.mark.parametrize(
    "text",
    [
        "order 4242424242424241 is not a card",  # Luhn-invalid
        "phone +1 555 123 4567",
        "id pi_3MtwBwLkdIwHu7ix28a3tqPa amount 1000 currency usd",
        "ts 2026-05-01T12:00:00.123456Z",
        "idempotency_key=att_01HZX3 page_number=2 phone_number=5551234",
        "exp_month=12&exp_year=2030&name=Jane",
        "12345678901234567890123",  # long digit run (not a PAN)
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "card[number]=4242424242424242&card[cvc]=123&card[exp_month]=12",
            "card[number]=[REDACTED]&card[cvc]=[REDACTED]&card[exp_month]=12",
        ),
        (
            "card%5Bnumber%5D=4242424242424242&card%5Bcvc%5D=123&amount=100",
            "card%5Bnumber%5D=[REDACTED]&card%5Bcvc%5D=[REDACTED]&amount=100",
        ),
        ("payment_method_data[card][cvc]=999", "payment_method_data[card][cvc]=[REDACTED]"),
        (
            '{"number": "4242 4242 4242 4242", "cvc": "123", "amount": 100}',
            '{"number": "[REDACTED]", "cvc": "[REDACTED]", "amount": 100}',
        ),
        ('{"cvc":123,"exp_year":2030}', '{"cvc":[REDACTED],"exp_year":2030}'),
        ("{'cvv': '123', 'password': 'hunter2'}", "{'cvv': '[REDACTED]', 'password': '[REDACTED]'}"),
        ("Authorization: Bearer sk_test_abc123", "Authorization: Bearer [REDACTED]"),
        ("authorization=Basic dXNlcjpwYXNz", "authorization=Basic [REDACTED]"),
        ('"client_secret": "pi_1_secret_2"', '"client_secret": "[REDACTED]"'),
        ("x-api-key: k_live_1 next", "x-api-key: [REDACTED] next"),
    ],
)
def test_sensitive_fields_in_strings_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_nested_structures_are_redacted_without_mutating_the_input() -> None:
    payload = {
        "card": {"number": "4242424242424242", "cvc": "123", "exp_month": 12},
        "items": [{"note": "paid with 5555 5555 5555 4444"}, ("card[cvc]=1234",)],
        "headers": {"Authorization": "Bearer sk_live_x", "Idempotency-Key": "k1"},
        "raw_pan_int": 4242424242424242,
        "amount": 1000,
        "flag": True,
    }
    out = redact(payload)
    assert out["card"] == {"number": REDACTED, "cvc": REDACTED, "exp_month": 12}
    assert out["items"][0]["note"] == "paid with 5555 55** **** 4444"
    assert out["items"][1] == ("card[cvc]=[REDACTED]",)
    assert out["headers"] == {"Authorization": REDACTED, "Idempotency-Key": "k1"}
    assert out["raw_pan_int"] == "424242******4242"
    assert (out["amount"], out["flag"]) == (1000, True)
    assert payload["card"]["cvc"] == "123"  # input untouched


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("cvc", True),
        ("CVV", True),
        ("card[cvc]", True),
        ("card[number]", True),
        ("number", True),
        ("card_number", True),
        ("password", True),
        ("client_secret", True),
        ("webhook_secret", True),
        ("api_key", True),
        ("x-api-key", True),
        ("Authorization", True),
        ("exp_month", False),
        ("page_number", False),
        ("idempotency_key", False),
        ("token", False),
        ("last4", False),
    ],
)
def test_sensitive_key_rules(key: str, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


@given(
    body=st.text(alphabet="0123456789", min_size=15, max_size=15),
    prefix=st.text(max_size=30),
    suffix=st.text(max_size=30),
    sep=st.sampled_from(["", " ", "-"]),
)
def test_any_luhn_valid_16_digit_number_in_any_text_is_redacted(body: str, prefix: str, suffix: str, sep: str) -> None:
    pan = luhn_complete(body)
    shown = sep.join(pan[i : i + 4] for i in range(0, 16, 4))
    # a digit right next to the number makes it a different (longer) number: keep the boundary
    prefix = prefix + " " if prefix[-1:].isdigit() else prefix
    suffix = " " + suffix if suffix[:1].isdigit() else suffix
    out = redact_text(prefix + shown + suffix)
    assert len(out) == len(prefix + shown + suffix)  # masking keeps positions
    segment = out[len(prefix) : len(prefix) + len(shown)]
    assert segment.replace(sep, "")[6:12] == "******" if sep else segment[6:12] == "******"
    assert pan not in out


@given(st.text())
def test_redaction_is_idempotent(text: str) -> None:
    once = redact_text(text)
    assert redact_text(once) == once


def test_structlog_processor_redacts_event_kwargs_and_tracebacks() -> None:
    captured: list[dict[str, object]] = []

    def capture(_logger: object, _name: str, event_dict: dict[str, object]) -> str:
        captured.append(dict(event_dict))
        return ""

    structlog.configure(
        processors=[structlog.processors.format_exc_info, redact_event_dict, capture],
        cache_logger_on_first_use=False,
    )
    try:
        log = structlog.get_logger()
        try:
            raise ValueError("bad card 4242424242424242 cvc=123")
        except ValueError:
            log.exception("charge failed for 5555555555554444", cvc="123", body={"card": {"number": "x"}})
    finally:
        structlog.reset_defaults()
    event = captured[0]
    text = repr(event)
    assert "4242424242424242" not in text and "5555555555554444" not in text and "cvc=123" not in text
    assert event["cvc"] == REDACTED
    assert event["body"] == {"card": {"number": REDACTED}}
    assert "424242******4242" in str(event["exception"])


# What processors' request and response bodies carry (the connectors' debug body log goes through redact_text).
def test_processor_bodies_lose_card_data_and_credentials_but_keep_amounts() -> None:
    body = '{"number": "4242424242424242", "cvc": "123", "api_key": "abc", "amount": 1000}'
    out = redact_text(body)
    assert "4242424242424242" not in out and '"cvc": "[REDACTED]"' in out and "abc" not in out
    assert '"amount": 1000' in out
    form = "amount=100&payment_method_data%5Bcard%5D%5Bcvc%5D=987&payment_method_data[card][number]=4242424242424242"
    out = redact_text(form)
    assert "987" not in out and "4242424242424242" not in out and "amount=100" in out


def test_adyen_encrypted_card_fields_and_security_codes_are_redacted() -> None:
    body = (
        '{"encryptedCardNumber": "adyenjs_0_1_25$abc", "encryptedSecurityCode": "adyenjs_0_1_25$def",'
        ' "securityCode": "737"}'
    )
    out = redact_text(body)
    assert "adyenjs" not in out and "737" not in out
    assert redact({"paymentMethod": {"encryptedExpiryMonth": "adyenjs$x"}}) == {
        "paymentMethod": {"encryptedExpiryMonth": REDACTED}
    }


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("Authorization: Bearer sk_test_abcdef123456", "abcdef123456"),
        ("sent bearer eyJhbGciOi.payload.sig to the processor", "eyJhbGciOi"),
        ("key sk_live_51Habcdef0123 was revoked", "51Habcdef0123"),
        ("restricted rk_test_ABCdef987 used", "ABCdef987"),
        ("webhook secret whsec_AbCdEfGh12 rotated", "AbCdEfGh12"),
        ("Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ],
)
def test_credentials_in_free_text_are_redacted(text: str, hidden: str) -> None:
    out = redact_text(text)
    assert hidden not in out and REDACTED in out


def test_an_already_redacted_key_in_an_error_message_is_kept_readable() -> None:
    message = "Invalid API Key provided: sk_test_…a1B2"
    assert redact_text(message) == message
