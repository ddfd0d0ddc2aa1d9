"""The journal under a hypothesis state machine: sends, failures, crashes, resumes, reconciles.

The real journal (SQLite file), the real sending stage (`send_ready`), the real resume
(`apply_journal`) and the real reconciliation run against a fake provider that records what it
"sent" and can, per request: accept all, refuse some, leave one out of its answer, fail before
recording (NotSentError, OutcomeUnknown, ProviderError) or time out after recording. A model
of every row's expected status is kept alongside; after every step the journal must equal the
model and the provider must never hold a number twice (never a row twice: docs/contract.md,
"Sending, journal and resume").
`--resend-unknown` is never used here: it exists to break that rule on purpose.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections import Counter
from contextlib import AbstractContextManager
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from pipeline.errors import NotSentError, OutcomeUnknown, ProviderError
from pipeline.providers.textlocal.client import Accepted, BulkResponse, HistoryMessage, Refused
from pipeline.sending import chunks as sending
from pipeline.sending.chunks import SendSettings, send_ready
from pipeline.sending.journal import IN_FLIGHT_DETAIL, Journal, RunIdentity, row_key
from pipeline.sending.reconcile import reconcile
from pipeline.sending.resume import apply_journal
from pipeline.sending.retry import RetryPolicy
from pipeline.statuses import FINAL, RESULT_COLUMNS

pytestmark = pytest.mark.slow  # ~8 s of stateful runs

IDENTITY = RunIdentity(
    "/data/contacts.xlsx", "Sheet1", "Hi {Name}", "ACMEST", "service", "textlocal", False
)
SHA = "0" * 64
ROWS = list(range(2, 42))  # source rows 2..41; the sheet starts with the first FIRST of them
FIRST = 10
INVALID = {5, 17}  # prepare gave this row `invalid_number`: never journalled, never sent
NUMBERS = {r: None if r in INVALID else f"+9198765{r:05d}" for r in ROWS}
MESSAGES = {r: f"Hi customer {r}, your order ships today" for r in ROWS}
KEYS = {r: row_key(NUMBERS[r], MESSAGES[r]) for r in ROWS if r not in INVALID}
ROW_OF_WIRE = {NUMBERS[r][1:]: r for r in KEYS}

# What one request may meet at the fake provider; `accept` when a script runs out.
ACCEPT, REFUSE_FIRST, OMIT_LAST = "accept", "refuse_first", "omit_last"
UNKNOWN_AFTER, UNKNOWN_BEFORE = "unknown_after_recording", "unknown_before_recording"
NOT_SENT, PROVIDER_ERROR = "not_sent", "provider_error"
MODES = [ACCEPT, REFUSE_FIRST, OMIT_LAST, UNKNOWN_AFTER, UNKNOWN_BEFORE, NOT_SENT, PROVIDER_ERROR]
RETRY = RetryPolicy(attempts=2, base=0.0, cap=0.0)  # one immediate retry after NotSentError

COVERAGE: Counter = Counter()  # rules and modes exercised, checked by the test below


class FakeProvider:
    """A provider that keeps what it accepted, answering each request as its script says."""

    def __init__(self) -> None:
        self.records: list[HistoryMessage] = []
        self.script: list[str] = []
        self.requests: list[list[str]] = []  # wire numbers of each request, in order

    def record(self, messages) -> list[Accepted]:
        accepted = []
        for m in messages:
            message_id = str(1000 + len(self.records))
            self.records.append(
                HistoryMessage(
                    message_id, m.number, "77", m.custom, "D", "2025-01-02 10:00:00", m.text
                )
            )
            accepted.append(Accepted(m.number, message_id, "77", 1))
        return accepted

    def send_bulk(self, messages, *, sender, test, schedule_time, optouts, receipt_url):
        self.requests.append([m.number for m in messages])
        mode = self.script.pop(0) if self.script else ACCEPT
        COVERAGE[f"mode {mode}"] += 1
        if mode == NOT_SENT:
            raise NotSentError("connection refused (fake)")
        if mode == PROVIDER_ERROR:
            raise ProviderError("Textlocal error 7: insufficient credits (fake)", 7)
        if mode == UNKNOWN_BEFORE:
            raise OutcomeUnknown("read timed out (fake, nothing recorded)")
        refused = {}
        if mode == REFUSE_FIRST:
            first = messages[0]
            refused[first.number] = Refused(first.number, 4, "invalid number (fake)")
            messages = messages[1:]
        accepted = {a.number: a for a in self.record(messages)}
        if mode == UNKNOWN_AFTER:
            raise OutcomeUnknown("read timed out (fake, recorded)")
        if mode == OMIT_LAST and accepted:
            accepted.pop(messages[-1].number)
        return BulkResponse(
            accepted, refused, balance=100, total_cost=len(accepted), test_mode=False
        )

    def history(self, *, min_time=None, max_time=None) -> list[HistoryMessage]:
        return list(self.records)

    def recorded_rows(self) -> Counter:
        return Counter(ROW_OF_WIRE[m.number] for m in self.records)


def fresh_frame(rows: list[int]) -> pd.DataFrame:
    """The results frame `prepare` builds for the sheet's rows: a new one on every run."""
    columns = {c: [None] * len(rows) for c in RESULT_COLUMNS[1:]}
    columns["phone_e164"] = [NUMBERS[r] for r in rows]
    columns["message"] = [MESSAGES[r] for r in rows]
    columns["status"] = ["invalid_number" if r in INVALID else "ready" for r in rows]
    return pd.DataFrame(columns, index=pd.Index(rows, name="source_row"), dtype=object)


class JournalMachine(RuleBasedStateMachine):
    """One job's journal across many runs, crashes and reconciliations."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="smsbatch-machine-"))
        self.path = self.folder / "journal.sqlite"
        self.provider = FakeProvider()
        self.model: dict[int, str] = {}  # row -> journal status; absent = never tried
        self.sheet = ROWS[:FIRST]  # the sheet grows between runs (rows appended)
        self.handle: AbstractContextManager[Journal] | None = None
        self.journal: Journal | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def open(self) -> None:
        self.handle = Journal.open(self.path)
        self.journal = self.handle.__enter__()  # recover() runs here
        run = self.journal.begin_run(IDENTITY, SHA)
        assert run.id == self.run_id

    def close(self) -> None:
        assert self.handle is not None
        self.handle.__exit__(None, None, None)
        self.handle = self.journal = None

    def teardown(self) -> None:
        if self.handle is not None:
            self.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    @initialize()
    def start(self) -> None:
        with Journal.open(self.path) as journal:
            self.run_id = journal.begin_run(IDENTITY, SHA).id
        self.open()

    # -- rules ------------------------------------------------------------------------------

    def sendable(self) -> bool:
        """A rerun would send something: a row in the sheet never tried, or known not sent."""
        return any(r not in INVALID and self.model.get(r) in (None, "failed") for r in self.sheet)

    def resumed_frame(self) -> pd.DataFrame:
        """What a rerun starts from: a fresh frame with the journal's outcomes laid over it."""
        assert self.journal is not None
        frame = fresh_frame(self.sheet)
        resumed = apply_journal(frame, self.journal.entries(self.run_id))
        for r in self.sheet:
            if r in INVALID:
                expected = "invalid_number"
            elif self.model.get(r) in (*FINAL, "unknown"):
                expected = self.model[r]
            else:
                expected = "ready"  # never tried, or known not sent (`failed`)
            assert frame.at[r, "status"] == expected, (r, self.model.get(r))
        carried = Counter(s for s in self.model.values() if s in (*FINAL, "unknown"))
        assert resumed.skipped == carried
        assert resumed.retrying == sum(1 for s in self.model.values() if s == "failed")
        assert resumed.resending_unknown == 0
        return frame

    @precondition(lambda self: len(self.sheet) < len(ROWS))
    @rule(more=st.integers(1, 8))
    def sheet_grows(self, more: int) -> None:
        """The user appends rows to the sheet before the next run (same job, same journal)."""
        COVERAGE["sheet_grows"] += 1
        self.sheet = ROWS[: len(self.sheet) + more]

    @rule()
    def resume(self) -> None:
        """A rerun that stops at the confirmation prompt: the resumed frame, nothing sent."""
        COVERAGE["resume"] += 1
        self.resumed_frame()

    @precondition(sendable)
    @rule(
        script=st.lists(st.sampled_from(MODES), min_size=1, max_size=4),
        chunk_size=st.integers(1, 4),
        limit=st.none() | st.integers(1, 6),
    )
    def send(self, script: list[str], chunk_size: int, limit: int | None) -> None:
        """A rerun: resume, then send_ready, the provider answering as `script` says."""
        COVERAGE["send"] += 1
        self._send(self.resumed_frame(), script, chunk_size, limit)

    @precondition(sendable)
    @rule(good=st.integers(0, 2), chunk_size=st.integers(1, 3))
    def provider_goes_down(self, good: int, chunk_size: int) -> None:
        """A few requests go through, then the provider refuses the account (no credits)."""
        COVERAGE["provider_goes_down"] += 1
        self._send(self.resumed_frame(), [ACCEPT] * good + [PROVIDER_ERROR], chunk_size, None)

    @precondition(sendable)
    @rule(size=st.integers(1, 4), left=st.booleans())
    def crash(self, size: int, left: bool) -> None:
        """A rerun whose process dies with a chunk committed as `sending`; `left`: its request
        had reached the provider. The next open turns those rows `unknown`."""
        COVERAGE[f"crash {'after' if left else 'before'} the request left"] += 1
        frame = self.resumed_frame()
        assert self.journal is not None
        rows = frame.index[frame["status"] == "ready"].tolist()[:size]
        chunk = sending.start(frame, self.journal, self.run_id, rows)
        if left:
            self.provider.record(chunk.messages)
        self.close()  # dropped without finish_chunk: the rows stay `sending` on disk
        assert self.statuses_on_disk().count("sending") == len(rows)
        self.open()
        for r in rows:
            entry = self.journal.entries(self.run_id)[KEYS[r]]
            assert (entry.status, entry.detail) == ("unknown", IN_FLIGHT_DETAIL)
            self.model[r] = "unknown"
        assert self.journal.recover() == 0  # nothing left in flight

    @precondition(lambda self: "unknown" in self.model.values())
    @rule()
    def reconcile(self) -> None:
        """`smsbatch reconcile`: unknown rows settled from the provider's history."""
        COVERAGE["reconcile"] += 1
        self.close()
        unknown = [r for r, s in self.model.items() if s == "unknown"]
        found = reconcile(self.provider, self.path, settle=0.0)
        held = self.provider.recorded_rows()
        sent = [r for r in unknown if held[r]]
        assert (found.checked, found.sent, found.failed, found.still_unknown) == (
            len(unknown),
            len(sent),
            len(unknown) - len(sent),
            0,
        )
        for r in unknown:
            self.model[r] = "sent" if held[r] else "failed"
        self.open()

    # -- the send, predicted ----------------------------------------------------------------

    def _send(
        self, frame: pd.DataFrame, script: list[str], chunk_size: int, limit: int | None
    ) -> None:
        assert self.journal is not None
        resumed = frame["status"].to_dict()
        ready = frame.index[frame["status"] == "ready"].tolist()
        over_limit = ready[limit:] if limit is not None else []
        going = ready[:limit] if limit is not None else ready
        # What should happen, chunk by chunk (concurrency 1: requests in order).
        modes = list(script)
        expected_requests: list[list[str]] = []
        expected_frame: dict[int, str] = dict.fromkeys(over_limit, "failed")
        stopped, attempted = False, 0
        for start in range(0, len(going), chunk_size):
            chunk = going[start : start + chunk_size]
            if stopped:
                expected_frame.update(dict.fromkeys(chunk, "failed"))  # never started
                continue
            attempted += len(chunk)
            wires = [NUMBERS[r][1:] for r in chunk]
            mode = modes.pop(0) if modes else ACCEPT
            expected_requests.append(wires)
            if mode == NOT_SENT:  # retried once at once (RETRY)
                mode = modes.pop(0) if modes else ACCEPT
                expected_requests.append(wires)
                mode = "failed" if mode == NOT_SENT else mode
            outcome = {
                ACCEPT: ["sent"] * len(chunk),
                REFUSE_FIRST: ["rejected"] + ["sent"] * (len(chunk) - 1),
                OMIT_LAST: ["sent"] * (len(chunk) - 1) + ["unknown"],
                UNKNOWN_AFTER: ["unknown"] * len(chunk),
                UNKNOWN_BEFORE: ["unknown"] * len(chunk),
                PROVIDER_ERROR: ["failed"] * len(chunk),
                "failed": ["failed"] * len(chunk),
            }[mode]
            stopped = mode == PROVIDER_ERROR
            for r, status in zip(chunk, outcome, strict=True):
                self.model[r] = status
                expected_frame[r] = status
        before = len(self.provider.requests)
        self.provider.script = list(script)
        result = send_ready(
            frame,
            self.provider,
            self.journal,
            self.run_id,  # type: ignore
            SendSettings(
                sender="ACMEST", chunk_size=chunk_size, limit=limit, concurrency=1, retry=RETRY
            ),
        )
        assert self.provider.requests[before:] == expected_requests
        assert bool(result.stopped) == stopped
        assert result.attempted == attempted
        for r in self.sheet:  # rows not sent now keep what the resume gave them
            want = expected_frame.get(r, resumed[r])
            assert frame.at[r, "status"] == want, (r, want)

    # -- invariants -------------------------------------------------------------------------

    def statuses_on_disk(self) -> list[str]:
        """Every message row's status, read straight from the file (not through Journal)."""
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT row_key, COUNT(*), MIN(status) FROM messages GROUP BY row_key"
            ).fetchall()
        finally:
            db.close()
        assert all(count == 1 for _, count, _ in rows), "a row journalled twice"
        return [status for _, _, status in rows]

    @invariant()
    def provider_never_holds_a_number_twice(self) -> None:
        twice = [r for r, n in self.provider.recorded_rows().items() if n > 1]
        assert not twice, f"rows sent twice: {twice}"

    @invariant()
    def journal_matches_the_model(self) -> None:
        if self.journal is None:
            return
        assert "sending" not in self.statuses_on_disk()  # no chunk is left in flight
        entries = self.journal.entries(self.run_id)
        assert {e.row_key: e.status for e in entries.values()} == {
            KEYS[r]: s for r, s in self.model.items()
        }

    @invariant()
    def what_the_provider_holds_is_sent_or_unknown(self) -> None:
        held = self.provider.recorded_rows()
        for r in KEYS:
            status = self.model.get(r)
            if held[r]:
                assert status in ("sent", "unknown"), (r, status)
            else:
                assert status in (None, "failed", "rejected", "unknown"), (r, status)


def test_the_journal_never_sends_a_row_twice_whatever_happens():
    COVERAGE.clear()
    run_state_machine_as_test(
        JournalMachine,
        settings=settings(
            max_examples=80,
            stateful_step_count=30,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    # Every rule and every provider behaviour was exercised, not just the easy ones.
    wanted = {
        "resume",
        "send",
        "provider_goes_down",
        "reconcile",
        "sheet_grows",
        "crash after the request left",
        "crash before the request left",
        *(f"mode {m}" for m in MODES),
    }
    assert wanted <= set(COVERAGE), wanted - set(COVERAGE)
    assert min(COVERAGE[k] for k in wanted) >= 5, COVERAGE
