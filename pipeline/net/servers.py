"""The life of a loopback HTTP server: serve once, in the background or the foreground, and
stop cleanly. The sandbox provider and the receipt listener both run one.

Standard library only: the receipt listener must start without pandas.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

# The names of this machine that our plain-http traffic may use: the sandbox's receipt
# callbacks and a client's base URL (elsewhere the API key would cross a network in clear).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback_host(host: str | None) -> bool:
    """Whether `host` (a URL's hostname, brackets stripped) is one of LOOPBACK_HOSTS."""
    return (host or "").lower() in LOOPBACK_HOSTS


class QuietServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that says nothing a request holds: a failed request is one line
    on stderr, not the default traceback, which may quote a key, a message or a number.
    `label` starts that line."""

    daemon_threads = False  # so server_close() waits for each request to finish its work
    label = "server"

    def handle_error(self, request: Any, client_address: Any) -> None:
        failure = sys.exc_info()[0]
        assert failure is not None  # socketserver calls handle_error in its except clause
        sys.stderr.write(f"{self.label}: a request failed ({failure.__name__})\n")


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler with no request log (stderr; query strings may hold secrets) and a
    timeout, so a silent client cannot hold stop() forever."""

    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default request log."""


class BackgroundServer:
    """Serves `self._httpd` once: `start()` in a daemon thread or `serve_forever()` in the
    caller's; `stop()` (idempotent) waits for requests in flight. Subclasses set `_httpd`
    and may hook in with `_on_begin`, `_on_stopping` and `_on_closed`."""

    _httpd: ThreadingHTTPServer
    thread_name = "loopback-server"

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._serving = False
        self._stopped = False

    def start(self) -> Self:
        """Serve in a background thread; returns self."""
        self._begin()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=self.thread_name,
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the foreground until interrupted (for the CLI's server commands)."""
        self._begin()
        self._httpd.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        """Stop serving and wait for the requests being handled (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._on_stopping()
        if self._serving:
            self._httpd.shutdown()
        if self._thread is not None:
            self._thread.join()
        # With daemon_threads off this joins the handler threads: their work is finished.
        self._httpd.server_close()
        self._on_closed()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _begin(self) -> None:
        if self._serving or self._stopped:
            raise RuntimeError(f"a {type(self).__name__} serves once: create a new one")
        self._serving = True
        self._on_begin()

    def _on_begin(self) -> None:
        """Called once, just before serving starts."""

    def _on_stopping(self) -> None:
        """Called once when stop() begins, before the server shuts down."""

    def _on_closed(self) -> None:
        """Called once after the server and its request threads are done."""
