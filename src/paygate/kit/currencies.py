"""ISO 4217 minor-unit exponents and per-currency charge limits.

The exponent table decides what an integer amount means: 1000 is $10.00 in USD (exponent 2), ¥1000 in JPY
(exponent 0) and 1.000 KWD (exponent 3). Only currencies listed here are accepted.
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = ["DEFAULT_MAX_AMOUNT", "EXPONENTS", "MINIMUM_CHARGE"]

_EXP0 = "bif clp djf gnf isk jpy kmf krw pyg rwf ugx uyi vnd vuv xaf xof xpf"
_EXP3 = "bhd iqd jod kwd lyd omr tnd"
_EXP2 = (
    "aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bmd bnd bob brl bsd btn bwp byn bzd cad cdf chf "
    "cny cop crc cup cve czk dkk dop dzd egp ern etb eur fjd fkp gbp gel ghs gip gmd gtq gyd hkd hnl htg huf "
    "idr ils inr irr jmd kes kgs khr kpw kyd kzt lak lbp lkr lrd lsl mad mdl mga mkd mmk mnt mop mru mur mvr "
    "mwk mxn myr mzn nad ngn nio nok npr nzd pab pen pgk php pkr pln qar ron rsd rub sar sbd scr sdg sek sgd "
    "shp sle sll sos srd ssp stn svc syp szl thb tjs tmt top try ttd twd tzs uah usd uyu uzs ves wst xcd yer "
    "zar zmw zwl"
)

EXPONENTS: MappingProxyType[str, int] = MappingProxyType(
    {c: 0 for c in _EXP0.split()} | {c: 2 for c in _EXP2.split()} | {c: 3 for c in _EXP3.split()}
)

# Smallest chargeable amount in minor units (card networks' and Stripe's published minimums, rounded up to a
# whole minor unit). Currencies not listed use the equivalent of one major unit (10 ** exponent).
MINIMUM_CHARGE: MappingProxyType[str, int] = MappingProxyType(
    {
        "usd": 50,
        "eur": 50,
        "gbp": 30,
        "aud": 50,
        "cad": 50,
        "chf": 50,
        "nzd": 50,
        "sgd": 50,
        "hkd": 400,
        "jpy": 50,
        "krw": 500,
        "dkk": 250,
        "nok": 300,
        "sek": 300,
        "pln": 200,
        "czk": 1500,
        "huf": 17500,
        "mxn": 1000,
        "brl": 50,
        "inr": 50,
        "aed": 200,
        "ron": 200,
        "bgn": 100,
        "myr": 200,
        "thb": 1000,
        "kwd": 200,
        "bhd": 200,
        "jod": 400,
        "omr": 200,
        "clp": 500,
        "isk": 100,
        "vnd": 12000,
    }
)

# Largest amount accepted in one payment, in minor units (eight digits, as Stripe).
DEFAULT_MAX_AMOUNT = 99_999_999
