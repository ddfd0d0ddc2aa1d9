"""What the job needs of an SMS provider: the `Provider` protocol and its request/answer types.

The job, sending, delivery and reconciliation depend on this protocol, never on a concrete
client. `TextlocalClient` implements it (providers/textlocal/), and so does the sandbox, by
speaking Textlocal's API on loopback; unit tests may hand in any object of this shape.
Failures are the errors in pipeline/errors.py: ProviderError stops a run, NotSentError is safe
to retry, OutcomeUnknown may have been sent (docs/provider-api.md, "Rate limits and retries").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["Accepted", "BulkResponse", "HistoryMessage", "Outgoing", "Provider", "Refused"]


@dataclass(frozen=True)
class Outgoing:
    """One personalised message; `number` in wire form ('919876543210')."""

    number: str
    text: str
    custom: str | None = None


@dataclass(frozen=True)
class Accepted:
    """The provider took the message for `number`."""

    number: str
    message_id: str
    batch_id: str
    cost: int | None


@dataclass(frozen=True)
class Refused:
    """The provider refused the message for `number` (its error code and text)."""

    number: str
    code: int | None
    message: str


@dataclass(frozen=True)
class BulkResponse:
    """Per-number outcome of one bulk request, keyed by wire-form number."""

    accepted: dict[str, Accepted]
    refused: dict[str, Refused]
    balance: int | None
    total_cost: int | None
    test_mode: bool


@dataclass(frozen=True)
class HistoryMessage:
    """One message from the provider's own records (docs/provider-api.md, "Message history")."""

    message_id: str
    number: str  # digits, as sent ('919876543210')
    batch_id: str | None
    custom: str | None  # the `custom` value sent with it ("" reads as None)
    status: str | None  # delivery status code, e.g. "D"
    sent_at: str | None  # as the provider shows it ("2013-07-04 14:31:18", IST)
    content: str | None = None  # the message text exactly as the provider holds it


@runtime_checkable
class Provider(Protocol):
    """An SMS provider account, as the job uses it."""

    def send_bulk(
        self,
        messages: Sequence[Outgoing],
        *,
        sender: str | None,
        test: bool = False,
        schedule_time: int | None = None,
        optouts: bool = False,
        receipt_url: str | None = None,
    ) -> BulkResponse:
        """Send personalised messages in one request; per-number outcomes."""
        ...

    def balance(self) -> int:
        """Credits left on the account."""
        ...

    def status_batch(self, batch_id: str) -> dict[str, Any]:
        """Delivery status of every message in a batch (the provider's JSON answer)."""
        ...

    def status_message(self, message_id: str) -> dict[str, Any]:
        """Delivery status of one message (the provider's JSON answer)."""
        ...

    def history(
        self,
        *,
        min_time: int | None = None,
        max_time: int | None = None,
        page_size: int = 1000,
        max_pages: int = 1000,
    ) -> list[HistoryMessage]:
        """Every message the account sent between two unix times, complete or an error."""
        ...
