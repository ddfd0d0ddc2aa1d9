"""Erase old personal data: journal rows and sandbox outbox messages older than a cutoff.

The journal and the outbox keep phone numbers (and the outbox message texts) after a campaign
is over. India's Digital Personal Data Protection Act, 2023 (s. 8(7)) asks that personal data
be erased once the purpose it was collected for is served; `smsbatch purge` does that. Deleted
rows are gone from the files themselves (VACUUM, then the write-ahead log emptied), not only
from the tables (docs/contract.md, "Secrets and privacy").

While a send holds the journal (its lock, journal.py) nothing is purged. A purged journal row
is forgotten: rerunning that old send would send its rows again.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.errors import Cancelled, InputError
from pipeline.settings import parse_duration


def parse_age(text: str) -> timedelta:
    """An age like `90m`, `12h`, `30d` or `2w` as a timedelta (at least one unit)."""
    return parse_duration(text, "--older-than", noun="an age")


@dataclass(frozen=True)
class PurgeCounts:
    """Rows deleted (or, before confirmation, about to be) from each file."""

    journal_messages: int = 0
    journal_chunks: int = 0
    journal_runs: int = 0
    outbox_messages: int = 0
    outbox_batches: int = 0

    @property
    def total(self) -> int:
        """All rows, every table."""
        return (
            self.journal_messages
            + self.journal_chunks
            + self.journal_runs
            + self.outbox_messages
            + self.outbox_batches
        )


@dataclass(frozen=True)
class PurgeReport:
    """What a purge found or did. `done` is False while it only counted."""

    cutoff: datetime  # rows last touched before this go
    journal: Path | None  # None: no journal was purged
    outbox: Path | None  # None: no outbox was purged
    counts: PurgeCounts
    done: bool
    scrubbed: bool  # every purged file compacted and its -wal emptied (False: see `purge`)


def purge(
    older_than: timedelta,
    *,
    journal: str | Path | None = None,
    outbox: str | Path | None = None,
    confirm: Callable[[PurgeReport], bool] | None = None,
    now: datetime | None = None,
) -> PurgeReport:
    """Delete journal and outbox rows older than `older_than`; return what went.

    `journal` rows (messages by `updated_at`, then chunks and runs left empty) and `outbox`
    messages (by `created_at`, then empty batches) are purged, each file only if given; a
    given file must exist. The counts are first passed to `confirm` (when given): False raises
    Cancelled and nothing is deleted. The journal stays locked from counting to deleting, so
    no send can start in between; a send already holding it is an InputError. `scrubbed` is
    False when a running sandbox kept the outbox's log from being emptied: stop it and purge
    again.
    """
    from pipeline.providers import purge_outbox
    from pipeline.sending.journal import Journal, JournalInUse

    if older_than <= timedelta(0):
        raise ValueError(f"older_than must be positive, not {older_than}")
    cutoff = (now if now is not None else datetime.now(UTC)) - older_than
    journal = _existing(journal, "journal", "--journal")
    outbox = _existing(outbox, "sandbox outbox", "--outbox")
    with ExitStack() as stack:
        opened = None
        if journal is not None:
            try:
                opened = stack.enter_context(Journal.open(journal))
            except JournalInUse:
                raise InputError(
                    f"{journal}: a send (or another smsbatch command) is using "
                    "this journal; purge after it finishes"
                ) from None

        def run(dry_run: bool) -> tuple[PurgeCounts, bool]:
            messages = chunks = runs = outbox_messages = batches = 0
            scrubbed = True
            if opened is not None:
                messages, chunks, runs = opened.purge(cutoff, dry_run=dry_run)
            if outbox is not None:
                found = purge_outbox(outbox, cutoff, dry_run=dry_run)
                outbox_messages, batches = found.messages, found.batches
                scrubbed = found.scrubbed or dry_run
            return PurgeCounts(messages, chunks, runs, outbox_messages, batches), scrubbed

        counts, _ = run(dry_run=True)
        plan = PurgeReport(cutoff, journal, outbox, counts, done=False, scrubbed=False)
        if counts.total == 0:
            return plan
        if confirm is not None and not confirm(plan):
            raise Cancelled("nothing was deleted")
        counts, scrubbed = run(dry_run=False)
    return PurgeReport(cutoff, journal, outbox, counts, done=True, scrubbed=scrubbed)


def _existing(path: str | Path | None, what: str, option: str) -> Path | None:
    """`path` as a Path, or None; an InputError if it was given but is not a file."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no {what} here; check {option}")
    return path
