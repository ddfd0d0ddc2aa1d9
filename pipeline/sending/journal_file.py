"""The journal file: its schema, and opening it safely (docs/journal.md, "The file itself").

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
import os
import secrets
import sqlite3
import tempfile
from pathlib import Path

from pipeline.errors import InputError, SmsBatchError

SQLITE_HEADER = b"SQLite format 3\x00"

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
ADDED_COLUMNS = (
    ("messages", "delivery_status", "TEXT"),
    ("messages", "delivered_at", "TEXT"),
    ("runs", "account", "TEXT"),
    ("runs", "test", "INTEGER NOT NULL DEFAULT 0"),
)


class JournalInUse(InputError):
    """Another smsbatch process holds the journal."""


class JournalRefused(InputError):
    """The journal file exists but cannot be trusted (empty, corrupt, not a journal, linked)."""


class JournalWriteError(SmsBatchError):
    """The journal could not record a change (disk full, I/O error): the run must stop."""

    exit_code = 3


def add_missing_columns(db: sqlite3.Connection) -> None:
    """Bring a journal made by an older smsbatch up to SCHEMA (additive only)."""
    for table, name, kind in ADDED_COLUMNS:
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if name not in have:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            if (table, name) == ("runs", "test"):  # older runs kept it only in their identity
                db.execute("UPDATE runs SET test = 1 WHERE identity LIKE '%\"test\": true%'")


def real_path(path: Path) -> Path:
    """`path` with every symlink resolved: one name per journal, so one write-ahead log."""
    try:
        return path.expanduser().resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise InputError(
            f"{path}: cannot follow this journal path ({exc}); choose another --journal"
        ) from None


def create(path: Path, shown: Path) -> None:
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
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('journal_id', ?)", (secrets.token_hex(6),)
            )
        finally:
            db.close()  # the last connection checkpoints: everything is in the file itself
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made one meanwhile: use theirs
    except (OSError, sqlite3.Error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(
            f"{shown}: cannot create the journal ({reason}); choose another --journal path"
        ) from None
    finally:
        if tmp is not None:
            for leftover in (tmp, f"{tmp}-wal", f"{tmp}-shm"):
                try:
                    os.unlink(leftover)
                except OSError:
                    pass


def lock(path: Path, shown: Path) -> int:
    """An exclusive flock on the journal file itself; its descriptor."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        raise InputError(
            f"{shown}: cannot open the journal ({exc.strerror}); check its "
            "permissions or choose another --journal"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalInUse(
            f"{shown}: journal in use by another smsbatch process; wait for it "
            "to finish, or give this run its own --journal"
        ) from None
    return fd


def _refuse(path: Path, what: str) -> JournalRefused:
    return JournalRefused(
        f"{path}: {what}, so it cannot say what was already sent. Restore it from a backup; "
        "or, if you are sure nothing was sent through it, move it aside and rerun "
        "(a new journal is made)"
    )


def connect(path: Path, fd: int, shown: Path) -> sqlite3.Connection:
    """Open the locked journal, refusing one that cannot be trusted (JournalRefused)."""
    info = os.fstat(fd)
    if info.st_nlink > 1:
        raise JournalRefused(
            f"{shown}: the journal has {info.st_nlink} names (hard links); SQLite keeps its "
            "write-ahead log beside one name only, so remove the other links and rerun"
        )
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
        tables = {
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if not TABLES <= tables:
            raise _refuse(shown, "this SQLite file is not an smsbatch journal")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(SCHEMA)  # tables and indexes added since the journal was made
        add_missing_columns(db)
        db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('journal_id', ?)",
            (secrets.token_hex(6),),
        )
    except JournalRefused:
        db.close()
        raise
    except sqlite3.DatabaseError as exc:
        db.close()
        if isinstance(exc, sqlite3.OperationalError) and _is_write_failure(exc):
            raise write_error(shown, exc) from None
        raise _refuse(shown, f"the journal is damaged ({exc})") from None
    except BaseException:
        db.close()
        raise
    return db


def _is_write_failure(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("disk is full", "disk i/o", "readonly", "read-only"))


def write_error(path: Path, exc: sqlite3.Error) -> JournalWriteError:
    """One line for a journal write that failed."""
    reason = str(exc) or type(exc).__name__
    if "full" in reason.lower():
        advice = "free some space on that disk, then rerun the same command"
    else:
        advice = "check the disk, then rerun the same command"
    return JournalWriteError(
        f"cannot write the journal {path} ({reason}): the run stopped; "
        f"{advice} (rows in flight are marked unknown, never resent)"
    )
