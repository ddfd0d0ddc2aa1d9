"""A real loopback HTTP server speaking Textlocal's API, for rehearsals and end-to-end tests.

Plain `http.server` (no framework) on 127.0.0.1. The commands themselves (validation, JSON
envelopes, what gets recorded) live in api.py, the SQLite outbox in store.py;
this module is the HTTP side: sockets, form parsing, and the fault switches of
faults.py. Delivery statuses and receipt callbacks are receipts.py; their
thread runs while the server does. Without faults every answer is HTTP 200; what a request
records commits in one transaction before the reply, so a client never sees "success" for a
message the outbox does not have.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

from pipeline.errors import InputError
from pipeline.net.forms import lower_keys, read_form
from pipeline.net.servers import BackgroundServer, QuietHandler, QuietServer
from pipeline.sandbox.api import SENDING_COMMANDS, SandboxApi
from pipeline.sandbox.faults import (
    DROP,
    ERROR,
    HANG,
    RATE_LIMIT,
    Echo,
    FaultCounts,
    FaultInjector,
    Faults,
)
from pipeline.sandbox.receipts import ReceiptCallbacks, ReceiptCounts, Receipts
from pipeline.sandbox.rules import Rules, Template
from pipeline.sandbox.store import Store, read_outbox
from pipeline.sms.window import DEFAULT_WINDOW, Window

__all__ = ["FaultCounts", "Faults", "ReceiptCounts", "Receipts", "SandboxServer", "read_outbox"]

MAX_BODY = 32 * 1024 * 1024  # 500 long unicode messages, double-encoded, are ~3 MB
# Textlocal always enforces promotional hours (docs/provider-api.md, "Promotional hours"), so
# a rehearsal does too by default, with the same window our own pre-send check assumes
# (sms/window.py); None turns it off.
DEFAULT_PROMO_WINDOW = Window.parse(DEFAULT_WINDOW)


class SandboxServer(BackgroundServer):
    """Textlocal's API on a loopback port, recording accepted messages in `outbox`.

    `faults` (faults.py) makes it slow, throttling, failing or silent; assign
    `server.faults` to change them while it runs. `clock` gives the unix time recorded with
    each message and the "now" of the India rules (tests pass a fixed one).

    The India rules (rules.py): `promo_window` limits 6-digit (promotional) headers
    to its hours, IST (default 10:00-21:00, as Textlocal enforces; None: never);
    `dlt_templates` (each with `.id` and `.text`) are the registered DLT templates every text
    must match (None: no check); `optouts` lists the numbers a request with `optouts=true`
    skips.

    `receipts` (receipts.py) sets how delivery unfolds with `clock`: P for
    `settle_seconds`, then mostly D, some U/E/I/?; and how receipts are POSTed to a send's
    loopback `receipt_url` once a message is final.

    It serves once (net/servers.py): `start()` or `with`, or `serve_forever()`; `stop()` wakes
    requests held by a fault, waits for those in flight and closes the outbox.
    """

    thread_name = "textlocal-sandbox"

    def __init__(
        self,
        outbox: str | Path,
        *,
        api_key: str | None = None,
        balance: int = 10_000,
        host: str = "127.0.0.1",
        port: int = 0,
        senders: Sequence[str] | None = None,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.time,
        promo_window: Window | None = DEFAULT_PROMO_WINDOW,
        dlt_templates: Sequence[Template] | None = None,
        optouts: Iterable[str] | None = None,
        receipts: Receipts | None = None,
    ) -> None:
        self.outbox_path = Path(outbox)
        rules = Rules(promo_window, dlt_templates, optouts)  # InputError for a bad opt-out
        # `balance` only seeds a new outbox; a reopened one keeps its own (store.py).
        try:
            self.receipts = receipts if receipts is not None else Receipts()
            self._store = Store(outbox, balance=balance, clock=clock, receipts=self.receipts)
        except (OSError, sqlite3.Error) as exc:
            raise InputError(
                f"cannot open the sandbox outbox {outbox} ({exc}): pass --outbox with a "
                "writable .sqlite path"
            ) from None
        try:
            self._httpd = _Server((host, port), _Handler)
        except OSError as exc:
            self._store.close()
            raise InputError(
                f"the sandbox cannot listen on {host}:{port} ({exc.strerror or exc}): "
                "pass another --port (0 picks a free one)"
            ) from None
        self._httpd.api = SandboxApi(self._store, api_key, senders, rules, clock)
        self._httpd.injector = self._injector = FaultInjector(faults)
        self._callbacks = ReceiptCallbacks(self._store, self.receipts, clock)
        super().__init__()

    @property
    def url(self) -> str:
        """Base URL to give the client, e.g. "http://127.0.0.1:8787/"."""
        host, port = self._httpd.server_address[:2]
        assert isinstance(host, str)  # bound to a host given as str: its address is a str
        return f"http://{host}:{port}/"

    @property
    def account(self) -> str:
        """This sandbox's imitation account: its outbox's id, the same on every port."""
        return self._store.account

    @property
    def faults(self) -> Faults:
        """The faults in force (no faults by default)."""
        return self._injector.faults

    @faults.setter
    def faults(self, faults: Faults | None) -> None:
        # Restarts the "every k-th" counter: a new phase counts from its first request.
        self._injector.faults = faults

    @property
    def fault_counts(self) -> FaultCounts:
        """How many sending requests were seen and how many got each fault, since start."""
        return self._injector.counts()

    @property
    def receipt_counts(self) -> ReceiptCounts:
        """How many receipt callbacks were posted, retried and given up, since start."""
        return self._callbacks.counts()

    def outbox(
        self, *, include_test: bool = False, at: float | None = None
    ) -> list[dict[str, Any]]:
        """The messages accepted so far (see `read_outbox`), statuses as of `clock`."""
        return self._store.outbox(include_test=include_test, at=at)

    def _on_begin(self) -> None:
        self._callbacks.start()

    def _on_stopping(self) -> None:
        # Requests waiting out a latency or a hang fault wake up; a hanging one is closed
        # unanswered (its messages are already recorded).
        self._injector.stopping.set()

    def _on_closed(self) -> None:
        # server_close() joined the handler threads: their records are committed. A receipt
        # POST in flight is cut off; its receipt stays due for the next sandbox on this outbox.
        self._callbacks.stop()
        self._store.close()


class _Server(QuietServer):
    label = "sandbox"  # server_close() waits for each request to commit and reply
    api: SandboxApi
    injector: FaultInjector


class _Handler(QuietHandler):
    server: _Server
    server_version = "smsbatch-sandbox/1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer({})

    def do_POST(self) -> None:  # noqa: N802
        fields = read_form(self, MAX_BODY)
        if fields is None:
            self.send_error(413)
            return
        self._answer(fields)

    def _answer(self, fields: dict[str, str]) -> None:
        """Dispatch GET query + POST fields (POST wins), play the faults, write the reply."""
        parts = urllib.parse.urlsplit(self.path)
        params = lower_keys(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        params.update(fields)
        command = parts.path.strip("/")
        injector = self.server.injector
        if command in SENDING_COMMANDS:
            faults, fault = injector.next_sending()
        else:
            faults, fault = injector.faults, None
        injector.wait(faults.latency)
        places = faults.echo_key
        assert isinstance(places, tuple)  # Faults.__post_init__ makes it a tuple
        echo = Echo(places, params.get("apikey", ""))
        if fault == RATE_LIMIT:
            # Turned away before any work, as a throttling gateway does: nothing recorded.
            self._reply(
                HTTPStatus.TOO_MANY_REQUESTS,
                {"Retry-After": echo.retry_after(faults.retry_after_header)},
                echo=echo,
            )
            return
        if fault == ERROR and not faults.error_records:
            self._reply(HTTPStatus(faults.error_status), echo=echo)
            return
        refusal = echo.failure() if fault is None and command in SENDING_COMMANDS else None
        if refusal is not None:
            self._reply(HTTPStatus.OK, body=json.dumps(refusal).encode(), echo=echo)
            return
        try:
            body, status = self.server.api.handle(command, params), HTTPStatus.OK
        except Exception as exc:  # a sandbox bug: say so without quoting the request
            body = {"errors": [{"code": 0, "message": type(exc).__name__}], "status": "failure"}
            status = HTTPStatus.INTERNAL_SERVER_ERROR
        if fault == ERROR:  # recorded, yet the client hears only the 5xx
            self._reply(HTTPStatus(faults.error_status), echo=echo)
            return
        if fault == DROP:
            # Recorded and committed; closing without a byte makes the client see the
            # connection end (RemoteDisconnected): the outcome it cannot know.
            self.close_connection = True
            return
        if fault == HANG and injector.wait(faults.hang_seconds):
            self.close_connection = True  # stop() woke us: leave unanswered
            return
        self._reply(status, body=json.dumps(echo.body(body)).encode(), echo=echo)

    def _reply(
        self,
        status: HTTPStatus,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        echo: Echo | None = None,
    ) -> None:
        """Write a response: JSON `body`, or a one-line text naming the status."""
        content_type = "application/json"
        if body is None:
            body, content_type = f"{status.value} {status.phrase}\n".encode(), "text/plain"
        try:
            self.send_response(status, echo.reason(status) if echo is not None else None)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (its read timeout after a hang): nothing to tell it.
            self.close_connection = True
