"""The send journal: what was handed to the provider, so nothing is sent twice or lost.

Textlocal has no idempotency key (docs/provider-api.md): once a request has left, only our own
records can stop a second send. Before each request its rows are committed as `sending`; after
it, each row's outcome. A row still `sending` when the journal is next opened belongs to a
process that died mid-request: it becomes `unknown`, never resent blindly.

One journal per user (settings.default_journal: the user's state directory), whatever folder a
command runs from; its records are scoped by provider account (docs/journal.md):

- A *run* is one job: the same input file, worksheet, template, sender, route, provider account
  and test mode. Rerunning it resumes (resume.py).
- Across runs, `prior_sends` finds the same text to the same number through the same account
  within the repeat window, whatever file or run sent it: those rows are `already_sent`.
- Rows are keyed by normalised number + rendered message (`row_key`), so a re-saved, moved or
  re-ordered sheet still matches what already went.
- Correlation ids (`custom`) carry a random id of this journal, so no two journals ever hand the
  provider the same one (reconcile.py trusts them only together with number and text).

The file itself (opening, locking, refusing one that cannot be trusted) is journal_file.py.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.sending.journal_file import (
    JournalInUse,
    JournalRefused,
    JournalWriteError,
    connect,
    create,
    lock,
    real_path,
    write_error,
)
from pipeline.settings import default_journal

__all__ = [
    "BLOCKING",
    "IN_FLIGHT_DETAIL",
    "Delivery",
    "Entry",
    "Journal",
    "JournalInUse",
    "JournalRefused",
    "JournalWriteError",
    "Outcome",
    "Pending",
    "Prior",
    "Run",
    "RunIdentity",
    "row_key",
]

# Outcomes of another run that keep the same text from going to the same number again.
BLOCKING = ("sent", "scheduled", "unknown", "sending")
IN_FLIGHT_DETAIL = (
    "the run stopped while this message was in flight; it may have been sent "
    "(check with `smsbatch reconcile`, or resend with --resend-unknown)"
)

_ID_BATCH = 500  # ids per IN (...) query: well under SQLite's bound-variable limit


@dataclass(frozen=True)
class RunIdentity:
    """What makes two `send` invocations the same job (docs/contract.md, "Sending, journal and
    resume": rerunning the same send)."""

    input_path: str
    worksheet: str | None
    template: str
    sender: str | None
    route: str
    provider: str
    test: bool
    account: str | None = None  # Connection.account: API host + key fingerprint, or outbox id

    @property
    def key(self) -> str:
        """A stable digest of the identity."""
        fields = {k: v for k, v in self.__dict__.items() if k != "account" or v is not None}
        text = json.dumps(fields, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Run:
    """A job in the journal, as found (or created) when a send starts."""

    id: int
    created_at: str
    new: bool
    previous_input_sha256: str | None  # the input's hash at the last attempt, when it differs


@dataclass(frozen=True)
class Entry:
    """One row's journal record."""

    row_key: str
    source_row: int
    number: str
    status: str
    detail: str | None
    provider_message_id: str | None
    batch_id: str | None
    sent_at: str | None
    custom: str | None
    attempts: int
    attempted_at: str | None


@dataclass(frozen=True)
class Delivery:
    """What the journal knows about one message's delivery."""

    number: str
    status: str
    delivered_at: str | None


@dataclass(frozen=True)
class Prior:
    """The latest send of the same text to the same number by another run of this account."""

    row_key: str
    status: str
    attempted_at: str
    run_id: int
    source_row: int
    input_name: str  # the file name that run read


@dataclass(frozen=True)
class Pending:
    """A row about to be sent: what the journal needs before the request leaves."""

    row_key: str
    source_row: int
    number: str


@dataclass(frozen=True)
class Outcome:
    """A row's result after its request."""

    row_key: str
    status: str
    detail: str | None = None
    provider_message_id: str | None = None
    batch_id: str | None = None
    sent_at: str | None = None


def row_key(number: str, message: str) -> str:
    """The row's identity across reruns: normalised number + rendered message."""
    return hashlib.sha256(f"{number}\n{message}".encode()).hexdigest()[:32]


def now() -> str:
    """The current time, ISO 8601 with offset."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


class Journal:
    """An open, locked journal. Use `Journal.open(path)` as a context manager."""

    def __init__(self, path: Path, connection: sqlite3.Connection, lock_fd: int) -> None:
        self.path = path
        self._db = connection
        self._lock_fd = lock_fd

    @functools.cached_property
    def journal_id(self) -> str:
        """This journal's random id (12 hex digits), part of every correlation id."""
        return str(
            self._db.execute("SELECT value FROM meta WHERE key = 'journal_id'").fetchone()[0]
        )

    @classmethod
    @contextmanager
    def open(cls, path: str | Path | None = None) -> Iterator[Journal]:
        """Lock and open the journal (default: settings.default_journal), creating it
        owner-only if there is none; close and unlock after. A file that is there but cannot
        be trusted is refused (JournalRefused), never replaced."""
        shown = Path(path) if path is not None else default_journal()  # for messages
        path = real_path(shown)
        if not path.exists():
            create(path, shown)
        lock_fd = lock(path, shown)
        try:
            connection = connect(path, lock_fd, shown)
        except BaseException:
            os.close(lock_fd)
            raise
        journal = cls(path, connection, lock_fd)
        try:
            journal.recover()
            yield journal
        finally:
            journal.close()

    def close(self) -> None:
        """Close the database, then release the lock (closing any descriptor of the file
        drops SQLite's own locks, so ours goes last)."""
        try:
            self._db.close()
        finally:
            os.close(self._lock_fd)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise write_error(self.path, exc) from None
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException as exc:
            try:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # a failed COMMIT may have rolled back already
            if isinstance(exc, sqlite3.Error):
                raise write_error(self.path, exc) from None
            raise

    def pragmas(self) -> dict[str, object]:
        """The durability settings in force (tests check we do what we claim)."""
        return {
            name: self._db.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous")
        }

    def recover(self) -> int:
        """Turn rows left `sending` by a dead process into `unknown`; return how many."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE messages SET status = 'unknown', detail = ?, updated_at = ? "
                "WHERE status = 'sending'",
                (IN_FLIGHT_DETAIL, now()),
            ).rowcount
            db.execute(
                "UPDATE chunks SET outcome = 'unknown', finished_at = ? WHERE finished_at IS NULL",
                (now(),),
            )
        return changed

    def begin_run(self, identity: RunIdentity, input_sha256: str) -> Run:
        """Find this job's run, or start a new one."""
        stamp = now()
        with self._transaction() as db:
            found = db.execute(
                "SELECT id, created_at, input_sha256 FROM runs WHERE key = ?", (identity.key,)
            ).fetchone()
            if found is None:
                cursor = db.execute(
                    "INSERT INTO runs (key, identity, input_sha256, created_at, updated_at, "
                    "account, test) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        identity.key,
                        json.dumps(identity.__dict__, ensure_ascii=False),
                        input_sha256,
                        stamp,
                        stamp,
                        identity.account,
                        int(identity.test),
                    ),
                )
                assert cursor.lastrowid is not None  # set by the INSERT
                return Run(
                    id=int(cursor.lastrowid), created_at=stamp, new=True, previous_input_sha256=None
                )
            db.execute(
                "UPDATE runs SET input_sha256 = ?, updated_at = ?, account = ?, test = ? "
                "WHERE id = ?",
                (input_sha256, stamp, identity.account, int(identity.test), found["id"]),
            )
        changed = found["input_sha256"] if found["input_sha256"] != input_sha256 else None
        return Run(
            id=found["id"], created_at=found["created_at"], new=False, previous_input_sha256=changed
        )

    def entries(self, run_id: int, status: str | None = None) -> dict[str, Entry]:
        """This run's rows by row key (optionally only one status)."""
        query = "SELECT * FROM messages WHERE run_id = ?"
        args: tuple[int | str, ...] = (run_id,)
        if status is not None:
            query += " AND status = ?"
            args += (status,)
        return {row["row_key"]: _entry(row) for row in self._db.execute(query, args)}

    def prior_sends(
        self,
        keys: Iterable[str],
        *,
        account: str | None,
        test: bool,
        since: datetime,
        exclude_run: int | None = None,
    ) -> dict[str, Prior]:
        """For each row key, the latest blocking send (BLOCKING) by another run of `account`
        in the same test mode, attempted at or after `since`; keys without one are absent.

        A run recorded before accounts were kept (account NULL) counts for every account:
        it may have been this one, and the safe mistake is not to send.
        """
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Prior] = {}
        statuses = ", ".join(f"'{s}'" for s in BLOCKING)
        for start in range(0, len(wanted), _ID_BATCH):
            part = wanted[start : start + _ID_BATCH]
            marks = ", ".join("?" * len(part))
            rows = self._db.execute(
                "SELECT m.row_key, m.status, m.attempted_at, m.source_row, r.id, r.identity "
                "FROM messages m JOIN runs r ON r.id = m.run_id "
                f"WHERE m.row_key IN ({marks}) AND +m.status IN ({statuses}) "
                "AND (r.account = ? OR r.account IS NULL) AND r.test = ? AND r.id != ? "
                "AND julianday(m.attempted_at) >= julianday(?, 'unixepoch') "
                "ORDER BY julianday(m.attempted_at)",
                [
                    *part,
                    account,
                    int(test),
                    -1 if exclude_run is None else exclude_run,
                    since.timestamp(),
                ],
            )
            for row in rows:  # oldest first: the latest send of each key wins
                found[row[0]] = Prior(
                    row_key=row[0],
                    status=row[1],
                    attempted_at=row[2],
                    source_row=row[3],
                    run_id=row[4],
                    input_name=_input_name(row[5]),
                )
        return found

    def start_chunk(self, run_id: int, rows: Sequence[Pending]) -> tuple[int, str]:
        """Commit the chunk's rows as `sending` before its request; return (chunk id, custom)."""
        stamp = now()
        with self._transaction() as db:
            inserted = db.execute(
                "INSERT INTO chunks (run_id, custom, size, started_at) VALUES (?, '', ?, ?)",
                (run_id, len(rows), stamp),
            ).lastrowid
            assert inserted is not None  # set by the INSERT
            chunk_id = int(inserted)
            # Correlation id for the provider's `custom` field: it comes back in the history
            # and in delivery receipts (docs/provider-api.md). The journal's random id keeps it
            # unique across journals; 30 characters at most for a 6-digit run and chunk.
            custom = f"smsbatch-{self.journal_id}-{run_id}-{chunk_id}"
            db.execute("UPDATE chunks SET custom = ? WHERE id = ?", (custom, chunk_id))
            db.executemany(
                "INSERT INTO messages (run_id, row_key, source_row, number, status, chunk_id, "
                "custom, attempts, attempted_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'sending', ?, ?, 1, ?, ?) "
                "ON CONFLICT (run_id, row_key) DO UPDATE SET status = 'sending', "
                "detail = NULL, source_row = excluded.source_row, chunk_id = excluded.chunk_id, "
                "custom = excluded.custom, attempts = attempts + 1, "
                "attempted_at = excluded.attempted_at, updated_at = excluded.updated_at",
                [
                    (run_id, p.row_key, p.source_row, p.number, chunk_id, custom, stamp, stamp)
                    for p in rows
                ],
            )
        return chunk_id, custom

    def finish_chunk(
        self, run_id: int, chunk_id: int, outcomes: Iterable[Outcome], summary: str
    ) -> None:
        """Commit every row's outcome of one chunk in one transaction."""
        stamp = now()
        with self._transaction() as db:
            _write_outcomes(db, run_id, outcomes, stamp)
            db.execute(
                "UPDATE chunks SET finished_at = ?, outcome = ? WHERE id = ?",
                (stamp, summary, chunk_id),
            )

    def update(self, run_id: int, outcomes: Iterable[Outcome]) -> None:
        """Change recorded outcomes (reconciliation) in one transaction."""
        with self._transaction() as db:
            _write_outcomes(db, run_id, outcomes, now())

    def record_delivery(self, updates: Iterable[tuple[str, str, str | None]]) -> int:
        """Store (provider_message_id, delivery_status, delivered_at) in one transaction;
        return how many journal rows changed."""
        stamp = now()
        rows = [
            (status, delivered_at, stamp, str(message_id), status)
            for message_id, status, delivered_at in updates
        ]
        # A late "pending" (a receipt arriving out of order) never undoes a final status.
        with self._transaction() as db:
            return db.executemany(
                "UPDATE messages SET delivery_status = ?, delivered_at = ?, updated_at = ? "
                "WHERE provider_message_id = ? AND (? IN ('delivered', 'undelivered', 'invalid', "
                "'expired') OR delivery_status IS NULL OR delivery_status NOT IN ('delivered', "
                "'undelivered', 'invalid', 'expired'))",
                rows,
            ).rowcount

    def delivery_by_message_id(self, ids: Iterable[str]) -> dict[str, Delivery]:
        """The recorded delivery of each of `ids` that has one, by provider message id."""
        wanted = list(dict.fromkeys(map(str, ids)))
        found: dict[str, Delivery] = {}
        for start in range(0, len(wanted), _ID_BATCH):
            part = wanted[start : start + _ID_BATCH]
            marks = ", ".join("?" * len(part))
            for row in self._db.execute(
                "SELECT provider_message_id, number, delivery_status, delivered_at "
                "FROM messages WHERE delivery_status IS NOT NULL "
                f"AND provider_message_id IN ({marks})",
                part,
            ):
                found[row[0]] = Delivery(row[1], row[2], row[3])
        return found

    def runs_with(self, status: str) -> list[int]:
        """Ids of runs that have rows in `status`."""
        return [
            row[0]
            for row in self._db.execute(
                "SELECT DISTINCT run_id FROM messages WHERE status = ? ORDER BY run_id", (status,)
            )
        ]

    def purge(self, before: datetime, *, dry_run: bool = False) -> tuple[int, int, int]:
        """Delete rows last updated before `before`, then VACUUM; (messages, chunks, runs).

        Chunks go once no message points at them and runs once they hold neither, each only
        if itself older than `before`. `dry_run` only counts. VACUUM rewrites the file and a
        checkpoint empties the -wal file, so deleted numbers are gone from disk (`smsbatch
        purge`, docs/contract.md, "Secrets and privacy"). A purged row is forgotten: rerunning
        its send would resend it.
        """
        # julianday() compares instants, whatever offset each ISO 8601 stamp was written with.
        cutoff = before.timestamp()
        self._db.execute("PRAGMA secure_delete=ON")  # zero freed pages too, before VACUUM
        self._db.execute("BEGIN IMMEDIATE")
        try:
            messages = self._db.execute(
                "DELETE FROM messages WHERE julianday(updated_at) < julianday(?, 'unixepoch')",
                (cutoff,),
            ).rowcount
            chunks = self._db.execute(
                "DELETE FROM chunks WHERE julianday(coalesce(finished_at, started_at)) "
                "< julianday(?, 'unixepoch') AND id NOT IN (SELECT chunk_id FROM messages "
                "WHERE chunk_id IS NOT NULL)",
                (cutoff,),
            ).rowcount
            runs = self._db.execute(
                "DELETE FROM runs WHERE julianday(updated_at) < julianday(?, 'unixepoch') "
                "AND id NOT IN (SELECT run_id FROM messages) "
                "AND id NOT IN (SELECT run_id FROM chunks)",
                (cutoff,),
            ).rowcount
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("ROLLBACK" if dry_run else "COMMIT")
        if not dry_run:
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return messages, chunks, runs


def _input_name(identity: str) -> str:
    """The input file's name from a run's stored identity."""
    try:
        return Path(json.loads(identity).get("input_path") or "").name or "?"
    except (ValueError, AttributeError):
        return "?"


def _write_outcomes(
    db: sqlite3.Connection, run_id: int, outcomes: Iterable[Outcome], stamp: str
) -> None:
    db.executemany(
        "UPDATE messages SET status = ?, detail = ?, provider_message_id = ?, batch_id = ?, "
        "sent_at = ?, updated_at = ? WHERE run_id = ? AND row_key = ?",
        [
            (
                o.status,
                o.detail,
                o.provider_message_id,
                o.batch_id,
                o.sent_at,
                stamp,
                run_id,
                o.row_key,
            )
            for o in outcomes
        ],
    )


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(
        row_key=row["row_key"],
        source_row=row["source_row"],
        number=row["number"],
        status=row["status"],
        detail=row["detail"],
        provider_message_id=row["provider_message_id"],
        batch_id=row["batch_id"],
        sent_at=row["sent_at"],
        custom=row["custom"],
        attempts=row["attempts"],
        attempted_at=row["attempted_at"],
    )
