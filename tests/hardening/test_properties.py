"""Property-based tests (hypothesis) for the pure stages: phones, template, segment counter.

Every test runs a fixed number of examples with `derandomize=True` and no example database,
so a CI run is the same run every time. Together they take about ten seconds.
"""

from __future__ import annotations

import datetime as dt
import random
import re

import numpy as np
import pandas as pd
import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from pipeline.merge.template import MissingValue, Placeholder, parse_template
from pipeline.sms import gsm as encoding
from pipeline.sms import phones

DETERMINISTIC = settings(
    derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
E164 = re.compile(r"^\+91[6-9]\d{9}$", re.ASCII)

# ============================================================================================
# Phone normaliser (docs/contract.md, "Phone numbers")
# ============================================================================================

SEPARATORS = [" ", "\u00a0", "\t", "-", ".", "(", ")"]
PREFIXES = ["", "+91", "91", "0", "0091", "091"]
# What explain() may answer: the reasons of docs/contract.md, "Phone numbers", among them "not
# a mobile number" (toll-free, premium, unassigned ranges) and Excel's scientific notation.
REASONS = (
    "empty",
    "too short",
    "too long",
    "landline",
    "not an Indian number",
    "not a number",
    "not a mobile number",
    "scientific notation",
)

national_numbers = st.from_regex(r"[6-9][0-9]{9}", fullmatch=True)


@st.composite
def phone_like_text(draw: st.DrawFn) -> str:
    """Text made of the pieces numbers are typed with: digits, prefixes, separators, noise."""
    pieces = st.one_of(
        st.from_regex(r"[0-9]{1,12}", fullmatch=True),
        st.sampled_from(
            PREFIXES
            + SEPARATORS
            + ["+", ".0", "e+11", ",", "/", "x", "\n", "\u0969", "\uff19", "E"]
        ),
    )
    return "".join(draw(st.lists(pieces, max_size=8)))


any_cell = st.one_of(
    st.none(),
    st.text(max_size=30),
    phone_like_text(),
    st.integers(),
    st.integers(min_value=6_000_000_000, max_value=919_999_999_999),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=6e9, max_value=9.2e11).map(float.__floor__).map(float),
    st.booleans(),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.binary(max_size=12),
    st.dates(),
    st.sampled_from(
        [
            pd.NA,
            pd.NaT,
            np.nan,
            np.float64("inf"),
            np.int64(9876543210),
            np.float64(919876543210.0),
            np.datetime64("NaT"),
            [],
            {},
            object,
        ]
    ),
)


@pytest.mark.slow
@settings(DETERMINISTIC, max_examples=1500)
@given(any_cell)
@example("9876543210")
@example(float("nan"))
@example(float("-inf"))
@example("+")
@example("\u0969" * 10)  # Devanagari digit three
def test_normalise_never_raises_and_gives_e164_or_a_documented_reason(value):
    number = phones.normalise(value)
    if number is None:
        reason = phones.explain(value)
        assert isinstance(reason, str) and reason.startswith(REASONS), reason
        assert "\n" not in reason
    else:
        assert E164.fullmatch(number), number
        assert phones.normalise(number) == number  # idempotent
        assert phones.to_wire(number) == number[1:]


@pytest.mark.slow
@settings(DETERMINISTIC, max_examples=300)
@given(st.lists(any_cell, max_size=12))
def test_normalise_many_agrees_with_normalise_element_by_element(values):
    expected = [phones.normalise(v) for v in values]
    assert phones.normalise_many(values) == expected
    assert phones.normalise_many(pd.Series(values, dtype=object)) == expected


@st.composite
def formatted_numbers(draw: st.DrawFn) -> tuple[str, object]:
    """A national number and one way a sheet may hold it (docs/contract.md, "Phone numbers")."""
    national = draw(national_numbers)
    form = draw(st.sampled_from(["text", "int", "float", "text.0"]))
    prefix = draw(st.sampled_from(PREFIXES))
    if form == "int":
        return national, int(national) if prefix in ("", "0") else int("91" + national)
    if form == "float":
        return national, float(national) if prefix in ("", "0") else float("91" + national)
    digits = prefix + national
    # Separators between any two characters, even inside a prefix ("+(91)", "00-91").
    out = []
    for char in digits:
        if out and draw(st.integers(0, 4)) == 0:
            out.append(draw(st.sampled_from(SEPARATORS)))
        out.append(char)
    text = draw(st.sampled_from(["", " ", "\u00a0"])) + "".join(out)
    if form == "text.0":
        text += ".0"
    # A "." right before a final ".0"/".00" reads as a float's leftover, as a cell would.
    assume(form == "text.0" or not re.search(r"[0-9]\.0{1,2}\s*$", text))
    return national, text


@pytest.mark.slow
@settings(DETERMINISTIC, max_examples=1500)
@given(formatted_numbers())
@example(("8022345678", "080-2234-5678"))  # a Bengaluru landline, written as one
@example(("7926561234", "+91 79 2656 1234"))  # an Ahmedabad landline
@example(("6000007412", 916000007412.0))
def test_accepted_exactly_when_phonenumbers_says_mobile(case):
    national, value = case
    kind = phonenumbers.number_type(phonenumbers.parse("+91" + national, None))
    # phones.py's documented rule: 10 digits starting 6-9, minus India's fixed-line ranges
    # unless a range is also mobile. For India every such number is MOBILE,
    # FIXED_LINE_OR_MOBILE or FIXED_LINE (checked over 480,000 samples), so the rule is
    # exactly "phonenumbers says mobile or fixed-line-or-mobile".
    mobile = kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
    got = phones.normalise(value)
    assert got == ("+91" + national if mobile else None), (value, kind)
    if not mobile:
        assert kind == PhoneNumberType.FIXED_LINE
        assert phones.explain(value) == "landline"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("98765.00000", "+919876500000"),
        ("+91 98765.00000", "+919876500000"),
        ("0091.98765.00000", "+919876500000"),
        ("987.654.0000", "+919876540000"),
    ],
)
def test_a_dot_before_a_final_group_of_zeros_is_a_separator(text, expected):
    assert phones.normalise(text) == expected


# ============================================================================================
# Template renderer (docs/contract.md, "Template")
# ============================================================================================

header_text = st.text(
    alphabet=st.sampled_from(list("AbcXyz019 .:-_%/#&'\"") + ["\u0928", "\u093e", "é"]),
    min_size=1,
    max_size=12,
).filter(lambda h: h.strip() != "")

literal_piece = st.one_of(
    st.text(alphabet=st.characters(exclude_characters="{}", codec="utf-8"), max_size=8),
    st.sampled_from(["{{", "}}", "%", "%s", "%%", "\n", " : "]),
)

# Values rendered "as the user sees them", with their expected text (None = empty cell).
money = st.integers(-(10**11), 10**11).map(lambda k: k / 100)
cell_values = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["", "   ", "\t"]),
    st.integers(-(10**20), 10**20),
    money,
    st.dates(),
    st.datetimes(),
    st.datetimes().map(lambda d: d.replace(hour=0, minute=0, second=0, microsecond=0)),
    st.none(),
    st.booleans(),
)


def shown(value: object) -> str | None:
    """What docs/contract.md, "Template" says a cell renders as; None for an empty cell."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return (
            f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
            f"{value.hour:02d}:{value.minute:02d}"
        )
    if isinstance(value, dt.date):
        return value.isoformat()
    raise AssertionError(f"no expectation for {value!r}")


@st.composite
def templates(draw: st.DrawFn, *, specs: bool):
    """(headers, template text, intended parts: literal str | (header, spec), columns, n)."""
    headers = draw(st.lists(header_text, min_size=1, max_size=5, unique_by=lambda h: h.strip()))
    parts: list[object] = []
    text = []
    for _ in range(draw(st.integers(0, 7))):
        if draw(st.booleans()):
            piece = draw(literal_piece)
            text.append(piece)
            parts.append(piece.replace("{{", "{").replace("}}", "}"))
        else:
            header = draw(st.sampled_from(headers))
            spec = (
                draw(st.sampled_from([None, ".2f", ">8", ",", "d", "%Y-%m", "%H:%M", ".3", "05"]))
                if specs
                else None
            )
            pad = draw(st.sampled_from(["", " "]))
            inner = header.strip() if spec is None else f"{header.strip()}:{spec}"
            text.append("{" + pad + inner + pad + "}")
            parts.append((header, spec))
    n = draw(st.integers(1, 6))
    columns = {h: draw(st.lists(cell_values, min_size=n, max_size=n)) for h in headers}
    return headers, "".join(text), parts, columns, n


def parsed_as_intended(template, parts) -> bool:
    """The parser read each placeholder as the header and spec we wrote (a header such as
    `a:b` next to `a` can make `{a:b}` legitimately mean the other one)."""
    placeholders = [p for p in template.parts if isinstance(p, Placeholder)]
    wanted = [Placeholder(h, s) for h, s in (p for p in parts if isinstance(p, tuple))]
    return placeholders == wanted


@pytest.mark.slow
@settings(DETERMINISTIC, max_examples=600)
@given(templates(specs=False))
def test_rendering_resolves_every_placeholder_and_unescapes_braces(case):
    headers, text, parts, columns, n = case
    template = parse_template(text, headers)
    assume(parsed_as_intended(template, parts))
    messages, missing = template.render(columns, n)
    for i in range(n):
        pieces, first_empty = [], None
        for part in parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            value = shown(columns[part[0]][i])
            if value is None:
                first_empty = first_empty or part[0]
            pieces.append(value or "")
        if first_empty is not None:
            assert (messages[i], missing[i]) == (None, first_empty)
            continue
        assert (messages[i], missing[i]) == ("".join(pieces), None)
        if not any("{" in str(v) or "}" in str(v) for col in columns.values() for v in col):
            # Nothing in a value could look like a placeholder: none may be left over, and
            # every brace in the output is a single one from a `{{` / `}}`.
            for header in headers:
                assert "{" + header.strip() + "}" not in messages[i]
            literal = "".join(p for p in parts if isinstance(p, str))
            assert messages[i].count("{") == literal.count("{")
            assert messages[i].count("}") == literal.count("}")


@pytest.mark.slow
@settings(DETERMINISTIC, max_examples=600)
@given(templates(specs=True))
def test_vectorised_render_equals_render_row(case):
    headers, text, parts, columns, n = case
    template = parse_template(text, headers)
    assume(parsed_as_intended(template, parts))
    messages, missing = template.render(columns, n)
    for i in range(n):
        row = {h: columns[h][i] for h in headers}
        try:
            expected = template.render_row(row)
        except MissingValue as exc:
            assert (messages[i], missing[i]) == (None, exc.column)
        else:
            assert (messages[i], missing[i]) == (expected, None)


# ============================================================================================
# Segment counter: an independent GSM 03.38 reference (3GPP TS 23.038, section 6.2.1)
# ============================================================================================

# The default alphabet, typed from the standard's table by code point (column = high nibble,
# row = low nibble); 0x1B is the escape to the extension table, not a character. 0x09 is the
# capital C-cedilla the ETSI table shows.
_GSM_TABLE = {
    0x00: "@",
    0x01: "\u00a3",
    0x02: "$",
    0x03: "\u00a5",
    0x04: "\u00e8",
    0x05: "\u00e9",
    0x06: "\u00f9",
    0x07: "\u00ec",
    0x08: "\u00f2",
    0x09: "\u00c7",
    0x0A: "\n",
    0x0B: "\u00d8",
    0x0C: "\u00f8",
    0x0D: "\r",
    0x0E: "\u00c5",
    0x0F: "\u00e5",
    0x10: "\u0394",
    0x11: "_",
    0x12: "\u03a6",
    0x13: "\u0393",
    0x14: "\u039b",
    0x15: "\u03a9",
    0x16: "\u03a0",
    0x17: "\u03a8",
    0x18: "\u03a3",
    0x19: "\u0398",
    0x1A: "\u039e",
    0x1C: "\u00c6",
    0x1D: "\u00e6",
    0x1E: "\u00df",
    0x1F: "\u00c9",
    0x20: " ",
    0x21: "!",
    0x22: '"',
    0x23: "#",
    0x24: "\u00a4",
    0x25: "%",
    0x26: "&",
    0x27: "'",
    0x28: "(",
    0x29: ")",
    0x2A: "*",
    0x2B: "+",
    0x2C: ",",
    0x2D: "-",
    0x2E: ".",
    0x2F: "/",
    **{0x30 + d: str(d) for d in range(10)},
    0x3A: ":",
    0x3B: ";",
    0x3C: "<",
    0x3D: "=",
    0x3E: ">",
    0x3F: "?",
    0x40: "\u00a1",
    **{0x41 + k: chr(ord("A") + k) for k in range(26)},
    0x5B: "\u00c4",
    0x5C: "\u00d6",
    0x5D: "\u00d1",
    0x5E: "\u00dc",
    0x5F: "\u00a7",
    0x60: "\u00bf",
    **{0x61 + k: chr(ord("a") + k) for k in range(26)},
    0x7B: "\u00e4",
    0x7C: "\u00f6",
    0x7D: "\u00f1",
    0x7E: "\u00fc",
    0x7F: "\u00e0",
}
# The extension table of section 6.2.1.1 (ESC + code): FORM FEED 0x0A, ^ 0x14, { 0x28,
# } 0x29, \ 0x2F, [ 0x3C, ~ 0x3D, ] 0x3E, | 0x40, EURO SIGN 0x65.
_GSM_EXTENSION_TABLE = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "\u20ac",
}
REF_BASIC = frozenset(_GSM_TABLE.values())
REF_EXTENSION = frozenset(_GSM_EXTENSION_TABLE.values())


def reference_segments(text: str) -> tuple[str, int]:
    """(encoding, parts) by packing characters greedily: one that does not fit whole in the
    current part (an ESC pair, a surrogate pair) starts the next."""
    if all(c in REF_BASIC or c in REF_EXTENSION for c in text):
        name, costs, single, per = "GSM-7", [2 if c in REF_EXTENSION else 1 for c in text], 160, 153
    else:
        name, costs, single, per = "UCS-2", [2 if ord(c) > 0xFFFF else 1 for c in text], 70, 67
    if sum(costs) <= single:
        return name, 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per:
            parts, used = parts + 1, 0
        used += cost
    return name, parts


def test_reference_tables_have_the_standards_sizes():
    assert len(_GSM_TABLE) == 127 and len(REF_BASIC) == 127  # 128 codes, one of them ESC
    assert len(REF_EXTENSION) == 10 and not REF_BASIC & REF_EXTENSION
    assert reference_segments("a" * 160) == ("GSM-7", 1)
    assert reference_segments("a" * 161) == ("GSM-7", 2)
    assert reference_segments("a" * 158 + "€") == ("GSM-7", 1)  # 160 septets
    assert reference_segments("a" * 159 + "€") == ("GSM-7", 2)
    assert reference_segments("a" * 152 + "€" + "a" * 152) == ("GSM-7", 3)  # € moves whole
    assert reference_segments("\U0001f600" * 35) == ("UCS-2", 1)  # 70 units
    assert reference_segments("a" * 69 + "\U0001f600") == ("UCS-2", 2)  # 71 units
    assert reference_segments("a" * 66 + "\U0001f600" + "a" * 66) == ("UCS-2", 3)  # moves whole


GSM_SPECIALS = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑܧ¿äöñüà"
EXTENSION = "\f^{}\\[~]|€"
LATIN1 = "çáíóúãõêôâûÁÍÓÚ±°«»©®`µ÷×"
DEVANAGARI = "".join(chr(c) for c in range(0x0900, 0x0980) if chr(c).isprintable())
ASTRAL = "\U0001f600\U0001f64f\U0001f44d\U0001f1ee\U0001f1f3\U0001d538\U00020000\U0001f4e6"
ASCII = "".join(chr(c) for c in range(0x20, 0x7F))
# Lengths around every boundary: 1 part, 2 parts, ... for both encodings.
BOUNDARIES = sorted(
    {
        b + d
        for b in (0, 67, 70, 134, 153, 160, 201, 268, 306, 335, 459, 612, 765, 766)
        for d in (-2, -1, 0, 1, 2)
        if b + d >= 0
    }
)
MIXES = {
    "ascii": ASCII,
    "gsm": ASCII + GSM_SPECIALS,
    "gsm+ext": ASCII + GSM_SPECIALS + EXTENSION * 3,
    "latin1": ASCII + LATIN1,
    "hindi": DEVANAGARI + " ,.",
    "emoji": ASCII + ASTRAL * 4,
    "all": ASCII + GSM_SPECIALS + EXTENSION + LATIN1 + DEVANAGARI + ASTRAL,
}


def generated_messages(count: int, seed: int = 38) -> list[str]:
    """`count` messages of mixed alphabets, half of them at a part boundary."""
    rng = random.Random(seed)
    out = []
    names = sorted(MIXES)
    for i in range(count):
        alphabet = MIXES[names[i % len(names)]]
        length = rng.choice(BOUNDARIES) if i % 2 else rng.randrange(0, 800)
        text = [rng.choice(alphabet) for _ in range(length)]
        if i % 5 == 0 and text:
            # A 2-unit character right at a part edge is where splitting goes wrong.
            edge = min(rng.choice((152, 153, 66, 67, 305, 306, 133, 134)), len(text) - 1)
            text[edge] = rng.choice(EXTENSION if i % 10 == 0 else ASTRAL)
        out.append("".join(text))
    return out


@pytest.mark.slow
def test_segments_and_encoding_match_the_reference_on_10000_messages():
    messages = generated_messages(10_000)
    expected = [reference_segments(m) for m in messages]
    got = [(encoding.encoding_of(m), encoding.count_segments(m)) for m in messages]
    wrong = [(m, e, g) for m, e, g in zip(messages, expected, got, strict=True) if e != g]
    assert not wrong, f"{len(wrong)} differ, first: {wrong[0]!r}"
    encodings, segments = encoding.analyse(messages)
    assert list(zip(encodings, segments, strict=True)) == expected
    kinds = {e for e, _ in expected}
    parts = {p for _, p in expected}
    assert kinds == {"GSM-7", "UCS-2"} and set(range(1, 7)) <= parts  # the sweep is broad
    for message, (_, count) in zip(messages, expected, strict=True):
        assert (encoding.length_problem(message) is None) == (count <= encoding.MAX_PARTS)


@settings(DETERMINISTIC, max_examples=400)
@given(st.lists(st.sampled_from(list(MIXES["all"])), max_size=700).map("".join))
def test_segments_match_the_reference_on_any_mix(text):
    assert (encoding.encoding_of(text), encoding.count_segments(text)) == reference_segments(text)


@settings(DETERMINISTIC, max_examples=300)
@given(st.text(max_size=400))
def test_segments_match_the_reference_on_arbitrary_text(text):
    assert (encoding.encoding_of(text), encoding.count_segments(text)) == reference_segments(text)
