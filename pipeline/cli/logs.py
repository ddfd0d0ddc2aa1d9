"""Logging for the command line: one stderr handler whose filter masks numbers and the key.

The code masks numbers itself where it logs them (`phones.mask`); this filter is the safety
net for every other line, ours and third-party ones alike (urllib3 logs each request at -v).
It rewrites each record before it is formatted (docs/contract.md, "Secrets and privacy"):

- Indian mobile numbers, bare or with +91 / 91 / 0 and a space or dash, become
  `+91******3210`, in the message, its arguments and any traceback text;
- the API key from TEXTLOCAL_API_KEY (read at each record, since a .env file may load it after
  logging is set up), raw or URL-encoded in any way and in any case, becomes `***`.

Message bodies are not logged at INFO or above anywhere; this filter cannot recognise them.
"""

from __future__ import annotations

import logging

from pipeline.privacy import current_secrets, mask_text

FORMAT = "%(levelname)s %(name)s: %(message)s"


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
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format=FORMAT, handlers=[handler]
    )
