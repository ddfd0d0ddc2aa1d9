"""The shared loopback-server life cycle (net/servers.py): serve once, stop once, hooks in order."""

from __future__ import annotations

import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.net.servers import BackgroundServer


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = threading.current_thread().name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Probe(BackgroundServer):
    thread_name = "probe-server"

    def __init__(self) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
        self.events: list[str] = []
        super().__init__()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def _on_begin(self) -> None:
        self.events.append("begin")

    def _on_stopping(self) -> None:
        self.events.append("stopping")

    def _on_closed(self) -> None:
        self.events.append("closed")


def test_serves_in_the_background_and_stops_once_with_hooks_in_order() -> None:
    with _Probe() as server:
        assert [t.name for t in threading.enumerate()].count("probe-server") == 1
        with urllib.request.urlopen(server.url, timeout=5) as answer:
            assert answer.status == 200
        assert server.events == ["begin"]
    assert server.events == ["begin", "stopping", "closed"]
    server.stop()  # idempotent: no hook runs twice
    assert server.events == ["begin", "stopping", "closed"]
    assert "probe-server" not in [t.name for t in threading.enumerate()]


def test_a_server_serves_once() -> None:
    server = _Probe().start()
    with pytest.raises(RuntimeError, match="a _Probe serves once: create a new one"):
        server.start()
    server.stop()
    with pytest.raises(RuntimeError, match="serves once"):
        server.serve_forever()


def test_stopping_a_server_that_never_served_closes_it() -> None:
    server = _Probe()
    server.stop()
    assert server.events == ["stopping", "closed"]
    with pytest.raises(RuntimeError, match="serves once"):
        server.start()


def test_quiet_server_reports_a_failed_request_in_one_line_and_logs_no_requests(capfd):
    from pipeline.net.servers import QuietHandler, QuietServer

    class Server(QuietServer):
        label = "probe"

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path.startswith("/boom"):
                raise RuntimeError("secret-key-123 in the request")
            self.send_response(204)
            self.end_headers()

    class Probe(BackgroundServer):
        def __init__(self) -> None:
            self._httpd = Server(("127.0.0.1", 0), Handler)
            super().__init__()

    with Probe() as server:
        host, port = server._httpd.server_address[:2]
        with urllib.request.urlopen(f"http://{host}:{port}/fine?apikey=k", timeout=5) as ok:
            assert ok.status == 204
        with pytest.raises(OSError):  # the connection is dropped unanswered
            urllib.request.urlopen(f"http://{host}:{port}/boom?apikey=k", timeout=5)
    assert capfd.readouterr().err == "probe: a request failed (RuntimeError)\n"
