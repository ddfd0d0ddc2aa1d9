"""The chunked sending stage, with HTTP faked at the transport (responses)."""

from __future__ import annotations

import json
import os
import signal
from urllib.parse import parse_qs, unquote

import pandas as pd
import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError

from pipeline.sending.chunks import SendSettings, send_ready
from pipeline.sending.journal import Journal, RunIdentity
from pipeline.sending.retry import RetryPolicy
from pipeline.statuses import RESULT_COLUMNS
from tests.helpers import BASE, KEY


def make_results(numbers: list[str], statuses: list[str] | None = None) -> pd.DataFrame:
    """A results frame like batch.prepare builds, rows numbered from 2."""
    statuses = statuses or ["ready"] * len(numbers)
    frame = pd.DataFrame(
        {column: None for column in RESULT_COLUMNS[1:]},
        index=pd.Index(range(2, 2 + len(numbers)), name="source_row"),
        dtype=object,
    )
    frame["phone_e164"] = numbers
    frame["message"] = [f"Hello {i}" for i in range(len(numbers))]
    frame["status"] = statuses
    return frame


def numbers(n: int) -> list[str]:
    return [f"+91987654{i:04d}" for i in range(n)]


def bulk_reply(
    accepted: list[str], refused: tuple[str, int, str] | None = None, first_id: int = 100
) -> dict:
    """A bulk_json success body in Textlocal's shape (docs/provider-api.md, "Sending with
    /bulk_json/")."""
    return {
        "test": False,
        "balance_pre_send": 1000,
        "total_cost": len(accepted),
        "balance_post_send": 1000 - len(accepted),
        "messages": [
            {
                "balance": 999,
                "batch_id": 500 + i,
                "cost": 1,
                "num_messages": 1,
                "message": {"num_parts": 1, "sender": "ACMEST", "content": "x"},
                "receipt_url": "",
                "custom": "",
                "messages": [{"id": first_id + i, "recipient": int(number)}],
            }
            for i, number in enumerate(accepted)
        ],
        "messages_not_sent": []
        if refused is None
        else [
            {
                "unique_id": "u1",
                "number": refused[0],
                "message": "x",
                "error": {"code": refused[1], "message": refused[2]},
            }
        ],
        "status": "success",
    }


def sent_payloads() -> list[dict]:
    """The decoded `data` JSON of every bulk_json request made."""
    payloads = []
    for call in responses.calls:
        fields = parse_qs(call.request.body)
        assert KEY not in call.request.url
        payloads.append(json.loads(fields["data"][0]))
    return payloads


@pytest.fixture
def journal(tmp_path):
    with Journal.open(tmp_path / "journal.sqlite") as j:
        run = j.begin_run(
            RunIdentity("in.xlsx", None, "Hello", "ACMEST", "service", "sandbox", False), "sha"
        )
        j.run_id = run.id
        yield j


NO_WAIT = RetryPolicy(attempts=3, base=0.0, cap=0.0)


def send(results, client, journal, **settings):
    """send_ready with one request in flight (deterministic order) unless told otherwise."""
    settings.setdefault("concurrency", 1)
    settings.setdefault("retry", NO_WAIT)
    progress = settings.pop("progress", None)
    return send_ready(
        results,
        client,
        journal,
        journal.run_id,
        SendSettings(sender="ACMEST", **settings),
        progress=progress,
    )


@responses.activate
def test_sends_ready_rows_in_chunks_and_maps_ids_back(client, journal):
    results = make_results(numbers(5), ["ready", "invalid_number", "ready", "ready", "ready"])
    wire = [n[1:] for n in results["phone_e164"]]
    responses.post(BASE + "bulk_json/", json=bulk_reply([wire[0], wire[2]], first_id=100))
    responses.post(BASE + "bulk_json/", json=bulk_reply([wire[3], wire[4]], first_id=200))

    outcome = send(results, client, journal, chunk_size=2)

    assert outcome.attempted == 4 and outcome.stopped is None
    payloads = sent_payloads()
    assert [[m["number"] for m in p["messages"]] for p in payloads] == [
        [wire[0], wire[2]],
        [wire[3], wire[4]],
    ]
    assert [unquote(m["text"]) for m in payloads[0]["messages"]] == ["Hello 0", "Hello 2"]
    assert payloads[0]["sender"] == "ACMEST"
    assert results["status"].tolist() == ["sent", "invalid_number", "sent", "sent", "sent"]
    assert results.loc[[2, 4, 5, 6], "provider_message_id"].tolist() == ["100", "101", "200", "201"]
    assert results.loc[[2, 4, 5, 6], "batch_id"].tolist() == ["500", "501", "500", "501"]
    assert results.at[2, "sent_at"][-6] in "+-"  # ISO 8601 with an offset
    assert results.at[3, "provider_message_id"] is None


@responses.activate
def test_per_number_refusal_becomes_rejected_with_code_and_text(client, journal):
    results = make_results(numbers(2))
    wire = [n[1:] for n in results["phone_e164"]]
    responses.post(
        BASE + "bulk_json/",
        json=bulk_reply([wire[0]], refused=(wire[1], 32, "Invalid number format")),
    )
    send(results, client, journal)
    assert results["status"].tolist() == ["sent", "rejected"]
    assert results.at[3, "detail"] == "Textlocal error 32: Invalid number format"


@responses.activate
def test_number_missing_from_a_success_answer_is_unknown(client, journal):
    results = make_results(numbers(2))
    wire = [n[1:] for n in results["phone_e164"]]
    responses.post(BASE + "bulk_json/", json=bulk_reply([wire[0]]))
    send(results, client, journal)
    assert results["status"].tolist() == ["sent", "unknown"]


@responses.activate
def test_connection_refused_fails_the_chunk_and_goes_on(client, journal):
    results = make_results(numbers(3))
    wire = [n[1:] for n in results["phone_e164"]]
    # The chain requests really raises for a refused connection (providers/test_textlocal.py).
    refused = NewConnectionError(None, "Failed to establish a new connection: [Errno 111]")
    for _ in range(NO_WAIT.attempts):  # refused on every try: known not sent
        responses.post(
            BASE + "bulk_json/",
            body=requests.ConnectionError(MaxRetryError(None, "/bulk_json/", refused)),
        )
    responses.post(BASE + "bulk_json/", json=bulk_reply([wire[2]]))
    send(results, client, journal, chunk_size=2)
    assert len(responses.calls) == NO_WAIT.attempts + 1
    assert results["status"].tolist() == ["failed", "failed", "sent"]
    assert results.at[2, "detail"].startswith("not sent: ")


@responses.activate
def test_read_timeout_makes_the_chunk_unknown_never_failed(client, journal):
    results = make_results(numbers(2))
    responses.post(BASE + "bulk_json/", body=requests.exceptions.ReadTimeout("read timed out"))
    send(results, client, journal)
    assert results["status"].tolist() == ["unknown", "unknown"]
    assert results.at[2, "detail"].startswith("may have been sent: ")


@responses.activate
def test_provider_stop_marks_this_chunk_and_every_later_row_failed(client, journal):
    results = make_results(numbers(5))
    wire = [n[1:] for n in results["phone_e164"]]
    responses.post(BASE + "bulk_json/", json=bulk_reply(wire[:2]))
    responses.post(
        BASE + "bulk_json/",
        json={"errors": [{"code": 7, "message": "Insufficient credits"}], "status": "failure"},
    )
    outcome = send(results, client, journal, chunk_size=2)
    assert len(responses.calls) == 2  # nothing after the stop
    assert outcome.stopped.startswith("Textlocal error 7: Insufficient credits")
    assert results["status"].tolist() == ["sent", "sent", "failed", "failed", "failed"]
    assert "provider stopped the run" in results.at[6, "detail"]
    assert KEY not in outcome.stopped


@responses.activate
def test_limit_sends_the_first_n_and_marks_the_rest_for_a_rerun(client, journal):
    results = make_results(numbers(3))
    wire = [n[1:] for n in results["phone_e164"]]
    responses.post(BASE + "bulk_json/", json=bulk_reply(wire[:2]))
    send(results, client, journal, limit=2)
    assert results["status"].tolist() == ["sent", "sent", "failed"]
    assert results.at[4, "detail"] == (
        "not sent: --limit 2 reached; rerun the same command to send the rest"
    )


@responses.activate
def test_progress_is_reported_per_chunk(client, journal):
    results = make_results(numbers(3))
    wire = [n[1:] for n in results["phone_e164"]]
    responses.post(BASE + "bulk_json/", json=bulk_reply(wire[:2]))
    responses.post(BASE + "bulk_json/", json=bulk_reply(wire[2:]))
    seen: list[int] = []
    send(results, client, journal, chunk_size=2, progress=seen.append)
    assert seen == [2, 1]


def test_chunk_size_above_the_bulk_limit_is_refused():
    with pytest.raises(ValueError, match="between 1 and 500"):
        SendSettings(sender="ACMEST", chunk_size=501)


@responses.activate
def test_journal_holds_each_rows_outcome_with_the_chunk_correlation_id(client, journal):
    results = make_results(numbers(3))
    wire = [n[1:] for n in results["phone_e164"]]
    responses.post(
        BASE + "bulk_json/",
        json=bulk_reply([wire[0]], refused=(wire[1], 32, "Invalid number format")),
    )
    responses.post(BASE + "bulk_json/", body=requests.exceptions.ReadTimeout("timed out"))
    send(results, client, journal, chunk_size=2)
    entries = journal.entries(journal.run_id)
    by_row = {e.source_row: e for e in entries.values()}
    assert {row: e.status for row, e in by_row.items()} == {2: "sent", 3: "rejected", 4: "unknown"}
    assert by_row[2].provider_message_id == "100"
    assert by_row[2].custom == by_row[3].custom != by_row[4].custom
    assert by_row[2].custom.startswith(f"smsbatch-{journal.journal_id}-{journal.run_id}-")
    payloads = sent_payloads()
    assert {m["custom"] for m in payloads[0]["messages"]} == {by_row[2].custom}
    assert all(e.attempts == 1 for e in entries.values())


@responses.activate
def test_ctrl_c_finishes_in_flight_bookkeeping_and_sends_nothing_more(client, journal):
    results = make_results(numbers(5))
    wire = [n[1:] for n in results["phone_e164"]]
    responses.post(BASE + "bulk_json/", json=bulk_reply(wire[:2]))
    responses.post(BASE + "bulk_json/", json=bulk_reply(wire[2:4]))

    def interrupt(count: int) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, right after the first chunk

    outcome = send(results, client, journal, chunk_size=2, progress=interrupt)
    assert outcome.interrupted
    assert len(responses.calls) == 1
    assert results["status"].tolist() == ["sent", "sent", "failed", "failed", "failed"]
    assert results.at[4, "detail"] == (
        "not sent: the run was interrupted; rerun the same command to send the rest"
    )
    assert {e.status for e in journal.entries(journal.run_id).values()} == {"sent"}


@responses.activate
def test_concurrent_chunks_keep_the_journal_exact(client, journal):
    results = make_results(numbers(40))
    wire = [n[1:] for n in results["phone_e164"]]

    def reply(request):
        data = json.loads(parse_qs(request.body)["data"][0])
        return 200, {}, json.dumps(bulk_reply([m["number"] for m in data["messages"]]))

    responses.add_callback(responses.POST, BASE + "bulk_json/", callback=reply)
    outcome = send(results, client, journal, chunk_size=3, concurrency=4)
    assert outcome.attempted == 40 and len(responses.calls) == 14
    assert (results["status"] == "sent").all()
    entries = journal.entries(journal.run_id)
    assert sorted(e.number[1:] for e in entries.values()) == sorted(wire)
    assert {e.status for e in entries.values()} == {"sent"}


def test_throttle_spaces_messages_to_the_rate():
    from pipeline.sending.chunks import Throttle

    slept: list[float] = []
    throttle = Throttle(rate=10.0, sleep=slept.append)
    throttle.wait(5)  # the first chunk goes at once
    throttle.wait(5)  # 5 messages at 10/s: due 0.5 s after the start
    assert slept and 0.45 < slept[0] <= 0.5
    Throttle(rate=None, sleep=slept.append).wait(500)
    assert len(slept) == 1
