"""The sandbox: a real loopback server, driven by the real client and by raw HTTP."""

from __future__ import annotations

import re
import socket
import threading
from datetime import datetime, timedelta, timezone

import pytest
import requests

from pipeline.errors import InputError, ProviderError
from pipeline.providers.textlocal.client import (
    Accepted,
    HistoryMessage,
    Outgoing,
    Refused,
    TextlocalClient,
)
from pipeline.sandbox.server import SandboxServer, read_outbox
from pipeline.sandbox.store import FIRST_BATCH_ID, FIRST_MESSAGE_ID
from tests.helpers import T0, Clock

KEY = "sandbox-key+/=9"
TRICKY = "50% off + free & more\nनमस्ते €"
DATE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


@pytest.fixture
def api_key():
    return KEY


@pytest.fixture
def outbox(tmp_path):
    return tmp_path / "nested" / "outbox.sqlite"


def post(server, command, **fields):
    """A raw form POST; asserts the HTTP layer, returns the JSON."""
    response = requests.post(server.url + command, data=fields, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


def failure(code, message):
    return {"errors": [{"code": code, "message": message}], "status": "failure"}


# -- bulk_json through the real client ------------------------------------------------------


def test_round_trip_exact_text_into_outbox(server, client, outbox, clock):
    got = client.send_bulk(
        [
            Outgoing("919876543210", TRICKY, custom="row-2"),
            Outgoing("919812345678", "a=b&c=%20d+e"),
        ],
        sender="ABCDEF",
    )
    m1, m2 = str(FIRST_MESSAGE_ID), str(FIRST_MESSAGE_ID + 1)
    b1, b2 = str(FIRST_BATCH_ID), str(FIRST_BATCH_ID + 1)
    assert got.accepted == {
        "919876543210": Accepted("919876543210", m1, b1, 1),
        "919812345678": Accepted("919812345678", m2, b2, 1),
    }
    assert got.refused == {}
    assert (got.balance, got.total_cost, got.test_mode) == (98, 2, False)
    rows = read_outbox(outbox, at=clock.now)
    assert rows == [
        {
            "id": m1,
            "batch_id": b1,
            "number": "919876543210",
            "message": TRICKY,
            "sender": "ABCDEF",
            "custom": "row-2",
            "test": False,
            "status": "P",
            "created_at": "2023-11-14T22:13:20+00:00",
            "scheduled_at": None,
        },
        {
            "id": m2,
            "batch_id": b2,
            "number": "919812345678",
            "message": "a=b&c=%20d+e",
            "sender": "ABCDEF",
            "custom": None,
            "test": False,
            "status": "P",
            "created_at": "2023-11-14T22:13:20+00:00",
            "scheduled_at": None,
        },
    ]
    assert server.outbox() == rows
    assert [r["status"] for r in read_outbox(outbox, at=clock.now + 2)] == ["D", "D"]


def test_invalid_numbers_are_refused_with_32(server, client, outbox):
    got = client.send_bulk(
        [
            Outgoing("919876543210", "hi"),
            Outgoing("915876543210", "hi"),
            Outgoing("9198765432100", "hi"),
            Outgoing("9876543210", "hi"),
        ],
        sender="ABCDEF",
    )
    assert list(got.accepted) == ["919876543210"]
    assert got.refused == {
        n: Refused(n, 32, "Invalid number format")
        for n in ("915876543210", "9198765432100", "9876543210")
    }
    assert [r["number"] for r in read_outbox(outbox)] == ["919876543210"]


def test_bad_key_is_provider_error_3(server):
    with TextlocalClient("wrong-key", server.url) as tl, pytest.raises(ProviderError) as info:
        tl.send_bulk([Outgoing("919876543210", "hi")], sender="ABCDEF")
    assert info.value.code == 3
    assert str(info.value).startswith("Textlocal error 3: Invalid login details. Check")


def test_insufficient_balance_is_7_and_nothing_recorded(outbox):
    long_text = "x" * 161  # 2 parts
    with (
        SandboxServer(outbox, api_key=KEY, balance=5) as sandbox,
        TextlocalClient(KEY, sandbox.url) as tl,
    ):
        with pytest.raises(ProviderError) as info:
            tl.send_bulk(
                [Outgoing(f"91987654321{i}", long_text) for i in range(3)], sender="ABCDEF"
            )
        assert info.value.code == 7
        assert tl.balance() == 5
        assert sandbox.outbox(include_test=True) == []


def test_test_mode_records_nothing_and_keeps_balance(server, client, outbox):
    got = client.send_bulk([Outgoing("919876543210", "hi")], sender="ABCDEF", test=True)
    assert got.test_mode is True
    assert got.accepted["919876543210"].message_id == str(FIRST_MESSAGE_ID)
    assert (got.balance, got.total_cost) == (100, 1)
    assert read_outbox(outbox) == []
    assert [r["test"] for r in read_outbox(outbox, include_test=True)] == [True]
    assert client.balance() == 100
    # never "sent", so the status endpoints do not know it
    with pytest.raises(ProviderError) as info:
        client.status_message(str(FIRST_MESSAGE_ID))
    assert info.value.code == 22


def test_balance_decreases_by_cost(server, client):
    two_parts = "y" * 200
    unicode_two_parts = "न" * 71
    got = client.send_bulk(
        [
            Outgoing("919876543210", two_parts),
            Outgoing("919812345678", unicode_two_parts),
            Outgoing("917012345678", "one part"),
        ],
        sender="ABCDEF",
    )
    assert [a.cost for a in got.accepted.values()] == [2, 2, 1]
    assert (got.total_cost, got.balance) == (5, 95)
    assert client.balance() == 95


def test_too_long_and_empty_texts_are_refused_per_message(server, client):
    got = client.send_bulk(
        [
            Outgoing("919876543210", "z" * 765),
            Outgoing("919812345678", "z" * 766),
            Outgoing("917012345678", "न" * 336),
            Outgoing("916012345678", ""),
        ],
        sender="ABCDEF",
    )
    assert list(got.accepted) == ["919876543210"]
    assert got.accepted["919876543210"].cost == 5
    assert got.refused == {
        "919812345678": Refused("919812345678", 6, "Message too long"),
        "917012345678": Refused("917012345678", 6, "Message too long"),
        "916012345678": Refused("916012345678", 5, "No message content"),
    }


@pytest.mark.parametrize(
    ("sender", "code"), [(None, 44), ("", 44), ("ABC", 43), ("ABCDE1", 43), ("OTHERS", 43)]
)
def test_sender_checked_against_list(outbox, sender, code):
    # noon IST: "123456" is a promotional header, sent only in the promo window
    noon_ist = datetime(2025, 11, 24, 12, tzinfo=timezone(timedelta(hours=5.5))).timestamp()
    with (
        SandboxServer(outbox, senders=["ABCDEF", "123456"], clock=lambda: noon_ist) as sandbox,
        TextlocalClient("any", sandbox.url) as tl,
    ):
        with pytest.raises(ProviderError) as info:
            tl.send_bulk([Outgoing("919876543210", "hi")], sender=sender)
        assert info.value.code == code
        assert tl.send_bulk([Outgoing("919876543210", "hi")], sender="123456").accepted


def test_ids_increase_across_restart(outbox):
    with SandboxServer(outbox, balance=50) as first, TextlocalClient("k", first.url) as tl:
        before = tl.send_bulk([Outgoing("919876543210", "a")], sender="ABCDEF", test=True)
        before = tl.send_bulk([Outgoing("919876543210", "a")], sender="ABCDEF")
    with SandboxServer(outbox, balance=9999) as second, TextlocalClient("k", second.url) as tl:
        after = tl.send_bulk([Outgoing("919876543210", "b")], sender="ABCDEF")
        assert tl.balance() == 48  # the stored balance wins over the new `balance` argument
    one, two = before.accepted["919876543210"], after.accepted["919876543210"]
    assert int(two.message_id) == int(one.message_id) + 1
    assert int(two.batch_id) == int(one.batch_id) + 1
    assert [r["message"] for r in read_outbox(outbox)] == ["a", "b"]


def test_concurrent_requests_get_unique_ids_and_consistent_balance(server, outbox):
    errors = []

    def worker(n):
        try:
            with TextlocalClient(KEY, server.url) as tl:
                for i in range(5):
                    tl.send_bulk([Outgoing(f"9198765{n:02d}{i:03d}", "hi")], sender="ABCDEF")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = [int(r["id"]) for r in read_outbox(outbox)]
    assert sorted(ids) == list(range(FIRST_MESSAGE_ID, FIRST_MESSAGE_ID + 40))
    assert post(server, "balance/", apikey=KEY) == {"balance": {"sms": 60}, "status": "success"}


# -- status endpoints -----------------------------------------------------------------------


def test_status_batch_and_message_shapes(server, client, clock):
    got = client.send_bulk([Outgoing("919876543210", "hi")], sender="ABCDEF")
    accepted = got.accepted["919876543210"]
    assert client.status_batch(accepted.batch_id)["messages"] == [
        {"recipient": 919876543210, "status": "P"}
    ]
    clock.now += 2
    batch = client.status_batch(accepted.batch_id)
    assert batch == {
        "batch_id": int(accepted.batch_id),
        "num_messages": 1,
        "num_delivered": 1,
        "num_undelivered": 0,
        "num_expired": 0,
        "num_unknown": 0,
        "num_invalid": 0,
        "messages": [{"recipient": 919876543210, "status": "D"}],
        "status": "success",
    }
    message = client.status_message(accepted.message_id)
    assert message == {
        "message": {
            "id": int(accepted.message_id),
            "recipient": 919876543210,
            "type": "sms",
            "status": "D",
            "date": "2023-11-15 03:43:22",
        },
        "status": "success",
    }
    with pytest.raises(ProviderError) as info:
        client.status_batch("1")
    assert info.value.code == 23


# -- raw envelopes --------------------------------------------------------------------------


def test_unknown_and_missing_command(server):
    assert post(server, "nope/", apikey=KEY) == failure(2, "Unrecognised command")
    assert post(server, "", apikey=KEY) == failure(1, "No command specified")


@pytest.mark.parametrize("fields", [{}, {"apikey": ""}, {"apikey": "other"}])
def test_login_required(server, fields):
    assert post(server, "balance/", **fields) == failure(3, "Invalid login details")


def test_any_key_when_none_configured(outbox):
    with SandboxServer(outbox) as sandbox:
        assert post(sandbox, "balance/", apiKey="whatever") == {
            "balance": {"sms": 10000},
            "status": "success",
        }
        assert post(sandbox, "balance/") == failure(3, "Invalid login details")


def test_send_form_with_warning_for_invalid_number(server):
    body = post(
        server,
        "send/",
        apiKey=KEY,
        numbers="919876543210, 12345,919812345678",
        message="Hi + 100% & more",
        sender="ABCDEF",
        custom="c1",
    )
    assert body == {
        "balance": 98,
        "batch_id": FIRST_BATCH_ID,
        "cost": 2,
        "num_messages": 2,
        "message": {"num_parts": 1, "sender": "ABCDEF", "content": "Hi + 100% & more"},
        "receipt_url": "",
        "custom": "c1",
        "messages": [
            {"id": str(FIRST_MESSAGE_ID), "recipient": 919876543210},
            {"id": str(FIRST_MESSAGE_ID + 1), "recipient": 919812345678},
        ],
        "warnings": [{"code": 3, "message": "Invalid number"}],
        "status": "success",
    }


def test_send_test_mode_and_multipart_and_get(server, outbox):
    response = requests.post(
        server.url + "send",
        timeout=5,
        files={
            "apikey": (None, KEY),
            "numbers": (None, "919876543210"),
            "message": (None, TRICKY),
            "sender": (None, "ABCDEF"),
            "test": (None, "true"),
        },
    )
    body = response.json()
    assert body["test_mode"] is True and body["message"]["content"] == TRICKY
    assert body["balance"] == 100
    query = {"apikey": KEY, "numbers": "919876543210", "message": "hi", "sender": "ABCDEF"}
    assert requests.get(server.url + "send/", params=query, timeout=5).json()["balance"] == 99
    assert [r["message"] for r in read_outbox(outbox)] == ["hi"]


@pytest.mark.parametrize(
    ("fields", "code", "message"),
    [
        ({"message": "hi", "sender": "ABCDEF"}, 4, "No recipients specified"),
        ({"numbers": "919876543210", "sender": "ABCDEF"}, 5, "No message content"),
        ({"numbers": "919876543210", "message": "hi"}, 44, "No sender name specified"),
        (
            {"numbers": "919876543210", "message": "hi", "sender": "AB CD"},
            43,
            "Invalid sender name",
        ),
        (
            {"numbers": "919876543210", "message": "x" * 766, "sender": "ABCDEF"},
            6,
            "Message too long",
        ),
        (
            {"numbers": "12345,+919876543210", "message": "hi", "sender": "ABCDEF"},
            51,
            "No valid numbers specified",
        ),
        (
            {"numbers": ",".join(["919876543210"] * 10_001), "message": "hi", "sender": "ABCDEF"},
            33,
            "You have supplied too many numbers",
        ),
        (
            {"numbers": "919876543210", "group_id": "5", "message": "hi", "sender": "ABCDEF"},
            34,
            "You have supplied both a group ID and a set of numbers",
        ),
    ],
)
def test_send_validation(server, outbox, fields, code, message):
    assert post(server, "send/", apikey=KEY, **fields) == failure(code, message)
    assert read_outbox(outbox) == []


def test_send_insufficient_credits(outbox):
    with SandboxServer(outbox, balance=1) as sandbox:
        body = post(
            sandbox,
            "send/",
            apikey="k",
            numbers="919876543210,919812345678",
            message="hi",
            sender="ABCDEF",
        )
        assert body == failure(7, "Insufficient credits")
        assert sandbox.outbox() == []


@pytest.mark.parametrize("data", ["", "not json", "[]", '{"messages": []}', '{"sender": "A"}'])
def test_bulk_json_without_messages_is_4(server, data):
    assert post(server, "bulk_json/", apikey=KEY, data=data) == failure(
        4, "No recipients specified"
    )


def test_read_endpoints(server, client):
    assert post(server, "get_templates/", apikey=KEY) == {"templates": [], "status": "success"}
    assert post(server, "get_sender_names/", apikey=KEY) == {
        "default_sender_name": "TXTLCL",
        "sender_names": [],
        "status": "success",
    }
    client.send_bulk(
        [Outgoing("919876543210", "a", custom="c"), Outgoing("919812345678", "b")], sender="ABCDEF"
    )
    history = post(server, "get_history_api/", apikey=KEY, limit="1", sort_order="asc")
    assert DATE.fullmatch(history["messages"][0].pop("datetime"))
    assert history == {
        "messages": [
            {
                "id": FIRST_MESSAGE_ID,
                "number": 919876543210,
                "content": "a",
                "sender": "ABCDEF",
                "status": "P",
                "customID": "c",
                "batchID": FIRST_BATCH_ID,
            }
        ],
        "start": 0,
        "limit": 1,
        "total": 2,
        "status": "success",
    }
    newest = post(server, "get_history_api/", apikey=KEY, min_time="0", max_time="99999999999")
    assert [m["content"] for m in newest["messages"]] == ["b", "a"]
    assert post(server, "get_history_api/", apikey=KEY, max_time="1")["total"] == 0


# -- history through the real client ----------------------------------------------------------


class CountingSession(requests.Session):
    """A real session that remembers the form fields of each POST (minus the key)."""

    def __init__(self) -> None:
        super().__init__()
        self.posts: list[dict] = []

    def post(self, url, data=None, **kwargs):
        self.posts.append({k: v for k, v in (data or {}).items() if k != "apikey"})
        return super().post(url, data=data, **kwargs)


def test_history_returns_each_message_with_its_custom(server, client):
    got = client.send_bulk(
        [
            Outgoing("919876543210", "a", custom="job1:row-2"),
            Outgoing("919812345678", "b", custom="job1:row-3"),
            Outgoing("917012345678", "c", custom="job1:row-4"),
        ],
        sender="ABCDEF",
    )
    client.send_bulk(
        [Outgoing("916012345678", "test only", custom="t")], sender="ABCDEF", test=True
    )
    history = client.history()
    for message in history:
        assert DATE.fullmatch(message.sent_at)
    assert [(m.message_id, m.number, m.batch_id, m.custom, m.status) for m in history] == [
        (a.message_id, a.number, a.batch_id, f"job1:row-{i}", "P")
        for i, a in enumerate(got.accepted.values(), start=2)
    ]
    assert [m.message_id for m in history] == [str(FIRST_MESSAGE_ID + i) for i in range(3)]


def test_history_time_window_and_paging(outbox):
    clock = Clock(T0)
    session = CountingSession()
    with (
        SandboxServer(outbox, api_key=KEY, clock=clock) as sandbox,
        TextlocalClient(KEY, sandbox.url, session=session) as tl,
    ):
        for i in range(5):  # one message every 100 s
            clock.now = T0 + 100 * i
            tl.send_bulk([Outgoing(f"91987654321{i}", f"m{i}", custom=f"c{i}")], sender="ABCDEF")
        session.posts.clear()
        everything = tl.history(page_size=2)
        assert [m.custom for m in everything] == ["c0", "c1", "c2", "c3", "c4"]
        assert [(p["start"], p["limit"], p["sort_order"]) for p in session.posts] == [
            ("0", "2", "asc"),
            ("2", "2", "asc"),
            ("4", "2", "asc"),
        ]
        assert everything[0] == HistoryMessage(
            str(FIRST_MESSAGE_ID),
            "919876543210",
            str(FIRST_BATCH_ID),
            "c0",
            "D",
            "2023-11-15 03:43:20",
            "m0",
        )
        assert [m.custom for m in tl.history(min_time=T0 + 100)] == ["c1", "c2", "c3", "c4"]
        assert [m.custom for m in tl.history(max_time=T0 + 100)] == ["c0", "c1"]
        assert [
            m.custom for m in tl.history(min_time=T0 + 101, max_time=T0 + 300, page_size=1)
        ] == ["c2", "c3"]
        assert tl.history(min_time=T0 + 401) == []
        session.posts.clear()
        tl.history(min_time=T0, max_time=T0 + 50)
        assert session.posts == [
            {
                "start": "0",
                "limit": "1000",
                "min_time": str(T0),
                "max_time": str(T0 + 50),
                "sort_order": "asc",
            }
        ]


# -- hygiene --------------------------------------------------------------------------------


def test_key_and_bodies_never_reach_stderr_or_the_outbox(server, client, outbox, capfd):
    client.send_bulk([Outgoing("919876543210", "secret body")], sender="ABCDEF")
    requests.get(server.url + "balance/", params={"apikey": KEY}, timeout=5)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    server.stop()
    for path in outbox.parent.iterdir():
        assert KEY.encode() not in path.read_bytes()


def test_stop_is_idempotent_and_url_is_loopback(outbox):
    sandbox = SandboxServer(outbox)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", sandbox.url)
    sandbox.stop()  # never started: must not hang
    sandbox.stop()


def test_port_in_use_is_input_error(outbox):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InputError, match=f"cannot listen on 127.0.0.1:{port}"):
            SandboxServer(outbox, port=port)


def test_read_outbox_missing_file(tmp_path):
    with pytest.raises(InputError, match="no sandbox outbox here"):
        read_outbox(tmp_path / "none.sqlite")


def test_unusable_outbox_is_input_error(tmp_path):
    (tmp_path / "not.sqlite").write_text("this is not a database\n" * 100)
    with pytest.raises(InputError, match="cannot open the sandbox outbox"):
        SandboxServer(tmp_path / "not.sqlite")


def test_a_body_over_the_limit_is_refused_unread_with_413(server, outbox):
    import http.client
    import urllib.parse

    from pipeline.sandbox.server import MAX_BODY

    url = urllib.parse.urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        # Only the headers go: the server must answer from Content-Length, without reading.
        conn.putrequest("POST", "/send/")
        conn.putheader("Content-Type", "application/x-www-form-urlencoded")
        conn.putheader("Content-Length", str(MAX_BODY + 1))
        conn.endheaders()
        assert conn.getresponse().status == 413
    finally:
        conn.close()
    assert server.outbox() == []
