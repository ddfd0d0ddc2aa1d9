"""GSM 03.38 / UCS-2 detection and SMS part counts (contract §5, textlocal-api.md §7)."""

from __future__ import annotations

import pytest

from pipeline.encoding import (
    GSM_BASIC,
    GSM_EXTENSION,
    MAX_GSM_CHARS,
    analyse,
    count_segments,
    encoding_of,
    non_gsm_characters,
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
    [(0, 1), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4),
     (612, 4), (613, 5), (765, 5), (766, 6)],
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
