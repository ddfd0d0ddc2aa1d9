"""Delivery: ask the provider what became of each sent message, and update the workbook.

`smsbatch status RESULTS.xlsx` is `update_delivery()`. Only rows the provider accepted (`sent`,
`scheduled`) whose delivery is not final yet are asked about, and politely: the rows of one
batch with one `/status_batch/` call (docs/provider-api.md, "Status of a batch"), a batch
holding one of our rows (bulk_json makes one batch per message) with `/status_message/`, which
also gives the status's date (docs/provider-api.md, "Status of one message"); a bounded
number of lookups in flight. The workbook is replaced atomically with every other cell as it
was (report/workbook.py). The send journal, when there is one and no send holds it,
remembers what was learned, so a later check skips settled messages even if the workbook was
replaced by an older copy.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.clock import IST, Clock, system_clock
from pipeline.errors import ProviderError, TransportError
from pipeline.providers.base import Provider
from pipeline.report.workbook import read_workbook, workbook_lock, write_results
from pipeline.sending.journal import (
    Delivery,
    Journal,
    JournalInUse,
    JournalRefused,
    JournalWriteError,
)
from pipeline.sending.retry import RetryPolicy, call_with_retries
from pipeline.settings import default_journal
from pipeline.sms import phones
from pipeline.statuses import ACCEPTED, DELIVERY_CODES, DELIVERY_STATUSES, FINAL_DELIVERY

log = logging.getLogger(__name__)

# The sandbox reports a message held for later as "scheduled", not one of the letter codes of
# docs/provider-api.md, "Delivery status codes" (Textlocal may too, we assume): it has not
# left yet, so it is pending, and asked about again next time.
_ALIASES = {"scheduled": "pending"}
BAD_KEY = 3  # "Invalid login details": every further lookup would fail the same way
RATE_ITEM, CHECKED_ITEM = "delivery rate", "delivery checked at"

Progress = Callable[[int], None]


@dataclass
class DeliveryReport:
    """What one delivery check asked, learned and wrote."""

    path: Path
    asked: int  # rows looked up at the provider
    changed: int  # rows whose delivery_status or delivered_at changed in the workbook
    already_final: int  # rows not asked: final in the workbook, or in the journal
    by_status: dict[str, int]  # delivery status -> sent/scheduled rows, after the update
    failed_lookups: int = 0  # rows asked about whose status was not learned (left as they were)
    total: int = 0  # sent/scheduled rows
    without_id: int = 0  # sent/scheduled rows with neither message nor batch id: not asked
    journal_recorded: int = 0  # journal rows given a delivery status
    journal_note: str | None = None  # why the journal was not used, when one was given
    checked_at: str = ""

    @property
    def rate(self) -> float | None:
        """Delivered / sent-or-scheduled rows; None when there are none."""
        return self.by_status.get("delivered", 0) / self.total if self.total else None


@dataclass(frozen=True)
class _Lookup:
    """One provider call: `/status_message/` when message_id is set, else `/status_batch/`."""

    rows: tuple[int, ...]  # positions in the workbook's rows
    message_id: str | None = None
    batch_id: str | None = None


@dataclass(frozen=True)
class _Found:
    status: str  # one of DELIVERY_STATUSES
    at: str | None  # ISO 8601 with offset


@dataclass
class _Rows:
    """The workbook's columns this module reads and writes, as lists (no per-row pandas)."""

    status: list[Any]
    delivery: list[Any]
    delivered_at: list[Any]
    ids: list[str | None]
    batches: list[str | None]
    numbers: list[str | None]  # E.164
    changed: int = 0

    def set(self, i: int, status: str, at: str | None) -> None:
        # A status seen again without a date keeps the date it came with.
        if at is None and status == self.delivery[i]:
            at = self.delivered_at[i]
        if (self.delivery[i], self.delivered_at[i]) != (status, at):
            self.delivery[i], self.delivered_at[i] = status, at
            self.changed += 1


def delivery_status(code: object) -> str:
    """A provider status code as our delivery status; anything unexpected is `unknown`
    (docs/provider-api.md, "Delivery status codes")."""
    text = str(code).strip() if code is not None else ""
    if text in DELIVERY_STATUSES:
        return text  # already a name (a journal written by a receipt)
    return DELIVERY_CODES.get(text.upper()) or _ALIASES.get(text.lower(), "unknown")


def iso_date(value: object) -> str | None:
    """The provider's date as ISO 8601: naive dates ('YYYY-MM-DD HH:MM:SS') are taken as IST
    (assumed: docs/provider-api.md, "Status of one message")."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    try:
        if text.isdigit():  # unix seconds, as some receipt gateways send them
            return datetime.fromtimestamp(int(text), IST).isoformat()
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        # Nothing usable: MySQL's zero date '0000-00-00 00:00:00', an empty string, garbage.
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=IST)).isoformat()


def update_delivery(
    results_path: str | Path,
    client: Provider,
    *,
    journal: str | Path | None = None,
    concurrency: int = 4,
    progress: Progress | None = None,
    on_start: Progress | None = None,
    retry: RetryPolicy | None = None,
    clock: Clock = system_clock,
) -> DeliveryReport:
    """Ask the provider about every sent row whose delivery is not final; update the workbook.

    `journal` is the send journal to consult and keep up to date: by default the one the
    workbook's Summary names, else settings.default_journal; skipped when absent or unusable.
    `on_start(n)` is told how many rows will be asked about, `progress(n)` how many each
    finished lookup covered. A bad API key raises ProviderError before anything is written.
    The workbook is held (results.workbook_lock) from reading to replacing, so a send cannot
    write it meanwhile; a change by anything else (Excel) is re-read before replacing.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    path = Path(results_path)
    with workbook_lock(path):
        return _update(path, client, journal, concurrency, progress, on_start, retry, clock)


def _update(
    path: Path,
    client: Provider,
    journal: str | Path | None,
    concurrency: int,
    progress: Progress | None,
    on_start: Progress | None,
    retry: RetryPolicy | None,
    clock: Clock,
) -> DeliveryReport:
    stamp = _stamp(path)
    original, results, summary = read_workbook(path)
    rows = _rows(results)
    accepted = [i for i, s in enumerate(rows.status) if s in ACCEPTED]
    open_rows = [i for i in accepted if rows.delivery[i] not in FINAL_DELIVERY]
    report = DeliveryReport(
        path,
        asked=0,
        changed=0,
        already_final=len(accepted) - len(open_rows),
        by_status={},
        total=len(accepted),
    )

    journal_path: Path | None = (
        Path(journal) if journal is not None else _summary_journal(summary) or default_journal()
    )
    if journal_path is not None and not journal_path.is_file():
        journal_path = None  # no send journalled here: nothing to read or keep up to date
    if journal_path is not None and open_rows:
        known = _read_journal(journal_path, [rows.ids[i] for i in open_rows], report)
        if known is None:
            journal_path = None
        else:
            open_rows = _apply_journal(rows, open_rows, known, report)

    lookups = _plan(rows, open_rows, report)
    report.asked = sum(len(lookup.rows) for lookup in lookups)
    if on_start is not None:
        on_start(report.asked)
    learned, report.failed_lookups = _ask_all(
        client, lookups, rows, concurrency, retry or RetryPolicy(), progress
    )
    for i, found in learned.items():
        rows.set(i, found.status, found.at)

    if _stamp(path) != stamp:
        # Changed since we read it (saved from Excel, say): start again from the file as it
        # is now and lay what was learned over it, by message id, so no edit is lost.
        original, results, summary = read_workbook(path)
        by_id = {
            message_id: _Found(rows.delivery[i], rows.delivered_at[i])
            for i in learned
            if (message_id := rows.ids[i]) is not None
        }
        rows = _rows(results)
        accepted = [i for i, s in enumerate(rows.status) if s in ACCEPTED]
        learned = {
            i: by_id[message_id]
            for i in accepted
            if (message_id := rows.ids[i]) is not None and message_id in by_id
        }
        for i, found in learned.items():
            rows.set(i, found.status, found.at)
    report.changed = rows.changed
    counts = Counter(rows.delivery[i] for i in accepted)
    report.by_status = {name: counts.get(name, 0) for name in DELIVERY_STATUSES}
    report.checked_at = clock().isoformat(timespec="seconds")
    results["delivery_status"] = pd.Series(rows.delivery, index=results.index, dtype=object)
    results["delivered_at"] = pd.Series(rows.delivered_at, index=results.index, dtype=object)
    write_results(path, original, results, _refresh_summary(summary, report))

    # After the workbook: a journal that cannot be written must not cost the user the lookups.
    if journal_path is not None and learned:
        updates = [
            (message_id, found.status, rows.delivered_at[i])
            for i, found in learned.items()
            if (message_id := rows.ids[i]) is not None
        ]
        _record_journal(journal_path, updates, report)
    return report


def _rows(results: pd.DataFrame) -> _Rows:
    return _Rows(
        status=results["status"].tolist(),
        delivery=results["delivery_status"].tolist(),
        delivered_at=results["delivered_at"].tolist(),
        ids=[_id(v) for v in results["provider_message_id"]],
        batches=[_id(v) for v in results["batch_id"]],
        numbers=[v if isinstance(v, str) else None for v in results["phone_e164"]],
    )


def _stamp(path: Path) -> tuple[int, int, int]:
    """What tells a file replaced or rewritten: inode, size, modification time."""
    info = path.stat()
    return info.st_ino, info.st_size, info.st_mtime_ns


def _summary_journal(summary: list[tuple[str, object]]) -> Path | None:
    """The journal a send recorded in the workbook's Summary, if any."""
    value = dict(summary).get("journal")
    return Path(value) if isinstance(value, str) and value else None


def _id(value: object) -> str | None:
    """An id cell as text ('1151895224'); Excel may have turned a re-saved one into a float."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else None
    text = str(value).strip()
    return text or None


def _read_journal(
    path: Path, ids: Sequence[str | None], report: DeliveryReport
) -> dict[str, Delivery] | None:
    """The journal's deliveries for `ids`; None (and a warning) when a send holds it."""
    try:
        with Journal.open(path) as book:
            return book.delivery_by_message_id(i for i in ids if i is not None)
    except (JournalInUse, JournalRefused, JournalWriteError) as exc:
        report.journal_note = str(exc)
        log.warning("journal not used: %s", exc)
        return None


def _apply_journal(
    rows: _Rows, open_rows: list[int], known: dict[str, Delivery], report: DeliveryReport
) -> list[int]:
    """Take final deliveries the journal already holds; return the rows still to ask about."""
    still = []
    for i in open_rows:
        message_id = rows.ids[i]
        entry = known.get(message_id) if message_id is not None else None
        # The number must match too: a journal shared by providers may reuse a message id.
        status = delivery_status(entry.status) if entry is not None else None
        if entry is not None and status in FINAL_DELIVERY and entry.number == rows.numbers[i]:
            rows.set(i, status, iso_date(entry.delivered_at))
            report.already_final += 1
        else:
            still.append(i)
    return still


def _plan(rows: _Rows, open_rows: list[int], report: DeliveryReport) -> list[_Lookup]:
    """One lookup per batch: /status_message/ for a batch of one of our rows, else its batch."""
    by_batch: dict[str, list[int]] = {}
    lookups = []
    for i in open_rows:
        if (batch := rows.batches[i]) is not None:
            by_batch.setdefault(batch, []).append(i)
        elif rows.ids[i] is not None:
            lookups.append(_Lookup((i,), message_id=rows.ids[i]))
        else:
            report.without_id += 1
    for batch_id, members in by_batch.items():
        if len(members) == 1 and rows.ids[members[0]] is not None:
            lookups.append(_Lookup((members[0],), message_id=rows.ids[members[0]]))
        else:
            lookups.append(_Lookup(tuple(members), batch_id=batch_id))
    return lookups


def _ask_all(
    client: Provider,
    lookups: list[_Lookup],
    rows: _Rows,
    concurrency: int,
    retry: RetryPolicy,
    progress: Progress | None,
) -> tuple[dict[int, _Found], int]:
    """Run the lookups, `concurrency` at a time; what was learned per row, and rows not learned."""
    learned: dict[int, _Found] = {}
    failed = 0
    stop = threading.Event()
    todo = iter(lookups)
    in_flight: dict[Future[dict[int, _Found]], _Lookup] = {}
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="delivery")
    try:
        while True:
            # A short queue, not a million futures: memory stays flat, and a bad key stops
            # the run after the few lookups already under way.
            while len(in_flight) < 2 * concurrency and (lookup := next(todo, None)) is not None:
                in_flight[pool.submit(_ask, client, lookup, rows, retry, stop)] = lookup
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                lookup = in_flight.pop(future)
                try:
                    found = future.result()
                except ProviderError as exc:
                    if exc.code == BAD_KEY:
                        raise
                    found = _failed(lookup, rows, exc)
                except TransportError as exc:
                    found = _failed(lookup, rows, exc)
                if len(found) < len(lookup.rows) and found:
                    log.warning(
                        "batch %s: the provider's answer lacks %d of our messages",
                        lookup.batch_id,
                        len(lookup.rows) - len(found),
                    )
                failed += len(lookup.rows) - len(found)
                learned.update(found)
                if progress is not None:
                    progress(len(lookup.rows))
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
    return learned, failed


def _failed(lookup: _Lookup, rows: _Rows, exc: Exception) -> dict[int, _Found]:
    """Log a failed lookup (number masked: docs/contract.md, "Secrets and privacy"); its rows
    stay as they were."""
    what = (
        f"message to {phones.mask(rows.numbers[lookup.rows[0]])}"
        if lookup.message_id is not None
        else f"batch {lookup.batch_id}"
    )
    log.warning("delivery lookup for %s failed: %s", what, exc)
    return {}


def _ask(
    client: Provider, lookup: _Lookup, rows: _Rows, retry: RetryPolicy, stop: threading.Event
) -> dict[int, _Found]:
    """One provider call (in a worker thread): what it says about each of the lookup's rows."""
    if stop.is_set():
        return {}
    # Reads change nothing at the provider, but only NotSentError (429 included) is retried:
    # a lookup that timed out is simply asked again by the next `status`.
    if lookup.message_id is not None:
        message_id = lookup.message_id
        body = call_with_retries(lambda: client.status_message(message_id), retry)
        message = body.get("message")
        found = _found(message) if isinstance(message, dict) else None
        return {lookup.rows[0]: found} if found is not None else {}
    batch_id = str(lookup.batch_id)
    body = call_with_retries(lambda: client.status_batch(batch_id), retry)
    items = body.get("messages")
    by_id: dict[str, _Found] = {}
    by_number: dict[str, _Found | None] = {}
    for item in items if isinstance(items, list) else []:
        found = _found(item) if isinstance(item, dict) else None
        if found is None:
            continue
        if (item_id := _id(item.get("id"))) is not None:
            by_id[item_id] = found
        number = _digits(item.get("recipient"))
        if number is not None:
            # One number twice in a batch without ids cannot be told apart: ask nothing of it.
            by_number[number] = None if number in by_number else found
    answer: dict[int, _Found] = {}
    for i in lookup.rows:
        found = by_id.get(rows.ids[i] or "") or by_number.get(_digits(rows.numbers[i]) or "")
        if found is not None:
            answer[i] = found
    return answer


def _found(item: dict[str, Any]) -> _Found | None:
    """A status (and its date, when the provider gives one) from one message of an answer."""
    code = item.get("status")
    if code is None or str(code).strip() == "":
        return None
    date = next((item[k] for k in ("date", "datetime") if item.get(k) not in (None, "")), None)
    return _Found(delivery_status(code), iso_date(date))


def _digits(number: object) -> str | None:
    """A number as digits only, as Textlocal reports recipients (919876543210)."""
    if number is None or isinstance(number, bool):
        return None
    text = str(number).strip().removeprefix("+")
    return text if text.isdigit() else None


def _refresh_summary(
    summary: list[tuple[str, object]], report: DeliveryReport
) -> list[tuple[str, object]]:
    """The Summary rows with the delivery rows replaced (or appended); every other row kept."""
    rate = report.rate
    fresh: dict[str, object] = {
        f"delivery: {name}": count for name, count in report.by_status.items()
    }
    fresh[RATE_ITEM] = f"{rate:.1%}" if rate is not None else None
    fresh[CHECKED_ITEM] = report.checked_at
    rows = [(item, fresh[item] if item in fresh else value) for item, value in summary]
    seen = {item for item, _ in summary}
    return rows + [(item, value) for item, value in fresh.items() if item not in seen]


def _record_journal(
    path: Path, updates: list[tuple[str, str, str | None]], report: DeliveryReport
) -> None:
    """Remember what was learned in the journal; a send holding it only costs a warning."""
    try:
        with Journal.open(path) as book:
            report.journal_recorded = book.record_delivery(updates)
    except (JournalInUse, JournalRefused, JournalWriteError) as exc:
        report.journal_note = str(exc)
        log.warning("journal not updated: %s", exc)
