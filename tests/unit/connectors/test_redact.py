"""Redaction never lets a PAN, CVC or credential through."""

from __future__ import annotations

from paygate.connectors.redact import redact_headers, redact_text, redact_value


def test_card_numbers_keep_only_last_four_digits() -> None:
    text = redact_text("card 4242424242424242 and 4000 0566 5566 5556 and 378282246310005")
    assert "424242424242" not in text and "0566" not in text and "37828224631" not in text
    assert "****4242" in text and "****5556" in text and "****0005" in text


def test_json_and_form_fields_are_scrubbed() -> None:
    body = '{"number": "4242424242424242", "cvc": "123", "api_key": "abc", "amount": 1000}'
    out = redact_text(body)
    assert "123" not in out.replace("1000", "") and "abc" not in out and '"amount": 1000' in out
    form = "amount=100&payment_method_data%5Bcard%5D%5Bcvc%5D=987&payment_method_data[card][number]=4242424242424242"
    out = redact_text(form)
    assert "987" not in out and "4242424242424242" not in out and "amount=100" in out


def test_bearer_tokens_and_secret_keys_are_scrubbed() -> None:
    out = redact_text("Authorization: Bearer sk_test_abcdef123456 then whsec_abcdefgh")
    assert "abcdef123456" not in out and "whsec_abcdefgh" not in out


def test_sensitive_headers_are_masked() -> None:
    out = redact_headers({"Authorization": "Bearer x", "X-API-Key": "k", "Content-Type": "application/json"})
    assert out["Authorization"] == out["X-API-Key"] == "[REDACTED]"
    assert out["Content-Type"] == "application/json"


def test_nested_values_are_scrubbed() -> None:
    out = redact_value({"card": {"number": "4242424242424242", "cvc": 123}, "note": ["pan 5555555555554444"]})
    assert out == {"card": {"number": "[REDACTED]", "cvc": "[REDACTED]"}, "note": ["pan ****4444"]}
