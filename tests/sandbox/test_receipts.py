"""Delivery in the sandbox: statuses moving with its clock, and receipt callbacks to loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter

import pytest
import requests

from pipeline.errors import InputError, ProviderError
from pipeline.providers.textlocal.client import Outgoing, TextlocalClient
from pipeline.report.receipts import Receipt, ReceiptListener
from pipeline.sandbox.server import ReceiptCounts, Receipts, SandboxServer, read_outbox
from pipeline.sandbox.store import FIRST_BATCH_ID, FIRST_MESSAGE_ID
from tests.helpers import Clock

KEY = "receipts-key"
T0 = 1_764_000_000  # 2025-11-24 16:00:00 UTC = 21:30:00 IST
A, B, C = "919876543210", "919812345678", "917012345678"


def wait_for(predicate, timeout: float = 5.0):
    """Poll `predicate` until it is truthy (returned) or `timeout` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"not true within {timeout} s")


@pytest.fixture
def api_key():
    return KEY


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def sandbox_options(api_key, clock):
    return {"api_key": api_key, "balance": 10_000, "clock": clock, "promo_window": None}


@pytest.fixture
def listener():
    got: list[Receipt] = []
    with ReceiptListener(got.append) as receiver:
        receiver.got = got
        yield receiver


def post(server, command, **fields):
    response = requests.post(server.url + command, data=fields, timeout=5)
    assert response.status_code == 200
    return response.json()


def numbers(count: int) -> list[str]:
    return [f"9198{i:08d}" for i in range(count)]


# -- statuses over time -----------------------------------------------------------------------


def test_a_message_is_pending_then_final_when_the_clock_passes_settle(sandbox, clock):
    _, client = sandbox(receipts=Receipts(settle_seconds=5))
    accepted = client.send_bulk([Outgoing(A, "hi")], sender="ABCDEF").accepted[A]
    message = client.status_message(accepted.message_id)["message"]
    assert (message["status"], message["date"]) == ("P", "2025-11-24 21:30:00")
    clock.now = T0 + 4.9
    assert client.status_message(accepted.message_id)["message"]["status"] == "P"
    clock.now = T0 + 5
    message = client.status_message(accepted.message_id)["message"]
    assert (message["status"], message["date"]) == ("D", "2025-11-24 21:30:05")
    assert [m.status for m in client.history()] == ["D"]


def test_shares_over_200_messages_are_close_to_the_configured_ones(sandbox, clock, outbox):
    server, _ = sandbox()  # the default shares: D 85%, U 6%, E 3%, I 2%, ? 4%
    for start in range(0, 200, 50):
        post(
            server,
            "send/",
            apikey=KEY,
            numbers=",".join(numbers(200)[start : start + 50]),
            message="hi",
            sender="ABCDEF",
        )
    clock.now = T0 + 2  # settled: only the unknown share is still pending
    settled = Counter(m["status"] for m in read_outbox(outbox, at=clock.now))
    clock.now = T0 + 30
    final = Counter(m["status"] for m in read_outbox(outbox, at=clock.now))
    assert settled["P"] == final["?"] and "P" not in final
    assert sum(final.values()) == 200
    for code, share in Receipts().shares().items():
        assert abs(final[code] / 200 - share) <= 0.04, (code, final)
    # the same outbox tells the same story: a seeded draw per message id
    assert final == Counter({"D": 171, "?": 10, "E": 9, "U": 8, "I": 2})


def test_configured_shares_and_invalid_numbers(sandbox, clock, outbox):
    receipts = Receipts(
        settle_seconds=1,
        delivered=0.5,
        undelivered=0.5,
        expired=0,
        invalid=0,
        unknown=0,
        invalid_numbers=["+" + A],
    )
    server, _ = sandbox(receipts=receipts)
    post(
        server,
        "send/",
        apikey=KEY,
        numbers=",".join([A, *numbers(199)]),
        message="hi",
        sender="ABCDEF",
    )
    rows = read_outbox(outbox, at=T0 + 1)
    assert rows[0]["status"] == "I"
    counts = Counter(m["status"] for m in rows[1:])
    assert set(counts) == {"D", "U"} and abs(counts["D"] - 100) <= 20, counts


def test_status_batch_counts_agree_with_its_messages(sandbox, clock):
    server, client = sandbox(receipts=Receipts(unknown_seconds=10))
    body = post(
        server, "send/", apikey=KEY, numbers=",".join(numbers(100)), message="hi", sender="ABCDEF"
    )
    names = {"D": "delivered", "U": "undelivered", "E": "expired", "?": "unknown", "I": "invalid"}
    for now, pending in ((T0, 100), (T0 + 2, None), (T0 + 10, 0)):
        clock.now = now
        batch = client.status_batch(str(body["batch_id"]))
        statuses = Counter(m["status"] for m in batch["messages"])
        assert batch["num_messages"] == 100
        assert {f"num_{name}": statuses[code] for code, name in names.items()} == {
            key: value
            for key, value in batch.items()
            if key.startswith("num_") and key != "num_messages"
        }
        assert statuses["P"] == 100 - sum(statuses[code] for code in names)
        if pending is not None:
            assert statuses["P"] == pending
    assert statuses["D"] == batch["num_delivered"] > 70


def test_a_scheduled_message_stays_scheduled_until_due_then_settles(sandbox, clock):
    _, client = sandbox()
    later = T0 + 3600
    accepted = client.send_bulk(
        [Outgoing(A, "later")], sender="ABCDEF", schedule_time=later
    ).accepted[A]

    def status():
        message = client.status_message(accepted.message_id)["message"]
        return message["status"], message["date"]

    clock.now = later - 1
    assert status() == ("scheduled", "2025-11-24 21:30:00")
    assert client.status_batch(accepted.batch_id)["num_delivered"] == 0
    clock.now = later
    assert status() == ("P", "2025-11-24 22:30:00")
    clock.now = later + 2
    assert status() == ("D", "2025-11-24 22:30:02")


def test_test_mode_messages_stay_invisible(sandbox, clock, outbox, listener):
    _, client = sandbox()
    client.send_bulk([Outgoing(A, "t")], sender="ABCDEF", test=True, receipt_url=listener.url)
    clock.now = T0 + 60
    with pytest.raises(ProviderError) as info:
        client.status_message(str(FIRST_MESSAGE_ID))
    assert info.value.code == 22
    assert client.history() == []
    assert [r["status"] for r in read_outbox(outbox, include_test=True, at=clock.now)] == ["D"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"delivered": 0.9},
            "the shares of D, U, E, I and ? is 1.05; use fractions adding up to 1",
        ),
        ({"delivered": 1.1, "undelivered": -0.25}, "the share of D is 1.1"),
        ({"settle_seconds": -1}, "settle_seconds is -1; use a number of seconds"),
        ({"callback_attempts": 0}, "callback_attempts is 0; use a whole number >= 1"),
        ({"callback_timeout": 0}, "callback_timeout is 0; use seconds above 0"),
    ],
)
def test_bad_receipts_settings_are_input_errors(options, message):
    with pytest.raises(InputError, match="sandbox receipts: " + message.replace("?", r"\?")):
        Receipts(**options)


# -- receipt callbacks ------------------------------------------------------------------------


def test_receipts_reach_a_listener_once_each_when_final(sandbox, clock, listener):
    server, client = sandbox()
    first = client.send_bulk(
        [Outgoing(A, "a", custom="smsbatch-1-1")], sender="ABCDEF", receipt_url=listener.url
    )
    assert first.accepted[A].message_id == str(FIRST_MESSAGE_ID)
    clock.now = T0 + 10  # A is final (D at T0 + 2); B, sent now, is pending
    client.send_bulk(
        [Outgoing(B, "b", custom="smsbatch-1-2")], sender="ABCDEF", receipt_url=listener.url
    )
    wait_for(lambda: listener.got)
    assert listener.got == [Receipt(A, "D", "smsbatch-1-1", "2025-11-24 21:30:02")]
    clock.now = T0 + 12
    wait_for(lambda: len(listener.got) == 2)
    assert listener.got[1] == Receipt(B, "D", "smsbatch-1-2", "2025-11-24 21:30:12")
    # a third one as a fence: once it arrives, no earlier receipt was posted twice
    body = post(
        server,
        "send/",
        apikey=KEY,
        numbers=C,
        message="c",
        sender="ABCDEF",
        custom="c3",
        receipt_url=listener.url,
    )
    assert body["receipt_url"] == listener.url
    clock.now = T0 + 14
    wait_for(lambda: len(listener.got) == 3)
    assert listener.got[2] == Receipt(C, "D", "c3", "2025-11-24 21:30:14")
    # counted once the listener's 200 is read, just after the receipt reached it
    wait_for(lambda: server.receipt_counts.posted == 3)
    assert server.receipt_counts == ReceiptCounts(posted=3)
    assert listener.counts.received == 3


def test_bulk_json_receipt_url_spellings_are_echoed_and_used(sandbox, clock, listener):
    server, _ = sandbox()
    for key, number in (("receipt_url", A), ("receiptUrl", B)):
        data = {
            "sender": "ABCDEF",
            key: listener.url,
            "messages": [{"number": number, "text": "x", "custom": key}],
        }
        body = post(server, "bulk_json/", apikey=KEY, data=json.dumps(data))
        assert [group["receipt_url"] for group in body["messages"]] == [listener.url]
    clock.now = T0 + 2
    wait_for(lambda: len(listener.got) == 2)
    assert sorted((r.number, r.custom) for r in listener.got) == [
        (B, "receiptUrl"),
        (A, "receipt_url"),
    ]


def test_every_status_is_posted_including_unknown_after_its_delay(sandbox, clock, outbox, listener):
    server, _ = sandbox(receipts=Receipts(unknown_seconds=10))
    sent = numbers(60)
    post(
        server,
        "send/",
        apikey=KEY,
        numbers=",".join(sent),
        message="m",
        sender="ABCDEF",
        receipt_url=listener.url,
    )
    clock.now = T0 + 2
    expected = Counter(m["status"] for m in read_outbox(outbox, at=clock.now))
    wait_for(lambda: len(listener.got) == 60 - expected["P"])
    clock.now = T0 + 10
    wait_for(lambda: len(listener.got) == 60)
    final = {m["number"]: m["status"] for m in read_outbox(outbox, at=clock.now)}
    assert {r.number: r.status for r in listener.got} == final
    assert set(final.values()) == {"D", "U", "E", "?"}
    assert {r.at for r in listener.got if r.status == "?"} == {"2025-11-24 21:30:10"}


def test_scheduled_messages_call_back_only_after_they_are_due(sandbox, clock, listener):
    _, client = sandbox()
    client.send_bulk(
        [Outgoing(A, "later", custom="s")],
        sender="ABCDEF",
        schedule_time=T0 + 600,
        receipt_url=listener.url,
    )
    client.send_bulk([Outgoing(B, "now", custom="n")], sender="ABCDEF", receipt_url=listener.url)
    clock.now = T0 + 599
    wait_for(lambda: listener.got)  # the fence: B's receipt arrives, A's is not due
    assert [r.custom for r in listener.got] == ["n"]
    clock.now = T0 + 602
    wait_for(lambda: len(listener.got) == 2)
    assert listener.got[1] == Receipt(A, "D", "s", "2025-11-24 21:40:02")


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/r",
        "https://127.0.0.1/r",
        "http://10.0.0.1:8080/r",
        "ftp://localhost/r",
        "http://127.0.0.1:99999/r",
        "localhost/r",
    ],
)
def test_a_receipt_url_off_loopback_fails_the_send_with_95(sandbox, outbox, url):
    server, client = sandbox()
    expected = {
        "errors": [
            {
                "code": 95,
                "message": "Invalid receipt URL: the sandbox only calls "
                "back http://127.0.0.1, http://localhost or http://[::1]",
            }
        ],
        "status": "failure",
    }
    assert (
        post(server, "send/", apikey=KEY, numbers=A, message="x", sender="ABCDEF", receipt_url=url)
        == expected
    )
    data = {"sender": "ABCDEF", "receiptUrl": url, "messages": [{"number": A, "text": "x"}]}
    assert post(server, "bulk_json/", apikey=KEY, data=json.dumps(data)) == expected
    assert server.outbox(include_test=True) == []
    assert client.balance() == 10_000


def test_a_failing_listener_is_retried_then_given_up(sandbox, clock):
    calls = []

    def flaky(receipt):
        calls.append(receipt)
        if len(calls) == 1:
            raise RuntimeError("journal busy")

    receipts = Receipts(callback_attempts=2, callback_backoff=0.05)
    with ReceiptListener(flaky) as receiver:
        server, client = sandbox(receipts=receipts)
        client.send_bulk([Outgoing(A, "a")], sender="ABCDEF", receipt_url=receiver.url)
        with socket.socket() as spare:  # a port nobody listens on: connection refused
            spare.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{spare.getsockname()[1]}/receipts"
        client.send_bulk([Outgoing(B, "b")], sender="ABCDEF", receipt_url=dead)
        clock.now = T0 + 2
        wait_for(lambda: server.receipt_counts.posted + server.receipt_counts.given_up == 2)
    assert server.receipt_counts == ReceiptCounts(posted=1, retried=2, given_up=1)
    assert [r.number for r in calls] == [A, A]
    assert receiver.counts.failed == 1 and receiver.counts.received == 1


def test_stop_cuts_off_a_hanging_receipt_and_a_reopened_sandbox_posts_it(outbox, clock):
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen()
    port = hanging.getsockname()[1]
    server = SandboxServer(
        outbox, api_key=KEY, clock=clock, receipts=Receipts(callback_timeout=30)
    ).start()
    with TextlocalClient(KEY, server.url) as client:
        client.send_bulk(
            [Outgoing(A, "a", custom="h")],
            sender="ABCDEF",
            receipt_url=f"http://127.0.0.1:{port}/receipts",
        )
    clock.now = T0 + 2
    hanging.settimeout(5)
    connection, _ = hanging.accept()  # the receipt POST is in flight, never answered
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    connection.close()
    hanging.close()
    assert server.receipt_counts == ReceiptCounts()
    got: list[Receipt] = []
    with ReceiptListener(got.append, port=port), SandboxServer(outbox, api_key=KEY, clock=clock):
        wait_for(lambda: got)
    assert got == [Receipt(A, "D", "h", "2025-11-24 21:30:02")]


def test_the_callback_thread_ends_with_the_server(sandbox):
    before = {t.name for t in threading.enumerate()}
    server, _ = sandbox()
    assert "sandbox-receipts" in {t.name for t in threading.enumerate()} - before
    server.stop()
    assert "sandbox-receipts" not in {t.name for t in threading.enumerate()} - before


def test_send_form_echoes_receipt_url_and_batch(sandbox, listener):
    server, _ = sandbox()
    body = post(
        server,
        "send/",
        apikey=KEY,
        numbers=f"{A},{B}",
        message="x",
        sender="ABCDEF",
        receipt_url=listener.url,
        custom="smsbatch-4-9",
    )
    assert (body["batch_id"], body["receipt_url"], body["custom"]) == (
        FIRST_BATCH_ID,
        listener.url,
        "smsbatch-4-9",
    )
