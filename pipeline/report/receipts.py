"""Push-mode delivery receipts: a small HTTP listener for the receipts Textlocal POSTs.

Textlocal POSTs one receipt per message to the send's `receipt_url`
(docs/provider-api.md, "Delivery receipts"): form fields `number` (wire digits), `status` (D,
U, P, I, E, ?), `customID` (the `custom` value sent with it) and `datetime`
(`YYYY-MM-DD HH:MM:SS`, taken as IST, an assumption).
`ReceiptListener` takes them on a stdlib `ThreadingHTTPServer` and hands each to a callback;
`record_in_journal()` is the callback that writes them into the send journal.

Exposing it: the listener binds 127.0.0.1 by default. Put a reverse proxy or a tunnel with
TLS in front of 127.0.0.1:PORT (nginx/Caddy `reverse_proxy`, cloudflared, ngrok ...) that
forwards `https://your-host/receipts` to it, ideally adding its own authentication (a secret
path segment, basic auth, an IP allow-list for Textlocal), then send with
`smsbatch send ... --receipt-url https://your-host/receipts`.

What correlation relies on: a receipt names no message id or batch id, and carries no
signature (the latter assumed). We match it by `customID` — `smsbatch-<run>-<chunk>`, set per
request by the journal — plus the number, to the journal row, and record its delivery under
that row's provider message id. Anyone who can reach the URL can forge a receipt, so keep the
listener on loopback behind a proxy that authenticates, and treat receipts as advisory: they
never change what was sent (the journal's `status`), only `delivery_status` / `delivered_at`;
`smsbatch status` can always ask the provider again.

Answers: 200 `OK` as soon as the receipt is handled, also for a receipt we cannot match
(logged with the number masked, and counted) — an error would only make the provider retry
it; 400 for a body without `number` or `status`; 500 if recording failed (retrying may help).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from pathlib import Path

from pipeline.clock import IST
from pipeline.errors import InputError
from pipeline.net.forms import read_form
from pipeline.net.servers import BackgroundServer, QuietHandler, QuietServer
from pipeline.statuses import DELIVERY_CODES

log = logging.getLogger(__name__)

# Textlocal's status codes (docs/provider-api.md, "Delivery status codes") as the journal's
# delivery_status names; the same names as the pull side (`smsbatch status`, delivery.py).
DELIVERY_STATUS = DELIVERY_CODES  # a receipt's status is a delivery code too
MAX_BODY = 64 * 1024  # a receipt is four short fields
BUSY_TIMEOUT = 5.0  # seconds to wait for a running send's journal transaction to commit
# journal.py's correlation id: smsbatch-<journal id>-<run>-<chunk> (the journal id was added
# later; the rows' own `custom` must still match it exactly).
_CUSTOM = re.compile(r"smsbatch-(?:[0-9a-f]{12}-)?(\d+)-(\d+)")


@dataclass(frozen=True)
class Receipt:
    """One delivery receipt as the provider sent it."""

    number: str  # wire digits ('919876543210')
    status: str  # D, U, P, I, E or ?, upper-cased
    custom: str | None  # the `customID` field: the `custom` value sent with the message
    at: str | None  # the `datetime` field, 'YYYY-MM-DD HH:MM:SS' IST


@dataclass(frozen=True)
class ListenerCounts:
    """What a listener has answered since it started."""

    received: int = 0  # receipts handed to the callback and handled (200)
    rejected: int = 0  # bodies without number or status (400)
    failed: int = 0  # receipts whose callback raised (500)


class ReceiptListener(BackgroundServer):
    """An HTTP server taking receipt POSTs on `path` and passing each to `on_receipt`.

    `on_receipt` runs on the request's thread (several may run at once); when it raises, the
    provider gets a 500 and may retry.
    """

    _httpd: _Server
    thread_name = "receipt-listener"

    def __init__(
        self,
        on_receipt: Callable[[Receipt], None],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/receipts",
    ) -> None:
        self.path = "/" + path.strip("/")
        try:
            self._httpd = _Server((host, port), _Handler)
        except OSError as exc:
            raise InputError(
                f"cannot receive receipts on {host}:{port} ({exc.strerror or exc}): pass "
                "another --listen port (0 picks a free one)"
            ) from None
        self._httpd.on_receipt = on_receipt
        self._httpd.receipt_path = self.path
        self._httpd.counts = {"received": 0, "rejected": 0, "failed": 0}
        self._httpd.lock = threading.Lock()
        super().__init__()

    @property
    def url(self) -> str:
        """Where to POST receipts, e.g. "http://127.0.0.1:8788/receipts"."""
        host, port = self._httpd.server_address[:2]
        assert isinstance(host, str)  # bound to a host given as str: its address is a str
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}{self.path}"

    @property
    def counts(self) -> ListenerCounts:
        """How many receipts were received, rejected and failed since start."""
        with self._httpd.lock:
            return ListenerCounts(**self._httpd.counts)


class _Server(QuietServer):
    label = "receipts"  # stop() waits for receipts being recorded
    on_receipt: Callable[[Receipt], None]
    receipt_path: str
    counts: dict[str, int]
    lock: threading.Lock

    def count(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1


class _Handler(QuietHandler):
    server: _Server
    server_version = "smsbatch-receipts/1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if urllib.parse.urlsplit(self.path).path != self.server.receipt_path:
            self._reply(HTTPStatus.NOT_FOUND)
        else:
            self._reply(HTTPStatus.METHOD_NOT_ALLOWED, headers={"Allow": "POST"})

    def do_POST(self) -> None:  # noqa: N802
        if urllib.parse.urlsplit(self.path).path != self.server.receipt_path:
            self._reply(HTTPStatus.NOT_FOUND)
            return
        fields = read_form(self, MAX_BODY)
        if fields is None:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return
        receipt = _receipt(fields)
        if receipt is None:
            self.server.count("rejected")
            self._reply(HTTPStatus.BAD_REQUEST, "a receipt needs the fields number and status")
            return
        try:
            self.server.on_receipt(receipt)
        except Exception as exc:  # noqa: BLE001 - the provider may retry; say what, no data
            self.server.count("failed")
            log.error("receipt for %s not recorded (%s)", _mask(receipt.number), type(exc).__name__)
            self._reply(HTTPStatus.INTERNAL_SERVER_ERROR)
            return
        self.server.count("received")
        self._reply(HTTPStatus.OK, "OK")

    def _reply(
        self, status: HTTPStatus, text: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        body = (text if text is not None else f"{status.value} {status.phrase}").encode() + b"\n"
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _receipt(fields: dict[str, str]) -> Receipt | None:
    """The receipt in a body's fields, or None without number or status."""
    number = fields.get("number", "").strip().lstrip("+")
    status = fields.get("status", "").strip().upper()
    if not number or not status:
        return None
    custom = fields.get("customid", "").strip() or None
    at = fields.get("datetime", "").strip() or None
    return Receipt(number=number, status=status, custom=custom, at=at)


def ist_to_iso(value: str | None) -> str | None:
    """'2026-11-26 15:29:52' (IST) -> '2026-11-26T15:29:52+05:30'; None if not such a date."""
    if not value:
        return None
    try:
        parsed = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:  # MySQL's zero date, an empty or garbled value
        return None
    return parsed.replace(tzinfo=IST).isoformat()


def _mask(number: str) -> str:
    from pipeline.sms.phones import mask

    return mask("+" + number if number.isdigit() else number)


class JournalRecorder:
    """The `on_receipt` callback of `record_in_journal`; counts what it matched."""

    def __init__(self, journal_path: str | Path) -> None:
        self.path = Path(journal_path)
        self._lock = threading.Lock()
        self.recorded = 0  # receipts recorded against a journal row
        self.unmatched = 0  # receipts no journal row matched (customID + number)
        self._check()

    def _check(self) -> None:
        """Fail now, not at the first receipt, for a file that is not a usable journal."""
        if not self.path.exists():
            # Listening may well start before the first send creates the journal.
            log.info("no journal at %s yet: receipts match once a send creates it", self.path)
            return
        try:
            db = self._connect()
            try:
                columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise InputError(
                f"{self.path}: not a readable send journal ({exc}); pass "
                "--journal with the journal the send used"
            ) from None
        if not {"custom", "provider_message_id", "delivery_status"} <= columns:
            raise InputError(
                f"{self.path}: this journal predates delivery receipts; run "
                "`smsbatch status` on its results once to upgrade it, then retry"
            )

    def _connect(self) -> sqlite3.Connection:
        # mode=rw: a receipt must never create an empty journal where the send's will be.
        db = sqlite3.connect(
            f"{self.path.absolute().as_uri()}?mode=rw",
            uri=True,
            timeout=BUSY_TIMEOUT,
            isolation_level=None,
            check_same_thread=False,
        )
        db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
        db.execute("PRAGMA synchronous=FULL")  # as the journal itself: a 200 is durable
        return db

    def __call__(self, receipt: Receipt) -> None:
        """Record `receipt`'s delivery status against its journal row."""
        found = _CUSTOM.fullmatch(receipt.custom or "")
        # No journal yet (no send has created it): nothing to match.
        matched = (
            self._record(int(found[1]), receipt)
            if (found is not None and self.path.is_file())
            else 0
        )
        with self._lock:
            if matched:
                self.recorded += 1
            else:
                self.unmatched += 1
        if not matched:
            log.warning(
                "receipt for %s (customID %r) matches no sent row in %s; ignored",
                _mask(receipt.number),
                (receipt.custom or "")[:64],
                self.path,
            )

    def _record(self, run_id: int, receipt: Receipt) -> int:
        """Write the receipt to the rows it matches; how many matched."""
        from pipeline.sending.journal import Journal

        # Not Journal.open(): it takes the journal's exclusive flock, which a running send
        # holds for its whole run, and receipts arrive while it sends. SQLite's own locking
        # (WAL, BEGIN IMMEDIATE, the busy timeout) keeps our one short transaction and the
        # send's apart: a receipt waits for a send's commit at most, it never blocks a run.
        db = self._connect()
        try:
            message_ids = [
                row[0]
                for row in db.execute(
                    "SELECT provider_message_id FROM messages WHERE run_id = ? AND custom = ? "
                    "AND number = ? AND provider_message_id IS NOT NULL",
                    (run_id, receipt.custom, "+" + receipt.number),
                )
            ]
            if message_ids:
                status = DELIVERY_STATUS.get(receipt.status, "unknown")
                at = ist_to_iso(receipt.at)
                # The journal's own update over this connection. The view is never closed
                # through Journal.close(), so its lock fd (-1: none held) is never touched.
                Journal(self.path, db, -1).record_delivery(
                    [(message_id, status, at) for message_id in message_ids]
                )
            return len(message_ids)
        finally:
            db.close()


def record_in_journal(journal_path: str | Path) -> JournalRecorder:
    """A callback for `ReceiptListener` that records each receipt in the send journal."""
    return JournalRecorder(journal_path)
