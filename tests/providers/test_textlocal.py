"""The Textlocal client against HTTP faked at the transport (responses): real request code."""

from __future__ import annotations

import json
import socket
import urllib.parse
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
from responses import matchers
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError, ProtocolError

from pipeline.errors import InputError, NotSentError, OutcomeUnknown, ProviderError
from pipeline.providers.textlocal.client import (
    BULK_LIMIT,
    DEFAULT_BASE_URL,
    Accepted,
    BulkResponse,
    HistoryMessage,
    Outgoing,
    RateLimited,
    Refused,
    TextlocalClient,
    api_key_from_env,
)

KEY = "sEcReT+key/=42"  # URL-special characters: a leak in encoded form is caught too
KEY_FORMS = (KEY, "sEcReT%2Bkey%2F%3D42", "sEcReT+key%2F%3D42")
BULK = DEFAULT_BASE_URL + "bulk_json/"
BALANCE = DEFAULT_BASE_URL + "balance/"
HISTORY = DEFAULT_BASE_URL + "get_history_api/"
TRICKY = "50% off + free & more\nनमस्ते €"
TRICKY_WIRE = (  # PHP rawurlencode() of TRICKY, written out by hand
    "50%25%20off%20%2B%20free%20%26%20more%0A"
    "%E0%A4%A8%E0%A4%AE%E0%A4%B8%E0%A5%8D%E0%A4%A4%E0%A5%87%20%E2%82%AC"
)
BULK_OK = {
    "test": False,
    "balance_pre_send": 100,
    "total_cost": 3,
    "balance_post_send": 97,
    "messages": [
        {
            "balance": 98,
            "batch_id": 596486325,
            "cost": 2,
            "num_messages": 1,
            "message": {"num_parts": 2, "sender": "ABCDEF", "content": "x"},
            "receipt_url": "",
            "custom": "r1",
            "messages": [{"id": 1, "recipient": "919876543210"}],
        },
        {
            "balance": 97,
            "batch_id": "596486326",
            "cost": 1,
            "num_messages": 1,
            "message": {"num_parts": 1, "sender": "ABCDEF", "content": "y"},
            "receipt_url": "",
            "custom": "",
            "messages": [{"id": "1151346217", "recipient": 919812345678}],
        },
    ],
    "messages_not_sent": [
        {
            "unique_id": "",
            "number": "12345",
            "message": "z",
            "error": {"code": 32, "message": "Invalid number format"},
        },
        {
            "unique_id": "",
            "number": 917012345678,
            "message": "w",
            "error": {"code": "6", "message": "Message too long"},
        },
    ],
    "warnings": [{"code": 3, "message": "Invalid number"}],
    "status": "success",
}


@pytest.fixture
def api_key():
    return KEY


@pytest.fixture
def base_url():
    return DEFAULT_BASE_URL


def assert_no_key(text: str) -> None:
    for form in KEY_FORMS:
        assert form not in text


def bulk_data(call) -> dict:
    """The decoded `data` JSON of a recorded bulk_json request."""
    form = dict(urllib.parse.parse_qsl(call.request.body, strict_parsing=True))
    return json.loads(form["data"])


# -- the request --------------------------------------------------------------------------


def test_send_bulk_posts_form_with_rawurlencoded_texts(rsps, client):
    data = {
        "sender": "ABCDEF",
        "test": False,
        "unicode": True,
        "messages": [
            {"number": "919876543210", "text": TRICKY_WIRE},
            {"number": "919812345678", "text": "Hi%20Asha%2C%20OTP%201234", "custom": "row-7"},
        ],
    }
    rsps.post(
        BULK,
        json=BULK_OK,
        match=[
            matchers.urlencoded_params_matcher(
                {"apikey": KEY, "data": json.dumps(data, ensure_ascii=False)}
            )
        ],
    )
    client.send_bulk(
        [
            Outgoing("919876543210", TRICKY),
            Outgoing("919812345678", "Hi Asha, OTP 1234", custom="row-7"),
        ],
        sender="ABCDEF",
    )
    call = rsps.calls[0]
    assert call.request.url == BULK
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert bulk_data(call) == data
    assert_no_key(call.request.url)
    assert all(KEY not in v for v in call.request.headers.values())


def test_send_bulk_gsm_text_without_sender_has_no_unicode_flag(rsps, client):
    rsps.post(BULK, json=BULK_OK)
    client.send_bulk([Outgoing("919876543210", "Price {5} ~ 10€")], sender=None, test=True)
    assert bulk_data(rsps.calls[0]) == {
        "test": True,
        "messages": [{"number": "919876543210", "text": "Price%20%7B5%7D%20~%2010%E2%82%AC"}],
    }


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:9/api", "http://127.0.0.1:9/api/"])
def test_base_url_joined_with_or_without_slash(rsps, base_url):
    rsps.post("http://127.0.0.1:9/api/balance/", json={"balance": {"sms": 5}, "status": "success"})
    with TextlocalClient(KEY, base_url) as tl:
        assert tl.balance() == 5


def test_timeout_is_passed_on_every_call(rsps):
    rsps.post(BULK, json=BULK_OK)
    rsps.post(BALANCE, json={"balance": {"sms": 1}, "status": "success"})
    rsps.post(DEFAULT_BASE_URL + "status_batch/", json={"status": "success"})
    rsps.post(DEFAULT_BASE_URL + "status_message/", json={"status": "success"})
    rsps.post(HISTORY, json={"messages": [], "total": 0, "status": "success"})
    with TextlocalClient(KEY, timeout=(2.0, 9.0)) as tl:
        tl.send_bulk([Outgoing("919876543210", "a")], sender="ABCDEF")
        tl.balance()
        tl.status_batch("1")
        tl.status_message("2")
        tl.history()
    assert [c.request.req_kwargs["timeout"] for c in rsps.calls] == [(2.0, 9.0)] * 5


def test_default_timeout(rsps, client):
    rsps.post(BALANCE, json={"balance": {"sms": 1}, "status": "success"})
    client.balance()
    assert rsps.calls[0].request.req_kwargs["timeout"] == (5.0, 60.0)


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ([], "at least one"),
        ([Outgoing(f"9198765{i:05d}", "a") for i in range(BULK_LIMIT + 1)], "at most 500"),
        ([Outgoing("919876543210", "a"), Outgoing("919876543210", "b")], "twice"),
        ([Outgoing("+919876543210", "a")], "wire form"),
    ],
)
def test_send_bulk_rejects_bad_chunks(rsps, client, messages, reason):
    with pytest.raises(ValueError, match=reason):
        client.send_bulk(messages, sender="ABCDEF")
    assert len(rsps.calls) == 0


def test_exactly_bulk_limit_is_sent(rsps, client):
    rsps.post(BULK, json={"messages": [], "messages_not_sent": [], "status": "success"})
    client.send_bulk([Outgoing(f"9198765{i:05d}", "a") for i in range(BULK_LIMIT)], sender="X")
    assert len(bulk_data(rsps.calls[0])["messages"]) == 500


def test_schedule_time_and_optouts_go_top_level_in_data(rsps, client):
    data = {
        "sender": "123456",
        "test": False,
        "schedule_time": 1764000000,
        "optouts": True,
        "messages": [{"number": "919876543210", "text": "Hi"}],
    }
    rsps.post(
        BULK,
        json=BULK_OK,
        match=[
            matchers.urlencoded_params_matcher(
                {"apikey": KEY, "data": json.dumps(data, ensure_ascii=False)}
            )
        ],
    )
    client.send_bulk(
        [Outgoing("919876543210", "Hi")], sender="123456", schedule_time=1764000000, optouts=True
    )
    assert bulk_data(rsps.calls[0]) == data


@pytest.mark.parametrize(
    ("kwargs", "extra"),
    [
        ({}, {}),
        ({"schedule_time": None, "optouts": False}, {}),
        ({"schedule_time": 0}, {"schedule_time": 0}),
        ({"optouts": True}, {"optouts": True}),
    ],
)
def test_schedule_time_and_optouts_only_when_set(rsps, client, kwargs, extra):
    data = {
        "sender": "ABCDEF",
        "test": True,
        **extra,
        "messages": [{"number": "919876543210", "text": "Hi"}],
    }
    rsps.post(
        BULK,
        json=BULK_OK,
        match=[
            matchers.urlencoded_params_matcher(
                {"apikey": KEY, "data": json.dumps(data, ensure_ascii=False)}
            )
        ],
    )
    client.send_bulk([Outgoing("919876543210", "Hi")], sender="ABCDEF", test=True, **kwargs)


def test_receipt_url_goes_top_level_in_data(rsps, client):
    url = "https://hooks.example.in/receipts?via=smsbatch&x=1"
    data = {
        "sender": "ABCDEF",
        "test": False,
        "receipt_url": url,
        "messages": [{"number": "919876543210", "text": "Hi", "custom": "smsbatch-1-2"}],
    }
    rsps.post(
        BULK,
        json=BULK_OK,
        match=[
            matchers.urlencoded_params_matcher(
                {"apikey": KEY, "data": json.dumps(data, ensure_ascii=False)}
            )
        ],
    )
    client.send_bulk(
        [Outgoing("919876543210", "Hi", custom="smsbatch-1-2")], sender="ABCDEF", receipt_url=url
    )
    assert bulk_data(rsps.calls[0])["receipt_url"] == url


@pytest.mark.parametrize("url", [None, ""])
def test_no_receipt_url_key_unless_given(rsps, client, url):
    data = {
        "sender": "ABCDEF",
        "test": False,
        "messages": [{"number": "919876543210", "text": "Hi"}],
    }
    rsps.post(
        BULK,
        json=BULK_OK,
        match=[
            matchers.urlencoded_params_matcher(
                {"apikey": KEY, "data": json.dumps(data, ensure_ascii=False)}
            )
        ],
    )
    client.send_bulk([Outgoing("919876543210", "Hi")], sender="ABCDEF", receipt_url=url)


@pytest.mark.parametrize("url", ["ftp://host/r", "/receipts", "http://", "localhost:8080/r"])
def test_bad_receipt_url_is_rejected_before_sending(rsps, client, url):
    with pytest.raises(ValueError, match="receipt_url must be an http"):
        client.send_bulk([Outgoing("919876543210", "Hi")], sender="ABCDEF", receipt_url=url)
    assert len(rsps.calls) == 0


@pytest.mark.parametrize("when", [-1, 1.5, "1764000000", True])
def test_bad_schedule_time_is_rejected_before_sending(rsps, client, when):
    with pytest.raises(ValueError, match="schedule_time must be unix seconds"):
        client.send_bulk([Outgoing("919876543210", "Hi")], sender="ABCDEF", schedule_time=when)
    assert len(rsps.calls) == 0


# -- the answer ---------------------------------------------------------------------------


def test_bulk_answer_maps_int_and_str_ids_and_recipients(rsps, client):
    rsps.post(BULK, json=BULK_OK)
    got = client.send_bulk([Outgoing("919876543210", "x")], sender="ABCDEF")
    assert got == BulkResponse(
        accepted={
            "919876543210": Accepted("919876543210", "1", "596486325", 2),
            "919812345678": Accepted("919812345678", "1151346217", "596486326", 1),
        },
        refused={
            "12345": Refused("12345", 32, "Invalid number format"),
            "917012345678": Refused("917012345678", 6, "Message too long"),
        },
        balance=97,
        total_cost=3,
        test_mode=False,
    )


def test_plain_send_shape_is_accepted(rsps, client):
    rsps.post(
        BULK,
        json={
            "test_mode": True,
            "balance": 9,
            "batch_id": 99,
            "cost": 2,
            "num_messages": 2,
            "message": {"num_parts": 1, "sender": "TXTLCL", "content": "hi"},
            "receipt_url": "",
            "custom": "",
            "messages": [
                {"id": 1, "recipient": 919742856795},
                {"id": "1151347780", "recipient": "+919876543210"},
            ],
            "status": "success",
        },
    )
    got = client.send_bulk([Outgoing("919742856795", "hi")], sender="TXTLCL", test=True)
    assert got == BulkResponse(
        accepted={
            "919742856795": Accepted("919742856795", "1", "99", 1),
            "919876543210": Accepted("919876543210", "1151347780", "99", 1),
        },
        refused={},
        balance=9,
        total_cost=2,
        test_mode=True,
    )


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        {"messages": []},  # no status
        {"status": "queued"},
        {"messages": [{"batch_id": 1, "messages": [{"id": 5}]}], "status": "success"},
        {"messages": [{"messages": [{"id": 5, "recipient": 919876543210}]}], "status": "success"},
        {"messages": "nope", "status": "success"},
        {"messages_not_sent": [{"error": {"code": 32}}], "status": "success"},
    ],
)
def test_unexpected_json_is_outcome_unknown(rsps, client, body):
    rsps.post(BULK, json=body)
    with pytest.raises(OutcomeUnknown, match="may or may not have been sent"):
        client.send_bulk([Outgoing("919876543210", "x")], sender="ABCDEF")


def test_non_json_is_outcome_unknown(rsps, client):
    rsps.post(BULK, body="<html>Bad Gateway</html>", status=200)
    with pytest.raises(OutcomeUnknown) as info:
        client.send_bulk([Outgoing("919876543210", "x")], sender="ABCDEF")
    assert str(info.value) == (
        "Textlocal /bulk_json/ answered HTTP 200 OK with a body that is "
        "not JSON: the messages may or may not have been sent"
    )


# -- failure envelopes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text", "advice"),
    [
        (3, "Invalid login details", "Check TEXTLOCAL_API_KEY"),
        (7, "Insufficient credits", "Top up credits"),
        (43, "Invalid sender name", "Check --sender / TEXTLOCAL_SENDER is your DLT-approved"),
        (44, "No sender name specified", "Check --sender / TEXTLOCAL_SENDER is your DLT-approved"),
        (192, "You cannot send message at this time", "Promotional messages may only go out"),
        (80, "Invalid template", "Make the text match a DLT template registered"),
        (191, "Schedule time is outside that allowed", "Schedule promotional messages inside"),
        (9, "Schedule date is in the past", "Choose a schedule time in the future"),
        (8, "Invalid schedule date", "See https://api.textlocal.in/docs/"),
    ],
)
def test_failure_envelope_raises_provider_error(rsps, client, code, text, advice):
    rsps.post(BULK, json={"errors": [{"code": code, "message": text}], "status": "failure"})
    with pytest.raises(ProviderError) as info:
        client.send_bulk([Outgoing("919876543210", "x")], sender="ABCDEF")
    assert info.value.code == code
    assert str(info.value).startswith(f"Textlocal error {code}: {text}. {advice}")
    assert "\n" not in str(info.value)


def test_failure_code_as_string_and_key_echo_is_scrubbed(rsps, client):
    rsps.post(
        BALANCE,
        json={"errors": [{"code": "3", "message": f"Invalid key {KEY}."}], "status": "failure"},
    )
    with pytest.raises(ProviderError) as info:
        client.balance()
    assert info.value.code == 3
    assert str(info.value).startswith("Textlocal error 3: Invalid key ***. Check")
    assert_no_key(str(info.value))


# -- transport ----------------------------------------------------------------------------


def _refused() -> requests.ConnectionError:
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    return requests.ConnectionError(MaxRetryError(None, "/bulk_json/", reason))


def _no_dns() -> requests.ConnectionError:
    reason = NameResolutionError("api.textlocal.in", None, socket.gaierror(-2, "Name unknown"))
    return requests.ConnectionError(MaxRetryError(None, "/bulk_json/", reason))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_refused(), NotSentError),
        (_no_dns(), NotSentError),
        (requests.ConnectTimeout("connect timed out"), NotSentError),
        (
            requests.ConnectionError(
                ProtocolError("Connection aborted.", ConnectionResetError(104))
            ),
            OutcomeUnknown,
        ),
        (requests.ConnectionError(), OutcomeUnknown),  # no evidence it never left: assume it did
        (requests.ReadTimeout("read timed out"), OutcomeUnknown),
    ],
)
def test_transport_errors_are_sorted_by_recovery(rsps, client, error, expected):
    rsps.post(BULK, body=error)
    with pytest.raises(expected) as info:
        client.send_bulk([Outgoing("919876543210", "x")], sender="ABCDEF")
    assert type(info.value) is expected
    assert "Textlocal /bulk_json/" in str(info.value)
    assert_no_key(str(info.value))
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_key_in_transport_error_text_is_scrubbed(rsps, client):
    rsps.post(BULK, body=requests.ConnectionError(f"oops apikey={KEY_FORMS[1]}"))
    with pytest.raises(OutcomeUnknown) as info:
        client.send_bulk([Outgoing("919876543210", "x")], sender="ABCDEF")
    assert "apikey=***" in str(info.value)
    assert_no_key(str(info.value))


def test_real_connection_refused_is_not_sent():
    with socket.socket() as sock:  # a port that was just free, so nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with TextlocalClient(KEY, f"http://127.0.0.1:{port}/") as tl:
        with pytest.raises(NotSentError) as info:
            tl.send_bulk([Outgoing("919876543210", "x")], sender="ABCDEF")
    assert type(info.value) is NotSentError
    assert str(info.value).startswith("could not reach Textlocal /bulk_json/ (ConnectionError: ")
    assert_no_key(str(info.value))


@pytest.mark.parametrize(
    ("status", "reason"),
    [(500, "Internal Server Error"), (502, "Bad Gateway"), (503, "Service Unavailable")],
)
def test_5xx_is_outcome_unknown(rsps, client, status, reason):
    rsps.post(BULK, status=status, json={"status": "success"})
    with pytest.raises(OutcomeUnknown) as info:
        client.send_bulk([Outgoing("919876543210", "x")], sender="ABCDEF")
    assert str(info.value).startswith(f"Textlocal /bulk_json/ answered HTTP {status} {reason}: ")


@pytest.mark.parametrize(
    ("header", "expected"), [("7", 7.0), ("0.5", 0.5), (None, None), ("soon", None)]
)
def test_429_is_rate_limited_with_retry_after(rsps, client, header, expected):
    headers = {"Retry-After": header} if header is not None else {}
    rsps.post(BULK, status=429, headers=headers, body="slow down")
    with pytest.raises(RateLimited) as info:
        client.send_bulk([Outgoing("919876543210", "x")], sender="ABCDEF")
    assert isinstance(info.value, NotSentError)
    assert info.value.retry_after == expected


def test_429_retry_after_http_date(rsps, client):
    when = datetime.now(UTC) + timedelta(seconds=120)
    rsps.post(BALANCE, status=429, headers={"Retry-After": format_datetime(when, usegmt=True)})
    with pytest.raises(RateLimited) as info:
        client.balance()
    assert 115 <= info.value.retry_after <= 120


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_other_4xx_is_provider_error(rsps, client, status):
    rsps.post(BULK, status=status, json={"status": "failure"})
    with pytest.raises(ProviderError) as info:
        client.send_bulk([Outgoing("919876543210", "x")], sender="ABCDEF")
    assert info.value.code is None
    assert str(info.value).startswith(f"Textlocal /bulk_json/ answered HTTP {status} ")


def test_redirects_are_not_followed(rsps, client):
    # Following would drop the POST body, or (307/308) replay the key to another host.
    rsps.post(BULK, status=307, headers={"Location": "https://elsewhere.example/bulk_json/"})
    with pytest.raises(ProviderError, match="HTTP 307"):
        client.send_bulk([Outgoing("919876543210", "x")], sender="ABCDEF")
    assert len(rsps.calls) == 1


# -- balance and status -------------------------------------------------------------------


@pytest.mark.parametrize("sms", [1234, "1234"])
def test_balance(rsps, client, sms):
    rsps.post(
        BALANCE,
        json={"balance": {"sms": sms}, "status": "success"},
        match=[matchers.urlencoded_params_matcher({"apikey": KEY})],
    )
    assert client.balance() == 1234
    assert_no_key(rsps.calls[0].request.url)


@pytest.mark.parametrize(
    "body", [{"balance": 5, "status": "success"}, {"balance": {"sms": "lots"}, "status": "success"}]
)
def test_balance_unexpected_is_outcome_unknown(rsps, client, body):
    rsps.post(BALANCE, json=body)
    with pytest.raises(OutcomeUnknown, match="/balance/"):
        client.balance()


def test_status_batch_and_message(rsps, client):
    batch = {
        "batch_id": 136546495,
        "num_messages": 1,
        "num_delivered": 1,
        "num_undelivered": 0,
        "num_expired": 0,
        "num_unknown": 0,
        "num_invalid": 0,
        "messages": [{"recipient": 918123456789, "status": "D"}],
        "status": "success",
    }
    message = {
        "message": {
            "id": 1151895224,
            "recipient": 918123456789,
            "type": "sms",
            "status": "D",
            "date": "2013-07-04 14:31:18",
        },
        "status": "success",
    }
    rsps.post(
        DEFAULT_BASE_URL + "status_batch/",
        json=batch,
        match=[matchers.urlencoded_params_matcher({"apikey": KEY, "batch_id": "136546495"})],
    )
    rsps.post(
        DEFAULT_BASE_URL + "status_message/",
        json=message,
        match=[matchers.urlencoded_params_matcher({"apikey": KEY, "message_id": "1151895224"})],
    )
    assert client.status_batch("136546495") == batch
    assert client.status_message("1151895224") == message


# -- history ------------------------------------------------------------------------------


def history_page(start, total, *items):
    return {
        "messages": list(items),
        "start": start,
        "limit": 2,
        "total": total,
        "status": "success",
    }


def item(i, **extra):
    return {
        "id": 1000 + i,
        "number": 919876543200 + i,
        "content": "x",
        "sender": "ABCDEF",
        "datetime": "2024-01-02 10:00:00",
        "status": "D",
        "customID": f"r{i}",
        "batchID": 500 + i,
        **extra,
    }


def test_history_pages_until_total(rsps, client):
    for start, items in ((0, (item(0), item(1))), (2, (item(2), item(3))), (4, (item(4),))):
        rsps.post(
            HISTORY,
            json=history_page(start, 5, *items),
            match=[
                matchers.urlencoded_params_matcher(
                    {
                        "apikey": KEY,
                        "start": str(start),
                        "limit": "2",
                        "min_time": "1700000000",
                        "max_time": "1700009999",
                        "sort_order": "asc",
                    }
                )
            ],
        )
    got = client.history(min_time=1_700_000_000, max_time=1_700_009_999, page_size=2)
    assert got == [
        HistoryMessage(
            str(1000 + i),
            str(919876543200 + i),
            str(500 + i),
            f"r{i}",
            "D",
            "2024-01-02 10:00:00",
            "x",
        )
        for i in range(5)
    ]
    assert len(rsps.calls) == 3
    for call in rsps.calls:
        assert_no_key(call.request.url)


def test_history_field_names_and_types_are_tolerated(rsps, client):
    rsps.post(
        HISTORY,
        json={
            "messages": [
                {
                    "id": "11",
                    "number": "+919876543210",
                    "customID": "a",
                    "batchID": "7",
                    "status": "U",
                    "datetime": "2024-01-02 10:00:00",
                },
                {
                    "message_id": 12,
                    "recipient": 919812345678,
                    "custom": "b",
                    "batch_id": 8,
                    "date": "2024-01-02 10:00:01",
                },
                {"id": 13, "recipient": "917012345678", "customID": "", "custom": "c"},
                {
                    "id": 14,
                    "number": 916012345678,
                    "customID": "",
                    "batchID": "",
                    "status": "",
                    "datetime": None,
                },
            ],
            "total": "4",
            "status": "success",
        },
    )
    assert client.history() == [
        HistoryMessage("11", "919876543210", "7", "a", "U", "2024-01-02 10:00:00"),
        HistoryMessage("12", "919812345678", "8", "b", None, "2024-01-02 10:00:01"),
        HistoryMessage("13", "917012345678", None, "c", None, None),
        HistoryMessage("14", "916012345678", None, None, None, None),
    ]


def test_history_without_total_stops_at_an_empty_page(rsps, client):
    rsps.post(HISTORY, json={"messages": [item(0), item(1)], "status": "success"})
    rsps.post(HISTORY, json={"messages": [item(1), item(2)], "status": "success"})
    rsps.post(HISTORY, json={"messages": [], "status": "success"})
    got = client.history(page_size=2)
    assert [m.message_id for m in got] == ["1000", "1001", "1002"]  # a repeat is kept once
    starts = [dict(urllib.parse.parse_qsl(c.request.body))["start"] for c in rsps.calls]
    assert starts == ["0", "2", "4"]


def test_history_that_ends_before_total_is_provider_error(rsps, client):
    rsps.post(HISTORY, json=history_page(0, 5, item(0), item(1)))
    rsps.post(HISTORY, json=history_page(2, 5))
    with pytest.raises(ProviderError) as info:
        client.history(page_size=2)
    assert str(info.value) == (
        "Textlocal /get_history_api/ stopped at 2 of the 5 messages it reported: its history "
        "is incomplete, so rerun in a few minutes"
    )


def test_history_longer_than_max_pages_is_provider_error(rsps, client):
    rsps.post(HISTORY, json=history_page(0, 9, item(0), item(1)))
    rsps.post(HISTORY, json=history_page(2, 9, item(2), item(3)))
    with pytest.raises(ProviderError) as info:
        client.history(page_size=2, max_pages=2)
    assert str(info.value) == (
        "Textlocal /get_history_api/ still had messages after 2 pages of 2: narrow the time "
        "window (min_time/max_time) and rerun"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"messages": {"id": 1}, "total": 1, "status": "success"},
        {"total": 1, "status": "success"},
        {"messages": [{"number": 919876543210}], "total": 1, "status": "success"},
        {"messages": [{"id": 1, "number": "n/a"}], "total": 1, "status": "success"},
        {"messages": ["919876543210"], "total": 1, "status": "success"},
    ],
)
def test_history_unexpected_json_is_outcome_unknown(rsps, client, body):
    rsps.post(HISTORY, json=body)
    with pytest.raises(OutcomeUnknown) as info:
        client.history()
    assert str(info.value).startswith("unexpected ")
    assert str(info.value).endswith(": this call sends nothing; rerun it when Textlocal answers")


def test_history_errors_say_nothing_was_sent(rsps, client):
    rsps.post(HISTORY, status=502)
    rsps.post(HISTORY, body=requests.ReadTimeout("read timed out"))
    rsps.post(
        HISTORY,
        json={"errors": [{"code": 3, "message": "Invalid login details"}], "status": "failure"},
    )
    with pytest.raises(OutcomeUnknown) as info:
        client.history()
    assert str(info.value) == (
        "Textlocal /get_history_api/ answered HTTP 502 Bad Gateway: this "
        "call sends nothing; rerun it when Textlocal answers"
    )
    with pytest.raises(OutcomeUnknown) as info:
        client.history()
    assert str(info.value) == (
        "Textlocal /get_history_api/ did not answer (ReadTimeout: read timed out): this call "
        "sends nothing; rerun it when Textlocal answers"
    )
    with pytest.raises(ProviderError) as info:
        client.history()
    assert info.value.code == 3


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"min_time": -1}, "min_time must be unix seconds"),
        ({"max_time": 1.5}, "max_time must be unix seconds"),
        ({"min_time": True}, "min_time must be unix seconds"),
        ({"page_size": 0}, "page_size must be an int >= 1"),
        ({"max_pages": 0}, "max_pages must be an int >= 1"),
    ],
)
def test_history_rejects_bad_arguments(rsps, client, kwargs, reason):
    with pytest.raises(ValueError, match=reason):
        client.history(**kwargs)
    assert len(rsps.calls) == 0


# -- construction and the key -------------------------------------------------------------


def test_repr_hides_key(client):
    assert repr(client) == "TextlocalClient(base_url='https://api.textlocal.in/')"
    assert_no_key(repr(client))


@pytest.mark.parametrize("url", ["api.textlocal.in", "ftp://api.textlocal.in/", "https://"])
def test_bad_base_url_is_input_error(url):
    with pytest.raises(InputError, match="--base-url"):
        TextlocalClient(KEY, url)


@pytest.mark.parametrize(
    "url",
    [
        "http://api.textlocal.in/",
        "http://192.168.1.5:8787/",
        "http://127.0.0.1.example.com/",
        "http://[2001:db8::1]/",
        "http://127.8.9.10/",
    ],
)  # loopback, but not a name we use
def test_plain_http_to_another_machine_is_refused_before_any_request(rsps, url):
    with pytest.raises(InputError) as caught:
        TextlocalClient(KEY, url)
    assert str(caught.value) == (
        f"base URL {url!r} is plain http to another machine, so the API key would cross the "
        "network unencrypted: use https://, or reach a remote sandbox through a tunnel to "
        "127.0.0.1"
    )
    assert_no_key(str(caught.value))
    assert len(rsps.calls) == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8787/",
        "http://localhost:8787/",
        "http://LOCALHOST/",
        "http://[::1]:8787/",
        "https://10.0.0.1/",
    ],
)
def test_plain_http_is_fine_on_this_machine_and_https_anywhere(url):
    with TextlocalClient(KEY, url) as tl:
        assert tl.base_url == url


def test_close_closes_the_session():
    closed = []

    class Session(requests.Session):
        def close(self) -> None:
            closed.append(True)
            super().close()

    with TextlocalClient(KEY, session=Session()):
        pass
    assert closed == [True]


MISSING = (
    "TEXTLOCAL_API_KEY is not set: export it (or put it in a git-ignored .env file) to "
    "send through Textlocal; use --provider sandbox to rehearse"
)


@pytest.mark.parametrize("environ", [{}, {"TEXTLOCAL_API_KEY": "  "}])
def test_api_key_missing(environ):
    with pytest.raises(InputError) as info:
        api_key_from_env(environ)
    assert str(info.value) == MISSING


def test_api_key_from_mapping():
    assert api_key_from_env({"TEXTLOCAL_API_KEY": " abc123 \n"}) == "abc123"


def test_api_key_from_dotenv_in_cwd(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTLOCAL_API_KEY", "x")  # so monkeypatch restores "unset" afterwards
    monkeypatch.delenv("TEXTLOCAL_API_KEY")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError):
        api_key_from_env()
    (tmp_path / ".env").write_text("TEXTLOCAL_API_KEY=from-dotenv\n")
    assert api_key_from_env() == "from-dotenv"


def test_environment_wins_over_dotenv(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTLOCAL_API_KEY", "from-env")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("TEXTLOCAL_API_KEY=from-dotenv\n")
    assert api_key_from_env() == "from-env"


def test_the_connection_pool_holds_every_request_send_keeps_in_flight():
    from pipeline.providers.textlocal.client import POOL_SIZE

    with TextlocalClient("k", "https://api.example.test/") as client:
        adapter = client._session.get_adapter("https://api.example.test/")
        assert adapter._pool_maxsize == POOL_SIZE
    from pipeline.cli import main

    concurrency = next(p for p in main.commands["send"].params if p.name == "concurrency")
    assert concurrency.type.max == POOL_SIZE  # never more requests in flight than connections
