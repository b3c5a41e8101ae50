"""The one table of test cards and test tokens shared by the in-process sandbox and the PSP simulator.

Both :mod:`paygate.connectors.sandbox` and :mod:`paygate.simulator` decide outcomes with :func:`resolve`, so a
card behaves identically whether a test runs in-process or over HTTP against the simulator.

Contract:

* :func:`resolve` never raises. It returns a :class:`CardBehaviour` for every known card number, Stripe test
  token (``pm_card_*`` / ``tok_*``), and every Luhn-valid unknown number (treated as an approving card of the
  brand its prefix suggests). A Luhn-invalid number resolves to an ``incorrect_number`` decline. An unknown
  token resolves to ``None`` (the caller answers "no such payment method").
* Adyen-style refusal testing is supported through the card holder name (``DECLINED``, ``NOT_ENOUGH_BALANCE``,
  ``BLOCK_CARD``, ``CARD_EXPIRED``, ``CVC_DECLINED``, ``ISSUER_UNAVAILABLE``, ``FRAUD``): a known holder name
  overrides an approving card's outcome.
* Codes follow Stripe's vocabulary: ``error_code`` is the Stripe error ``code`` (``card_declined``,
  ``expired_card``, ``incorrect_cvc``, ``processing_error``, ``incorrect_number``) and ``decline_code`` the
  Stripe ``decline_code`` (``generic_decline``, ``insufficient_funds``, ``lost_card``, ``stolen_card`` …).

Fault cards are paygate-simulator specific (documented in docs/simulator.md); they approve, but the transport
misbehaves: ``SLOW`` answers late, ``TIMEOUT`` records the authorization then never answers, ``DROP_RESPONSE``
records it then closes the connection without a response, ``ERROR_BEFORE_ACCEPT`` answers HTTP 500 and records
nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from paygate.kit.luhn import luhn_valid as _luhn

__all__ = [
    "CARDS",
    "TOKENS",
    "CardBehaviour",
    "Fault",
    "Outcome",
    "brand_for",
    "luhn_valid",
    "resolve",
]


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    DECLINE = "decline"
    REQUIRES_ACTION = "requires_action"


class Fault(enum.StrEnum):
    SLOW = "slow"
    TIMEOUT = "timeout"
    DROP_RESPONSE = "drop_response"
    ERROR_BEFORE_ACCEPT = "error_before_accept"


@dataclass(frozen=True, slots=True)
class CardBehaviour:
    """What a test card does. ``number`` is the card a token stands for (tokens resolve to a card's row)."""

    number: str
    brand: str
    outcome: Outcome = Outcome.SUCCESS
    error_code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    retryable_elsewhere: bool = False
    fault: Fault | None = None
    description: str = ""

    @property
    def last4(self) -> str:
        return self.number[-4:]


_DECLINED = "Your card was declined."


def _ok(number: str, brand: str, description: str) -> CardBehaviour:
    return CardBehaviour(number=number, brand=brand, description=description)


def _decline(
    number: str,
    error_code: str,
    decline_code: str | None,
    message: str,
    description: str,
    *,
    retryable: bool = False,
) -> CardBehaviour:
    return CardBehaviour(
        number=number,
        brand="visa",
        outcome=Outcome.DECLINE,
        error_code=error_code,
        decline_code=decline_code,
        message=message,
        retryable_elsewhere=retryable,
        description=description,
    )


def _action(number: str, description: str) -> CardBehaviour:
    return CardBehaviour(number=number, brand="visa", outcome=Outcome.REQUIRES_ACTION, description=description)


def _fault(number: str, fault: Fault, description: str) -> CardBehaviour:
    return CardBehaviour(number=number, brand="visa", fault=fault, description=description)


_ROWS: tuple[CardBehaviour, ...] = (
    # --- Stripe approving cards
    _ok("4242424242424242", "visa", "Visa"),
    _ok("4000056655665556", "visa", "Visa (debit)"),
    _ok("5555555555554444", "mastercard", "Mastercard"),
    _ok("2223003122003222", "mastercard", "Mastercard (2-series)"),
    _ok("5200828282828210", "mastercard", "Mastercard (debit)"),
    _ok("5105105105105100", "mastercard", "Mastercard (prepaid)"),
    _ok("378282246310005", "amex", "American Express"),
    _ok("371449635398431", "amex", "American Express"),
    _ok("6011111111111117", "discover", "Discover"),
    _ok("6011000990139424", "discover", "Discover"),
    _ok("3056930009020004", "diners", "Diners Club"),
    _ok("36227206271667", "diners", "Diners Club (14 digits)"),
    _ok("3566002020360505", "jcb", "JCB"),
    _ok("6200000000000005", "unionpay", "UnionPay"),
    # --- Adyen approving cards (where different from Stripe's)
    _ok("4111111145551142", "visa", "Adyen Visa"),
    _ok("5555341244441115", "mastercard", "Adyen Mastercard"),
    _ok("370000000000002", "amex", "Adyen American Express"),
    # --- Stripe declines
    _decline("4000000000000002", "card_declined", "generic_decline", _DECLINED, "Generic decline"),
    _decline(
        "4000000000009995",
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
        "Insufficient funds",
    ),
    _decline("4000000000009987", "card_declined", "lost_card", _DECLINED, "Lost card"),
    _decline("4000000000009979", "card_declined", "stolen_card", _DECLINED, "Stolen card"),
    _decline("4000000000000069", "expired_card", "expired_card", "Your card has expired.", "Expired card"),
    _decline(
        "4000000000000127",
        "incorrect_cvc",
        "incorrect_cvc",
        "Your card's security code is incorrect.",
        "Incorrect CVC",
    ),
    _decline(
        "4000000000000119",
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
        "Processing error (another processor may accept it)",
        retryable=True,
    ),
    _decline("4100000000000019", "card_declined", "fraudulent", _DECLINED, "Blocked as fraudulent"),
    _decline(
        "4000000000006975",
        "card_declined",
        "card_velocity_exceeded",
        _DECLINED,
        "Velocity limit exceeded",
    ),
    # --- 3-D Secure
    _action("4000000000003220", "3-D Secure 2 required"),
    _action("4000002760003184", "Authentication always required"),
    _action("4000000000003063", "3-D Secure required"),
    _action("4000002500003155", "Authentication required"),
    _action("4212345678910006", "Adyen Visa 3-D Secure 2"),
    CardBehaviour(
        number="5454545454545454",
        brand="mastercard",
        outcome=Outcome.REQUIRES_ACTION,
        description="Adyen Mastercard 3-D Secure 2",
    ),
    # --- paygate simulator fault cards (approve, but the transport misbehaves)
    _fault("4000000000000259", Fault.SLOW, "Approves after a delay (simulator: slow_seconds, default 3 s)"),
    _fault("4000000000005126", Fault.TIMEOUT, "Records the authorization, then never answers"),
    _fault("4000000000000770", Fault.DROP_RESPONSE, "Records the authorization, then drops the connection"),
    _fault("4000000000000507", Fault.ERROR_BEFORE_ACCEPT, "HTTP 500 before acceptance; nothing recorded"),
)

CARDS: dict[str, CardBehaviour] = {row.number: row for row in _ROWS}

TOKENS: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_mastercard_debit": "5200828282828210",
    "pm_card_mastercard_prepaid": "5105105105105100",
    "pm_card_amex": "378282246310005",
    "pm_card_discover": "6011111111111117",
    "pm_card_diners": "3056930009020004",
    "pm_card_jcb": "3566002020360505",
    "pm_card_unionpay": "6200000000000005",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_chargeDeclinedFraudulent": "4100000000000019",
    "pm_card_chargeDeclinedVelocityLimitExceeded": "4000000000006975",
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_threeDSecureRequired": "4000000000003063",
    # paygate extensions for the fault cards
    "pm_card_simSlow": "4000000000000259",
    "pm_card_simTimeout": "4000000000005126",
    "pm_card_simDropResponse": "4000000000000770",
    "pm_card_simErrorBeforeAccept": "4000000000000507",
}
# Stripe's legacy ``tok_*`` tokens name the same cards.
TOKENS.update({"tok_" + name.removeprefix("pm_card_"): number for name, number in list(TOKENS.items())})

# Adyen "testing with card holder name": (error_code, decline_code, message)
_HOLDER_NAMES: dict[str, CardBehaviour] = {
    "DECLINED": _decline("", "card_declined", "generic_decline", _DECLINED, "Adyen DECLINED"),
    "NOT_ENOUGH_BALANCE": _decline(
        "", "card_declined", "insufficient_funds", "Your card has insufficient funds.", "Adyen balance"
    ),
    "BLOCK_CARD": _decline("", "card_declined", "lost_card", _DECLINED, "Adyen BLOCK_CARD"),
    "CARD_EXPIRED": _decline("", "expired_card", "expired_card", "Your card has expired.", "Adyen expired"),
    "CVC_DECLINED": _decline(
        "", "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect.", "Adyen CVC"
    ),
    "ISSUER_UNAVAILABLE": _decline(
        "", "processing_error", "processing_error", "Issuer unavailable.", "Adyen issuer", retryable=True
    ),
    "FRAUD": _decline("", "card_declined", "fraudulent", _DECLINED, "Adyen FRAUD"),
}


def luhn_valid(number: str) -> bool:
    """True when ``number`` is 12-19 digits with a valid Luhn check digit."""
    return 12 <= len(number) <= 19 and _luhn(number)


def brand_for(number: str) -> str:
    """Best-effort brand from the card prefix (enough for display and test outcomes)."""
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    if number.startswith(("6011", "65", "644", "645", "646", "647", "648", "649")):
        return "discover"
    if number.startswith(("36", "300", "301", "302", "303", "304", "305", "38")):
        return "diners"
    if number.startswith("35"):
        return "jcb"
    if number.startswith("62"):
        return "unionpay"
    return "unknown"


def resolve(
    *, number: str | None = None, token: str | None = None, holder_name: str | None = None
) -> CardBehaviour | None:
    """Decide what a payment with this card / token does. See the module docstring for the contract."""
    if token is not None and number is None:
        mapped = TOKENS.get(token)
        if mapped is None:
            return None
        number = mapped
    if number is None:
        return None
    number = number.replace(" ", "").replace("-", "")
    row = CARDS.get(number)
    if row is None:
        if not luhn_valid(number):
            return CardBehaviour(
                number=number,
                brand=brand_for(number) if number.isdigit() else "unknown",
                outcome=Outcome.DECLINE,
                error_code="incorrect_number",
                decline_code="incorrect_number",
                message="Your card number is incorrect.",
                description="Fails the Luhn check",
            )
        row = CardBehaviour(number=number, brand=brand_for(number), description="Unknown valid card")
    if holder_name and row.outcome is Outcome.SUCCESS and row.fault is None:
        override = _HOLDER_NAMES.get(holder_name.strip().upper())
        if override is not None:
            return CardBehaviour(
                number=number,
                brand=row.brand,
                outcome=override.outcome,
                error_code=override.error_code,
                decline_code=override.decline_code,
                message=override.message,
                retryable_elsewhere=override.retryable_elsewhere,
                description=override.description,
            )
    return row
