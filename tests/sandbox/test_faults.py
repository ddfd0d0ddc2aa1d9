"""Sandbox fault switches, each observed through the real client against the real server."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from pipeline.errors import InputError, OutcomeUnknown
from pipeline.providers.textlocal.client import Outgoing, RateLimited, TextlocalClient
from pipeline.sandbox.server import FaultCounts, Faults, SandboxServer, read_outbox

KEY = "fault-key"
NUMBERS = [f"9198765432{i:02d}" for i in range(10)]


@pytest.fixture
def api_key():
    return KEY


@pytest.fixture
def sandbox_options(api_key):
    return {"api_key": api_key, "balance": 100}  # no test clock: faults take real time


def send(client, index, text="hi"):
    """One single-message bulk_json request to NUMBERS[index]."""
    return client.send_bulk(
        [Outgoing(NUMBERS[index], text, custom=f"row-{index}")], sender="ABCDEF"
    )


def recorded(outbox):
    return [row["number"] for row in read_outbox(outbox)]


@pytest.mark.slow
def test_latency_applies_to_every_request(server, client):
    server.faults = Faults(latency=0.3)
    started = time.monotonic()
    assert client.balance() == 100
    send(client, 0)
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 2.6
    assert server.fault_counts == FaultCounts(sending=1)


def test_every_second_send_is_rate_limited_and_not_recorded(server, client, outbox):
    server.faults = Faults(rate_limit_every=2)
    outcomes = []
    for i in range(4):
        assert client.balance() == 100 - outcomes.count("sent")  # reads never count
        try:
            send(client, i)
            outcomes.append("sent")
        except RateLimited as exc:
            assert exc.retry_after == 1.0
            assert str(exc).startswith(
                "Textlocal /bulk_json/ answered HTTP 429 Too Many "
                "Requests (too many requests, nothing sent): wait 1 s"
            )
            outcomes.append("429")
    assert outcomes == ["sent", "429", "sent", "429"]
    assert recorded(outbox) == [NUMBERS[0], NUMBERS[2]]
    assert server.fault_counts == FaultCounts(sending=4, rate_limited=2)


@pytest.mark.parametrize(
    ("seconds", "header", "expected"), [(1.0, "1", 1.0), (2.5, "2.5", 2.5), (0, "0", 0.0)]
)
def test_retry_after_header_format(server, client, seconds, header, expected):
    server.faults = Faults(rate_limit_every=1, retry_after=seconds)
    response = requests.post(
        server.url + "send/",
        timeout=5,
        data={"apikey": KEY, "numbers": NUMBERS[0], "message": "hi", "sender": "ABCDEF"},
    )
    assert (response.status_code, response.headers["Retry-After"]) == (429, header)
    assert response.text == "429 Too Many Requests\n"
    with pytest.raises(RateLimited) as info:
        send(client, 1)
    assert info.value.retry_after == expected
    assert server.outbox() == []


def test_server_error_records_nothing_by_default(server, client, outbox):
    server.faults = Faults(error_every=1)
    with pytest.raises(OutcomeUnknown) as info:
        send(client, 0)
    assert str(info.value) == (
        "Textlocal /bulk_json/ answered HTTP 500 Internal Server Error: the messages may or may "
        "not have been sent; check the Textlocal history before resending"
    )
    assert recorded(outbox) == []
    assert client.balance() == 100


def test_server_error_after_recording(server, client, outbox):
    server.faults = Faults(error_every=1, error_status=503, error_records=True)
    with pytest.raises(
        OutcomeUnknown,
        match=r"^Textlocal /bulk_json/ answered HTTP 503 Service "
        r"Unavailable: ",
    ):
        send(client, 0)
    assert recorded(outbox) == [NUMBERS[0]]
    assert client.balance() == 99  # charged: the provider did send it
    assert server.fault_counts == FaultCounts(sending=1, errors=1)


def test_dropped_connection_after_recording(server, client, outbox, capfd):
    server.faults = Faults(drop_every=2)
    send(client, 0)
    with pytest.raises(OutcomeUnknown) as info:
        client.send_bulk([Outgoing(NUMBERS[1], "a"), Outgoing(NUMBERS[2], "b")], sender="ABCDEF")
    assert str(info.value).startswith("Textlocal /bulk_json/ did not answer (ConnectionError: ")
    assert "the messages may or may not have been sent" in str(info.value)
    assert recorded(outbox) == NUMBERS[:3]
    send(client, 3)  # the server is still healthy
    assert server.fault_counts == FaultCounts(sending=3, dropped=1)
    server.stop()
    assert capfd.readouterr() == ("", "")


@pytest.mark.slow
def test_hang_past_the_read_timeout_then_stop_is_prompt(server, outbox, capfd):
    server.faults = Faults(hang_every=1, hang_seconds=30)
    with TextlocalClient(KEY, server.url, timeout=(5.0, 0.5)) as tl:
        started = time.monotonic()
        with pytest.raises(OutcomeUnknown, match="did not answer .*ReadTimeout"):
            tl.send_bulk([Outgoing(NUMBERS[0], "hi")], sender="ABCDEF")
        assert time.monotonic() - started < 2
        # The hanging handler blocks nobody else.
        assert tl.balance() == 99
    assert recorded(outbox) == [NUMBERS[0]]
    assert server.fault_counts == FaultCounts(sending=1, hung=1)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    assert capfd.readouterr() == ("", "")


def test_hang_shorter_than_the_read_timeout_still_answers(server, client, outbox):
    server.faults = Faults(hang_every=1, hang_seconds=0.3)
    started = time.monotonic()
    got = send(client, 0)
    assert 0.3 <= time.monotonic() - started < 2.3
    assert list(got.accepted) == [NUMBERS[0]]
    assert recorded(outbox) == [NUMBERS[0]]


def test_stop_wakes_a_request_waiting_out_latency(outbox):
    sandbox = SandboxServer(outbox, balance=7, faults=Faults(latency=30)).start()
    answers = []

    def slow_read():
        with TextlocalClient("k", sandbox.url, timeout=(5.0, 60.0)) as tl:
            answers.append(tl.balance())

    reader = threading.Thread(target=slow_read)
    reader.start()
    time.sleep(0.3)
    started = time.monotonic()
    sandbox.stop()
    reader.join(5)
    assert time.monotonic() - started < 2
    assert not reader.is_alive()
    assert answers == [7]  # woken early, the request in flight is still answered


def test_precedence_and_counter_restart(server, client, outbox):
    # Every 2nd is both a 429 and a 500: 429 wins; every 3rd is dropped.
    server.faults = Faults(rate_limit_every=2, error_every=2, drop_every=3)
    outcomes = []
    for i in range(6):
        try:
            send(client, i)
            outcomes.append("sent")
        except RateLimited:
            outcomes.append("429")
        except OutcomeUnknown:
            outcomes.append("unknown")
    assert outcomes == ["sent", "429", "unknown", "429", "sent", "429"]
    assert recorded(outbox) == [NUMBERS[0], NUMBERS[2], NUMBERS[4]]
    # New faults restart "every k-th"; the counts keep adding up.
    server.faults = Faults(rate_limit_every=2)
    send(client, 6)
    with pytest.raises(RateLimited):
        send(client, 7)
    assert server.faults == Faults(rate_limit_every=2)
    assert server.fault_counts == FaultCounts(sending=8, rate_limited=4, dropped=1)


def test_faults_given_at_construction_and_switched_off(outbox):
    with (
        SandboxServer(outbox, faults=Faults(error_every=1)) as sandbox,
        TextlocalClient("k", sandbox.url) as tl,
    ):
        with pytest.raises(OutcomeUnknown):
            tl.send_bulk([Outgoing(NUMBERS[0], "hi")], sender="ABCDEF")
        sandbox.faults = None
        assert sandbox.faults == Faults()
        assert list(tl.send_bulk([Outgoing(NUMBERS[1], "hi")], sender="ABCDEF").accepted) == [
            NUMBERS[1]
        ]
        assert recorded(outbox) == [NUMBERS[1]]


def test_send_endpoint_counts_too(server, outbox):
    server.faults = Faults(error_every=1)
    response = requests.post(
        server.url + "send/",
        timeout=5,
        data={"apikey": KEY, "numbers": NUMBERS[0], "message": "hi", "sender": "ABCDEF"},
    )
    assert (response.status_code, response.text) == (500, "500 Internal Server Error\n")
    assert requests.post(server.url + "balance/", data={"apikey": KEY}, timeout=5).json() == {
        "balance": {"sms": 100},
        "status": "success",
    }
    assert server.fault_counts == FaultCounts(sending=1, errors=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"rate_limit_every": -1},
            "sandbox fault --rate-limit-every is -1; it must be a whole "
            "number >= 0 (0 turns it off)",
        ),
        ({"drop_every": 1.5}, "sandbox fault --drop-every is 1.5; it must be a whole number >= 0"),
        ({"hang_every": True}, "sandbox fault --hang-every is True; it must be a whole number"),
        ({"latency": -0.1}, "sandbox fault --latency is -0.1; it must be a number of seconds"),
        (
            {"retry_after": "1"},
            "sandbox fault --retry-after is '1'; it must be a number of seconds",
        ),
        (
            {"error_status": 404},
            "sandbox fault --error-status is 404; it must be an HTTP 5xx status",
        ),
        (
            {"echo_key": "body"},
            "sandbox fault --echo-key is 'body'; it must be one of reason, error, "
            "upper, json-key, json-value, retry-after",
        ),
        ({"echo_key": ("reason", 1)}, "sandbox fault --echo-key is 1; it must be one of reason"),
        ({"echo_key": None}, "sandbox fault --echo-key is None; it must be a place or a tuple"),
        (
            {"echo_key": "retry-after"},
            "sandbox fault --echo-key retry-after needs --rate-limit-every",
        ),
    ],
)
def test_invalid_faults_are_input_errors(kwargs, message):
    with pytest.raises(InputError) as info:
        Faults(**kwargs)
    assert str(info.value).startswith(message)


def test_describe():
    assert Faults().describe() == "no faults"
    assert Faults(
        latency=0.25,
        rate_limit_every=2,
        retry_after=1.5,
        error_every=3,
        error_status=503,
        drop_every=1,
        hang_every=11,
        hang_seconds=30,
    ).describe() == (
        "0.25 s latency; HTTP 429 (Retry-After 1.5) every 2nd send; HTTP 503 (not recorded) "
        "every 3rd send; connection dropped after recording every send; answer held 30 s "
        "after recording every 11th send"
    )
    assert Faults(error_every=21, error_records=True).describe() == (
        "HTTP 500 (recorded) every 21st send"
    )
    assert Faults(echo_key=("reason", "json-value")).describe() == (
        "the API key echoed in every reason phrase, the ids and refusal texts of success bodies"
    )


# -- echo_key: the answer quotes back the key the request sent ----------------------------

ECHO_KEY = "Echo-Key+7/x="  # what the client sends; answers quote it back as received


def post(server, command, **fields):
    return requests.post(server.url + command + "/", data={"apikey": ECHO_KEY, **fields}, timeout=5)


def bulk(server, *numbers):
    data = {"sender": "ABCDEF", "messages": [{"number": n, "text": "hi"} for n in numbers]}
    return post(server, "bulk_json", data=json.dumps(data))


@pytest.fixture
def any_key_server(outbox):
    with SandboxServer(outbox, balance=100) as sandbox:  # no api_key: any key is accepted
        yield sandbox


def test_echo_key_is_one_place_or_several_kept_as_a_tuple():
    assert Faults(echo_key="reason").echo_key == ("reason",)
    assert Faults(echo_key=["upper", "error", "upper"]).echo_key == ("upper", "error")
    assert Faults(echo_key="json-key") == Faults(echo_key=("json-key",))
    assert Faults().echo_key == ()


def test_echo_in_the_reason_phrase_of_every_answer(any_key_server):
    any_key_server.faults = Faults(echo_key="reason", rate_limit_every=2, error_every=3)
    answers = [bulk(any_key_server, NUMBERS[i]) for i in range(3)]
    answers.append(post(any_key_server, "balance"))
    assert [(a.status_code, a.reason) for a in answers] == [
        (200, f"OK {ECHO_KEY}"),
        (429, f"Too Many Requests {ECHO_KEY}"),
        (500, f"Internal Server Error {ECHO_KEY}"),
        (200, f"OK {ECHO_KEY}"),
    ]
    assert answers[1].headers["Retry-After"] == "1"  # only `retry-after` touches it
    assert ECHO_KEY not in answers[0].text


@pytest.mark.parametrize(
    ("places", "quoted"),
    [
        ("error", ECHO_KEY),
        ("upper", ECHO_KEY.upper()),
        (("error", "upper"), f"{ECHO_KEY} / {ECHO_KEY.upper()}"),
    ],
)
def test_echo_in_a_failure_for_every_send_records_nothing(any_key_server, outbox, places, quoted):
    any_key_server.faults = Faults(echo_key=places, rate_limit_every=2)
    first, second = bulk(any_key_server, NUMBERS[0]), bulk(any_key_server, NUMBERS[1])
    sent = post(any_key_server, "send", numbers=NUMBERS[2], message="hi", sender="ABCDEF")
    assert (
        first.json()
        == sent.json()
        == {
            "errors": [{"code": 3, "message": f"Invalid login details for apikey {quoted}"}],
            "status": "failure",
        }
    )
    assert second.status_code == 429  # a switch that picks the request comes first
    assert post(any_key_server, "balance").json() == {"balance": {"sms": 100}, "status": "success"}
    assert recorded(outbox) == []


def test_echo_as_a_json_member_name_in_every_object(any_key_server):
    any_key_server.faults = Faults(echo_key="json-key")
    body = bulk(any_key_server, NUMBERS[0], "12345").json()
    member = f"apikey {ECHO_KEY}"
    [group] = body["messages"]
    [refusal] = body["messages_not_sent"]
    for item in (body, group, group["message"], group["messages"][0], refusal, refusal["error"]):
        assert item[member] == "echoed"
    assert group["messages"][0]["id"] == 1151346216  # values untouched
    assert post(any_key_server, "balance").json()["balance"] == {"sms": 99, member: "echoed"}


def test_echo_in_message_ids_and_refusal_texts(any_key_server):
    any_key_server.faults = Faults(echo_key="json-value")
    body = bulk(any_key_server, NUMBERS[0], "12345").json()
    assert body["messages"][0]["messages"][0]["id"] == f"{ECHO_KEY}-1151346216"
    assert body["messages_not_sent"][0]["error"] == {
        "code": 32,
        "message": f"Invalid number format (apikey {ECHO_KEY})",
    }
    history = post(any_key_server, "get_history_api").json()
    assert [m["id"] for m in history["messages"]] == [f"{ECHO_KEY}-1151346216"]
    assert ECHO_KEY not in json.dumps(post(any_key_server, "balance").json())


def test_echo_in_the_retry_after_of_the_429s(any_key_server):
    any_key_server.faults = Faults(echo_key="retry-after", rate_limit_every=1, retry_after=2)
    answer = bulk(any_key_server, NUMBERS[0])
    assert (answer.status_code, answer.headers["Retry-After"]) == (429, f"2; apikey={ECHO_KEY}")
    assert answer.reason == "Too Many Requests"


def test_echo_of_a_key_with_a_line_break_stays_one_header(any_key_server):
    any_key_server.faults = Faults(echo_key=("reason", "retry-after"), rate_limit_every=1)
    answer = requests.post(
        any_key_server.url + "balance/", timeout=5, data={"apikey": "two\r\nX-Injected: yes"}
    )
    assert (answer.status_code, answer.reason) == (200, "OK two??X-Injected: yes")
    assert "X-Injected" not in answer.headers
