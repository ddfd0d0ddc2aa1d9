"""A provider (or a proxy) that quotes the API key back never gets it shown or stored.

Textlocal, a gateway or a proxy in front of it may echo the key it was sent: in the reason
phrase, an error text, JSON member names or values, a Retry-After header; raw, URL-encoded or
case-folded. The client scrubs all of it where answers come in, so nothing downstream (errors,
results, the journal, the workbook) can carry it. First in process against `responses`, then
end to end: the real CLI sends to a sandbox playing each echo (`Faults.echo_key`), and stdout,
stderr, the results workbook's XML and the journal's files are searched for the key in any
case and encoding.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import traceback
import urllib.parse
import zipfile
from pathlib import Path

import pytest
import requests
import responses

from pipeline.errors import OutcomeUnknown, ProviderError, SmsBatchError
from pipeline.privacy import current_secrets, mask_text
from pipeline.providers.textlocal.answers import scrub_json
from pipeline.providers.textlocal.client import (
    DEFAULT_BASE_URL,
    Outgoing,
    RateLimited,
    TextlocalClient,
)
from pipeline.sandbox.server import Faults, SandboxServer
from tests.hardening.test_secrets import reachable

REPO = Path(__file__).resolve().parents[2]
# Mixed case and URL-special characters, so raw, encoded and case-folded echoes all differ.
# Every form of the key contains CORE in some case: a case-insensitive search for it finds any.
CORE = "EchoSentinel7c3fA9b2"
KEY = CORE + "+q/Z="
ENCODED = urllib.parse.quote(KEY, safe="")  # EchoSentinel7c3fA9b2%2Bq%2FZ%3D
EVERY_BYTE_ENCODED = "".join(f"%{byte:02x}" for byte in KEY.encode())  # %45%63...
FORMS = {
    "raw": KEY,
    "url-encoded": ENCODED,
    "upper": KEY.upper(),
    "lower": KEY.lower(),
    "upper-encoded": ENCODED.upper(),
    "every-byte-encoded": EVERY_BYTE_ENCODED,
}
BULK = DEFAULT_BASE_URL + "bulk_json/"
BALANCE = DEFAULT_BASE_URL + "balance/"
HISTORY = DEFAULT_BASE_URL + "get_history_api/"
STATUS = DEFAULT_BASE_URL + "status_message/"
NUMBER = "919876543210"


def holds_key(data: str | bytes) -> bool:
    """Whether `data` contains the key in any case, raw or URL-encoded."""
    text = (data.decode("utf-8", "replace") if isinstance(data, bytes) else data).lower()
    return CORE.lower() in text or EVERY_BYTE_ENCODED.lower() in text


def test_holds_key_sees_every_form():
    for form in FORMS.values():
        assert holds_key(f"x {form} y") and holds_key(form.encode())
    assert not holds_key("EchoSentinel7c3f *** %45%63")


def assert_clean(error: BaseException) -> None:
    """Nothing a handler, logger or traceback printer gets from `error` holds the key."""
    assert error.__cause__ is None and error.__context__ is None
    assert not holds_key("".join(traceback.format_exception(error)))
    for item in reachable(error):
        assert not isinstance(item, requests.RequestException | requests.PreparedRequest)
        if not isinstance(item, TextlocalClient | requests.Response):  # they hold it by design
            assert not holds_key(repr(item)), type(item)
            assert not holds_key(str(item)), type(item)


class Reason(responses.Response):
    """A faked answer with its own HTTP reason phrase (responses uses the standard one)."""

    def __init__(self, *args: object, reason: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.reason = reason

    def get_response(self, request: requests.PreparedRequest):
        response = super().get_response(request)
        response.reason = self.reason
        return response


@pytest.fixture
def api_key():
    return KEY


@pytest.fixture
def base_url():
    return DEFAULT_BASE_URL


def send_one(client: TextlocalClient):
    return client.send_bulk([Outgoing(NUMBER, "hi")], sender="ABCDEF")


# -- the reason phrase --------------------------------------------------------------------

REASON_ANSWERS = {
    # status, body, the error it makes
    "http_403": (403, "{}", ProviderError),
    "http_500": (500, "{}", OutcomeUnknown),
    "http_429": (429, "", RateLimited),
    "not_json": (200, "<html>proxy</html>", OutcomeUnknown),
    "unexpected_json": (200, '{"status": "queued"}', OutcomeUnknown),
}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("answer", sorted(REASON_ANSWERS))
def test_a_reason_phrase_quoting_the_key_is_scrubbed(rsps, client, answer, form):
    status, body, expected = REASON_ANSWERS[answer]
    rsps.add(Reason("POST", BULK, status=status, body=body, reason=f"Denied {FORMS[form]} here"))
    with pytest.raises(SmsBatchError) as info:
        send_one(client)
    assert type(info.value) is expected
    assert f"HTTP {status} Denied *** here" in str(info.value)
    assert_clean(info.value)


def test_a_reason_phrase_is_scrubbed_for_read_calls_too(rsps, client):
    rsps.add(Reason("POST", BALANCE, status=502, body="", reason=f"Bad Gateway {ENCODED}"))
    with pytest.raises(OutcomeUnknown) as info:
        client.balance()
    assert str(info.value).startswith("Textlocal /balance/ answered HTTP 502 Bad Gateway ***: ")
    assert_clean(info.value)


# -- error texts ----------------------------------------------------------------------------


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_failure_error_text_quoting_the_key_is_scrubbed(rsps, client, form):
    rsps.post(
        BULK,
        json={
            "errors": [{"code": 3, "message": f"Invalid login {FORMS[form]}"}],
            "status": "failure",
        },
    )
    with pytest.raises(ProviderError) as info:
        send_one(client)
    assert str(info.value).startswith("Textlocal error 3: Invalid login ***. Check")
    assert_clean(info.value)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_refusal_text_quoting_the_key_is_scrubbed(rsps, client, form):
    rsps.post(
        BULK,
        json={
            "messages": [],
            "messages_not_sent": [
                {
                    "number": NUMBER,
                    "message": "hi",
                    "error": {"code": 32, "message": f"Invalid number for {FORMS[form]}"},
                }
            ],
            "status": "success",
        },
    )
    got = send_one(client)
    assert got.refused[NUMBER].message == "Invalid number for ***"
    assert not holds_key(repr(got))


# -- JSON member names ----------------------------------------------------------------------


@pytest.mark.parametrize("form", sorted(FORMS))
def test_json_member_names_quoting_the_key_are_scrubbed_in_sketches(rsps, client, form):
    # An answer the client cannot read is described by its member names (sketch).
    rsps.post(BULK, json={"status": "queued", f"apikey {FORMS[form]}": 1})
    with pytest.raises(OutcomeUnknown) as info:
        send_one(client)
    assert "unexpected JSON an object with keys apikey ***, status" in str(info.value)
    assert_clean(info.value)


def test_json_member_names_inside_message_objects_are_scrubbed(rsps, client):
    rsps.post(
        BULK,
        json={
            "messages": [{"batch_id": 7, "messages": [{"recipient": NUMBER, f"id-{KEY}": 5}]}],
            "status": "success",
        },
    )
    with pytest.raises(OutcomeUnknown) as info:
        send_one(client)
    assert "(an object with keys id-***, recipient)" in str(info.value)
    assert_clean(info.value)


def test_an_answer_with_extra_key_members_still_reads(rsps, client):
    member = f"apikey {KEY.upper()}"
    rsps.post(
        BULK,
        json={
            "messages": [
                {
                    "batch_id": 7,
                    member: 1,
                    "messages": [{"id": 5, "recipient": NUMBER, member: ENCODED}],
                }
            ],
            member: {member: 2},
            "status": "success",
        },
    )
    got = send_one(client)
    assert got.accepted[NUMBER].message_id == "5"
    assert not holds_key(repr(got))


def test_balance_sketch_is_scrubbed(rsps, client):
    rsps.post(BALANCE, json={"balance": 5, KEY.lower(): 1, "status": "success"})
    with pytest.raises(OutcomeUnknown) as info:
        client.balance()
    assert "(an object with keys ***, balance, status)" in str(info.value)
    assert_clean(info.value)


# -- JSON values ----------------------------------------------------------------------------


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_message_id_quoting_the_key_is_scrubbed(rsps, client, form):
    rsps.post(
        BULK,
        json={
            "messages": [
                {
                    "batch_id": f"b-{FORMS[form]}",
                    "messages": [{"id": f"{FORMS[form]}-5", "recipient": NUMBER}],
                }
            ],
            "status": "success",
        },
    )
    got = send_one(client)
    assert (got.accepted[NUMBER].message_id, got.accepted[NUMBER].batch_id) == ("***-5", "b-***")
    assert not holds_key(repr(got))


def test_history_and_status_values_and_names_are_scrubbed(rsps, client):
    rsps.post(
        HISTORY,
        json={
            "messages": [
                {
                    "id": f"{KEY}-1",
                    "number": int(NUMBER),
                    "content": f"Hi  {ENCODED}\nbye",
                    "customID": KEY.lower(),
                    "batchID": 9,
                    "status": "D",
                    KEY: KEY,
                }
            ],
            "total": 1,
            "status": "success",
        },
    )
    rsps.post(
        STATUS,
        json={"message": {"id": KEY, "status": "D", KEY.upper(): [KEY, 1]}, "status": "success"},
    )
    [message] = client.history()
    assert (message.message_id, message.content, message.custom) == ("***-1", "Hi  ***\nbye", "***")
    status = client.status_message("1")
    assert status == {
        "message": {"id": "***", "status": "D", "***": ["***", 1]},
        "status": "success",
    }
    assert not holds_key(repr(message)) and not holds_key(json.dumps(status))


def test_history_texts_keep_their_spacing_and_a_short_key_eats_no_words(rsps):
    content = "Thank  you,\n\tkind OK customer  "
    rsps.post(
        HISTORY,
        json={
            "messages": [{"id": 1, "number": NUMBER, "content": content}],
            "total": 1,
            "status": "success",
        },
    )
    with TextlocalClient("k") as tl:  # shorter than any real key: masking it would eat words
        assert tl.history()[0].content == content


# -- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [KEY, f"7; apikey={ENCODED}", KEY.upper(), f"{KEY} 7"])
def test_a_retry_after_quoting_the_key_is_scrubbed(rsps, client, header):
    rsps.post(BULK, status=429, headers={"Retry-After": header}, body="")
    with pytest.raises(RateLimited) as info:
        send_one(client)
    assert info.value.retry_after is None  # unreadable: the batch layer backs off itself
    assert "wait a little" in str(info.value)
    assert_clean(info.value)


def test_a_plain_retry_after_still_reads(rsps, client):
    rsps.post(BULK, status=429, headers={"Retry-After": "7"}, body="")
    with pytest.raises(RateLimited) as info:
        send_one(client)
    assert info.value.retry_after == 7.0


# -- the helpers ----------------------------------------------------------------------------


def test_scrub_json_scrubs_every_name_and_string_and_keeps_the_rest():
    value = {"a": [1, 2.5, True, None, "x KEY y", {"KEY": {"n": "KEY"}}], "KEY": "KEY"}
    got = scrub_json(value, lambda text: text.replace("KEY", "***"))
    assert got == {"a": [1, 2.5, True, None, "x *** y", {"***": {"n": "***"}}], "***": "***"}
    assert value["KEY"] == "KEY"  # a copy: the parsed answer itself is left alone
    assert scrub_json(7, str.upper) == 7 and scrub_json("key", str.upper) == "KEY"


def test_scrub_json_takes_nesting_deeper_than_the_python_stack():
    deep: list = ["KEY"]
    for _ in range(sys.getrecursionlimit() * 2):
        deep = [deep]
    got = scrub_json(deep, lambda text: text.lower())
    for _ in range(sys.getrecursionlimit() * 2):
        got = got[0]
    assert got == ["key"]


@pytest.mark.parametrize("form", sorted(FORMS))
def test_the_log_filter_masks_the_key_in_any_case(monkeypatch, form):
    monkeypatch.setenv("TEXTLOCAL_API_KEY", KEY)
    assert mask_text(f"echo {FORMS[form]}!", current_secrets()) == "echo ***!"


# -- end to end: the CLI against a sandbox playing each echo ----------------------------------

SKIPPED = {"invalid_number": 5, "duplicate": 1, "missing_field": 1}
ALL_BUT_FAILURES = ("reason", "json-key", "json-value", "retry-after")
# echo case: (the sandbox's faults, exit code, statuses of the 32 sendable rows)
E2E_CASES = {
    # A 5xx's reason phrase is quoted in the rows' detail (both chunks go at once, so which
    # one gets the 500 varies; the counts do not).
    "reason": (Faults(echo_key="reason", error_every=2), 0, {"sent": 16, "unknown": 16}),
    "error": (Faults(echo_key="error"), 3, {"failed": 32}),
    "upper": (Faults(echo_key="upper"), 3, {"failed": 32}),
    "json-key": (Faults(echo_key="json-key"), 0, {"sent": 32}),
    "json-value": (Faults(echo_key="json-value"), 0, {"sent": 32}),
    "retry-after": (Faults(echo_key="retry-after", rate_limit_every=2), 0, {"sent": 32}),
    # Of the two chunks one goes through; the other meets a 429, then on its retry a 500.
    "all-but-failures": (
        Faults(echo_key=ALL_BUT_FAILURES, rate_limit_every=2, error_every=3),
        0,
        {"sent": 16, "unknown": 16},
    ),
}


@pytest.fixture
def workdir(tmp_path):
    shutil.copytree(REPO / "input", tmp_path / "input")
    (tmp_path / "out").mkdir()
    return tmp_path


def send(workdir: Path, url: str) -> subprocess.CompletedProcess:
    """`smsbatch -v send` to the sandbox at `url`, with the key in TEXTLOCAL_API_KEY."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEXTLOCAL_", "SMSBATCH_"))}
    env.update(
        TEXTLOCAL_API_KEY=KEY, SMSBATCH_STATE_DIR=str(workdir / "state"), PYTHONPATH=str(REPO)
    )  # the pipeline under test, wherever this checkout is
    out = workdir / "out"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "-v",
            "send",
            "input/contacts.xlsx",
            "-t",
            "input/template.txt",
            "--provider",
            "sandbox",
            "--base-url",
            url,
            "--sender",
            "ACMEST",
            "--yes",
            "--chunk-size",
            "16",
            "--journal",
            str(out / "journal.sqlite"),
            "--out",
            str(out / "r.xlsx"),
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        timeout=120,
    )


def stored_with_key(workdir: Path) -> list[str]:
    """The files (journal and its -wal, workbook parts unzipped) that hold the key."""
    found = []
    for root in (workdir / "out", workdir / "state"):
        for path in sorted(p for p in root.rglob("*") if p.is_file()):  # none if no state/
            data = path.read_bytes()
            if holds_key(data):
                found.append(path.name)
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as book:
                    found += [
                        f"{path.name}!{name}"
                        for name in book.namelist()
                        if holds_key(book.read(name))
                    ]
    return found


def statuses(workdir: Path) -> dict[str, int]:
    from pipeline.report.workbook import read_results

    return read_results(workdir / "out" / "r.xlsx")["status"].value_counts().to_dict()


def assert_key_nowhere(proc: subprocess.CompletedProcess, workdir: Path) -> None:
    assert not holds_key(proc.stdout), proc.stdout
    assert not holds_key(proc.stderr), proc.stderr
    assert stored_with_key(workdir) == []
    journal = [p.name for p in (workdir / "out").iterdir() if p.name.startswith("journal")]
    assert "journal.sqlite" in journal  # what was searched is really there


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(E2E_CASES))
def test_send_to_a_sandbox_echoing_the_key_never_shows_or_stores_it(
    workdir, tmp_path_factory, case
):
    faults, code, sendable = E2E_CASES[case]
    outbox = tmp_path_factory.mktemp("sandbox") / "outbox.sqlite"
    # The sandbox insists on KEY: a client sending anything else would fail every row.
    with SandboxServer(outbox, api_key=KEY, faults=faults) as server:
        proc = send(workdir, server.url)
        assert server.fault_counts.sending >= 2
    assert proc.returncode == code, proc.stderr.decode()
    assert statuses(workdir) == {**sendable, **SKIPPED}
    assert_key_nowhere(proc, workdir)


@pytest.mark.slow
def test_send_to_a_standalone_sandbox_started_with_echo_key(workdir, tmp_path_factory):
    outbox = tmp_path_factory.mktemp("sandbox") / "outbox.sqlite"
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "sandbox",
            "--port",
            "0",
            "--outbox",
            str(outbox),
            "--echo-key",
            "reason",
            "--echo-key",
            "json-value",
            "--echo-key",
            "json-key",
            "--error-every",
            "2",
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            url = re.search(r"on (http://\S+) ", server.stdout.readline()).group(1)
            assert server.stdout.readline() == (
                "Faults: HTTP 500 (not recorded) every 2nd send; the API key echoed in every "
                "reason phrase, the ids and refusal texts of success bodies, the member names "
                "of success bodies\n"
            )
            proc = send(workdir, url)
        finally:
            server.terminate()
            server.wait(timeout=10)
    assert proc.returncode == 0, proc.stderr.decode()
    assert statuses(workdir) == {"sent": 16, "unknown": 16, **SKIPPED}
    assert_key_nowhere(proc, workdir)
