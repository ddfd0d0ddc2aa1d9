"""The sandbox's India rules (promotional hours, schedules, DLT templates, opt-outs), each
observed through the real client (or raw HTTP) against the real server, time set by `clock`."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest
import requests

from pipeline.errors import InputError, ProviderError
from pipeline.providers.textlocal.client import Outgoing, Refused, TextlocalClient
from pipeline.sandbox.server import SandboxServer, read_outbox
from pipeline.sms.window import Window
from pipeline.validate.dlt.matcher import DltTemplate
from tests.helpers import Clock

KEY = "rules-key"
IST = timezone(timedelta(hours=5, minutes=30))
# A 6-digit promotional header, a 6-letter one (docs/provider-api.md, "DLT templates and headers").
PROMO, OTHERS = "123456", "ACMEST"
A, B, C = "919876543210", "919812345678", "917012345678"


def ist(hour: int, minute: int = 0, second: int = 0, day: int = 24) -> int:
    """Unix seconds for a wall-clock time in India on a day of November 2025."""
    return int(datetime(2025, 11, day, hour, minute, second, tzinfo=IST).timestamp())


OTP = DltTemplate("1107160000000000001", "Hi {#var#}, your OTP is {#var#}. Valid 10 min (T&C*)")
OFFER = DltTemplate("1107160000000000002", "{#var#}: 20% off today at ACME")


@pytest.fixture
def api_key():
    return KEY


@pytest.fixture
def clock():
    return Clock(ist(12))


@pytest.fixture
def sandbox_options(api_key, clock):
    """A sandbox with this file's rules: promotional sends 10:00-21:00 unless a test says."""
    return {
        "api_key": api_key,
        "balance": 100,
        "clock": clock,
        "promo_window": Window.parse("10:00-21:00"),
    }


def post(server, command, **fields):
    response = requests.post(server.url + command, data=fields, timeout=5)
    assert response.status_code == 200
    return response.json()


def failure(code, message):
    return {"errors": [{"code": code, "message": message}], "status": "failure"}


def refused_code(call) -> int:
    with pytest.raises(ProviderError) as info:
        call()
    return info.value.code


# -- promotional hours ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "accepted"),
    [(ist(9, 59, 59), False), (ist(10), True), (ist(20, 59, 59), True), (ist(21), False)],
)
def test_promotional_sender_only_inside_the_window(sandbox, clock, outbox, now, accepted):
    server, client = sandbox()
    clock.now = now

    def send():
        return client.send_bulk([Outgoing(A, "Sale"), Outgoing(B, "Sale")], sender=PROMO)

    if accepted:
        assert sorted(send().accepted) == [B, A]
        assert client.balance() == 98
        assert [r["status"] for r in read_outbox(outbox, at=clock.now)] == ["P", "P"]
    else:
        with pytest.raises(ProviderError) as info:
            send()
        assert info.value.code == 192
        assert str(info.value).startswith(
            "Textlocal error 192: You cannot send message at this time. Promotional"
        )
        assert client.balance() == 100  # nothing charged
        assert server.outbox(include_test=True) == []  # nothing recorded


def test_six_letter_sender_is_not_windowed(sandbox, clock, outbox):
    server, client = sandbox()
    clock.now = ist(23)
    assert list(client.send_bulk([Outgoing(A, "Your order shipped")], sender=OTHERS).accepted) == [
        A
    ]
    assert [(r["number"], r["status"]) for r in read_outbox(outbox, at=clock.now + 2)] == [(A, "D")]


def test_send_form_is_windowed_too(sandbox, clock, outbox):
    server, _ = sandbox()
    clock.now = ist(6)
    assert post(server, "send/", apikey=KEY, numbers=A, message="Sale", sender=PROMO) == failure(
        192, "You cannot send message at this time"
    )
    body = post(
        server,
        "send/",
        apikey=KEY,
        numbers=A,
        message="Sale",
        sender=PROMO,
        schedule_time=str(ist(11)),
    )
    assert (body["status"], body["cost"], body["balance"]) == ("success", 1, 99)
    assert [(r["status"], r["scheduled_at"]) for r in read_outbox(outbox, at=clock.now)] == [
        ("scheduled", "2025-11-24T05:30:00+00:00")
    ]


def test_no_window_lets_promotional_send_any_time(sandbox, clock):
    _, client = sandbox(promo_window=None)
    clock.now = ist(3)
    assert list(client.send_bulk([Outgoing(A, "Sale")], sender=PROMO).accepted) == [A]


def test_default_window_is_ten_to_nine_ist(outbox, clock):
    with (
        SandboxServer(outbox, api_key=KEY, clock=clock) as server,
        TextlocalClient(KEY, server.url) as client,
    ):
        for now, code in ((ist(9, 59, 59), 192), (ist(21), 192)):
            clock.now = now
            assert refused_code(lambda: client.send_bulk([Outgoing(A, "x")], sender=PROMO)) == code
        clock.now = ist(10)
        assert list(client.send_bulk([Outgoing(A, "x")], sender=PROMO).accepted) == [A]


# -- schedules ------------------------------------------------------------------------------


def test_schedule_inside_the_next_window_is_accepted_as_scheduled(sandbox, clock, outbox):
    server, client = sandbox()
    clock.now = ist(23)  # the window is closed now; tomorrow 10:30 IST is inside it
    later = ist(10, 30, day=25)
    got = client.send_bulk(
        [Outgoing(A, "Sale", custom="job:row-2"), Outgoing(B, "Sale")],
        sender=PROMO,
        schedule_time=later,
    )
    assert sorted(got.accepted) == [B, A]
    assert (got.total_cost, got.balance) == (2, 98)  # charged when accepted
    rows = read_outbox(outbox, at=clock.now)
    assert [(r["number"], r["status"], r["scheduled_at"]) for r in rows] == [
        (A, "scheduled", "2025-11-25T05:00:00+00:00"),
        (B, "scheduled", "2025-11-25T05:00:00+00:00"),
    ]
    assert rows[0]["created_at"] == "2025-11-24T17:30:00+00:00"
    history = client.history()
    assert [(m.number, m.custom, m.status) for m in history] == [
        (A, "job:row-2", "scheduled"),
        (B, None, "scheduled"),
    ]
    accepted = got.accepted[A]
    assert client.status_message(accepted.message_id)["message"]["status"] == "scheduled"
    batch = client.status_batch(accepted.batch_id)
    assert batch["messages"] == [{"recipient": int(A), "status": "scheduled"}]
    assert batch["num_delivered"] == 0


def test_six_letter_sender_may_schedule_any_future_time(sandbox, clock, outbox):
    _, client = sandbox()
    clock.now = ist(12)
    client.send_bulk([Outgoing(A, "Reminder")], sender=OTHERS, schedule_time=ist(23, 30))
    assert [(r["status"], r["scheduled_at"]) for r in read_outbox(outbox, at=clock.now)] == [
        ("scheduled", "2025-11-24T18:00:00+00:00")
    ]


@pytest.mark.parametrize("sender", [PROMO, OTHERS])
def test_schedule_in_the_past_is_9(sandbox, clock, outbox, sender):
    server, client = sandbox()
    clock.now = ist(12)
    assert (
        refused_code(
            lambda: client.send_bulk(
                [Outgoing(A, "x")], sender=sender, schedule_time=ist(11, 59, 59)
            )
        )
        == 9
    )
    # the current second itself is not in the past
    client.send_bulk([Outgoing(A, "x")], sender=sender, schedule_time=ist(12))
    # due at once: pending straight away, as if sent now
    assert [(r["status"], r["scheduled_at"]) for r in read_outbox(outbox, at=clock.now)] == [
        ("P", "2025-11-24T06:30:00+00:00")
    ]


@pytest.mark.parametrize("later", [ist(9, 59, 59, day=25), ist(21, day=25), ist(23, 59)])
def test_promotional_schedule_outside_the_window_is_191(sandbox, clock, later):
    server, client = sandbox()
    clock.now = ist(12)
    assert (
        refused_code(
            lambda: client.send_bulk([Outgoing(A, "x")], sender=PROMO, schedule_time=later)
        )
        == 191
    )
    assert server.outbox(include_test=True) == []
    assert client.balance() == 100


@pytest.mark.parametrize("when", ["soon", -5, 1.5, "253402300800", True])
def test_invalid_schedule_time_is_8(sandbox, when):
    server, _ = sandbox()
    data = {"sender": OTHERS, "schedule_time": when, "messages": [{"number": A, "text": "x"}]}
    assert post(server, "bulk_json/", apikey=KEY, data=json.dumps(data)) == failure(
        8, "Invalid schedule date"
    )
    assert server.outbox(include_test=True) == []


# -- DLT templates --------------------------------------------------------------------------


def test_only_texts_matching_a_template_are_accepted(sandbox, outbox):
    _, client = sandbox(dlt_templates=[OTP, OFFER])
    exact = "Hi Asha, your OTP is 4821. Valid 10 min (T&C*)"
    got = client.send_bulk(
        [
            Outgoing(A, exact),
            Outgoing(B, "Hi Asha,  your OTP is 4821. Valid 10 min (T&C*)"),  # an extra space
            Outgoing(C, "Diwali: 20% off today at ACME"),
            Outgoing("916012345678", "Hi " + "x" * 31 + ", your OTP is 1. Valid 10 min (T&C*)"),
            Outgoing("918012345678", "Hi " + "x" * 30 + ", your OTP is 1. Valid 10 min (T&C*)"),
            Outgoing("919012345678", "Hi Asha, your OTP is 4821. Valid 10 min (TXC*)"),  # & literal
            Outgoing("916112345678", "Hi Ravi\nKumar, your OTP is . Valid 10 min (T&C*)"),
            Outgoing("917112345678", "Diwali: 20% off today at ACME "),  # a trailing space
        ],
        sender=OTHERS,
    )
    assert sorted(got.accepted) == ["916112345678", C, "918012345678", A]
    assert got.refused == {
        n: Refused(n, 80, "Invalid template")
        for n in (B, "916012345678", "919012345678", "917112345678")
    }
    assert (got.total_cost, got.balance) == (4, 96)
    assert read_outbox(outbox)[0]["message"] == exact


def test_without_templates_there_is_no_check(sandbox):
    _, client = sandbox()
    got = client.send_bulk([Outgoing(A, "anything  at all")], sender=OTHERS)
    assert list(got.accepted) == [A] and got.refused == {}


def test_an_empty_template_list_refuses_every_text(sandbox):
    _, client = sandbox(dlt_templates=[])
    got = client.send_bulk([Outgoing(A, "anything")], sender=OTHERS)
    assert got.accepted == {} and got.refused == {A: Refused(A, 80, "Invalid template")}


def test_send_form_fails_whole_request_on_template_mismatch(sandbox, outbox):
    server, _ = sandbox(dlt_templates=[OFFER])
    assert post(
        server, "send/", apikey=KEY, numbers=f"{A},{B}", message="20% off today", sender=OTHERS
    ) == failure(80, "Invalid template")
    assert read_outbox(outbox) == []
    body = post(
        server,
        "send/",
        apikey=KEY,
        numbers=f"{A},{B}",
        message="Sale: 20% off today at ACME",
        sender=OTHERS,
    )
    assert body["num_messages"] == 2


def test_get_templates_lists_the_configured_ones(sandbox):
    server, _ = sandbox(dlt_templates=[OFFER])
    assert post(server, "get_templates/", apikey=KEY) == {
        "templates": [
            {"id": OFFER.id, "title": OFFER.id, "body": OFFER.text, "senderName": "", "isMyDND": ""}
        ],
        "status": "success",
    }


# -- opt-outs -------------------------------------------------------------------------------


def test_optouts_true_skips_listed_numbers_without_charge(sandbox, outbox):
    _, client = sandbox(optouts=[B, "+" + C])  # wire form and E.164 both work
    got = client.send_bulk(
        [Outgoing(A, "a"), Outgoing(B, "b"), Outgoing(C, "c")], sender=OTHERS, optouts=True
    )
    assert list(got.accepted) == [A]
    assert got.refused == {n: Refused(n, 94, "Number is on the opt-out list") for n in (B, C)}
    assert (got.total_cost, got.balance) == (1, 99)
    assert [r["number"] for r in read_outbox(outbox)] == [A]


def test_without_the_optouts_flag_listed_numbers_are_sent(sandbox, outbox):
    _, client = sandbox(optouts=[B])
    got = client.send_bulk([Outgoing(A, "a"), Outgoing(B, "b")], sender=OTHERS)
    assert sorted(got.accepted) == [B, A] and got.refused == {}
    assert (got.total_cost, got.balance) == (2, 98)


def test_send_form_warns_per_skipped_number(sandbox, outbox):
    server, _ = sandbox(optouts=[B, C])
    body = post(
        server,
        "send/",
        apikey=KEY,
        numbers=f"{A},{B},12345,{C}",
        message="hi",
        sender=OTHERS,
        optouts="true",
    )
    assert [m["recipient"] for m in body["messages"]] == [int(A)]
    assert (body["cost"], body["balance"]) == (1, 99)
    assert (
        body["warnings"]
        == [{"code": 3, "message": "Invalid number"}]
        + [{"code": 94, "message": "Number is on the opt-out list"}] * 2
    )
    assert post(
        server, "send/", apikey=KEY, numbers=f"{B},{C}", message="hi", sender=OTHERS, optouts="1"
    ) == failure(51, "No valid numbers specified")
    assert [r["number"] for r in read_outbox(outbox)] == [A]


@pytest.mark.parametrize("bad", ["9876543210", "+14155550100", "91987654321x"])
def test_bad_optout_number_is_input_error(outbox, bad):
    with pytest.raises(InputError, match=re.escape(f"sandbox opt-out number '{bad}' is not")):
        SandboxServer(outbox, optouts=[A, bad])
    assert not outbox.exists()


# -- the outbox across versions -------------------------------------------------------------


def test_outbox_from_before_scheduling_is_upgraded_in_place(outbox, clock):
    with (
        SandboxServer(outbox, api_key=KEY, balance=10, clock=clock) as server,
        TextlocalClient(KEY, server.url) as client,
    ):
        client.send_bulk([Outgoing(A, "old")], sender=OTHERS)
    with sqlite3.connect(outbox) as db:  # as an earlier sandbox left it: "D" at once
        db.execute("DROP INDEX messages_receipts_due")
        for column in (
            "scheduled_at",
            "due_at",
            "final_status",
            "final_at",
            "receipt_url",
            "receipt_state",
        ):
            db.execute(f"ALTER TABLE messages DROP COLUMN {column}")
        db.execute("UPDATE messages SET status = 'D'")
    db.close()
    assert [(r["message"], r["status"], r["scheduled_at"]) for r in read_outbox(outbox)] == [
        ("old", "D", None)
    ]
    with (
        SandboxServer(outbox, api_key=KEY, clock=clock) as server,
        TextlocalClient(KEY, server.url) as client,
    ):
        client.send_bulk([Outgoing(B, "new")], sender=OTHERS, schedule_time=int(clock.now) + 60)
        assert client.balance() == 8
    rows = read_outbox(outbox, at=clock.now)
    assert [(r["message"], r["status"], r["scheduled_at"]) for r in rows] == [
        ("old", "D", None),
        ("new", "scheduled", datetime.fromtimestamp(clock.now + 60, UTC).isoformat()),
    ]
    assert [r["status"] for r in read_outbox(outbox, at=clock.now + 62)] == ["D", "D"]
