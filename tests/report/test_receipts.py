"""The push-mode receipt listener and its journal recorder, over real HTTP on loopback."""

from __future__ import annotations

import logging
import re
import socket
import sqlite3
import time

import pytest
import requests

from pipeline.errors import InputError
from pipeline.providers.textlocal.client import Outgoing, TextlocalClient
from pipeline.report.receipts import (
    DELIVERY_STATUS,
    Receipt,
    ReceiptListener,
    ist_to_iso,
    record_in_journal,
)
from pipeline.sandbox.server import Receipts, SandboxServer
from pipeline.sending.journal import Journal, Outcome, Pending, RunIdentity
from tests.helpers import Clock

A, B = "+919876543210", "+919812345678"
RECEIPT = {
    "number": A[1:],
    "status": "D",
    "customID": "smsbatch-1-1",
    "datetime": "2026-11-26 15:29:52",
}


@pytest.fixture
def got():
    return []


@pytest.fixture
def listener(got):
    with ReceiptListener(got.append) as receiver:
        yield receiver


def identity(**changes) -> RunIdentity:
    fields = {
        "input_path": "people.csv",
        "worksheet": None,
        "template": "Hi {Name}",
        "sender": "ABCDEF",
        "route": "transactional",
        "provider": "sandbox",
        "test": False,
        **changes,
    }
    return RunIdentity(**fields)


def make_journal(path, rows):
    """A journal with one run and one chunk whose rows were sent with `rows` = {number: id}."""
    with Journal.open(path) as book:
        run = book.begin_run(identity(), "sha")
        pending = [Pending(f"key-{i}", i + 2, number) for i, number in enumerate(rows)]
        chunk_id, custom = book.start_chunk(run.id, pending)
        book.finish_chunk(
            run.id,
            chunk_id,
            [
                Outcome(
                    p.row_key,
                    "sent",
                    provider_message_id=rows[p.number],
                    batch_id="9",
                    sent_at="2026-11-26T15:29:40+05:30",
                )
                for p in pending
            ],
            "sent",
        )
    return run.id, custom


def delivery(path):
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT number, delivery_status, delivered_at FROM messages ORDER BY source_row"
        ).fetchall()
    db.close()
    return rows


# -- the listener ---------------------------------------------------------------------------


def test_form_body_becomes_a_receipt_and_ok(listener, got):
    response = requests.post(listener.url, data=RECEIPT, timeout=5)
    assert (response.status_code, response.text) == (200, "OK\n")
    assert got == [Receipt("919876543210", "D", "smsbatch-1-1", "2026-11-26 15:29:52")]
    assert listener.counts.received == 1


def test_multipart_body_and_lenient_field_names(listener, got):
    files = {
        "Number": (None, "+919876543210"),
        "status": (None, "u"),
        "customid": (None, ""),
        "DateTime": (None, ""),
    }
    response = requests.post(listener.url, files=files, timeout=5)
    assert response.status_code == 200
    assert got == [Receipt("919876543210", "U", None, None)]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"number": A[1:]},
        {"status": "D"},
        {"number": " ", "status": "D"},
        {"number": A[1:], "status": ""},
    ],
)
def test_missing_number_or_status_is_400(listener, got, body):
    response = requests.post(listener.url, data=body, timeout=5)
    assert (response.status_code, response.text) == (
        400,
        "a receipt needs the fields number and status\n",
    )
    assert got == [] and listener.counts.rejected == 1


def test_other_paths_methods_and_sizes(listener, got):
    base = listener.url.removesuffix("/receipts")
    assert requests.post(base + "/other", data=RECEIPT, timeout=5).status_code == 404
    response = requests.get(listener.url, timeout=5)
    assert (response.status_code, response.headers["Allow"]) == (405, "POST")
    big = {**RECEIPT, "pad": "x" * 70_000}
    assert requests.post(listener.url, data=big, timeout=5).status_code == 413
    assert (
        requests.post(listener.url + "?from=textlocal", data=RECEIPT, timeout=5).status_code == 200
    )
    assert len(got) == 1


def test_a_failing_callback_is_500_so_the_provider_may_retry(caplog):
    def broken(receipt):
        raise sqlite3.OperationalError("database is locked")

    with ReceiptListener(broken, path="hooks/dlr/") as receiver:
        assert receiver.url.endswith("/hooks/dlr")
        with caplog.at_level(logging.ERROR, logger="pipeline.report.receipts"):
            response = requests.post(receiver.url, data=RECEIPT, timeout=5)
    assert response.status_code == 500
    assert receiver.counts.failed == 1
    assert caplog.messages == ["receipt for +91******3210 not recorded (OperationalError)"]


def test_stop_is_idempotent_and_a_taken_port_is_input_error():
    receiver = ReceiptListener(lambda r: None)
    receiver.stop()
    receiver.stop()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InputError, match=f"cannot receive receipts on 127.0.0.1:{port}"):
            ReceiptListener(lambda r: None, port=port)


# -- recording in the journal ---------------------------------------------------------------


def test_ist_dates_become_iso_with_offset():
    assert ist_to_iso("2026-11-26 15:29:52") == "2026-11-26T15:29:52+05:30"
    assert [ist_to_iso(v) for v in ("0000-00-00 00:00:00", "", None, "yesterday")] == [
        None,
        None,
        None,
        None,
    ]


def test_status_names_match_the_pull_side():
    from pipeline.statuses import DELIVERY_CODES

    assert DELIVERY_STATUS == DELIVERY_CODES


def test_receipts_are_recorded_while_a_send_holds_the_journal(tmp_path, caplog):
    path = tmp_path / "journal.sqlite"
    run_id, custom = make_journal(path, {A: "1151346216", B: "1151346217"})
    assert re.fullmatch(rf"smsbatch-[0-9a-f]{{12}}-{run_id}-1", custom)
    recorder = record_in_journal(path)
    with Journal.open(path), ReceiptListener(recorder) as receiver:  # a send is running
        for number, status, at in ((A, "D", "2026-11-26 15:29:52"), (B, "U", "")):
            response = requests.post(
                receiver.url,
                timeout=5,
                data={"number": number[1:], "status": status, "customID": custom, "datetime": at},
            )
            assert response.status_code == 200
        with caplog.at_level(logging.WARNING, logger="pipeline.report.receipts"):
            for unknown in (
                {"customID": "smsbatch-1-99"},
                {"customID": "someone-else"},
                {"number": "917012345678"},
                {"customID": ""},
            ):
                fields = {"number": A[1:], "status": "D", "customID": custom, **unknown}
                assert requests.post(receiver.url, data=fields, timeout=5).status_code == 200
    assert delivery(path) == [
        (A, "delivered", "2026-11-26T15:29:52+05:30"),
        (B, "undelivered", None),
    ]
    assert (recorder.recorded, recorder.unmatched) == (2, 4)
    assert len(caplog.messages) == 4
    assert caplog.messages[2].startswith(f"receipt for +91******5678 (customID {custom!r})")
    assert "9876543210" not in caplog.text and "7012345678" not in caplog.text


def test_a_journal_not_there_yet_is_never_created(tmp_path):
    path = tmp_path / "later.sqlite"
    recorder = record_in_journal(path)
    recorder(Receipt(A[1:], "D", "smsbatch-0123456789ab-1-1", None))
    assert (recorder.recorded, recorder.unmatched) == (0, 1)
    assert not path.exists()
    _, custom = make_journal(path, {A: "77"})
    recorder(Receipt(A[1:], "E", custom, "2026-11-26 16:00:00"))
    assert delivery(path) == [(A, "expired", "2026-11-26T16:00:00+05:30")]


def test_a_file_that_is_no_journal_is_input_error(tmp_path):
    path = tmp_path / "results.xlsx"
    path.write_bytes(b"PK\x03\x04 not a database" * 100)
    with pytest.raises(InputError, match="results.xlsx: not a readable send journal"):
        record_in_journal(path)
    with sqlite3.connect(tmp_path / "old.sqlite") as db:
        db.execute("CREATE TABLE messages (custom TEXT, provider_message_id TEXT)")
    db.close()
    with pytest.raises(InputError, match="predates delivery receipts; run `smsbatch status`"):
        record_in_journal(tmp_path / "old.sqlite")


def test_sandbox_receipts_land_in_the_journal_end_to_end(tmp_path):
    """Sandbox send with a receipt URL -> callback -> listener -> journal row."""
    path = tmp_path / "journal.sqlite"
    clock = Clock(1_764_000_000.0)
    recorder = record_in_journal(path)
    with (
        ReceiptListener(recorder) as receiver,
        SandboxServer(
            tmp_path / "outbox.sqlite", clock=clock, receipts=Receipts(invalid_numbers=[B])
        ) as sandbox,
        TextlocalClient("k", sandbox.url) as client,
        Journal.open(path) as book,
    ):
        run = book.begin_run(identity(), "sha")
        pending = [Pending("a", 2, A), Pending("b", 3, B)]
        chunk_id, custom = book.start_chunk(run.id, pending)
        got = client.send_bulk(
            [Outgoing(p.number[1:], "hi", custom=custom) for p in pending],
            sender="ABCDEF",
            receipt_url=receiver.url,
        )
        book.finish_chunk(
            run.id,
            chunk_id,
            [
                Outcome(
                    p.row_key, "sent", provider_message_id=got.accepted[p.number[1:]].message_id
                )
                for p in pending
            ],
            "sent",
        )
        clock.now += 2
        deadline = time.monotonic() + 5
        while recorder.recorded < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert delivery(path) == [
        (A, "delivered", "2025-11-24T21:30:02+05:30"),
        (B, "invalid", "2025-11-24T21:30:02+05:30"),
    ]
    assert recorder.unmatched == 0
