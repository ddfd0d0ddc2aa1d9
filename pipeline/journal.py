"""The send journal: what was handed to the provider, so a rerun never sends a row twice.

Textlocal has no idempotency key (textlocal-api.md §6): once a request has left, only our own
records can stop a second send. Before each request its rows are committed as `sending`; after
it, each row's outcome (contract §7). A row still `sending` when the journal is next opened
belongs to a process that died mid-request: it becomes `unknown`, never resent blindly.

- SQLite in WAL mode with `synchronous=FULL`: a commit survives a crash and a power cut.
- One process at a time: an exclusive `flock` on `<journal>.lock`, released by the kernel
  when the process dies, so a killed run never leaves a stale lock behind.
- Delivery statuses learned later (`smsbatch status`, delivery.py) are kept per message, so
  a second check asks only about messages whose fate is still open. Journals made before
  those columns existed get them added when opened.
- A *run* is one job: the same input file, template, sender, route, provider and test mode.
  Rows are keyed by normalised number + rendered message, so a re-saved or re-ordered sheet
  still matches what already went.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.errors import InputError

DEFAULT_JOURNAL = Path("output") / "journal.sqlite"
FINAL = ("sent", "scheduled", "rejected")  # outcomes a rerun never sends again
IN_FLIGHT_DETAIL = ("the run stopped while this message was in flight; it may have been sent "
                    "(check with `smsbatch reconcile`, or resend with --resend-unknown)")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    identity TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    custom TEXT NOT NULL,
    size INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT
);
CREATE TABLE IF NOT EXISTS messages (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    row_key TEXT NOT NULL,
    source_row INTEGER NOT NULL,
    number TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,
    provider_message_id TEXT,
    batch_id TEXT,
    sent_at TEXT,
    chunk_id INTEGER REFERENCES chunks(id),
    custom TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    attempted_at TEXT,
    updated_at TEXT NOT NULL,
    delivery_status TEXT,
    delivered_at TEXT,
    PRIMARY KEY (run_id, row_key)
);
CREATE INDEX IF NOT EXISTS messages_status ON messages (status);
CREATE INDEX IF NOT EXISTS messages_message_id ON messages (provider_message_id);
CREATE INDEX IF NOT EXISTS messages_custom ON messages (custom, number);
"""
# Columns added after the first release: (name, SQL type), added to older journals on open.
ADDED_COLUMNS = (("delivery_status", "TEXT"), ("delivered_at", "TEXT"))
_ID_BATCH = 500  # ids per IN (...) query: well under SQLite's bound-variable limit


class JournalInUse(InputError):
    """Another smsbatch process holds the journal."""


@dataclass(frozen=True)
class RunIdentity:
    """What makes two `send` invocations the same job (contract §7 "rerunning the same send")."""

    input_path: str
    worksheet: str | None
    template: str
    sender: str | None
    route: str
    provider: str
    test: bool

    @property
    def key(self) -> str:
        """A stable digest of the identity."""
        text = json.dumps(self.__dict__, sort_keys=True, ensure_ascii=False)
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

    @classmethod
    @contextmanager
    def open(cls, path: str | Path = DEFAULT_JOURNAL) -> Iterator[Journal]:
        """Lock and open the journal (created owner-only if new); close and unlock after."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise InputError(f"{path}: cannot create the journal ({exc.strerror}); "
                             "choose another --journal path") from None
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise JournalInUse(f"{path}: journal in use by another smsbatch process; wait for "
                               "it to finish, or give this run its own --journal") from None
        try:
            if not path.exists():
                os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.executescript(SCHEMA)
            _add_missing_columns(connection)
            journal = cls(path, connection, lock_fd)
        except BaseException:
            os.close(lock_fd)
            raise
        try:
            journal.recover()
            yield journal
        finally:
            journal.close()

    def close(self) -> None:
        """Close the database and release the lock."""
        self._db.close()
        os.close(self._lock_fd)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def pragmas(self) -> dict[str, object]:
        """The durability settings in force (tests check we do what we claim)."""
        return {name: self._db.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous")}

    def recover(self) -> int:
        """Turn rows left `sending` by a dead process into `unknown`; return how many."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE messages SET status = 'unknown', detail = ?, updated_at = ? "
                "WHERE status = 'sending'", (IN_FLIGHT_DETAIL, now())).rowcount
            db.execute("UPDATE chunks SET outcome = 'unknown', finished_at = ? "
                       "WHERE finished_at IS NULL", (now(),))
        return changed

    def begin_run(self, identity: RunIdentity, input_sha256: str) -> Run:
        """Find this job's run, or start a new one."""
        stamp = now()
        with self._transaction() as db:
            found = db.execute("SELECT id, created_at, input_sha256 FROM runs WHERE key = ?",
                               (identity.key,)).fetchone()
            if found is None:
                cursor = db.execute(
                    "INSERT INTO runs (key, identity, input_sha256, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (identity.key, json.dumps(identity.__dict__, ensure_ascii=False),
                     input_sha256, stamp, stamp))
                return Run(id=int(cursor.lastrowid), created_at=stamp, new=True,
                           previous_input_sha256=None)
            db.execute("UPDATE runs SET input_sha256 = ?, updated_at = ? WHERE id = ?",
                       (input_sha256, stamp, found["id"]))
        changed = found["input_sha256"] if found["input_sha256"] != input_sha256 else None
        return Run(id=found["id"], created_at=found["created_at"], new=False,
                   previous_input_sha256=changed)

    def entries(self, run_id: int, status: str | None = None) -> dict[str, Entry]:
        """This run's rows by row key (optionally only one status)."""
        query = "SELECT * FROM messages WHERE run_id = ?"
        args: tuple = (run_id,)
        if status is not None:
            query += " AND status = ?"
            args += (status,)
        return {row["row_key"]: _entry(row) for row in self._db.execute(query, args)}

    def start_chunk(self, run_id: int, rows: Sequence[Pending]) -> tuple[int, str]:
        """Commit the chunk's rows as `sending` before its request; return (chunk id, custom)."""
        stamp = now()
        with self._transaction() as db:
            chunk_id = int(db.execute(
                "INSERT INTO chunks (run_id, custom, size, started_at) VALUES (?, '', ?, ?)",
                (run_id, len(rows), stamp)).lastrowid)
            # Correlation id for the provider's `custom` field: it comes back in the
            # history and in delivery receipts (textlocal-api.md §2.1, §5.4).
            custom = f"smsbatch-{run_id}-{chunk_id}"
            db.execute("UPDATE chunks SET custom = ? WHERE id = ?", (custom, chunk_id))
            db.executemany(
                "INSERT INTO messages (run_id, row_key, source_row, number, status, chunk_id, "
                "custom, attempts, attempted_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'sending', ?, ?, 1, ?, ?) "
                "ON CONFLICT (run_id, row_key) DO UPDATE SET status = 'sending', "
                "detail = NULL, source_row = excluded.source_row, chunk_id = excluded.chunk_id, "
                "custom = excluded.custom, attempts = attempts + 1, "
                "attempted_at = excluded.attempted_at, updated_at = excluded.updated_at",
                [(run_id, p.row_key, p.source_row, p.number, chunk_id, custom, stamp, stamp)
                 for p in rows])
        return chunk_id, custom

    def finish_chunk(self, run_id: int, chunk_id: int, outcomes: Iterable[Outcome],
                     summary: str) -> None:
        """Commit every row's outcome of one chunk in one transaction."""
        stamp = now()
        with self._transaction() as db:
            _write_outcomes(db, run_id, outcomes, stamp)
            db.execute("UPDATE chunks SET finished_at = ?, outcome = ? WHERE id = ?",
                       (stamp, summary, chunk_id))

    def update(self, run_id: int, outcomes: Iterable[Outcome]) -> None:
        """Change recorded outcomes (reconciliation) in one transaction."""
        with self._transaction() as db:
            _write_outcomes(db, run_id, outcomes, now())

    def record_delivery(self, updates: Iterable[tuple[str, str, str | None]]) -> int:
        """Store (provider_message_id, delivery_status, delivered_at) in one transaction;
        return how many journal rows changed."""
        stamp = now()
        rows = [(status, delivered_at, stamp, str(message_id), status)
                for message_id, status, delivered_at in updates]
        # A late "pending" (a receipt arriving out of order) never undoes a final status.
        with self._transaction() as db:
            return db.executemany(
                "UPDATE messages SET delivery_status = ?, delivered_at = ?, updated_at = ? "
                "WHERE provider_message_id = ? AND (? IN ('delivered', 'undelivered', 'invalid', "
                "'expired') OR delivery_status IS NULL OR delivery_status NOT IN ('delivered', "
                "'undelivered', 'invalid', 'expired'))", rows).rowcount

    def delivery_by_message_id(self, ids: Iterable[str]) -> dict[str, Delivery]:
        """The recorded delivery of each of `ids` that has one, by provider message id."""
        wanted = list(dict.fromkeys(map(str, ids)))
        found: dict[str, Delivery] = {}
        for start in range(0, len(wanted), _ID_BATCH):
            part = wanted[start:start + _ID_BATCH]
            marks = ", ".join("?" * len(part))
            for row in self._db.execute(
                    "SELECT provider_message_id, number, delivery_status, delivered_at "
                    "FROM messages WHERE delivery_status IS NOT NULL "
                    f"AND provider_message_id IN ({marks})", part):
                found[row[0]] = Delivery(row[1], row[2], row[3])
        return found

    def runs_with(self, status: str) -> list[int]:
        """Ids of runs that have rows in `status`."""
        return [row[0] for row in self._db.execute(
            "SELECT DISTINCT run_id FROM messages WHERE status = ? ORDER BY run_id", (status,))]

    def purge(self, before: datetime, *, dry_run: bool = False) -> tuple[int, int, int]:
        """Delete rows last updated before `before`, then VACUUM; (messages, chunks, runs).

        Chunks go once no message points at them and runs once they hold neither, each only
        if itself older than `before`. `dry_run` only counts. VACUUM rewrites the file and a
        checkpoint empties the -wal file, so deleted numbers are gone from disk (`smsbatch
        purge`, contract §8). A purged row is forgotten: rerunning its send would resend it.
        """
        # julianday() compares instants, whatever offset each ISO 8601 stamp was written with.
        cutoff = before.timestamp()
        self._db.execute("PRAGMA secure_delete=ON")  # zero freed pages too, before VACUUM
        self._db.execute("BEGIN IMMEDIATE")
        try:
            messages = self._db.execute(
                "DELETE FROM messages WHERE julianday(updated_at) < julianday(?, 'unixepoch')",
                (cutoff,)).rowcount
            chunks = self._db.execute(
                "DELETE FROM chunks WHERE julianday(coalesce(finished_at, started_at)) "
                "< julianday(?, 'unixepoch') AND id NOT IN (SELECT chunk_id FROM messages "
                "WHERE chunk_id IS NOT NULL)", (cutoff,)).rowcount
            runs = self._db.execute(
                "DELETE FROM runs WHERE julianday(updated_at) < julianday(?, 'unixepoch') "
                "AND id NOT IN (SELECT run_id FROM messages) "
                "AND id NOT IN (SELECT run_id FROM chunks)", (cutoff,)).rowcount
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("ROLLBACK" if dry_run else "COMMIT")
        if not dry_run:
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return messages, chunks, runs


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Bring a journal made by an older smsbatch up to SCHEMA (additive only)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
    for name, kind in ADDED_COLUMNS:
        if name not in have:
            db.execute(f"ALTER TABLE messages ADD COLUMN {name} {kind}")


def _write_outcomes(db: sqlite3.Connection, run_id: int, outcomes: Iterable[Outcome],
                    stamp: str) -> None:
    db.executemany(
        "UPDATE messages SET status = ?, detail = ?, provider_message_id = ?, batch_id = ?, "
        "sent_at = ?, updated_at = ? WHERE run_id = ? AND row_key = ?",
        [(o.status, o.detail, o.provider_message_id, o.batch_id, o.sent_at, stamp, run_id,
          o.row_key) for o in outcomes])


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(
        row_key=row["row_key"], source_row=row["source_row"], number=row["number"],
        status=row["status"], detail=row["detail"],
        provider_message_id=row["provider_message_id"], batch_id=row["batch_id"],
        sent_at=row["sent_at"], custom=row["custom"], attempts=row["attempts"],
        attempted_at=row["attempted_at"])
