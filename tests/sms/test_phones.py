"""Phone numbers: normalisation to E.164 and the reasons for rejected ones.

The rules: docs/contract.md, "Phone numbers".
"""

from __future__ import annotations

import random
import re
import time
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from pipeline.sms import phones
from pipeline.sms.phones import SCIENTIFIC_REASON, explain, mask, normalise, normalise_many, to_wire

NBSP = "\u00a0"
E164 = "+919876543210"

ACCEPTED = [
    ("+91 98765 43210", E164),
    ("098765 43210", E164),
    ("(+91) 98765-43210", E164),
    ("0091 9876543210", E164),
    ("0091-98765-43210", E164),
    ("91-9876543210", E164),
    ("9876543210", E164),
    ("+919876543210", E164),
    ("+91-98765-43210", E164),
    ("091-98765-43210", E164),
    ("98765.43210", E164),
    ("98765\t43210", E164),
    (f"{NBSP}9876543210{NBSP}", E164),
    (f"+91{NBSP}98765{NBSP}43210", E164),
    (" 9876543210 ", E164),
    ("0 98765 43210\n", E164),
    ("919876543210.0", E164),
    ("9876543210.0", E164),
    ("9876543210.00", E164),
    (9876543210, E164),
    (919876543210, E164),
    (919876543210.0, E164),
    (9876543210.0, E164),
    (np.int64(9876543210), E164),
    (np.float64(919876543210.0), E164),
    (Decimal("919876543210"), E164),
    ("7012345678", "+917012345678"),
    ("6000000000", "+916000000000"),
    ("9198765432", "+919198765432"),  # ten digits that happen to start with 91
]

REJECTED = [
    (None, "empty"),
    ("", "empty"),
    ("   ", "empty"),
    (NBSP, "empty"),
    (float("nan"), "empty"),
    (np.nan, "empty"),
    (pd.NA, "empty"),
    ("-", "empty (no digits)"),
    ("()", "empty (no digits)"),
    ("abc", "not a number (contains letters)"),
    ("N/A", "not a number (contains letters)"),
    ("98765-43210x", "not a number (contains letters)"),
    (True, "not a number (contains letters)"),
    ("98765@43210", "not a number (unexpected '@')"),
    ("९८७६५४३२१०", "not a number (use the digits 0-9)"),
    ("9876543210 / 9876543211", "not a number (2 numbers in one cell; keep one number per row)"),
    ("98765", "too short (5 digits)"),
    ("987654321", "too short (9 digits)"),
    ("+91 98765 4321", "too short (9 digits after +91)"),
    ("0987654321", "too short (9 digits after 0)"),
    ("98765432101", "too long (11 digits)"),
    (98765432101234, "too long (14 digits)"),
    ("+91 0 98765 43210", "too long (11 digits after +91; leave out the 0 after +91)"),
    ("022 2345 6789", "landline"),
    ("+91 80 4123 4567", "landline"),  # 10 digits starting 8, but a Bengaluru landline
    ("080-41234567", "landline"),
    ("+1 415 555 2671", "not an Indian number (country code +1)"),
    ("+44 7911 123456", "not an Indian number (country code +44)"),
    ("0044 7911 123456", "not an Indian number (country code +44)"),
    ("+92 300 1234567", "not an Indian number (country code +92)"),
    ("+999 12345678", "not an Indian number (unknown country code)"),
    (
        "+9876543210",
        "not an Indian number (a '+' must be followed by the country code: "
        "for India write +91 and then the 10 digits)",
    ),
    ("9.19876E+11", SCIENTIFIC_REASON),
    ("9.19876e+11", SCIENTIFIC_REASON),
    (" 9,19876E+11 ", SCIENTIFIC_REASON),
    ("1800 123 4567", "not a mobile number (toll-free)"),
    ("5000000000", "not a mobile number (Indian mobile numbers start with 6, 7, 8 or 9)"),
]


@pytest.mark.parametrize(("value", "expected"), ACCEPTED)
def test_accepted_formats_normalise_to_e164(value: object, expected: str) -> None:
    assert normalise(value) == expected
    assert normalise_many([value]) == [expected]
    assert re.fullmatch(phones.E164_PATTERN, expected)


@pytest.mark.parametrize(("value", "reason"), REJECTED)
def test_rejected_values_are_none_and_explained(value: object, reason: str) -> None:
    assert normalise(value) is None
    assert explain(value) == reason


def test_scientific_notation_reason_is_the_documented_text() -> None:
    assert SCIENTIFIC_REASON == (
        "scientific notation: digits were lost in Excel; "
        "format the column as Text and re-enter the number"
    )


def test_explain_refuses_a_sendable_number_without_showing_it() -> None:
    with pytest.raises(ValueError, match=r"\+91\*{6}3210 is sendable") as caught:
        explain("+91 98765 43210")
    assert "9876543210" not in str(caught.value)


def test_explain_and_normalise_agree_on_random_input() -> None:
    """explain() raises exactly for the values normalise() accepts, and only for those."""
    rng = random.Random(20240611)
    alphabet = "0123456789" * 4 + " -.()+\u00a0\tEe,/a"
    prefixes = ["", "+91", "91", "0", "091", "0091", "+", "00", "+1 "]
    accepted = rejected = 0
    for _ in range(3000):
        kind = rng.random()
        if kind < 0.4:
            body = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        elif kind < 0.7:
            body = str(rng.randint(0, 10 ** rng.randint(1, 13)))
        else:  # a mobile-like number with separators here and there
            digits = str(rng.randint(6_000_000_000, 9_999_999_999))
            body = "".join(d + rng.choice(["", "", "", " ", "-", "."]) for d in digits).rstrip()
        value = rng.choice(prefixes) + body
        if normalise(value) is None:
            rejected += 1
            assert explain(value), value
        else:
            accepted += 1
            with pytest.raises(ValueError):
                explain(value)
    assert accepted > 300 and rejected > 1000


def test_normalise_many_on_a_mixed_object_series() -> None:
    series = pd.Series(
        [
            "+91 98765 43210",
            9876543211,
            919876543212.0,
            None,
            np.nan,
            "abc",
            "022 2345 6789",
            f"98765{NBSP}43213",
            "919876543214.0",
        ],
        index=[10, 11, 12, 13, 14, 15, 16, 17, 18],
        dtype=object,
    )
    assert normalise_many(series) == [
        "+919876543210",
        "+919876543211",
        "+919876543212",
        None,
        None,
        None,
        None,
        "+919876543213",
        "+919876543214",
    ]


def test_normalise_many_on_typed_series() -> None:
    as_text = pd.Series(["9876543210", None, "(+91) 98765-43211"])  # pandas' str dtype, NaN
    as_float = pd.Series([919876543210.0, np.nan, 9876543211.0])  # a numeric column with a blank
    as_int = pd.Series([9876543210, 12345], dtype="Int64")
    as_int_blank = pd.Series([9876543210, None], dtype="Int64")
    assert normalise_many(as_text) == ["+919876543210", None, "+919876543211"]
    assert normalise_many(as_float) == ["+919876543210", None, "+919876543211"]
    assert normalise_many(as_int) == ["+919876543210", None]
    assert normalise_many(as_int_blank) == ["+919876543210", None]


def test_normalise_many_on_lists_tuples_and_arrays() -> None:
    values = ["9876543210", 919876543211, "bad", None]
    expected = ["+919876543210", "+919876543211", None, None]
    assert normalise_many(values) == expected
    assert normalise_many(tuple(values)) == expected
    assert normalise_many(np.array(values, dtype=object)) == expected
    assert normalise_many([]) == []


def test_normalise_many_handles_a_million_rows_in_seconds() -> None:
    rows = [f"+91 98765 {i % 100000:05d}" if i % 100 else "022 2345 6789" for i in range(200_000)]
    started = time.perf_counter()
    result = normalise_many(rows)
    elapsed = time.perf_counter() - started
    assert result[1] == "+919876500001"
    assert result.count(None) == 2000
    assert elapsed < 3.0  # ~0.25 s here; a per-row phonenumbers call would take ~5 s


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("", None),
        ("  \t", None),
        (NBSP, None),
        (float("nan"), None),
        (np.float64("nan"), None),
        (pd.NA, None),
        (pd.NaT, None),
        (9876543210, "9876543210"),
        (np.int64(9876543210), "9876543210"),
        (919876543210.0, "919876543210"),
        (np.float64(919876543210.0), "919876543210"),
        (1e20, "100000000000000000000"),
        (Decimal("919876543210.0"), "919876543210"),
        (9.5, "9.5"),
        (np.float64(250.5), "250.5"),
        (float("inf"), "inf"),
        (True, "True"),
        ("919876543210.0", "919876543210.0"),
        (" 98765 43210 ", " 98765 43210 "),
    ],
)
def test_to_text(value: object, text: str | None) -> None:
    assert phones.to_text(value) == text


def test_to_wire_drops_the_plus() -> None:
    assert to_wire("+919876543210") == "919876543210"


@pytest.mark.parametrize(
    "value", ["919876543210", "+14155552671", "+919876543210\n", "+91 98765 43210", None]
)
def test_to_wire_rejects_anything_not_normalised(value: object) -> None:
    with pytest.raises(ValueError, match="not a normalised Indian mobile number") as caught:
        to_wire(value)  # type: ignore[arg-type]
    assert "98765" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("+919876543210", "+91******3210"),
        (" +919876543210 ", "+91******3210"),
        ("9876543210", "******3210"),
        ("98765 43210", "*******3210"),
        ("+14155552671", "********2671"),
        (9876543210, "******3210"),
        ("123", "***"),
        ("1234", "****"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask(value: object, masked: str) -> None:
    assert mask(value) == masked  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("98765.00000", "+919876500000"),  # a "." before zeros is a separator ...
        ("987.654.0000", "+919876540000"),
        ("919876500000.0", "+919876500000"),  # ... but a trailing ".0" is a float's leftover
        ("9876500000.00", "+919876500000"),
    ],
)
def test_dots_are_separators_except_a_floats_trailing_zero(text, expected):
    assert normalise(text) == expected
