r"""Normalise Indian mobile numbers to E.164 and explain the ones that cannot be sent.

The rules kept: docs/contract.md, "Phone numbers".

Validity is decided by a fast text rule (about 1 µs a row, no per-row library call):

    cell -> text as the user sees it -> drop a trailing ".0" -> drop separators ->
    ^(?:\+91|0091|091|91|0)?([6-9][0-9]{9})$   and not an Indian landline

(the landline test runs phonenumbers' own India fixed-line/mobile patterns, compiled once).

`phonenumbers` (~23 µs a row) is only used by `explain()`, on the rejected residue: used naively
it rejects `091-98765-43210` and `919876543210.0` and accepts US numbers and landlines.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from typing import Any, cast

import numpy as np
import pandas as pd
import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

E164_PATTERN: str = r"^\+91[6-9]\d{9}$"

SCIENTIFIC_REASON = (
    "scientific notation: digits were lost in Excel; "
    "format the column as Text and re-enter the number"
)

# One pass removes both a trailing ".0"/".00" (a CSV written from a numeric cell,
# `919876543210.0`, is the same number as the cell) and every separator of docs/contract.md,
# "Phone numbers" (space, NBSP and other Unicode spaces, tab, "-", ".", "(", ")"). A final
# ".0" after a digit goes as a unit: dropped as separators its dot and zero would leave an
# extra digit. (Every branch starts with a separator, which lets `re` skip digits fast.)
# A trailing ".0"/".00" after a digit is a float's leftover (919876543210.0); any other "."
# is a separator, so "98765.00000" keeps its zeros.
_CLEAN = re.compile(r"[\s()\-]|\.(?:(?<=[0-9]\.)0{1,2}\s*$)?")
# ASCII digits only: `\d` would also take Devanagari or full-width digits into the E.164 form.
_RULE = re.compile(r"(?:\+91|0091|091|91|0)?([6-9][0-9]{9})")
_E164 = re.compile(E164_PATTERN, re.ASCII)
_SCIENTIFIC = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]*)?[eE][+-]?[0-9]+")
_DIGITS = re.compile(r"[0-9]+")
# What people put between two numbers in one cell.
_LIST_SEPARATOR = re.compile(r"[,;/|&\n]+")


@cache
def _india_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The fixed-line and mobile patterns of phonenumbers' India metadata, compiled once."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region("IN")
    # India's metadata ships with phonenumbers and has both descriptions and their patterns.
    assert meta is not None and meta.fixed_line is not None and meta.mobile is not None
    fixed_line = meta.fixed_line.national_number_pattern
    mobile = meta.mobile.national_number_pattern
    assert fixed_line is not None and mobile is not None
    return re.compile(fixed_line), re.compile(mobile)


def to_text(value: object) -> str | None:
    """Cell value -> the text the user sees; None for an empty cell (docs/contract.md, "Reading
    the sheet")."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating | Decimal):
        if isinstance(value, Decimal):
            if value.is_nan():
                return None
            if value.is_finite() and value == value.to_integral_value():
                return str(int(value))
            return str(value)
        number = float(value)
        if math.isnan(number):
            return None
        # 919876543210.0 is exact in a double: int() keeps every digit, and no ".0" is shown.
        if number.is_integer():
            return str(int(number))
        return repr(number)
    try:
        # cast: pandas-stubs' isna takes only known scalar types; the runtime takes any value
        if pd.isna(cast(Any, value)) is True:  # pd.NA, pd.NaT, np.datetime64("NaT")
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def normalise_many(values: Sequence[object] | pd.Series) -> list[str | None]:
    """E.164 (`+919876543210`) for each sendable Indian mobile number, else None; in order."""
    # Any: cells of every type, dispatched on type() below
    items: list[Any] = values.tolist() if hasattr(values, "tolist") else list(values)
    fixed_line, mobile = _india_patterns()
    match, clean = _RULE.fullmatch, _CLEAN.sub
    out: list[str | None] = []
    append = out.append
    for value in items:
        # Inline the common cell types; to_text() has the full rules (same results).
        kind = type(value)
        if kind is str:
            text: str | None = value
        elif kind is int:
            text = str(value)
        elif kind is float and value.is_integer():
            text = str(int(value))
        else:
            text = to_text(value)
        if text is None:
            append(None)
            continue
        # Most cells are already clean: try the rule on the raw text before cleaning it.
        found = match(text) or match(clean("", text))
        if found is None:
            append(None)
            continue
        national = found[1]
        # Landlines in Bengaluru (80), Ahmedabad (79), Patna (612)... also have 10 digits
        # starting 6-9; only mobiles are sent (docs/contract.md, "Phone numbers"). A number in
        # both patterns is kept.
        if fixed_line.fullmatch(national) and not mobile.fullmatch(national):
            append(None)
            continue
        append("+91" + national)
    return out


def normalise(value: object) -> str | None:
    """E.164 for one cell value, or None when it is not a sendable Indian mobile number."""
    return normalise_many([value])[0]


def explain(value: object) -> str:
    """Why a cell value is not a sendable number: a short reason for the results `detail`."""
    text = to_text(value)
    if text is None:
        return "empty"
    # Excel shows a long number as 9.19876E+11 and writes that text to CSV: the digits are
    # gone, so never guess a number from it.
    if isinstance(value, str) and _SCIENTIFIC.fullmatch(text.strip()):
        return SCIENTIFIC_REASON
    parts = [part for part in _LIST_SEPARATOR.split(text) if part.strip()]
    if len(parts) > 1 and all(normalise(part) for part in parts):
        return f"not a number ({len(parts)} numbers in one cell; keep one number per row)"

    cleaned = _CLEAN.sub("", text)
    plus = cleaned.startswith("+")
    digits = cleaned[1:] if plus else cleaned
    if not digits:
        return "empty (no digits)"
    if not _DIGITS.fullmatch(digits):
        return _not_a_number(digits)

    if plus and not digits.startswith("91"):
        return _foreign(digits, after_plus=True)
    if not plus and digits[:2] == "00" and digits[2:3] != "0" and digits[:4] != "0091":
        return _foreign(digits[2:], after_plus=False)  # "00" then a country code dials abroad

    if plus:
        readings = [("+91", digits[2:])]
    else:
        readings = [("", digits)]
        prefixes = ("0091", "091", "91", "0")
        readings += [(p, digits[len(p) :]) for p in prefixes if digits.startswith(p)]
    return _indian(value, readings)


def _not_a_number(digits: str) -> str:
    """Reason for text that holds more than digits and separators."""
    if any(char.isalpha() for char in digits):
        return "not a number (contains letters)"
    if any(char.isdigit() for char in digits if not char.isascii()):
        return "not a number (use the digits 0-9)"
    odd = next(char for char in digits if not ("0" <= char <= "9"))
    return f"not a number (unexpected {odd!r})"


def _foreign(digits: str, *, after_plus: bool) -> str:
    """Reason for a number dialled with a country code other than India's +91."""
    if after_plus and len(digits) == 10 and digits[0] in "6789":
        return (
            "not an Indian number (a '+' must be followed by the country code: "
            "for India write +91 and then the 10 digits)"
        )
    try:
        parsed = phonenumbers.parse("+" + digits, None)
    except NumberParseException:
        return "not an Indian number (unknown country code)"
    assert parsed.country_code is not None  # parse() sets it, or raises
    if phonenumbers.region_code_for_country_code(parsed.country_code) == "ZZ":
        return "not an Indian number (unknown country code)"
    return f"not an Indian number (country code +{parsed.country_code})"


_SERVICES = {
    PhoneNumberType.TOLL_FREE: "toll-free",
    PhoneNumberType.PREMIUM_RATE: "premium rate",
    PhoneNumberType.SHARED_COST: "shared cost",
    PhoneNumberType.VOIP: "internet telephony",
    PhoneNumberType.UAN: "company number",
}


def _indian(value: object, readings: list[tuple[str, str]]) -> str:
    """Reason for an all-digit number read with India's prefixes; readings = (prefix, rest)."""
    for _prefix, national in readings:
        if national.startswith("0"):
            continue  # phonenumbers would drop this 0 as a trunk prefix; our rule does not
        try:
            parsed = phonenumbers.parse("+91" + national, None)
        except NumberParseException:
            continue
        if not phonenumbers.is_valid_number(parsed):
            continue
        kind = phonenumbers.number_type(parsed)
        # "fixed line or mobile" starting 6-9 is sent (see normalise_many).
        if kind == PhoneNumberType.FIXED_LINE or (
            kind == PhoneNumberType.FIXED_LINE_OR_MOBILE and national[0] not in "6789"
        ):
            return "landline"
        if kind in _SERVICES:
            return f"not a mobile number ({_SERVICES[kind]})"
    if readings[0][0] == "+91" and readings[0][1].startswith("0"):
        return f"too long ({len(readings[0][1])} digits after +91; leave out the 0 after +91)"
    # Several readings are possible ("91987654321": 11 digits, or 9 after 91): report the one
    # nearest to a mobile's 10 digits, the one with the least taken off on a tie. A national
    # number never starts with 0 (that is the trunk prefix), so such readings come last.
    plausible = [reading for reading in readings if not reading[1].startswith("0")] or readings
    prefix, national = min(plausible, key=lambda reading: abs(len(reading[1]) - 10))
    after = f" after {prefix}" if prefix else ""
    if len(national) < 10:
        return f"too short ({len(national)} digits{after})"
    if len(national) > 10:
        return f"too long ({len(national)} digits{after})"
    if normalise(value) is not None:
        raise ValueError(f"explain() is for rejected numbers; {mask(normalise(value))} is sendable")
    # 10 digits that are neither a landline nor a service number, e.g. starting 0-5 in an
    # unassigned range: "landline" would be wrong; "not a mobile number" (one of the reasons in
    # docs/contract.md, "Phone numbers") says what to fix.
    return "not a mobile number (Indian mobile numbers start with 6, 7, 8 or 9)"


def to_wire(e164: str) -> str:
    """`+919876543210` -> `919876543210`: Textlocal takes the number without '+'."""
    if not isinstance(e164, str) or not _E164.fullmatch(e164):
        raise ValueError(f"not a normalised Indian mobile number: {mask(e164)}")
    return e164[1:]


def mask(number: str | None) -> str:
    """A number safe for logs (docs/contract.md, "Secrets and privacy"): `+919876543210` ->
    `+91******3210`."""
    text = to_text(number)
    if text is None:
        return ""
    text = text.strip()
    if _E164.fullmatch(text):
        return text[:3] + "*" * 6 + text[-4:]
    # Anything else keeps only its last 4 characters; 4 or fewer are all hidden, since then
    # the "last 4" would be the whole value.
    if len(text) <= 4:
        return "*" * len(text)
    return "*" * (len(text) - 4) + text[-4:]
