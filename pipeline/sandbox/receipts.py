"""Delivery in the sandbox: statuses that evolve with its clock, and receipt callbacks.

A message's fate is drawn once, when it is accepted, and stored with it (store.py):
its final status and the time it takes it. The draw is a seeded hash of the message id, so the
same outbox always tells the same story and tests are reproducible. Between acceptance and
that time the status is derived lazily from the sandbox's clock, never written back:

    scheduled  until its `schedule_time` (only messages accepted for later)
    P          from then (or from acceptance) until `settle_seconds` later
    D/U/E/I    after that, by the shares below (docs/provider-api.md, "Delivery status codes")
    ?          the unknown share stays P for `unknown_seconds`, then becomes "?" (no status
               came back from the network, as promotional traffic often does)

so a status read never writes, and moving a test clock moves every message at once. Numbers
in `invalid_numbers` are always I. Changing the shares of a reopened outbox changes only the
messages accepted from then on.

Receipt callbacks (docs/provider-api.md, "Delivery receipts"): a send with a `receipt_url`
has each message POSTed there once it reaches its final status, as form fields `number` (wire
digits), `status`, `customID` (the message's `custom`) and `datetime` (IST
`YYYY-MM-DD HH:MM:SS` of the status change), from one background thread started and stopped
with the server. A receipt counts as delivered on any 2xx answer; otherwise it is retried
`callback_attempts` times in all with doubling waits, then given up. The sandbox only calls
loopback URLs (http://127.0.0.1, localhost, [::1]): a rehearsal must not reach the internet,
so any other URL fails the send with the sandbox's own code 95 (Textlocal documents none).
Delivery is at least once: a receipt posted just before a crash is posted again by the
sandbox reopened on the same outbox.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.clock import IST
from pipeline.errors import InputError
from pipeline.net.servers import is_loopback_host

if TYPE_CHECKING:
    import sqlite3


class Store(Protocol):
    """What the receipt callbacks need of the outbox (store.Store): its write transaction.
    A Protocol, so this module and the store, which derives statuses from here, stay apart."""

    def transaction(self) -> AbstractContextManager[Any]: ...


BAD_RECEIPT_URL = 95  # the sandbox's own code: Textlocal documents no URL check
RECEIPT_ERRORS = {
    BAD_RECEIPT_URL: "Invalid receipt URL: the sandbox only calls back "
    "http://127.0.0.1, http://localhost or http://[::1]",
}
_SCALE = float(1 << 64)


@dataclass(frozen=True)
class Receipts:
    """How delivery unfolds in the sandbox, and how its receipt callbacks are posted.

    The five shares (D, U, E, I, ?) must add up to 1. `invalid_numbers` (any iterable of
    wire-form or E.164 numbers, kept as a frozenset of wire ones) are always I. `seed` changes
    which messages get which status, not the shares.
    """

    settle_seconds: float = 2.0  # P for this long, then D/U/E/I
    delivered: float = 0.85
    undelivered: float = 0.06
    expired: float = 0.03
    invalid: float = 0.02
    unknown: float = 0.04  # P for `unknown_seconds`, then "?"
    unknown_seconds: float = 30.0
    invalid_numbers: frozenset[str] = field(default_factory=frozenset)
    seed: str = "smsbatch-receipts"
    callback_timeout: float = 2.0  # seconds per receipt POST
    callback_attempts: int = 3  # POSTs per receipt at most, the first included
    callback_backoff: float = 0.5  # seconds before the 2nd POST; doubles for each further one

    def __post_init__(self) -> None:
        shares = self.shares()
        for code, share in shares.items():
            if (
                isinstance(share, bool)
                or not isinstance(share, int | float)
                or not (0 <= share <= 1)
            ):
                raise _invalid(f"the share of {code}", share, "a fraction from 0 to 1")
        if abs(sum(shares.values()) - 1) > 1e-9:
            raise _invalid(
                "the shares of D, U, E, I and ?",
                round(sum(shares.values()), 9),
                "fractions adding up to 1",
            )
        for name in ("settle_seconds", "unknown_seconds", "callback_backoff"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (0 <= value <= 7 * 86_400)
            ):
                raise _invalid(name, value, "a number of seconds from 0 to 604800")
        if (
            isinstance(self.callback_timeout, bool)
            or not isinstance(self.callback_timeout, int | float)
            or not 0 < self.callback_timeout <= 60
        ):
            raise _invalid("callback_timeout", self.callback_timeout, "seconds above 0, at most 60")
        if (
            isinstance(self.callback_attempts, bool)
            or not isinstance(self.callback_attempts, int)
            or self.callback_attempts < 1
        ):
            raise _invalid("callback_attempts", self.callback_attempts, "a whole number >= 1")
        numbers = frozenset(str(n).strip().lstrip("+") for n in self.invalid_numbers)
        object.__setattr__(self, "invalid_numbers", numbers)
        # Cumulative upper bounds of the draw, per status: fate() runs for every message.
        bound, cuts = 0.0, []
        for code, share in shares.items():
            bound += share
            cuts.append((bound, code, self.unknown_seconds if code == "?" else self.settle_seconds))
        object.__setattr__(self, "_cuts", tuple(cuts))

    def shares(self) -> dict[str, float]:
        """The final statuses and their shares."""
        return {
            "D": self.delivered,
            "U": self.undelivered,
            "E": self.expired,
            "I": self.invalid,
            "?": self.unknown,
        }

    def fate(self, message_id: int, number: str) -> tuple[str, float]:
        """The final status of a message and the seconds it stays P before taking it."""
        if number in self.invalid_numbers:
            return "I", self.settle_seconds
        digest = hashlib.blake2b(f"{self.seed}:{message_id}".encode(), digest_size=8).digest()
        draw = int.from_bytes(digest, "big") / _SCALE  # uniform in [0, 1)
        for bound, code, delay in self._cuts:  # type: ignore[attr-defined]
            if draw < bound:
                return code, delay
        return "D", self.settle_seconds  # only reachable through rounding of the shares


def current_status(row: sqlite3.Row | Mapping[str, Any], now: float) -> tuple[str, float]:
    """A stored message's status at unix time `now`, and the unix time it took that status."""
    final_status = row["final_status"]
    if final_status is None:  # an outbox from before receipts: it was final ("D") at once
        return row["status"], _unix(row["created_at"])
    if row["scheduled_at"] is not None and now < row["due_at"]:
        return row["status"], _unix(row["created_at"])  # "scheduled"
    if now < row["final_at"]:
        return "P", row["due_at"]
    return final_status, row["final_at"]


def ist(unix_time: float) -> str:
    """A unix time as Textlocal shows dates: IST "YYYY-MM-DD HH:MM:SS" (docs/provider-api.md,
    "Status of one message")."""
    return datetime.fromtimestamp(unix_time, IST).strftime("%Y-%m-%d %H:%M:%S")


def loopback_url(url: str) -> bool:
    """Whether the sandbox may call `url`: plain http to 127.0.0.1, localhost or [::1]."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    return parts.scheme == "http" and is_loopback_host(parts.hostname)


@dataclass(frozen=True)
class ReceiptCounts:
    """Receipt callbacks since the server started."""

    posted: int = 0  # answered 2xx
    retried: int = 0  # POSTs that failed and will be tried again
    given_up: int = 0  # receipts that failed `callback_attempts` times


class ReceiptCallbacks:
    """The background thread that POSTs due receipts; `start()` and `stop()` with the server."""

    def __init__(
        self, store: Store, receipts: Receipts, clock: Callable[[], float], *, poll: float = 0.05
    ) -> None:
        self._store = store
        self._receipts = receipts
        self._clock = clock
        self._poll = poll
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._current: http.client.HTTPConnection | None = None
        self._attempts: dict[int, int] = {}  # failed POSTs so far, per message id
        self._retry_at: dict[int, float] = {}  # monotonic time of the next POST
        self._counts = {"posted": 0, "retried": 0, "given_up": 0}
        self._thread: threading.Thread | None = None

    def counts(self) -> ReceiptCounts:
        """What was posted so far."""
        with self._lock:
            return ReceiptCounts(**self._counts)

    def start(self) -> None:
        """Start posting in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="sandbox-receipts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop promptly: a POST in flight is cut off and its receipt stays due."""
        self._stopping.set()
        with self._lock:
            connection = self._current
        if connection is not None and connection.sock is not None:
            try:  # wakes a read blocked on a slow listener at once
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                posted = self._tick()
            except Exception as exc:  # noqa: BLE001 - keep calling back; say so, no data
                sys.stderr.write(f"sandbox: receipt callbacks failed ({type(exc).__name__})\n")
                posted = False
            if not posted:
                self._stopping.wait(self._poll)

    def _tick(self) -> bool:
        """POST the receipts due now; whether any POST was made."""
        with self._store.transaction() as tx:
            due = tx.due_receipts(self._clock(), limit=500)
        ready = [row for row in due if self._retry_at.get(row["id"], 0.0) <= time.monotonic()]
        for row in ready:
            if self._stopping.is_set():
                break
            ok = self._post(row)
            if self._stopping.is_set():
                break  # cut off by stop(): the receipt stays due for the next start
            self._settle(row["id"], ok)
        return bool(ready)

    def _settle(self, message_id: int, ok: bool) -> None:
        """Record a POST's result: sent, tried again later, or given up."""
        if not ok:
            failures = self._attempts.get(message_id, 0) + 1
            if failures < self._receipts.callback_attempts:
                self._attempts[message_id] = failures
                wait = self._receipts.callback_backoff * 2 ** (failures - 1)
                self._retry_at[message_id] = time.monotonic() + wait
                self._count("retried")
                return
        self._attempts.pop(message_id, None)
        self._retry_at.pop(message_id, None)
        with self._store.transaction() as tx:
            tx.mark_receipt(message_id, "sent" if ok else "failed")
        self._count("posted" if ok else "given_up")

    def _post(self, row: Mapping[str, Any]) -> bool:
        """One receipt POST (docs/provider-api.md, "Delivery receipts"); True on a 2xx answer."""
        url = row["receipt_url"]
        if not loopback_url(url):  # checked on acceptance too; never leave the machine
            return False
        parts = urllib.parse.urlsplit(url)
        body = urllib.parse.urlencode(
            [
                ("number", row["number"]),
                ("status", row["final_status"]),
                ("customID", row["custom"] or ""),
                ("datetime", ist(row["final_at"])),
            ]
        )
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = http.client.HTTPConnection(
            parts.hostname, parts.port or 80, timeout=self._receipts.callback_timeout
        )
        with self._lock:
            self._current = connection
        try:
            connection.request(
                "POST",
                target,
                body=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "User-Agent": "smsbatch-sandbox/1",
                },
            )
            response = connection.getresponse()
            response.read()
            return 200 <= response.status < 300
        except (OSError, http.client.HTTPException):
            return False
        finally:
            with self._lock:
                self._current = None
            connection.close()

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1


def _unix(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _invalid(name: str, value: object, expected: str) -> InputError:
    return InputError(f"sandbox receipts: {name} is {value!r}; use {expected}")
