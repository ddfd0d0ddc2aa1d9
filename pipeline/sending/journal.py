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

Safety of the file itself:

- SQLite in WAL mode with `synchronous=FULL`: a commit survives a crash and a power cut.
- One process at a time: an exclusive `flock` on the database file itself (its inode), so a
  second process through a symlink or a hard link finds it taken; the kernel releases it when
  the process dies. A journal with more than one name (hard links) is refused: SQLite names its
  write-ahead log after the path, so two names would mean two logs and lost commits.
- A file that exists but is empty, truncated, corrupt, not SQLite or not a journal is refused
  with one line, never silently recreated: a fresh journal would forget what was sent. A new
  journal is built under a temporary name and linked into place whole.
- A write that fails (disk full, I/O error) raises JournalWriteError: the run stops, and rows
  left `sending` become `unknown` at the next open.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import secrets
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.errors import InputError, SmsBatchError
from pipeline.settings import default_journal

# Outcomes of another run that keep the same text from going to the same number again.
BLOCKING = ("sent", "scheduled", "unknown", "sending")
SQLITE_HEADER = b"SQLite format 3\x00"
IN_FLIGHT_DETAIL = ("the run stopped while this message was in flight; it may have been sent "
                    "(check with `smsbatch reconcile`, or resend with --resend-unknown)")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    identity TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    account TEXT,
    test INTEGER NOT NULL DEFAULT 0
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
CREATE INDEX IF NOT EXISTS messages_row_key ON messages (row_key);
"""
TABLES = frozenset({"runs", "messages"})  # chunks came later: added on open
# Columns added after the first release: (table, name, SQL type), added to older journals.
ADDED_COLUMNS = (("messages", "delivery_status", "TEXT"), ("messages", "delivered_at", "TEXT"),
                 ("runs", "account", "TEXT"), ("runs", "test", "INTEGER NOT NULL DEFAULT 0"))
_ID_BATCH = 500  # ids per IN (...) query: well under SQLite's bound-variable limit


class JournalInUse(InputError):
    """Another smsbatch process holds the journal."""


class JournalRefused(InputError):
    """The journal file exists but cannot be trusted (empty, corrupt, not a journal, linked)."""


class JournalWriteError(SmsBatchError):
    """The journal could not record a change (disk full, I/O error): the run must stop."""

    exit_code = 3


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
    account: str | None = None  # providers.account_scope: API host + key fingerprint, outbox

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
        return str(self._db.execute(
            "SELECT value FROM meta WHERE key = 'journal_id'").fetchone()[0])

    @classmethod
    @contextmanager
    def open(cls, path: str | Path | None = None) -> Iterator[Journal]:
        """Lock and open the journal (default: settings.default_journal), creating it
        owner-only if there is none; close and unlock after. A file that is there but cannot
        be trusted is refused (JournalRefused), never replaced."""
        shown = Path(path) if path is not None else default_journal()  # for messages
        path = _real_path(shown)
        if not path.exists():
            _create(path, shown)
        lock_fd = _lock(path, shown)
        try:
            connection = _connect(path, lock_fd, shown)
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
            raise _write_error(self.path, exc) from None
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
                raise _write_error(self.path, exc) from None
            raise

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
                    "INSERT INTO runs (key, identity, input_sha256, created_at, updated_at, "
                    "account, test) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (identity.key, json.dumps(identity.__dict__, ensure_ascii=False),
                     input_sha256, stamp, stamp, identity.account, int(identity.test)))
                return Run(id=int(cursor.lastrowid), created_at=stamp, new=True,
                           previous_input_sha256=None)
            db.execute("UPDATE runs SET input_sha256 = ?, updated_at = ?, account = ?, test = ? "
                       "WHERE id = ?", (input_sha256, stamp, identity.account,
                                        int(identity.test), found["id"]))
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

    def prior_sends(self, keys: Iterable[str], *, account: str | None, test: bool,
                    since: datetime, exclude_run: int | None = None) -> dict[str, Prior]:
        """For each row key, the latest blocking send (BLOCKING) by another run of `account`
        in the same test mode, attempted at or after `since`; keys without one are absent.

        A run recorded before accounts were kept (account NULL) counts for every account:
        it may have been this one, and the safe mistake is not to send.
        """
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Prior] = {}
        statuses = ", ".join(f"'{s}'" for s in BLOCKING)
        for start in range(0, len(wanted), _ID_BATCH):
            part = wanted[start:start + _ID_BATCH]
            marks = ", ".join("?" * len(part))
            rows = self._db.execute(
                "SELECT m.row_key, m.status, m.attempted_at, m.source_row, r.id, r.identity "
                "FROM messages m JOIN runs r ON r.id = m.run_id "
                f"WHERE m.row_key IN ({marks}) AND m.status IN ({statuses}) "
                "AND (r.account = ? OR r.account IS NULL) AND r.test = ? AND r.id != ? "
                "AND julianday(m.attempted_at) >= julianday(?, 'unixepoch') "
                "ORDER BY julianday(m.attempted_at)",
                [*part, account, int(test), -1 if exclude_run is None else exclude_run,
                 since.timestamp()])
            for row in rows:  # oldest first: the latest send of each key wins
                found[row[0]] = Prior(row_key=row[0], status=row[1], attempted_at=row[2],
                                      source_row=row[3], run_id=row[4],
                                      input_name=_input_name(row[5]))
        return found

    def start_chunk(self, run_id: int, rows: Sequence[Pending]) -> tuple[int, str]:
        """Commit the chunk's rows as `sending` before its request; return (chunk id, custom)."""
        stamp = now()
        with self._transaction() as db:
            chunk_id = int(db.execute(
                "INSERT INTO chunks (run_id, custom, size, started_at) VALUES (?, '', ?, ?)",
                (run_id, len(rows), stamp)).lastrowid)
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
    for table, name, kind in ADDED_COLUMNS:
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if name not in have:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            if (table, name) == ("runs", "test"):  # older runs kept it only in their identity
                db.execute("UPDATE runs SET test = 1 WHERE identity LIKE '%\"test\": true%'")


def _real_path(path: Path) -> Path:
    """`path` with every symlink resolved: one name per journal, so one write-ahead log."""
    try:
        return path.expanduser().resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise InputError(f"{path}: cannot follow this journal path ({exc}); choose another "
                         "--journal") from None


def _create(path: Path, shown: Path) -> None:
    """A new, empty journal at `path`, built under a temporary name and linked into place
    whole, so a crash never leaves a half-made file that would later read as "empty"."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
        # mkstemp made it 0600: owner-only from the first byte (docs/contract.md, "Secrets and
        # privacy").
        os.close(fd)
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            db.execute("INSERT INTO meta (key, value) VALUES ('journal_id', ?)",
                       (secrets.token_hex(6),))
        finally:
            db.close()  # the last connection checkpoints: everything is in the file itself
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made one meanwhile: use theirs
    except (OSError, sqlite3.Error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(f"{shown}: cannot create the journal ({reason}); choose another "
                         "--journal path") from None
    finally:
        if tmp is not None:
            for leftover in (tmp, f"{tmp}-wal", f"{tmp}-shm"):
                try:
                    os.unlink(leftover)
                except OSError:
                    pass


def _lock(path: Path, shown: Path) -> int:
    """An exclusive flock on the journal file itself; its descriptor."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        raise InputError(f"{shown}: cannot open the journal ({exc.strerror}); check its "
                         "permissions or choose another --journal") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalInUse(f"{shown}: journal in use by another smsbatch process; wait for it "
                           "to finish, or give this run its own --journal") from None
    return fd


def _refuse(path: Path, what: str) -> JournalRefused:
    return JournalRefused(
        f"{path}: {what}, so it cannot say what was already sent. Restore it from a backup; "
        "or, if you are sure nothing was sent through it, move it aside and rerun "
        "(a new journal is made)")


def _connect(path: Path, fd: int, shown: Path) -> sqlite3.Connection:
    """Open the locked journal, refusing one that cannot be trusted (JournalRefused)."""
    info = os.fstat(fd)
    if info.st_nlink > 1:
        raise JournalRefused(
            f"{shown}: the journal has {info.st_nlink} names (hard links); SQLite keeps its "
            "write-ahead log beside one name only, so remove the other links and rerun")
    if info.st_size == 0:
        raise _refuse(shown, "the journal is empty (0 bytes), as if truncated")
    if os.pread(fd, len(SQLITE_HEADER), 0) != SQLITE_HEADER:
        raise _refuse(shown, "this is not an SQLite database")
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise _refuse(shown, f"the journal cannot be opened ({exc})") from None
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=5000")
        check = db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if check != "ok":
            raise _refuse(shown, "the journal is damaged (SQLite quick_check failed)")
        tables = {row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not TABLES <= tables:
            raise _refuse(shown, "this SQLite file is not an smsbatch journal")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(SCHEMA)  # tables and indexes added since the journal was made
        _add_missing_columns(db)
        db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('journal_id', ?)",
                   (secrets.token_hex(6),))
    except JournalRefused:
        db.close()
        raise
    except sqlite3.DatabaseError as exc:
        db.close()
        if isinstance(exc, sqlite3.OperationalError) and _is_write_failure(exc):
            raise _write_error(shown, exc) from None
        raise _refuse(shown, f"the journal is damaged ({exc})") from None
    except BaseException:
        db.close()
        raise
    return db


def _is_write_failure(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("disk is full", "disk i/o", "readonly", "read-only"))


def _write_error(path: Path, exc: sqlite3.Error) -> JournalWriteError:
    """One line for a journal write that failed."""
    reason = str(exc) or type(exc).__name__
    if "full" in reason.lower():
        advice = "free some space on that disk, then rerun the same command"
    else:
        advice = "check the disk, then rerun the same command"
    return JournalWriteError(f"cannot write the journal {path} ({reason}): the run stopped; "
                             f"{advice} (rows in flight are marked unknown, never resent)")


def _input_name(identity: str) -> str:
    """The input file's name from a run's stored identity."""
    try:
        return Path(json.loads(identity).get("input_path") or "").name or "?"
    except (ValueError, AttributeError):
        return "?"


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
