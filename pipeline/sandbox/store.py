"""The sandbox's SQLite outbox: accepted messages, their batches, the balance and id counters.

Everything that must survive a restart lives here, so a sandbox reopened on the same file keeps
its ids increasing and its balance (a client that stored ids never sees one reused). The API
key is never stored. Test-mode messages are kept with `test = 1` so a rehearsal can be
inspected; `read_outbox` returns only what was really "sent" unless asked. A message accepted
for later (`schedule_time`, docs/provider-api.md, "The /send/ command") is kept with status
`scheduled` and its `scheduled_at`, and reads `scheduled` until then.

Each message's delivery fate (final status and when) is drawn on acceptance and stored; its
status at any moment is derived from those and the clock (receipts.py), so the
`status` column keeps the status on acceptance ("P" or "scheduled") and reads report the
current one. A message sent with a `receipt_url` has `receipt_state` "due" until its receipt
callback is posted ("sent") or given up ("failed").

The outbox holds numbers and message texts, so a new one is created owner-only (0600; SQLite
gives its -wal and -shm files the same mode), and `purge_outbox` erases old messages for good
(`smsbatch purge`, docs/contract.md, "Secrets and privacy").
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.errors import InputError
from pipeline.sandbox.receipts import Receipts, current_status

# Realistic first ids: the /send/ doc sample's message id and a nine-digit batch id like the
# samples' (docs/provider-api.md, "Ids and number types").
FIRST_MESSAGE_ID = 1151346216
FIRST_BATCH_ID = 123456789

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    id           INTEGER PRIMARY KEY,
    sender       TEXT NOT NULL,
    custom       TEXT,
    num_messages INTEGER NOT NULL,
    num_parts    INTEGER NOT NULL,
    cost         INTEGER NOT NULL,
    test         INTEGER NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id         INTEGER PRIMARY KEY,
    batch_id   INTEGER NOT NULL REFERENCES batches(id),
    number     TEXT NOT NULL,
    message    TEXT NOT NULL,
    sender     TEXT NOT NULL,
    custom     TEXT,
    num_parts  INTEGER NOT NULL,
    test       INTEGER NOT NULL,
    -- status on acceptance: "P", or "scheduled" for later (outboxes from before receipts
    -- hold "D"); reads derive the current one (receipts.py)
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    scheduled_at TEXT  -- ISO 8601 UTC, or NULL when sent at once
);
CREATE INDEX IF NOT EXISTS messages_batch ON messages(batch_id);
"""
# Columns added after the first outboxes were written: (re)opening adds the missing ones.
_ADDED_COLUMNS = {
    "scheduled_at": "TEXT",
    "due_at": "REAL",  # unix time it goes out: scheduled_at, or acceptance
    "final_status": "TEXT",  # D/U/E/I/? drawn on acceptance (receipts.py)
    "final_at": "REAL",  # unix time it takes final_status
    "receipt_url": "TEXT",
    "receipt_state": "TEXT",  # "due", "sent", "failed"; NULL when no receipt was asked for
}
# Only the receipts still to post are indexed: the callback thread polls this.
_RECEIPT_INDEX = (
    "CREATE INDEX IF NOT EXISTS messages_receipts_due ON messages(final_at) "
    "WHERE receipt_state = 'due'"
)

_OUTBOX_COLUMNS = "id, batch_id, number, message, sender, custom, test, status, created_at"
_FATE_COLUMNS = ("scheduled_at", "due_at", "final_status", "final_at")
SCHEDULED = "scheduled"  # the status of a message accepted for a later time


@dataclass(frozen=True)
class NewBatch:
    """One accepted send: the same text to one or more numbers."""

    sender: str
    message: str
    numbers: Sequence[str]
    num_parts: int
    custom: str | None = None
    receipt_url: str | None = None  # where to POST its receipts (loopback, checked before)

    @property
    def cost(self) -> int:
        """Credits: parts x recipients (assumed: docs/provider-api.md, "The /send/ command")."""
        return self.num_parts * len(self.numbers)


@dataclass(frozen=True)
class StoredBatch:
    """A batch as recorded, with its new ids."""

    batch_id: int
    message_ids: list[int]
    balance: int  # after this batch


class Store:
    """Thread-safe access to one outbox file (one connection, one lock)."""

    def __init__(
        self,
        path: str | Path,
        *,
        balance: int,
        clock: Callable[[], float] = time.time,
        receipts: Receipts | None = None,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._receipts = receipts if receipts is not None else Receipts()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only from the first byte: SQLite creates -wal/-shm with the file's mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        # The handler threads share this connection; the lock serialises them.
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        try:
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives a crash of this process (all a rehearsal needs);
            # skipping the fsync per request makes a 1M-message rehearsal ~3x faster.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            for name, kind in _ADDED_COLUMNS.items():
                if not _has_column(self._conn, name):
                    # An older outbox: add the column, keep everything in it.
                    self._conn.execute(f"ALTER TABLE messages ADD COLUMN {name} {kind}")
            self._conn.execute(_RECEIPT_INDEX)
            # First open only: a reopened outbox keeps its balance and counters.
            # `account` names this outbox as an imitation provider account: the journal keeps
            # each account's sends apart (docs/journal.md), and the outbox is the account
            # whatever port the sandbox listens on.
            self._conn.executemany(
                "INSERT OR IGNORE INTO state(key, value) VALUES (?, ?)",
                [
                    ("balance", balance),
                    ("next_message_id", FIRST_MESSAGE_ID),
                    ("next_batch_id", FIRST_BATCH_ID),
                    ("account", secrets.randbits(62)),
                ],
            )
            number = self._conn.execute("SELECT value FROM state WHERE key = 'account'").fetchone()[
                0
            ]
            self.account = f"sandbox:{number:016x}"
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One locked write transaction: all of a request's records commit together or none."""
        with self._lock:
            # IMMEDIATE takes the write lock now, so read-modify-write of the balance is safe
            # even against another process on the same file.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._conn, self._clock, self._receipts)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def outbox(
        self, *, include_test: bool = False, at: float | None = None
    ) -> list[dict[str, Any]]:
        """The outbox rows (see `read_outbox`), statuses as of `at` (default: the clock)."""
        with self._lock:
            return _outbox_rows(self._conn, include_test, self._clock() if at is None else at)


class Transaction:
    """Reads and writes inside `Store.transaction()`."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        clock: Callable[[], float] = time.time,
        receipts: Receipts | None = None,
    ) -> None:
        self._conn = conn
        self._clock = clock
        self._receipts = receipts if receipts is not None else Receipts()

    def balance(self) -> int:
        """Credits left."""
        return self._state("balance")

    def record(
        self, batches: Sequence[NewBatch], *, test: bool, scheduled_at: int | None = None
    ) -> list[StoredBatch]:
        """Allocate ids for `batches`, store them, and charge them unless `test`.

        With `scheduled_at` (unix seconds) they are stored as `scheduled` for that time; they
        are charged now, as credits are taken when a send is accepted. Each message's delivery
        fate is drawn now (receipts.py).
        """
        clock = self._clock()
        now = _iso(clock)
        if scheduled_at is None:
            status, later, due = "P", None, float(clock)
        else:
            status, later, due = SCHEDULED, _iso(scheduled_at), float(scheduled_at)
        batch_id = self._take("next_batch_id", len(batches))
        message_id = self._take("next_message_id", sum(len(b.numbers) for b in batches))
        balance = self.balance()
        stored, batch_rows, message_rows = [], [], []
        for batch in batches:  # a whole request at once: one executemany per table
            ids = list(range(message_id, message_id + len(batch.numbers)))
            message_id += len(ids)
            # Test mode: "your credit balance will be unaffected" (docs/provider-api.md,
            # "Test mode").
            if not test:
                balance -= batch.cost
            stored.append(StoredBatch(batch_id, ids, balance))
            batch_rows.append(
                (
                    batch_id,
                    batch.sender,
                    batch.custom,
                    len(ids),
                    batch.num_parts,
                    batch.cost,
                    int(test),
                    now,
                )
            )
            # Test messages are never "sent", so no receipt is ever posted for them.
            receipt = "due" if batch.receipt_url and not test else None
            for i, number in zip(ids, batch.numbers, strict=True):
                final, delay = self._receipts.fate(i, number)
                message_rows.append(
                    (
                        i,
                        batch_id,
                        number,
                        batch.message,
                        batch.sender,
                        batch.custom,
                        batch.num_parts,
                        int(test),
                        status,
                        now,
                        later,
                        due,
                        final,
                        due + delay,
                        batch.receipt_url,
                        receipt,
                    )
                )
            batch_id += 1
        self._conn.executemany(
            "INSERT INTO batches(id, sender, custom, num_messages, num_parts, cost, test,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            batch_rows,
        )
        self._conn.executemany(
            "INSERT INTO messages(id, batch_id, number, message, sender, custom, num_parts,"
            " test, status, created_at, scheduled_at, due_at, final_status, final_at,"
            " receipt_url, receipt_state)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            message_rows,
        )
        self._conn.execute("UPDATE state SET value = ? WHERE key = 'balance'", (balance,))
        return stored

    def message(self, message_id: int) -> sqlite3.Row | None:
        """A really-sent message by id."""
        row: sqlite3.Row | None = self._conn.execute(  # the connection's row_factory
            "SELECT * FROM messages WHERE id = ? AND test = 0", (message_id,)
        ).fetchone()
        return row

    def batch_messages(self, batch_id: int) -> list[sqlite3.Row]:
        """The really-sent messages of a batch, in id order."""
        return self._conn.execute(
            "SELECT * FROM messages WHERE batch_id = ? AND test = 0 ORDER BY id", (batch_id,)
        ).fetchall()

    def history(
        self,
        start: int,
        limit: int,
        *,
        newest_first: bool,
        min_time: int | None = None,
        max_time: int | None = None,
    ) -> tuple[int, list[sqlite3.Row]]:
        """Total count and one page of really-sent messages, optionally within unix times."""
        # created_at is ISO 8601 UTC at fixed width, so comparing text compares times.
        low = _iso(min_time) if min_time is not None else ""
        high = _iso(max_time) if max_time is not None else "9999"
        where = "test = 0 AND created_at >= ? AND created_at <= ?"
        total = self._conn.execute(
            f"SELECT count(*) FROM messages WHERE {where}", (low, high)
        ).fetchone()[0]
        order = "DESC" if newest_first else "ASC"
        rows = self._conn.execute(
            f"SELECT * FROM messages WHERE {where} ORDER BY id {order} LIMIT ? OFFSET ?",
            (low, high, limit, start),
        ).fetchall()
        return total, rows

    def due_receipts(self, now: float, *, limit: int) -> list[sqlite3.Row]:
        """Messages whose receipt is to be posted: final by `now`, oldest first."""
        return self._conn.execute(
            "SELECT id, number, custom, final_status, final_at, receipt_url FROM messages "
            "WHERE receipt_state = 'due' AND final_at <= ? ORDER BY final_at, id LIMIT ?",
            (now, limit),
        ).fetchall()

    def mark_receipt(self, message_id: int, state: str) -> None:
        """Record a receipt as posted ("sent") or given up ("failed")."""
        self._conn.execute(
            "UPDATE messages SET receipt_state = ? WHERE id = ?", (state, message_id)
        )

    def _state(self, key: str) -> int:
        value: int = self._conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()[
            0
        ]
        return value

    def _take(self, key: str, count: int) -> int:
        """Reserve `count` consecutive ids from counter `key`; the first one."""
        first = self._state(key)
        self._conn.execute("UPDATE state SET value = ? WHERE key = ?", (first + count, key))
        return first


def _iso(unix_time: float) -> str:
    """A unix time as ISO 8601 UTC to the second."""
    return datetime.fromtimestamp(unix_time, UTC).isoformat(timespec="seconds")


def read_outbox(
    path: str | Path, *, include_test: bool = False, at: float | None = None
) -> list[dict[str, Any]]:
    """Messages the sandbox accepted, oldest first (test-mode ones only if `include_test`).

    Each dict: id, batch_id (as text, like the client's ids), number, message, sender,
    custom, test, status (its delivery status at unix time `at`, default now: "scheduled",
    "P", or final D/U/E/I/?), created_at and scheduled_at (ISO 8601 UTC; scheduled_at None
    unless scheduled). A sandbox run with a test clock wants `at` from that clock.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no sandbox outbox here; send with --provider sandbox first")
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return _outbox_rows(conn, include_test, time.time() if at is None else at)
    finally:
        conn.close()


def _has_column(conn: sqlite3.Connection, name: str) -> bool:
    return any(row[1] == name for row in conn.execute("PRAGMA table_info(messages)"))


def _outbox_rows(conn: sqlite3.Connection, include_test: bool, at: float) -> list[dict[str, Any]]:
    where = "" if include_test else "WHERE test = 0"
    # read_outbox never writes, so an older outbox reads as never scheduled and final at once.
    fate = ", ".join(
        name if _has_column(conn, name) else f"NULL AS {name}" for name in _FATE_COLUMNS
    )
    rows = conn.execute(
        f"SELECT {_OUTBOX_COLUMNS}, {fate} FROM messages {where} ORDER BY id"
    ).fetchall()
    out = []
    for row in rows:
        item = dict(row)
        item["status"] = current_status(row, at)[0]
        for name in ("due_at", "final_status", "final_at"):
            del item[name]
        item.update(id=str(row["id"]), batch_id=str(row["batch_id"]), test=bool(row["test"]))
        out.append(item)
    return out


@dataclass(frozen=True)
class OutboxPurge:
    """What `purge_outbox` deleted (or, in a dry run, would delete)."""

    messages: int
    batches: int
    scrubbed: bool  # the file was compacted and its write-ahead log emptied


def purge_outbox(path: str | Path, before: datetime, *, dry_run: bool = False) -> OutboxPurge:
    """Delete messages accepted before `before` and the batches left empty, then VACUUM.

    `dry_run` only counts. After deleting, VACUUM rewrites the file and a checkpoint empties
    the -wal file, so the deleted numbers and texts are gone from disk, not merely unlinked.
    `scrubbed` is False when a running sandbox kept the log from being emptied: stop it and
    purge again to finish.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no sandbox outbox here; check --outbox")
    cutoff = before.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    except sqlite3.Error as exc:
        raise InputError(
            f"{path}: cannot open the sandbox outbox ({exc}); check --outbox"
        ) from None
    try:
        # Freed pages are zeroed as they go, belt and braces before VACUUM rewrites the file.
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("BEGIN IMMEDIATE")  # waits (timeout) for a running sandbox's request
        try:
            # created_at is ISO 8601; julianday() compares instants, whatever the text.
            messages = conn.execute(
                "DELETE FROM messages WHERE julianday(created_at) < julianday(?)", (cutoff,)
            ).rowcount
            batches = conn.execute(
                "DELETE FROM batches WHERE julianday(created_at) < julianday(?) "
                "AND id NOT IN (SELECT batch_id FROM messages)",
                (cutoff,),
            ).rowcount
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("ROLLBACK" if dry_run else "COMMIT")
        scrubbed = False
        if not dry_run:
            conn.execute("VACUUM")
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            scrubbed = not busy
    except sqlite3.Error as exc:
        raise InputError(
            f"{path}: cannot purge the sandbox outbox ({exc}); check --outbox, "
            "or stop the sandbox using it and rerun"
        ) from None
    finally:
        conn.close()
    return OutboxPurge(messages, batches, scrubbed)
