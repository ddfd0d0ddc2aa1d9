"""Privacy: masking phone numbers and the API key wherever text leaves the program.

Stdlib only (the kernel): the provider client scrubs the key from what a provider sends back
(docs/contract.md, "Secrets and privacy"), and the CLI's log filter (cli/logs.py) masks numbers
and the key in every log line.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping, Sequence

API_KEY_ENV = "TEXTLOCAL_API_KEY"
MIN_KEY_LENGTH = 6  # shorter values would mask ordinary words; no real key is that short

# 10 digits starting 6-9 (an Indian mobile, docs/contract.md, "Phone numbers"), optionally
# after +91/91/0, maybe split 5+5 by a space or dash, and not part of a longer run of digits.
# Already masked numbers (`+91******3210`) do not match.
PHONE = re.compile(r"(?<![\d*])(?:\+91[ -]?|91[ -]?|0)?([6-9]\d{4})[ -]?(\d{5})(?!\d)")


def mask_text(text: str, secrets: Sequence[re.Pattern[str]] = ()) -> str:
    """`text` with Indian mobile numbers and each of `secrets` (see secret_pattern) masked."""
    for secret in secrets:
        text = secret.sub("***", text)
    return PHONE.sub(lambda match: "+91******" + match.group(2)[-4:], text)


@functools.lru_cache(maxsize=8)
def secret_pattern(secret: str) -> re.Pattern[str]:
    """A pattern for `secret` raw or URL-encoded in any mix and any case: each character as
    itself or %XX, a space also as '+'. Whatever encoder quoted it back, it matches."""
    parts = []
    for char in secret:
        encoded = "".join(f"%{byte:02X}" for byte in char.encode())
        forms = [re.escape(char), encoded] + ([r"\+"] if char == " " else [])
        parts.append("(?:" + "|".join(forms) + ")")
    # Any case: a provider or proxy may upper- or lower-case what it quotes back, and a
    # case-folded key is still most of the key.
    return re.compile("".join(parts), re.IGNORECASE)


def current_secrets(environ: Mapping[str, str] | None = None) -> tuple[re.Pattern[str], ...]:
    """The pattern of the API key in TEXTLOCAL_API_KEY, if it is set."""
    key = ((os.environ if environ is None else environ).get(API_KEY_ENV) or "").strip()
    return (secret_pattern(key),) if len(key) >= MIN_KEY_LENGTH else ()
