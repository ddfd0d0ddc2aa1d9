"""GSM 03.38 vs UCS-2, and how many SMS parts (credits) a message costs.

The rules (docs/contract.md, "Encoding and parts";
docs/provider-api.md, "Message length, encoding and credits"): a message is GSM-7 when every
character is in the GSM 03.38 default alphabet or its extension table (extension characters
are ESC-prefixed, so they count 2 septets); otherwise the whole message is UCS-2. GSM-7 fits
160 septets in one part and 153 per part when concatenated (7 septets go to the UDH); UCS-2
fits 70 UTF-16 code units, 67 per part. Textlocal charges one credit per part per recipient.

Also here: to_gsm() swaps typographic look-alikes (’ “ – … NBSP) for their GSM 03.38 twins,
length_problem() checks the provider's 5-part cap, and describe_unicode() says which characters
make a message Unicode.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container, Sequence
from functools import cache

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# The default alphabet of the GSM 03.38 standard (3GPP TS 23.038, section 6.2.1), 0x00..0x7F in
# table order, minus 0x1B (ESC, which introduces the extension table). 0x09 is the capital Ç
# as the ETSI table draws it; the lowercase ç is NOT in the table, so it forces UCS-2 (the
# safe side: we never promise GSM-7 for a character the network might turn into something
# else).
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
# The extension table (3GPP TS 23.038, section 6.2.1.1; default, no national shift): each is
# ESC + one septet.
_EXTENSION = "\f^{}\\[~]|€"

GSM_BASIC: frozenset[str] = frozenset(_BASIC)
GSM_EXTENSION: frozenset[str] = frozenset(_EXTENSION)

# Longer GSM messages are truncated to 765 characters, 5 parts of 153 (docs/provider-api.md,
# "Message length, encoding and credits").
MAX_GSM_CHARS = 765

_SINGLE = {GSM7: 160, UCS2: 70}
_PER_PART = {GSM7: 153, UCS2: 67}

# One C-level scan finds the first character that is not 1 septet; most messages have none.
_NOT_BASIC = re.compile("[^" + re.escape(_BASIC) + "]")
_NOT_GSM = re.compile("[^" + re.escape(_BASIC + _EXTENSION) + "]")
_EXT = re.compile("[" + re.escape(_EXTENSION) + "]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
# Greedy: matches up to and including the LAST character that forces UCS-2.
_UP_TO_LAST_NOT_GSM = re.compile("(?s:.*)[^" + re.escape(_BASIC + _EXTENSION) + "]")


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
        # Extension characters are ESC + septet (TS 23.038 6.2.1.1): 2 septets, and the pair
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


# --- look-alikes, length cap, and why a message is Unicode --------------------------------

# Characters that word processors and phones put in place of a GSM 03.38 one, and that look
# the same (or near enough) on a handset. One of them turns a whole message into UCS-2, which
# more than halves the characters per part (160/153 vs 70/67: docs/contract.md, "Encoding and
# parts"). Only substitutions that keep the meaning are here: curly quotes and primes, dashes
# and the minus sign, the Unicode spaces, the ellipsis, the bullet (a list marker, shown as
# "-"), and invisible characters (zero-width space, word joiner, byte-order mark, soft hyphen)
# are dropped.
# Left alone on purpose: ZWJ/ZWNJ (they shape Indic scripts and emoji), combining marks
# (dropping one changes the letter), ₹ (a different symbol, not a look-alike), tab.
GSM_LOOKALIKES: dict[str, str] = {
    # single quotes, apostrophes, primes, accents used as apostrophes
    "\u2018": "'",  # ‘ LEFT SINGLE QUOTATION MARK
    "\u2019": "'",  # ’ RIGHT SINGLE QUOTATION MARK (the usual "smart" apostrophe)
    "\u201a": "'",  # ‚ SINGLE LOW-9 QUOTATION MARK
    "\u201b": "'",  # ‛ SINGLE HIGH-REVERSED-9 QUOTATION MARK
    "\u2032": "'",  # ′ PRIME
    "\u2039": "'",  # ‹ SINGLE LEFT-POINTING ANGLE QUOTATION MARK
    "\u203a": "'",  # › SINGLE RIGHT-POINTING ANGLE QUOTATION MARK
    "\u02bc": "'",  # ʼ MODIFIER LETTER APOSTROPHE
    "\u00b4": "'",  # ´ ACUTE ACCENT (typed as an apostrophe)
    "`": "'",  # ` GRAVE ACCENT (not in GSM 03.38; typed as an apostrophe)
    # double quotes
    "\u201c": '"',  # “ LEFT DOUBLE QUOTATION MARK
    "\u201d": '"',  # ” RIGHT DOUBLE QUOTATION MARK
    "\u201e": '"',  # „ DOUBLE LOW-9 QUOTATION MARK
    "\u201f": '"',  # ‟ DOUBLE HIGH-REVERSED-9 QUOTATION MARK
    "\u2033": '"',  # ″ DOUBLE PRIME
    "\u00ab": '"',  # « LEFT-POINTING DOUBLE ANGLE QUOTATION MARK
    "\u00bb": '"',  # » RIGHT-POINTING DOUBLE ANGLE QUOTATION MARK
    # hyphens, dashes, minus, bullet
    "\u2010": "-",  # ‐ HYPHEN
    "\u2011": "-",  # ‑ NON-BREAKING HYPHEN
    "\u2012": "-",  # ‒ FIGURE DASH
    "\u2013": "-",  # – EN DASH
    "\u2014": "-",  # — EM DASH
    "\u2015": "-",  # ― HORIZONTAL BAR
    "\u2212": "-",  # − MINUS SIGN
    "\u2022": "-",  # • BULLET
    # spaces (U+2000..U+200A: en quad .. hair space)
    "\u00a0": " ",  # NO-BREAK SPACE
    "\u202f": " ",  # NARROW NO-BREAK SPACE
    "\u205f": " ",  # MEDIUM MATHEMATICAL SPACE
    "\u3000": " ",  # IDEOGRAPHIC SPACE
    **{chr(code): " " for code in range(0x2000, 0x200B)},
    # invisible: dropped
    "\u200b": "",  # ZERO WIDTH SPACE
    "\u2060": "",  # WORD JOINER
    "\ufeff": "",  # ZERO WIDTH NO-BREAK SPACE (byte-order mark)
    "\u00ad": "",  # SOFT HYPHEN
    # ellipsis
    "\u2026": "...",  # … HORIZONTAL ELLIPSIS
}

# The regex finds the few look-alikes in C; str.translate would look up every character of a
# non-ASCII text in a dict, 3x slower on a Hindi message.
_LOOKALIKE = re.compile("[" + re.escape("".join(GSM_LOOKALIKES)) + "]")
_GSM_ALL = GSM_BASIC | GSM_EXTENSION

# 5 parts at most (docs/provider-api.md, "Message length, encoding and credits"). GSM-7:
# "truncated to 765 characters" (5 x 153). The unicode cap is not documented, so assumed:
# 5 x 67 UTF-16 units is the conservative guess, and the sandbox refuses longer messages the
# same way (sandbox/api.py).
MAX_PARTS = 5
MAX_UCS2_UNITS: int = MAX_PARTS * _PER_PART[UCS2]

# Up to this many characters no message can need more than 5 parts (160 emoji = 320 UTF-16
# units, 33 to a part: 5 parts), so length_problem() can answer without measuring.
_ALWAYS_FITS = 160


def to_gsm(text: str) -> str:
    """`text` with each GSM_LOOKALIKES character replaced by its GSM 03.38 equivalent."""
    return _LOOKALIKE.sub(_replace_lookalike, text)


def _replace_lookalike(match: re.Match[str]) -> str:
    return GSM_LOOKALIKES[match.group()]


@cache
def _show(char: str) -> str:
    """A character for a one-line message: the glyph, or its code when it is invisible."""
    if char.isprintable() and not char.isspace() and unicodedata.category(char)[0] != "M":
        return f"{char} U+{ord(char):04X}"
    # Spaces, controls and combining marks cannot be seen alone: name them instead.
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} {name}" if name else f"U+{ord(char):04X}"


def _glyph(char: str) -> str:
    """The character itself if it can be seen alone, else its U+ code."""
    return char if char.isprintable() and not char.isspace() else f"U+{ord(char):04X}"


def length_problem(text: str) -> str | None:
    """None if `text` fits the provider's 5 parts, else why not ("too long: ...")."""
    if len(text) <= _ALWAYS_FITS:
        return None
    encoding, parts = _measure(text)
    if parts <= MAX_PARTS:
        return None
    if encoding == GSM7:
        doubles = _EXT.findall(text)  # ESC + septet: 2 each (TS 23.038 6.2.1.1)
        size, cap, kind = len(text) + len(doubles), MAX_GSM_CHARS, "GSM-7"
    else:
        doubles = _ASTRAL.findall(text)  # surrogate pairs: 2 UTF-16 units each
        size, cap, kind = len(text) + len(doubles), MAX_UCS2_UNITS, "Unicode"
    found = f"{size} {kind} characters"
    if doubles:
        distinct = list(dict.fromkeys(doubles))
        shown = " ".join(_glyph(char) for char in distinct[:3])
        found += f", {shown}{' ...' if len(distinct) > 3 else ''} counting 2"
    limit = f"(max {cap}, {MAX_PARTS} parts)"
    if size > cap:
        return f"too long: {found} {limit}"
    # Within the cap, yet a 2-unit character at a part boundary moves whole to the next part
    # (see _split), so the message needs one more part than its length suggests.
    return (
        f"too long: {found}, need {parts} parts because such a character is never split "
        f"across two parts {limit}"
    )


def describe_unicode(text: str, limit: int = 3) -> str | None:
    """None for GSM-7 text, else which characters make it Unicode and where (1-based)."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    first = _NOT_GSM.search(text)
    if first is None:
        return None
    # The set difference counts the distinct characters in C; the scan stops at `limit`.
    total = len(set(text[first.start() :]).difference(_GSM_ALL))
    seen: dict[str, int] = {}
    for match in _NOT_GSM.finditer(text, first.start()):
        char = match.group()
        if char not in seen:
            seen[char] = match.start() + 1
            if len(seen) == limit:
                break
    shown = [f"{_show(char)} at position {position}" for char, position in seen.items()]
    if total > len(seen):
        shown.append(f"+{total - len(seen)} more")
    return "Unicode because of " + ", ".join(shown)


def describe_unicode_many(texts: Sequence[str]) -> list[str | None]:
    """describe_unicode() for many texts; texts that agree up to their last non-GSM character
    share one description (a Hindi name in "Hi {Name}, ..." is measured once per name)."""
    notes: dict[str, str | None] = {}
    out: list[str | None] = []
    last = _UP_TO_LAST_NOT_GSM.match
    for text in texts:
        # The description only looks at non-GSM characters (which, and where): the text up to
        # the last of them decides it, whatever follows.
        found = last(text)
        key = text if found is None else found.group()
        note = notes.get(key)
        if note is None and key not in notes:
            note = notes[key] = describe_unicode(key)
        out.append(note)
    return out
