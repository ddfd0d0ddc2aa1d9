"""One base exception, with children grouped by how the caller recovers.

    SmsBatchError            anything this package raises on purpose
    ├── InputError           bad file, option or template: fix the input, rerun (exit 2)
    ├── ProviderError        the provider stopped the run: bad key, no credits (exit 3)
    ├── Cancelled            the user said no at the confirmation prompt (exit 1)
    └── TransportError       one request's fate at the HTTP level
        ├── NotSentError     known not to have reached the provider: safe to resend
        └── OutcomeUnknown   may have been sent: never resend blindly

Messages name the file, row or column and say what to do next. They never contain the
API key (see docs/contract.md, "Secrets and privacy").
"""

from __future__ import annotations


class SmsBatchError(Exception):
    """Base class for every error smsbatch raises on purpose."""

    exit_code = 1


class InputError(SmsBatchError):
    """The sheet, template or an option is wrong; the message says how to fix it."""

    exit_code = 2


class ProviderError(SmsBatchError):
    """The provider refused the whole request (bad key, no credits, ...): stop the run."""

    exit_code = 3

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class Cancelled(SmsBatchError):
    """The user declined to send; nothing was sent or written."""

    exit_code = 1


class TransportError(SmsBatchError):
    """A request failed below the provider's API (network, HTTP status, bad JSON)."""

    exit_code = 3


class NotSentError(TransportError):
    """The request never reached the provider (connection refused, DNS): resending is safe."""


class OutcomeUnknown(TransportError):
    """The request may have reached the provider (timeout, 5xx, reset): do not resend."""
