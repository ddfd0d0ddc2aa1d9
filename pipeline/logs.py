"""Logging for the command line: one stderr handler whose filter masks numbers and the key.

The code masks numbers itself where it logs them (`phones.mask`); this filter is the safety
net for every other line, ours and third-party ones alike (urllib3 logs each request at -v).
It rewrites each record before it is formatted (contract §8):

- Indian mobile numbers, bare or with +91 / 91 / 0 and a space or dash, become
  `+91******3210`, in the message, its arguments and any traceback text;
- the API key from TEXTLOCAL_API_KEY (read at each record, since a .env file may load it after
  logging is set up), raw or URL-encoded in any way and in any case, becomes `***`.

Message bodies are not logged at INFO or above anywhere; this filter cannot recognise them.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Mapping, Sequence

FORMAT = "%(levelname)s %(name)s: %(message)s"
API_KEY_ENV = "TEXTLOCAL_API_KEY"
MIN_KEY_LENGTH = 6  # shorter values would mask ordinary words; no real key is that short

# 10 digits starting 6-9 (an Indian mobile, contract §4), optionally after +91/91/0, maybe
# split 5+5 by a space or dash, and not part of a longer run of digits. Already masked
# numbers (`+91******3210`) do not match.
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


class MaskingFilter(logging.Filter):
    """Masks phone numbers and the API key in a record's message, arguments and traceback."""

    def __init__(self) -> None:
        super().__init__()
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite `record` in place; never drops it."""
        secrets = current_secrets()
        # Render first, so numbers inside %-arguments (e.g. the repr of a dict) are masked too.
        record.msg = mask_text(record.getMessage(), secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info, secrets)
        return True


def configure(verbose: bool) -> None:
    """Log to stderr through MaskingFilter: DEBUG (every library) with -v, else WARNING.

    Like `logging.basicConfig`, it does nothing when logging is already set up (an
    application or a test harness that embeds the CLI keeps its own handlers).
    """
    handler = logging.StreamHandler()
    handler.addFilter(MaskingFilter())
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format=FORMAT,
                        handlers=[handler])
