"""Reconcile: turn `unknown` rows into `sent` or `failed` from the provider's own records.

A row is `unknown` when its request may have reached the provider (timeout after sending, a
dropped connection, a process killed mid-request). The provider's message history
(`/get_history_api/`, docs/provider-api.md) says what it accepted. Only a history entry with
our `custom` correlation id (unique to this journal, run and chunk), the row's number and the
row's exact text (compared through the row key, a hash of number and text) is evidence that
the row was sent; less could be another campaign's message to the same number.

Where the history holds a message to the same number that might be ours but cannot be proved
(our id with another text, no text, or no id echoed), the row stays `unknown`: neither answer
is safe. A row with nothing of the kind in the history is `failed` (known not sent, a rerun
sends it) only once it was attempted at least `settle` seconds ago: a real provider's history
may lag behind its sends, and a wrong `failed` would send the message twice. The sandbox
records before it answers, so for it no wait is needed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pipeline.clock import Clock, system_clock
from pipeline.providers.base import HistoryMessage, Provider
from pipeline.sending.journal import Entry, Journal, Outcome, row_key

log = logging.getLogger(__name__)

SLACK = timedelta(minutes=5)  # widen the history window for clock differences


@dataclass
class Reconciled:
    """What reconciliation found."""

    checked: int = 0
    sent: int = 0
    failed: int = 0
    still_unknown: int = 0
    runs: int = 0


def reconcile(
    client: Provider,
    journal: str | Path | None = None,
    *,
    settle: float = 900.0,
    now: datetime | None = None,
    clock: Clock = system_clock,
) -> Reconciled:
    """Ask the provider's history about every `unknown` row in the journal (default:
    settings.default_journal) and record what it proves; `now` (default `clock()`)."""
    now = now or clock().astimezone()
    found = Reconciled()
    with Journal.open(journal) as book:
        runs = book.runs_with("unknown")
        found.runs = len(runs)
        for run_id in runs:
            unknown = list(book.entries(run_id, status="unknown").values())
            found.checked += len(unknown)
            outcomes = _settle_run(client, unknown, settle=settle, now=now, found=found)
            book.update(run_id, outcomes)
    return found


def _settle_run(
    client: Provider, unknown: list[Entry], *, settle: float, now: datetime, found: Reconciled
) -> list[Outcome]:
    attempted = [datetime.fromisoformat(e.attempted_at) for e in unknown if e.attempted_at]
    start = min(attempted, default=now) - SLACK
    history = client.history(
        min_time=int(start.timestamp()), max_time=int((now + SLACK).timestamp())
    )
    by_number: dict[str, list[HistoryMessage]] = {}
    for message in history:
        by_number.setdefault(message.number, []).append(message)
    checked_at = now.isoformat(timespec="seconds")
    outcomes = []
    for entry in unknown:
        candidates = by_number.get(entry.number.removeprefix("+"), [])
        match = next(
            (
                m
                for m in candidates
                if m.custom == entry.custom
                and m.content is not None
                and row_key(entry.number, m.content) == entry.row_key
            ),
            None,
        )
        if match is not None:
            found.sent += 1
            # A message the provider holds for later (promotional hours) stays `scheduled`.
            status = "scheduled" if match.status == "scheduled" else "sent"
            outcomes.append(
                Outcome(
                    entry.row_key,
                    status,
                    f"confirmed by the provider's history on {checked_at}",
                    match.message_id,
                    match.batch_id,
                    match.sent_at,
                )
            )
            continue
        if any(_maybe_ours(m, entry) for m in candidates):
            found.still_unknown += 1
            log.info(
                "row %d: the history has a message to this number that may be ours but "
                "cannot be proved (no text or no correlation id)",
                entry.source_row,
            )
            continue
        age = (
            (now - datetime.fromisoformat(entry.attempted_at)).total_seconds()
            if entry.attempted_at
            else float("inf")
        )
        if age >= settle:
            found.failed += 1
            outcomes.append(
                Outcome(
                    entry.row_key,
                    "failed",
                    f"not sent: not in the provider's history on {checked_at}; "
                    "rerun the same send to send it",
                )
            )
        else:
            found.still_unknown += 1
            log.info(
                "row %d attempted %.0f s ago: too recent to call not sent", entry.source_row, age
            )
    return outcomes


def _maybe_ours(message: HistoryMessage, entry: Entry) -> bool:
    """A history message to the row's number that cannot be ruled out as the row's own: it
    carries our correlation id (its text may have been altered on the way), or it carries
    none and its text is the row's or missing."""
    if message.custom is not None:
        return message.custom == entry.custom
    return message.content is None or row_key(entry.number, message.content) == entry.row_key
