"""GSM 03.38 vs UCS-2, and how many SMS parts (credits) a message costs.

Contract §5 and textlocal-api.md §7: a message is GSM-7 when every character is in the GSM 03.38
default alphabet or its extension table (extension characters are ESC-prefixed, so they count
2 septets); otherwise the whole message is UCS-2. GSM-7 fits 160 septets in one part and 153 per
part when concatenated (7 septets go to the UDH); UCS-2 fits 70 UTF-16 code units, 67 per part.
Textlocal charges one credit per part per recipient.
"""

from __future__ import annotations

import re
from collections.abc import Container, Sequence

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# 3GPP TS 23.038 §6.2.1 default alphabet, 0x00..0x7F in table order, minus 0x1B (ESC, which
# introduces the extension table). 0x09 is the capital Ç as the ETSI table draws it; the
# lowercase ç is NOT in the table, so it forces UCS-2 (the safe side: we never promise GSM-7
# for a character the network might turn into something else).
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# 3GPP TS 23.038 §6.2.1.1 extension table (default, no national shift): each is ESC + one septet.
_EXTENSION = "\f^{}\\[~]|€"

GSM_BASIC: frozenset[str] = frozenset(_BASIC)
GSM_EXTENSION: frozenset[str] = frozenset(_EXTENSION)

# textlocal-api.md §7: longer GSM messages are truncated to 765 characters (5 parts of 153).
MAX_GSM_CHARS = 765

_SINGLE = {GSM7: 160, UCS2: 70}
_PER_PART = {GSM7: 153, UCS2: 67}

# One C-level scan finds the first character that is not 1 septet; most messages have none.
_NOT_BASIC = re.compile("[^" + re.escape(_BASIC) + "]")
_NOT_GSM = re.compile("[^" + re.escape(_BASIC + _EXTENSION) + "]")
_EXT = re.compile("[" + re.escape(_EXTENSION) + "]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _parts(length: int, encoding: str) -> int:
    """Parts for `length` units where no character can straddle a part boundary."""
    if length <= _SINGLE[encoding]:
        # An empty message is counted as 1 part: it would still be one SMS if sent.
        return 1
    return -(-length // _PER_PART[encoding])


def _split(total: int, per_part: int, pair_starts: Container[int]) -> int:
    """Parts for `total` units where a 2-unit character starting at any of `pair_starts`
    (unit offsets) must not straddle two parts: it moves whole to the next part."""
    parts = pos = 0
    while pos < total:
        end = pos + per_part
        if end < total and end - 1 in pair_starts:
            end -= 1
        pos = end
        parts += 1
    return parts


def _pair_starts(pattern: re.Pattern[str], text: str, start: int) -> set[int]:
    """Unit offsets where each 2-unit character matched by `pattern` starts."""
    # Each earlier 2-unit character shifts the offset by one more unit.
    return {m.start() + k for k, m in enumerate(pattern.finditer(text, start))}


def _measure(text: str, start: int | None = None) -> tuple[str, int]:
    """Encoding and part count of one message (`start`: index of its first non-basic char)."""
    if start is None:
        first = _NOT_BASIC.search(text)
        if first is None:
            return GSM7, _parts(len(text), GSM7)
        start = first.start()
    if _NOT_GSM.search(text, start) is None:
        # Extension characters are ESC + septet (TS 23.038 §6.2.1.1): 2 septets, and the pair
        # must not be split across parts or the handset would show two wrong glyphs.
        septets = len(text) + len(_EXT.findall(text, start))
        if septets <= _SINGLE[GSM7]:
            return GSM7, 1
        return GSM7, _split(septets, _PER_PART[GSM7], _pair_starts(_EXT, text, start))
    # UCS-2 counts UTF-16 code units: a character outside the BMP (emoji) is a surrogate pair,
    # which must not be split across parts either.
    units = len(text.encode("utf-16-le", "surrogatepass")) >> 1
    if units == len(text) or units <= _SINGLE[UCS2]:
        return UCS2, _parts(units, UCS2)
    return UCS2, _split(units, _PER_PART[UCS2], _pair_starts(_ASTRAL, text, 0))


def encoding_of(text: str) -> str:
    """Return "GSM-7" if every character is in the GSM 03.38 tables, else "UCS-2"."""
    return GSM7 if _NOT_GSM.search(text) is None else UCS2


def count_segments(text: str) -> int:
    """Number of SMS parts (credits per recipient) `text` needs; an empty text is 1 part."""
    return _measure(text)[1]


def analyse(messages: Sequence[str | None]) -> tuple[list[str | None], list[int | None]]:
    """Encodings and part counts for many messages; None (no message) passes through."""
    encodings: list[str | None] = []
    segments: list[int | None] = []
    add_enc, add_seg = encodings.append, segments.append
    not_basic = _NOT_BASIC.search
    single, per = _SINGLE[GSM7], _PER_PART[GSM7]
    for text in messages:
        if text is None:
            add_enc(None)
            add_seg(None)
        elif (first := not_basic(text)) is None:
            # Hot path: plain GSM text, one septet per character.
            add_enc(GSM7)
            n = len(text)
            add_seg(1 if n <= single else -(-n // per))
        else:
            enc, seg = _measure(text, first.start())
            add_enc(enc)
            add_seg(seg)
    return encodings, segments


def non_gsm_characters(text: str) -> list[tuple[int, str]]:
    """(1-based character position, character) for each character that forces UCS-2."""
    return [(m.start() + 1, m.group()) for m in _NOT_GSM.finditer(text)]
