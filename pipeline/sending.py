"""Send the ready rows in chunks and write each row's outcome back (contract §7).

One provider request per chunk (`bulk_json`, at most 500 messages: textlocal-api.md §3).
Each chunk ends in exactly one of:

- accepted / refused per number  -> `sent` (ids) or `rejected` (code and text)
- NotSentError                   -> `failed`: known not sent, a rerun sends it
- OutcomeUnknown                 -> `unknown`: may have been sent, never resent blindly
- ProviderError                  -> the run stops; this chunk and every later row `failed`
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from pipeline import phones
from pipeline.errors import NotSentError, OutcomeUnknown, ProviderError
from pipeline.providers.textlocal import BULK_LIMIT, BulkResponse, Outgoing, TextlocalClient

log = logging.getLogger(__name__)

OUTCOME_COLUMNS = ["status", "detail", "provider_message_id", "batch_id", "sent_at"]


@dataclass
class SendOutcome:
    """How the sending stage ended."""

    attempted: int = 0
    stopped: str | None = None  # the provider's reason when it stopped the run
    balance: int | None = None


def chunks(labels: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    """Consecutive slices of at most `size` labels."""
    for start in range(0, len(labels), size):
        yield labels[start : start + size]


def send_ready(
    results: pd.DataFrame,
    client: TextlocalClient,
    *,
    sender: str | None,
    chunk_size: int = BULK_LIMIT,
    limit: int | None = None,
    test: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SendOutcome:
    """Send every `ready` row of `results` (in place: outcomes are written into its rows)."""
    if not 1 <= chunk_size <= BULK_LIMIT:
        raise ValueError(f"chunk_size must be between 1 and {BULK_LIMIT}")
    ready = results.index[results["status"] == "ready"].tolist()
    if limit is not None and len(ready) > limit:
        _mark(results, ready[limit:], "failed",
              f"not sent: --limit {limit} reached; rerun the same command to send the rest")
        ready = ready[:limit]

    outcome = SendOutcome()
    pending = list(ready)
    for chunk in chunks(ready, chunk_size):
        pending = pending[len(chunk):]
        messages = [
            Outgoing(number=phones.to_wire(results.at[row, "phone_e164"]),
                     text=results.at[row, "message"])
            for row in chunk
        ]
        outcome.attempted += len(chunk)
        try:
            response = client.send_bulk(messages, sender=sender, test=test)
        except ProviderError as exc:
            outcome.stopped = str(exc)
            _mark(results, list(chunk) + pending, "failed",
                  f"not sent: the provider stopped the run ({exc})")
            log.warning("provider stopped the run: %s", exc)
            break
        except NotSentError as exc:
            _mark(results, chunk, "failed", f"not sent: {exc}")
            log.warning("chunk of %d not sent: %s", len(chunk), exc)
        except OutcomeUnknown as exc:
            _mark(results, chunk, "unknown", f"may have been sent: {exc}")
            log.warning("chunk of %d has an unknown outcome: %s", len(chunk), exc)
        else:
            _record(results, chunk, messages, response, test=test)
            if response.balance is not None:
                outcome.balance = response.balance
        if progress is not None:
            progress(len(chunk))
    return outcome


def _mark(results: pd.DataFrame, rows: Sequence[int], status: str, detail: str) -> None:
    """Give every row in `rows` the same status and detail."""
    if len(rows):
        rows = list(rows)
        results.loc[rows, "status"] = status
        results.loc[rows, "detail"] = detail


def _record(
    results: pd.DataFrame,
    chunk: Sequence[int],
    messages: Sequence[Outgoing],
    response: BulkResponse,
    *,
    test: bool,
) -> None:
    """Map the provider's per-number answer back onto the chunk's rows."""
    sent_at = datetime.now().astimezone().isoformat(timespec="seconds")
    values = []
    for message in messages:
        accepted = response.accepted.get(message.number)
        refused = response.refused.get(message.number)
        if accepted is not None:
            detail = "test mode: validated by the provider, not delivered" if test else None
            values.append(["sent", detail, accepted.message_id, accepted.batch_id, sent_at])
        elif refused is not None:
            code = f"error {refused.code}: " if refused.code is not None else ""
            values.append(["rejected", f"Textlocal {code}{refused.message}", None, None, None])
        else:
            # A "success" envelope that names neither outcome for this number: we cannot
            # tell whether it went, so it must not be resent blindly (contract §7).
            values.append(["unknown", "the provider's answer did not mention this number",
                           None, None, None])
            log.warning("no outcome for %s in the provider's answer", phones.mask(message.number))
    results.loc[list(chunk), OUTCOME_COLUMNS] = values
