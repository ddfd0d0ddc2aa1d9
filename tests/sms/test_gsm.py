"""GSM 03.38 / UCS-2 detection and SMS part counts.

As docs/contract.md, "Encoding and parts" and docs/provider-api.md, "Message length, encoding
and credits" describe them.
"""

from __future__ import annotations

import pytest

from pipeline.sms.gsm import (
    GSM_BASIC,
    GSM_EXTENSION,
    GSM_LOOKALIKES,
    MAX_GSM_CHARS,
    MAX_UCS2_UNITS,
    analyse,
    count_segments,
    describe_unicode,
    describe_unicode_many,
    encoding_of,
    length_problem,
    non_gsm_characters,
    to_gsm,
)

HINDI = "नमस्ते"  # 6 code points, all in the BMP
EMOJI = "\U0001f600"  # one code point, two UTF-16 units
DEVA = "अ"  # one BMP character outside GSM


def test_tables_match_ts_23_038():
    assert len(GSM_BASIC) == 127  # 128 code points minus ESC
    assert GSM_EXTENSION == frozenset("\f^{}\\[~]|€")
    assert GSM_BASIC.isdisjoint(GSM_EXTENSION)
    assert set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà") <= GSM_BASIC
    not_gsm_ascii = [c for c in map(chr, range(128)) if c not in GSM_BASIC | GSM_EXTENSION]
    expected = [chr(i) for i in range(32) if chr(i) not in "\n\r\f"] + ["`", "\x7f"]
    assert not_gsm_ascii == expected


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Hello {Name}, ₹ is not GSM", "UCS-2"),
        ("Price: 5€ ^_^ [ok] {x} ~|\\", "GSM-7"),
        ("Ç is GSM", "GSM-7"),
        ("ç is not", "UCS-2"),  # the table draws only the capital at 0x09
        ("ΔΦΓΛΩΠΨΣΘΞ", "GSM-7"),
        ("α", "UCS-2"),
        ("tab\there", "UCS-2"),
        ("non\u00a0breaking", "UCS-2"),
        ("line\r\nbreak\fpage", "GSM-7"),
        ("Use `code`", "UCS-2"),
        (HINDI, "UCS-2"),
        (EMOJI, "UCS-2"),
        ("", "GSM-7"),
    ],
)
def test_encoding_of(text, encoding):
    assert encoding_of(text) == encoding


@pytest.mark.parametrize(
    ("length", "parts"),
    [
        (0, 1),
        (1, 1),
        (160, 1),
        (161, 2),
        (306, 2),
        (307, 3),
        (459, 3),
        (460, 4),
        (612, 4),
        (613, 5),
        (765, 5),
        (766, 6),
    ],
)
def test_gsm_plain_boundaries(length, parts):
    assert count_segments("a" * length) == parts


def test_max_gsm_chars_is_five_parts():
    assert MAX_GSM_CHARS == 5 * 153
    assert count_segments("x" * MAX_GSM_CHARS) == 5
    assert count_segments("x" * (MAX_GSM_CHARS + 1)) == 6


def test_extension_characters_count_two_septets():
    assert count_segments("a" * 158 + "€") == 1  # 160 septets
    assert count_segments("a" * 159 + "€") == 2  # 161 septets
    assert count_segments("a" * 158 + "^") == 1
    assert count_segments("a" * 159 + "^") == 2
    assert count_segments("^" * 80) == 1
    assert count_segments("{}" * 38 + "a" * 154) == 2  # 152 + 154 = 306 septets, no straddle


def test_extension_character_is_not_split_across_parts():
    # € at septets 151-152 fits part 1: 306 septets in 2 parts.
    assert count_segments("a" * 151 + "€" + "a" * 153) == 2
    # € at septets 152-153 would straddle: it moves to part 2, which then overflows.
    assert count_segments("a" * 152 + "€" + "a" * 152) == 3
    assert count_segments("a" * 152 + "€" + "a" * 151) == 2
    # 81 × ^ = 162 septets: 76 fit part 1 (152), the rest go to part 2.
    assert count_segments("^" * 81) == 2
    # 153 × € = 306 septets, but a part holds only 76 of them (152 septets): 3 parts.
    assert count_segments("€" * 153) == 3


@pytest.mark.parametrize(
    ("length", "parts"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_boundaries(length, parts):
    assert count_segments(DEVA * length) == parts


def test_emoji_count_two_units():
    assert count_segments(EMOJI * 35) == 1  # 70 units
    assert count_segments(EMOJI * 35 + DEVA) == 2  # 71 units
    assert count_segments(EMOJI + "a" * 69) == 2  # 71 units, UCS-2 because of the emoji


def test_surrogate_pair_is_not_split_across_parts():
    # Emoji at units 65-66 fits part 1: 134 units in 2 parts.
    assert count_segments(DEVA * 65 + EMOJI + DEVA * 67) == 2
    # Emoji at units 66-67 would straddle: it moves to part 2, which then overflows.
    assert count_segments(DEVA * 66 + EMOJI + DEVA * 66) == 3
    assert count_segments(DEVA * 66 + EMOJI + DEVA * 65) == 2
    # 67 emoji = 134 units, but a 67-unit part holds only 33 of them: 3 parts.
    assert count_segments(EMOJI * 67) == 3


def test_analyse_passes_none_and_matches_single_functions():
    messages = [
        "Hi Ramesh, your order ships today.",
        None,
        HINDI * 20,
        "a" * 152 + "€" + "a" * 152,
        DEVA * 66 + EMOJI + DEVA * 66,
        "a" * 161,
        "",
        "Use `code`",
    ]
    encodings, segments = analyse(messages)
    assert encodings == ["GSM-7", None, "UCS-2", "GSM-7", "UCS-2", "GSM-7", "GSM-7", "UCS-2"]
    assert segments == [1, None, 2, 3, 3, 2, 1, 1]
    for text, enc, seg in zip(messages, encodings, segments, strict=True):
        if text is not None:
            assert (enc, seg) == (encoding_of(text), count_segments(text))


def test_non_gsm_characters_positions():
    assert non_gsm_characters("Use `code` now") == [(5, "`"), (10, "`")]
    assert non_gsm_characters("Rs. 5€ ₹5 ç") == [(8, "₹"), (11, "ç")]
    assert non_gsm_characters(f"ok {EMOJI}!") == [(4, EMOJI)]
    assert non_gsm_characters("नम a") == [(1, "न"), (2, "म")]
    assert non_gsm_characters("plain {GSM} text €") == []


# --- look-alikes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("char", "replacement"),
    [
        ("\u2018", "'"),
        ("\u2019", "'"),
        ("\u201a", "'"),
        ("\u201b", "'"),
        ("\u2032", "'"),
        ("\u2039", "'"),
        ("\u203a", "'"),
        ("\u02bc", "'"),
        ("\u00b4", "'"),
        ("`", "'"),
        ("\u201c", '"'),
        ("\u201d", '"'),
        ("\u201e", '"'),
        ("\u201f", '"'),
        ("\u2033", '"'),
        ("\u00ab", '"'),
        ("\u00bb", '"'),
        ("\u2010", "-"),
        ("\u2011", "-"),
        ("\u2012", "-"),
        ("\u2013", "-"),
        ("\u2014", "-"),
        ("\u2015", "-"),
        ("\u2212", "-"),
        ("\u2022", "-"),
        ("\u00a0", " "),
        ("\u202f", " "),
        ("\u205f", " "),
        ("\u3000", " "),
        ("\u2000", " "),
        ("\u2001", " "),
        ("\u2002", " "),
        ("\u2003", " "),
        ("\u2004", " "),
        ("\u2005", " "),
        ("\u2006", " "),
        ("\u2007", " "),
        ("\u2008", " "),
        ("\u2009", " "),
        ("\u200a", " "),
        ("\u200b", ""),
        ("\u2060", ""),
        ("\ufeff", ""),
        ("\u00ad", ""),
        ("\u2026", "..."),
    ],
)
def test_to_gsm_each_lookalike(char, replacement):
    assert GSM_LOOKALIKES[char] == replacement
    assert encoding_of(char) == "UCS-2"
    assert to_gsm(f"a{char}b") == f"a{replacement}b"
    assert encoding_of(to_gsm(f"a{char}b")) == "GSM-7"


def test_lookalike_table_is_exactly_the_tested_one():
    # Every key forces UCS-2 and every value is GSM-7: nothing in the table is a no-op.
    assert len(GSM_LOOKALIKES) == 45
    assert all(encoding_of(key) == "UCS-2" for key in GSM_LOOKALIKES)
    assert all(encoding_of(value) == "GSM-7" for value in GSM_LOOKALIKES.values())


def test_to_gsm_sentence():
    text = "Hi Asha\u00a0\u2014 it\u2019s \u201cDiwali\u201d sale\u2026 \u2022 10\u201320% off"
    assert to_gsm(text) == 'Hi Asha - it\'s "Diwali" sale... - 10-20% off'
    assert encoding_of(text) == "UCS-2"
    assert count_segments(text) == 1
    assert encoding_of(to_gsm(text)) == "GSM-7"


def test_to_gsm_leaves_everything_else_alone():
    kept = "Rs 5 \u20b9 \u00e7 \u0915\u094d\u200d\u0937 \U0001f600 \u0301 \t \u20ac {x} [y] \u00e9"
    assert to_gsm(kept) == kept  # ₹, ç, ZWJ in Devanagari, emoji, combining mark, tab, GSM
    plain = "Plain GSM text, nothing to do."
    assert to_gsm(plain) == plain


def test_to_gsm_hindi_still_needs_unicode():
    text = f"{HINDI} \u2018{HINDI}\u2019 \u2013 {DEVA}"
    fixed = to_gsm(text)
    assert fixed == f"{HINDI} '{HINDI}' - {DEVA}"
    assert encoding_of(fixed) == "UCS-2"
    assert describe_unicode(fixed) == (
        "Unicode because of \u0928 U+0928 at position 1, \u092e U+092E at position 2, "
        "\u0938 U+0938 at position 3, +4 more"
    )


# --- length cap ------------------------------------------------------------------------------


def test_max_ucs2_units_is_five_parts_of_67():
    assert MAX_UCS2_UNITS == 335
    assert count_segments(DEVA * MAX_UCS2_UNITS) == 5
    assert count_segments(DEVA * (MAX_UCS2_UNITS + 1)) == 6


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", None),
        ("a" * 160, None),
        ("a" * 765, None),
        ("a" * 766, "too long: 766 GSM-7 characters (max 765, 5 parts)"),
        ("a" * 802, "too long: 802 GSM-7 characters (max 765, 5 parts)"),
        # € is ESC + septet: 763 + 2 = 765 fits, 764 + 2 = 766 does not
        ("a" * 763 + "\u20ac", None),
        (
            "a" * 764 + "\u20ac",
            "too long: 766 GSM-7 characters, \u20ac counting 2 (max 765, 5 parts)",
        ),
        ("{" + "a" * 761 + "}", None),
        (
            "{" + "a" * 762 + "}",
            "too long: 766 GSM-7 characters, { } counting 2 (max 765, 5 parts)",
        ),
        (
            "^[]|~" + "a" * 761,
            "too long: 771 GSM-7 characters, ^ [ ] ... counting 2 (max 765, 5 parts)",
        ),
        ("\f" + "a" * 764, "too long: 766 GSM-7 characters, U+000C counting 2 (max 765, 5 parts)"),
        # 765 septets, but € would straddle parts 1 and 2, so it moves whole: 6 parts
        (
            "a" * 152 + "\u20ac" + "a" * 611,
            "too long: 765 GSM-7 characters, \u20ac counting 2, need 6 parts because such a "
            "character is never split across two parts (max 765, 5 parts)",
        ),
        ("a" * 151 + "\u20ac" + "a" * 612, None),  # € ends part 1 exactly
        (DEVA * 335, None),
        (DEVA * 336, "too long: 336 Unicode characters (max 335, 5 parts)"),
        (DEVA * 340, "too long: 340 Unicode characters (max 335, 5 parts)"),
        ("a" * 334 + "\u2019", None),  # one ’ makes 335 characters Unicode: still fits
        ("a" * 335 + "\u2019", "too long: 336 Unicode characters (max 335, 5 parts)"),
        # an emoji is 2 UTF-16 units
        (DEVA * 333 + EMOJI, None),
        (
            DEVA * 334 + EMOJI,
            "too long: 336 Unicode characters, \U0001f600 counting 2 (max 335, 5 parts)",
        ),
        (
            DEVA * 66 + EMOJI + DEVA * 267,
            "too long: 335 Unicode characters, \U0001f600 counting 2, need 6 parts because such a "
            "character is never split across two parts (max 335, 5 parts)",
        ),
        (EMOJI * 160, None),  # 320 units, 33 emoji a part: 5 parts
        (EMOJI * 168, "too long: 336 Unicode characters, \U0001f600 counting 2 (max 335, 5 parts)"),
    ],
)
def test_length_problem(text, problem):
    assert length_problem(text) == problem
    assert (problem is None) == (count_segments(text) <= 5)


def test_length_problem_matches_segments_everywhere_near_the_limits():
    # The fast path (short texts) and the measured path agree with count_segments.
    for text in ["a" * n for n in range(150, 800, 7)] + [DEVA * n for n in range(60, 360, 7)]:
        assert (length_problem(text) is None) == (count_segments(text) <= 5)
    for n in range(1, 170):
        assert length_problem(EMOJI * n) is None or count_segments(EMOJI * n) > 5


# --- why Unicode -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "description"),
    [
        ("Plain {GSM} text \u20ac", 3, None),
        ("", 3, None),
        (
            "Hello, it\u2019s 5 \u2013 6 pm",
            3,
            "Unicode because of \u2019 U+2019 at position 10, \u2013 U+2013 at position 15",
        ),
        # repeats are reported once, at their first position
        ("\u2019a\u2019b\u2019", 3, "Unicode because of \u2019 U+2019 at position 1"),
        (
            "Pay \u20b9500 by 5th \u2014 \u201cthanks\u201d \u2026",
            3,
            "Unicode because of \u20b9 U+20B9 at position 5, \u2014 U+2014 at position 17, "
            "\u201c U+201C at position 19, +2 more",
        ),
        (
            "Pay \u20b9500 by 5th \u2014 \u201cthanks\u201d \u2026",
            1,
            "Unicode because of \u20b9 U+20B9 at position 5, +4 more",
        ),
        (
            "Pay \u20b9500 by 5th \u2014 \u201cthanks\u201d \u2026",
            5,
            "Unicode because of \u20b9 U+20B9 at position 5, \u2014 U+2014 at position 17, "
            "\u201c U+201C at position 19, \u201d U+201D at position 26, "
            "\u2026 U+2026 at position 28",
        ),
        # invisible characters are named, not printed
        (
            "a\u00a0b\tc\u0301",
            3,
            "Unicode because of U+00A0 NO-BREAK SPACE at position 2, U+0009 at position 4, "
            "U+0301 COMBINING ACUTE ACCENT at position 6",
        ),
        (f"ok {EMOJI}!", 3, "Unicode because of \U0001f600 U+1F600 at position 4"),
        # a Devanagari vowel sign cannot stand alone either
        (
            "\u0915\u093f",
            3,
            "Unicode because of \u0915 U+0915 at position 1, "
            "U+093F DEVANAGARI VOWEL SIGN I at position 2",
        ),
        ("\u00e7a \u00c7a", 3, "Unicode because of \u00e7 U+00E7 at position 1"),
    ],
)
def test_describe_unicode(text, limit, description):
    assert describe_unicode(text, limit) == description
    assert (description is None) == (encoding_of(text) == "GSM-7")


def test_describe_unicode_positions_agree_with_non_gsm_characters():
    text = "Dear \u0905\u092e\u0924, \u20b9 500 \u2013 ok \u2019\u00e7\u03b1\u0905"
    firsts = {}
    for position, char in non_gsm_characters(text):
        firsts.setdefault(char, position)
    shown = [f"{char} U+{ord(char):04X} at position {pos}" for char, pos in firsts.items()]
    assert describe_unicode(text, limit=len(firsts)) == "Unicode because of " + ", ".join(shown)


def test_describe_unicode_many_agrees_with_one_at_a_time():
    texts = [
        f"Hi {HINDI}, order 1 ships today",
        f"Hi {HINDI}, order 2 ships today",  # same prefix
        f"Hi {HINDI}",
        f"Hi {HINDI}!",
        f"Hi {HINDI}’",
        "plain GSM",
        "",
        f"{EMOJI}x{EMOJI}",
        "a\nb\u00e7",
        "ç" + "x" * 200 + "€é",
        "€ only extension",
        f"{DEVA}{HINDI}{DEVA}₹",
    ]
    assert describe_unicode_many(texts) == [describe_unicode(t) for t in texts]
    assert describe_unicode_many([]) == []


def test_describe_unicode_limit_must_be_positive():
    with pytest.raises(ValueError, match="^limit must be at least 1, not 0$"):
        describe_unicode("\u2019", 0)
