"""The API key appears nowhere but in the POST body (docs/contract.md, "Secrets and privacy").

The real CLI runs in a subprocess (`python -m pipeline -v ...`: DEBUG logging for every
library, tracebacks re-raised) against real loopback servers, in successful runs and in every
way a request can fail; then stdout, stderr and every file under the temp dir (workbook XML
parts unzipped, journal and outbox SQLite files with their -wal) are scanned for the key.
In-process, the client's exceptions are walked for it: message, args, attributes, chained
exceptions and the locals of our frames in their tracebacks.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import traceback
import urllib.parse
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from pipeline.errors import NotSentError, OutcomeUnknown, ProviderError, SmsBatchError
from pipeline.privacy import mask_text
from pipeline.providers.textlocal.client import Outgoing, RateLimited, TextlocalClient
from pipeline.sandbox.server import Faults, SandboxServer

REPO = Path(__file__).resolve().parents[2]
PIPELINE = REPO / "pipeline"
# Textlocal keys are base64-like: '+', '/' and '=' make the URL-encoded form differ from the
# raw one. Every form contains SENTINEL, so scanning for SENTINEL finds either.
SENTINEL = "SENTINEL-0f9e8d7c6b5a"
KEY = SENTINEL + "+k/y="
NEEDLE = SENTINEL.encode()
OTHER_KEY = "another-valid-key-1234"
# Run the CLI with a short client timeout, so a hanging provider costs a second, not 60.
SHORT_TIMEOUT = (
    "import runpy, pipeline.providers.textlocal.client as t; "
    "t.DEFAULT_TIMEOUT = (2.0, 0.5); "
    "runpy.run_module('pipeline', run_name='__main__', alter_sys=True)"
)


# -- scanning -----------------------------------------------------------------------------


def files_with_key(root: Path) -> list[str]:
    """Every file (or workbook part) under `root` whose bytes contain the key."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if NEEDLE in data:
            found.append(str(path.relative_to(root)))
        if data[:2] == b"PK":  # xlsx parts are deflated: read each one
            with zipfile.ZipFile(path) as book:
                found += [
                    f"{path.relative_to(root)}!{name}"
                    for name in book.namelist()
                    if NEEDLE in book.read(name)
                ]
    return found


def test_the_scan_finds_the_key_where_it_is(tmp_path):
    (tmp_path / "plain.sqlite").write_bytes(b"SQLite format 3\0..." + KEY.encode())
    with zipfile.ZipFile(tmp_path / "book.xlsx", "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("xl/worksheets/sheet1.xml", f"<c><v>{KEY}</v></c>" * 50)
    (tmp_path / "clean.txt").write_text("nothing here")
    assert files_with_key(tmp_path) == ["book.xlsx!xl/worksheets/sheet1.xml", "plain.sqlite"]


# -- servers --------------------------------------------------------------------------------


@dataclass
class Recorder:
    """A loopback HTTP server answering every POST the same way and recording each request."""

    status: int
    reply: bytes
    seen: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@contextmanager
def recorder(status: int, reply: bytes) -> Iterator[Recorder]:
    record = Recorder(status, reply)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            record.seen.append((self.path, dict(self.headers), body))
            self.send_response(record.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(record.reply)))
            self.end_headers()
            self.wfile.write(record.reply)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


ECHO_FAILURE = json.dumps(
    {
        "status": "failure",
        "errors": [
            {"code": 3, "message": f"Invalid login details for {KEY} ({urllib.parse.quote(KEY)})"}
        ],
    }
)
REPLIES = {
    # A wrong base URL or an IP-restricted key: 4xx, with the key echoed in the body.
    "http_403": (403, f"forbidden: apikey={KEY}".encode()),
    # A provider quoting the key back in its error message: the client must scrub it.
    "echo_failure": (200, ECHO_FAILURE.encode()),
    # A proxy's HTML page quoting the request.
    "not_json": (200, f"<html>apikey={KEY}</html>".encode()),
}


# -- the CLI, in a subprocess -------------------------------------------------------------


def cli(cwd: Path, *args: str, short_timeout: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTLOCAL_")}
    env["TEXTLOCAL_API_KEY"] = KEY
    start = (
        [sys.executable, "-c", SHORT_TIMEOUT]
        if short_timeout
        else [sys.executable, "-m", "pipeline"]
    )
    return subprocess.run(
        [*start, "-v", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def send(cwd: Path, url: str, *extra: str, short_timeout: bool = False):
    return cli(
        cwd,
        "send",
        "input/contacts.xlsx",
        "-t",
        "input/template.txt",
        "--provider",
        "textlocal",
        "--base-url",
        url,
        "--sender",
        "ACMEST",
        "--yes",
        "--journal",
        "out/journal.sqlite",
        "--out",
        "out/results.xlsx",
        *extra,
        short_timeout=short_timeout,
    )


def assert_key_nowhere(proc: subprocess.CompletedProcess, root: Path) -> None:
    assert SENTINEL not in proc.stdout
    assert SENTINEL not in proc.stderr
    assert files_with_key(root) == []


@pytest.fixture
def workdir(tmp_path):
    shutil.copytree(REPO / "input", tmp_path / "input")
    (tmp_path / "out").mkdir()  # --out names a folder that exists
    return tmp_path


def results_statuses(workdir: Path) -> dict[str, int]:
    from pipeline.report.workbook import read_results

    return read_results(workdir / "out" / "results.xlsx")["status"].value_counts().to_dict()


SKIPPED = {"invalid_number": 5, "duplicate": 1, "missing_field": 1}

# (sandbox faults, client timeout short?, expected exit code, statuses of the 32 sendable rows)
SANDBOX_CASES = {
    "success": (None, False, 0, "sent"),
    "http_500": (Faults(error_every=1), False, 0, "unknown"),
    "http_503_recorded": (
        Faults(error_every=1, error_status=503, error_records=True),
        False,
        0,
        "unknown",
    ),
    "http_429": (Faults(rate_limit_every=1, retry_after=0.01), False, 0, "failed"),
    "dropped_connection": (Faults(drop_every=1), False, 0, "unknown"),
    "read_timeout": (Faults(hang_every=1, hang_seconds=5), True, 0, "unknown"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(SANDBOX_CASES))
def test_send_against_the_sandbox_never_shows_the_key(workdir, case):
    faults, short_timeout, code, status = SANDBOX_CASES[case]
    with SandboxServer(workdir / "sandbox" / "outbox.sqlite", api_key=KEY, faults=faults) as server:
        proc = send(workdir, server.url, "--chunk-size", "16", short_timeout=short_timeout)
        assert files_with_key(workdir) == []  # the outbox's -wal too, while it is open
    assert proc.returncode == code, proc.stderr
    assert "DEBUG urllib3.connectionpool" in proc.stderr  # -v really logs every library
    assert_key_nowhere(proc, workdir)
    assert results_statuses(workdir) == {status: 32, **SKIPPED}


@pytest.mark.slow
def test_status_and_reconcile_never_show_the_key(workdir):
    with SandboxServer(
        workdir / "sandbox" / "outbox.sqlite", api_key=KEY, faults=Faults(drop_every=2)
    ) as server:
        sent = send(workdir, server.url, "--chunk-size", "16")
        settled = cli(
            workdir,
            "reconcile",
            "--provider",
            "textlocal",
            "--base-url",
            server.url,
            "--journal",
            "out/journal.sqlite",
            "--settle",
            "0",
        )
        status = cli(
            workdir,
            "status",
            "out/results.xlsx",
            "--provider",
            "textlocal",
            "--base-url",
            server.url,
            "--journal",
            "out/journal.sqlite",
        )
    assert (sent.returncode, settled.returncode, status.returncode) == (0, 0, 0)
    assert "16 sent, 0 not sent" in settled.stdout
    for proc in (sent, settled, status):
        assert_key_nowhere(proc, workdir)


@pytest.mark.slow
def test_a_bad_key_never_shows_the_key(workdir):
    with SandboxServer(workdir / "sandbox" / "outbox.sqlite", api_key=OTHER_KEY) as server:
        sent = send(workdir, server.url)
        balance = cli(workdir, "balance", "--provider", "textlocal", "--base-url", server.url)
    assert sent.returncode == 3
    assert "Textlocal error 3: Invalid login details" in sent.stderr
    assert balance.returncode == 1  # -v re-raises: Python prints the traceback
    assert "Traceback (most recent call last)" in balance.stderr
    assert "ProviderError: Textlocal error 3: Invalid login details" in balance.stderr
    assert_key_nowhere(sent, workdir)
    assert_key_nowhere(balance, workdir)


@pytest.mark.slow
@pytest.mark.parametrize("test_mode", [False, True], ids=["balance_first", "bulk_json"])
def test_connection_refused_never_shows_the_key(workdir, test_mode):
    url = closed_port_url()
    # --test skips the balance check, so bulk_json itself meets the refusal (and is retried).
    sent = send(workdir, url, *(["--test"] if test_mode else []))
    balance = cli(workdir, "balance", "--provider", "textlocal", "--base-url", url)
    assert sent.returncode == (0 if test_mode else 3)
    assert "Connection refused" in sent.stderr or "Connection refused" in sent.stdout
    assert results_statuses(workdir) == {"failed": 32, **SKIPPED}
    assert balance.returncode == 1
    assert "NotSentError: could not reach Textlocal /balance/" in balance.stderr
    assert_key_nowhere(sent, workdir)
    assert_key_nowhere(balance, workdir)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "test_code", "error"),
    [
        ("http_403", 3, "ProviderError: Textlocal /balance/ answered HTTP 403 Forbidden"),
        (
            "echo_failure",
            3,
            "ProviderError: Textlocal error 3: Invalid login details for *** (***). Check",
        ),
        ("not_json", 0, "OutcomeUnknown: Textlocal /balance/ answered HTTP 200 OK with a body"),
    ],
)
def test_a_server_quoting_the_key_back_never_gets_it_shown(workdir, case, test_code, error):
    with recorder(*REPLIES[case]) as server:
        sent = send(workdir, server.url)
        tested = send(workdir, server.url, "--test", "--journal", "out/test-journal.sqlite")
        balance = cli(workdir, "balance", "--provider", "textlocal", "--base-url", server.url)
    assert (sent.returncode, tested.returncode, balance.returncode) == (3, test_code, 1)
    assert error in balance.stderr
    for proc in (sent, tested, balance):
        assert_key_nowhere(proc, workdir)
    # The key did travel, in the POST body only: never in the path or a header.
    paths = [path for path, _, _ in server.seen]
    assert paths == ["/balance/", "/bulk_json/", "/balance/"]
    for path, headers, body in server.seen:
        assert SENTINEL not in path and SENTINEL not in json.dumps(headers)
        assert urllib.parse.quote(KEY, safe="").encode() in body


# -- the client's exceptions, in process ----------------------------------------------------


def reachable(error: BaseException) -> Iterator[object]:
    """Everything an exception handler, logger or traceback printer could get at."""
    seen: set[int] = set()
    stack: list[object] = [error]
    while stack:
        item = stack.pop()
        if id(item) in seen or item is None:
            continue
        seen.add(id(item))
        yield item
        if isinstance(item, BaseException):
            stack += [*item.args, item.__cause__, item.__context__, *vars(item).values()]
            tb = item.__traceback__
            while tb is not None:
                if Path(tb.tb_frame.f_code.co_filename).is_relative_to(PIPELINE):
                    stack += list(tb.tb_frame.f_locals.values())
                tb = tb.tb_next


def assert_exception_is_clean(error: BaseException) -> None:
    assert error.__cause__ is None and error.__context__ is None
    assert SENTINEL not in "".join(traceback.format_exception(error))
    for item in reachable(error):
        assert not isinstance(item, requests.RequestException | requests.PreparedRequest)
        if not isinstance(item, TextlocalClient):  # our client holds the key, by design
            assert SENTINEL not in repr(item), type(item)
            assert SENTINEL not in str(item), type(item)


def test_the_client_keeps_the_key_out_of_its_repr():
    with TextlocalClient(KEY, "http://127.0.0.1:9/") as client:
        assert SENTINEL not in repr(client) and SENTINEL not in str(client)


CALLS = {
    "balance": lambda c: c.balance(),
    "send_bulk": lambda c: c.send_bulk([Outgoing("919876543210", "Hi")], sender="ACMEST"),
    "status_message": lambda c: c.status_message("1151346216"),
    "history": lambda c: c.history(),
}
FAILURES = {
    # failure: (the error a read call gets, the error send_bulk gets; None: the fault
    # only hits sending requests)
    "refused": (NotSentError, NotSentError),
    "http_403": (ProviderError, ProviderError),
    "echo_failure": (ProviderError, ProviderError),
    "not_json": (OutcomeUnknown, OutcomeUnknown),
    "bad_key": (ProviderError, ProviderError),
    "http_500": (None, OutcomeUnknown),
    "http_429": (None, RateLimited),
    "dropped_connection": (None, OutcomeUnknown),
    "read_timeout": (None, OutcomeUnknown),
}
SANDBOX_FAULTS = {
    "http_500": Faults(error_every=1),
    "http_429": Faults(rate_limit_every=1),
    "dropped_connection": Faults(drop_every=1),
    "read_timeout": Faults(hang_every=1, hang_seconds=3),
    "bad_key": None,
}


@contextmanager
def failing_url(case: str, tmp_path: Path) -> Iterator[str]:
    if case == "refused":
        yield closed_port_url()
    elif case in REPLIES:
        with recorder(*REPLIES[case]) as server:
            yield server.url
    else:
        key = OTHER_KEY if case == "bad_key" else KEY
        with SandboxServer(
            tmp_path / "outbox.sqlite", api_key=key, faults=SANDBOX_FAULTS[case]
        ) as server:
            yield server.url


@pytest.mark.parametrize(
    ("case", "call", "expected"),
    [
        # slow (~0.5 s): a `recorder` waits out its poll to stop; a read times out after 0.5 s
        pytest.param(
            case,
            call,
            errors[call == "send_bulk"],
            marks=[pytest.mark.slow] if case in REPLIES or case == "read_timeout" else [],
        )
        for case, errors in sorted(FAILURES.items())
        for call in sorted(CALLS)
        if errors[call == "send_bulk"] is not None
    ],
)
def test_client_errors_hold_no_trace_of_the_key(tmp_path, caplog, case, call, expected):
    caplog.set_level(logging.DEBUG)
    with failing_url(case, tmp_path) as url, TextlocalClient(KEY, url, timeout=(2, 0.5)) as client:
        with pytest.raises(SmsBatchError) as info:
            CALLS[call](client)
    assert type(info.value) is expected
    assert_exception_is_clean(info.value)
    assert caplog.records  # urllib3 logged the request at DEBUG ...
    assert SENTINEL not in caplog.text  # ... without the key


def test_the_log_filter_masks_the_key_if_anything_ever_logs_it(monkeypatch):
    monkeypatch.setenv("TEXTLOCAL_API_KEY", KEY)
    from pipeline.privacy import current_secrets

    lower_hex = re.sub(
        "%[0-9A-F]{2}", lambda m: m.group().lower(), urllib.parse.quote(KEY, safe="")
    )
    forms = [
        KEY,
        urllib.parse.quote(KEY),
        urllib.parse.quote(KEY, safe=""),
        urllib.parse.quote_plus(KEY),
        lower_hex,
    ]
    assert mask_text(" / ".join(forms), current_secrets()) == " / ".join(["***"] * 5)
