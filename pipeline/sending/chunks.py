"""Send the ready rows in chunks, journalled, and write each row's outcome back.

The promise kept: docs/contract.md, "Sending, journal and resume". One provider request per
chunk (`bulk_json`, at most 500 messages: docs/provider-api.md, "Sending with /bulk_json/"), up
to `concurrency` chunks in flight, at most `rate` messages a second. The main thread owns the
journal: it commits a chunk's rows as `sending` before the request leaves and their outcomes
when it returns, so the journal stays exact however many requests are in flight. Each chunk
ends in exactly one of:

- accepted / refused per number  -> `sent` (ids) or `rejected` (code and text)
- NotSentError (after safe retries) -> `failed`: known not sent, a rerun sends it
- OutcomeUnknown                 -> `unknown`: may have been sent, never resent blindly
- ProviderError                  -> the run stops; this chunk and every later row `failed`

A journal that cannot be written (JournalWriteError: disk full, I/O error) also stops the run:
a chunk whose rows could not be committed as `sending` is never sent; chunks already in flight
still get their outcome in the results (the journal keeps them `sending`, so the next open
makes them `unknown` and they are never resent blindly).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import pandas as pd

from pipeline.clock import IST, Clock, iso_now, system_clock
from pipeline.errors import NotSentError, OutcomeUnknown, ProviderError
from pipeline.providers.base import BulkResponse, Outgoing, Provider
from pipeline.sending.journal import Journal, JournalWriteError, Outcome, Pending, row_key
from pipeline.sending.retry import RetryPolicy, call_with_retries
from pipeline.settings import BULK_LIMIT
from pipeline.sms import phones
from pipeline.sms.window import Window
from pipeline.statuses import OUTCOME_COLUMNS

log = logging.getLogger(__name__)

TEST_DETAIL = "test mode: validated by the provider, not delivered"


@dataclass(frozen=True)
class SendSettings:
    """How to send: who from, how much per request, how fast."""

    sender: str | None
    chunk_size: int = BULK_LIMIT
    limit: int | None = None
    test: bool = False
    concurrency: int = 4
    rate: float | None = None  # messages per second, None = as fast as the provider answers
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    window: Window | None = None  # promotional route: the hours messages may go out
    schedule: bool = True  # outside the window: schedule for its next opening, else stop
    # docs/provider-api.md, "Sending with /bulk_json/": `optouts` asks the provider to skip its
    # opt-out lists; `receipt_url` is where it POSTs delivery receipts.
    optouts: bool = False
    receipt_url: str | None = None
    clock: Clock = system_clock

    def __post_init__(self) -> None:
        if not 1 <= self.chunk_size <= BULK_LIMIT:
            raise ValueError(f"chunk_size must be between 1 and {BULK_LIMIT}")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")


@dataclass
class SendOutcome:
    """How the sending stage ended."""

    attempted: int = 0
    stopped: str | None = None  # the provider's reason when it stopped the run
    interrupted: bool = False  # Ctrl-C: in-flight chunks were finished, the rest not sent
    balance: int | None = None
    journal_failed: bool = False  # the journal could not be written: stopped for that


@dataclass(frozen=True)
class Chunk:
    """One request's rows, already committed to the journal as `sending`."""

    id: int
    rows: list[int]
    keys: list[str]
    messages: list[Outgoing]
    schedule_time: datetime | None = None  # promotional, outside the window: when it goes


class Throttle:
    """Spaces requests so that at most `rate` messages a second leave."""

    def __init__(self, rate: float | None, sleep: Callable[[float], None]) -> None:
        self.rate = rate
        self.sleep = sleep
        self.start: float | None = None
        self.sent = 0

    def wait(self, count: int) -> None:
        """Block until `count` more messages may leave."""
        if self.rate is None:
            return
        clock = time.monotonic()
        if self.start is None:
            self.start = clock
        due = self.start + self.sent / self.rate
        if due > clock:
            self.sleep(due - clock)
        self.sent += count


class Interrupts:
    """Ctrl-C asks the run to stop instead of raising mid-bookkeeping.

    The first Ctrl-C sets `requested`: nothing new is sent, what is in flight is recorded,
    the workbook is written (docs/contract.md, "Sending, journal and resume"). A second
    Ctrl-C raises KeyboardInterrupt at once; rows then still in flight stay `sending` in the
    journal and become `unknown` on the next run. Signal handlers live in the main thread
    only; elsewhere Ctrl-C keeps its usual meaning.
    """

    def __init__(self) -> None:
        self.requested = False
        self.previous: Any = None

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning(
            "interrupted: recording the requests in flight, sending nothing more "
            "(Ctrl-C again to stop at once)"
        )

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def chunks(labels: Sequence[int], size: int) -> Iterator[list[int]]:
    """Consecutive slices of at most `size` labels."""
    for start in range(0, len(labels), size):
        yield list(labels[start : start + size])


def send_ready(
    results: pd.DataFrame,
    client: Provider,
    journal: Journal,
    run_id: int,
    settings: SendSettings,
    *,
    progress: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SendOutcome:
    """Send every `ready` row of `results` (in place: outcomes are written into its rows)."""
    ready = results.index[results["status"] == "ready"].tolist()
    if settings.limit is not None and len(ready) > settings.limit:
        mark(
            results,
            ready[settings.limit :],
            "failed",
            f"not sent: --limit {settings.limit} reached; rerun the same command to send the rest",
        )
        ready = ready[: settings.limit]

    outcome = SendOutcome()
    queue = deque(chunks(ready, settings.chunk_size))
    throttle = Throttle(settings.rate, sleep)
    in_flight: dict[Future[BulkResponse], Chunk] = {}

    def settle(done: Sequence[Future[BulkResponse]]) -> None:
        for future in done:
            chunk = in_flight.pop(future)
            finish(results, journal, run_id, chunk, future, settings, outcome)
            if progress is not None:
                progress(len(chunk.rows))

    window_closed = False

    def stopping() -> bool:
        return bool(outcome.stopped) or interrupts.requested or window_closed

    with (
        Interrupts() as interrupts,
        ThreadPoolExecutor(
            max_workers=settings.concurrency, thread_name_prefix="smsbatch-send"
        ) as pool,
    ):
        while (queue and not stopping()) or in_flight:
            while queue and len(in_flight) < settings.concurrency and not stopping():
                throttle.wait(len(queue[0]))
                if stopping():
                    break
                schedule_time = scheduled_for(settings)
                if schedule_time is False:
                    window_closed = True
                    break
                try:
                    chunk = start(results, journal, run_id, queue[0], schedule_time)
                except JournalWriteError as exc:  # nothing was committed, nothing sent
                    outcome.stopped = outcome.stopped or str(exc)
                    outcome.journal_failed = True
                    log.debug("journal write failed: %s", exc)
                    break
                rows = queue.popleft()
                outcome.attempted += len(rows)
                in_flight[pool.submit(deliver, client, chunk, settings)] = chunk
            if in_flight:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                settle(list(done))
        outcome.interrupted = interrupts.requested
    unsent = [row for rows in queue for row in rows]
    if outcome.interrupted:
        mark(
            results,
            unsent,
            "failed",
            "not sent: the run was interrupted; rerun the same command to send the rest",
        )
    elif outcome.stopped and outcome.journal_failed:
        mark(
            results,
            unsent,
            "failed",
            "not sent: the journal could not be written; rerun "
            "the same command once the disk is fixed",
        )
    elif outcome.stopped:
        mark(
            results, unsent, "failed", f"not sent: the provider stopped the run ({outcome.stopped})"
        )
    elif window_closed and settings.window is not None:
        opens = settings.window.next_opening(settings.clock())
        mark(
            results,
            unsent,
            "failed",
            f"not sent: the promotional window "
            f"{settings.window.describe()} closed; rerun the same command after "
            f"{opens:%Y-%m-%d %H:%M} IST",
        )
    return outcome


def scheduled_for(settings: SendSettings) -> datetime | None | Literal[False]:
    """None: send now; a time: schedule for it; False: the window is shut, stop (promotional)."""
    if settings.window is None:
        return None
    now = settings.clock()
    if settings.window.is_open(now):
        return None
    return settings.window.next_opening(now) if settings.schedule else False


def start(
    results: pd.DataFrame,
    journal: Journal,
    run_id: int,
    rows: list[int],
    schedule_time: datetime | None = None,
) -> Chunk:
    """Commit the rows as `sending` and build their request (journal first, then network)."""
    numbers = results.loc[rows, "phone_e164"].tolist()
    texts = results.loc[rows, "message"].tolist()
    keys = [row_key(n, t) for n, t in zip(numbers, texts, strict=True)]
    chunk_id, custom = journal.start_chunk(
        run_id, [Pending(k, r, n) for k, r, n in zip(keys, rows, numbers, strict=True)]
    )
    messages = [
        Outgoing(number=phones.to_wire(n), text=t, custom=custom)
        for n, t in zip(numbers, texts, strict=True)
    ]
    return Chunk(id=chunk_id, rows=rows, keys=keys, messages=messages, schedule_time=schedule_time)


def deliver(client: Provider, chunk: Chunk, settings: SendSettings) -> BulkResponse:
    """One request, retried only where a retry cannot duplicate a message (retry.py)."""

    def on_retry(attempt: int, error: Exception, delay: float) -> None:
        log.warning(
            "chunk %d: not sent (%s); retry %d in %.1f s", chunk.id, error, attempt + 1, delay
        )

    schedule = int(chunk.schedule_time.timestamp()) if chunk.schedule_time else None
    return call_with_retries(
        lambda: client.send_bulk(
            chunk.messages,
            sender=settings.sender,
            test=settings.test,
            schedule_time=schedule,
            optouts=settings.optouts,
            receipt_url=settings.receipt_url,
        ),
        settings.retry,
        on_retry=on_retry,
    )


def finish(
    results: pd.DataFrame,
    journal: Journal,
    run_id: int,
    chunk: Chunk,
    future: Future[BulkResponse],
    settings: SendSettings,
    outcome: SendOutcome,
) -> None:
    """Map the chunk's result onto its rows, in the results frame and in the journal."""
    error = future.exception()
    if error is None:
        response = future.result()
        values = outcomes_from(response, chunk, test=settings.test, clock=settings.clock)
        if response.balance is not None:
            outcome.balance = response.balance
        summary = "answered"
    else:
        if isinstance(error, ProviderError):
            outcome.stopped = outcome.stopped or str(error)
            status, detail = "failed", f"not sent: the provider stopped the run ({error})"
        elif isinstance(error, NotSentError):
            status, detail = "failed", f"not sent: {error}"
        elif isinstance(error, OutcomeUnknown):
            status, detail = "unknown", f"may have been sent: {error}"
        else:  # a bug of ours after the request may have left: never assume it did not
            outcome.stopped = outcome.stopped or f"unexpected error: {error!r}"
            status, detail = "unknown", f"may have been sent: unexpected error {error!r}"
        log.warning("chunk %d of %d: %s", chunk.id, len(chunk.rows), detail)
        values = [[status, detail, None, None, None] for _ in chunk.rows]
        summary = status
    results.loc[chunk.rows, OUTCOME_COLUMNS] = values
    try:
        journal.finish_chunk(
            run_id,
            chunk.id,
            [Outcome(key, *value) for key, value in zip(chunk.keys, values, strict=True)],
            summary,
        )
    except JournalWriteError as exc:
        # The outcome stays in the results; the journal keeps the rows `sending`, which its
        # next open turns into `unknown`: never resent without the user's say.
        outcome.stopped = outcome.stopped or str(exc)
        outcome.journal_failed = True
        results.loc[chunk.rows, "detail"] = [
            f"{v[1] + '; ' if v[1] else ''}not recorded in the journal (it could not be "
            "written): a rerun treats it as unknown"
            for v in values
        ]


def outcomes_from(
    response: BulkResponse, chunk: Chunk, *, test: bool, clock: Clock = system_clock
) -> list[list[Any]]:
    """Per row: [status, detail, message id, batch id, sent_at] from the provider's answer."""
    sent_at = iso_now(clock)  # when the provider's answer arrived
    status, note = "sent", TEST_DETAIL if test else None
    if chunk.schedule_time is not None:
        status = "scheduled"
        note = (
            f"scheduled for {chunk.schedule_time.astimezone(IST):%Y-%m-%d %H:%M} IST "
            "(outside the promotional window)"
        )
        note += f"; {TEST_DETAIL}" if test else ""
    values = []
    for message in chunk.messages:
        accepted = response.accepted.get(message.number)
        refused = response.refused.get(message.number)
        if accepted is not None:
            values.append([status, note, accepted.message_id, accepted.batch_id, sent_at])
        elif refused is not None:
            code = f"error {refused.code}: " if refused.code is not None else ""
            values.append(["rejected", f"Textlocal {code}{refused.message}", None, None, None])
        else:
            # A "success" envelope that names neither outcome for this number: we cannot
            # tell whether it went, so it must not be resent blindly (docs/contract.md,
            # "Statuses").
            values.append(
                ["unknown", "the provider's answer did not mention this number", None, None, None]
            )
            log.warning("no outcome for %s in the provider's answer", phones.mask(message.number))
    return values


def mark(results: pd.DataFrame, rows: Sequence[int], status: str, detail: str) -> None:
    """Give every row in `rows` the same status and detail."""
    if len(rows):
        rows = list(rows)
        results.loc[rows, "status"] = status
        results.loc[rows, "detail"] = detail
