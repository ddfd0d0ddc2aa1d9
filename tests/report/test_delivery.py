"""Delivery status lookups (delivery.py): HTTP faked at the transport, real TextlocalClient."""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import responses
import rustpy_xlsxwriter
from responses import matchers

from pipeline.errors import ProviderError
from pipeline.providers.textlocal.client import TextlocalClient
from pipeline.report.delivery import (
    DELIVERY_CODES,
    FINAL_DELIVERY,
    DeliveryReport,
    delivery_status,
    iso_date,
    update_delivery,
)
from pipeline.report.workbook import read_results, read_workbook, write_results
from pipeline.sending.journal import Journal, Outcome, Pending, RunIdentity, row_key
from tests.helpers import BASE, KEY

MESSAGE = BASE + "status_message/"
BATCH = BASE + "status_batch/"
HYPERLINK = '=HYPERLINK("http://example.com","click")'
NOW = dt.datetime(2024, 3, 2, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
SUMMARY = [
    ("mode", "send"),
    ("rows", 6),
    ("status: sent", 3),
    ("template", "=Hi {Name}"),
    ("started at", "2024-03-01T10:00:00+05:30"),
]
IDENTITY = RunIdentity("/data/in.xlsx", None, "Hi {Name}", "ACMEST", "service", "textlocal", False)

# source_row -> (Name, status, message id, batch id, delivery_status); numbers from the row
ROWS = {
    2: (HYPERLINK, "sent", "1001", "501", None),
    3: ("Ravi", "sent", "1002", "502", None),
    4: ("=1+1", "scheduled", "1003", "503", None),
    5: ("Bad", "invalid_number", None, None, None),
    6: ("Done", "sent", "1004", "504", "delivered"),
    7: ("Nope", "failed", None, None, None),
}


def number(row: int) -> str:
    return f"+9198765432{row:02d}"


def build(path: Path, rows: dict = ROWS, *, delivered_at: bool = False) -> Path:
    """A workbook as `send` writes it (no delivered_at column unless asked)."""
    index = pd.Index(list(rows), name="source_row")
    original = pd.DataFrame(
        {
            "Name": [r[0] for r in rows.values()],
            "Mobile": [number(r) for r in rows],
            "status": ["vip"] * len(rows),  # the user's own status column
            "Joined": [dt.date(2024, 1, r) for r in rows],
            "Amount": [100.5 + r for r in rows],
        },
        index=index,
        dtype=object,
    )
    results = pd.DataFrame(
        {
            "phone_e164": [number(r) for r in rows],
            "message": [f"Hi {r[0]}" for r in rows.values()],
            "encoding": "GSM-7",
            "segments": 1,
            "status": [r[1] for r in rows.values()],
            "detail": None,
            "provider_message_id": [r[2] for r in rows.values()],
            "batch_id": [r[3] for r in rows.values()],
            "sent_at": ["2024-03-01T10:00:00+05:30" if r[2] else None for r in rows.values()],
            "delivery_status": [r[4] for r in rows.values()],
            "credits": 1,
            "dlt_template_id": None,
        },
        index=index,
        dtype=object,
    )
    if delivered_at:
        results["delivered_at"] = [
            "2024-03-01T10:00:09+05:30" if r[4] else None for r in rows.values()
        ]
    return write_results(path, original, results, SUMMARY)


def answer(message_id: str, code: str, date: str | None = "2024-03-01 10:00:05") -> dict:
    message = {"id": int(message_id), "recipient": 919876543210, "type": "sms", "status": code}
    if date is not None:
        message["date"] = date
    return {"message": message, "status": "success"}


def expect_message(rsps, message_id: str, code: str, **kwargs) -> None:
    rsps.post(
        MESSAGE,
        json=answer(message_id, code, **kwargs),
        match=[matchers.urlencoded_params_matcher({"apikey": KEY, "message_id": message_id})],
    )


def run(path: Path, client: TextlocalClient, **kwargs) -> DeliveryReport:
    kwargs.setdefault("journal", None)
    return update_delivery(path, client, clock=lambda: NOW, **kwargs)


def delivery(path: Path) -> dict[int, tuple]:
    table = read_results(path)
    return {
        row: (table.at[row, "delivery_status"], table.at[row, "delivered_at"])
        for row in table.index
    }


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("D", "delivered"),
        ("U", "undelivered"),
        ("P", "pending"),
        ("I", "invalid"),
        ("E", "expired"),
        ("?", "unknown"),
        ("X", "unknown"),
        ("scheduled", "pending"),
    ],
)
def test_every_code_maps_and_the_date_becomes_iso_ist(tmp_path, rsps, client, code, expected):
    path = build(tmp_path / "r.xlsx", {2: ROWS[2]})
    expect_message(rsps, "1001", code)
    report = run(path, client)
    assert delivery(path) == {2: (expected, "2024-03-01T10:00:05+05:30")}
    assert (report.asked, report.changed, report.failed_lookups) == (1, 1, 0)
    assert report.by_status == {name: int(name == expected) for name in DELIVERY_CODES.values()}


def test_vocabulary():
    assert DELIVERY_CODES == {
        "D": "delivered",
        "U": "undelivered",
        "P": "pending",
        "I": "invalid",
        "E": "expired",
        "?": "unknown",
    }
    assert FINAL_DELIVERY == {"delivered", "undelivered", "invalid", "expired"}
    assert [delivery_status(c) for c in ("d", " D ", None, "", "delivered")] == [
        "delivered",
        "delivered",
        "unknown",
        "unknown",
        "delivered",
    ]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2013-07-04 14:31:18", "2013-07-04T14:31:18+05:30"),
        ("2013-07-04T09:01:18+00:00", "2013-07-04T09:01:18+00:00"),
        ("1700000000", "2023-11-15T03:43:20+05:30"),
        ("0000-00-00 00:00:00", None),
        ("", None),
        (None, None),
        ("soon", None),
    ],
)
def test_iso_date(given, expected):
    assert iso_date(given) == expected


def test_a_second_run_asks_only_the_rows_not_final(tmp_path, rsps, client):
    path = build(tmp_path / "r.xlsx", {2: ROWS[2], 3: ROWS[3]})
    expect_message(rsps, "1001", "D")
    expect_message(rsps, "1002", "P", date=None)
    first = run(path, client)
    assert len(rsps.calls) == 2
    assert (first.asked, first.changed, first.already_final) == (2, 2, 0)
    assert delivery(path) == {2: ("delivered", "2024-03-01T10:00:05+05:30"), 3: ("pending", None)}

    rsps.calls.reset()
    expect_message(rsps, "1002", "U", date="2024-03-03 08:00:00")
    second = run(path, client)
    assert [c.request.body for c in rsps.calls] == ["apikey=" + KEY + "&message_id=1002"]
    assert (second.asked, second.changed, second.already_final) == (1, 1, 1)
    assert delivery(path) == {
        2: ("delivered", "2024-03-01T10:00:05+05:30"),
        3: ("undelivered", "2024-03-03T08:00:00+05:30"),
    }


def test_only_sent_and_scheduled_rows_are_asked_and_final_ones_skipped(tmp_path, rsps, client):
    path = build(tmp_path / "r.xlsx")
    for message_id in ("1001", "1002", "1003"):
        expect_message(rsps, message_id, "D")
    report = run(path, client)
    assert len(rsps.calls) == 3  # not rows 5 and 7 (never sent), nor 6 (already delivered)
    assert (report.total, report.asked, report.already_final) == (4, 3, 1)
    assert report.by_status["delivered"] == 4 and report.rate == 1.0


def test_a_batch_holding_several_rows_is_one_status_batch_call(tmp_path, rsps, client):
    rows = {r: (f"N{r}", "sent", f"10{r:02d}", "900", None) for r in (2, 3, 4, 5)}
    path = build(tmp_path / "r.xlsx", rows)
    rsps.post(
        BATCH,
        match=[matchers.urlencoded_params_matcher({"apikey": KEY, "batch_id": "900"})],
        json={
            "batch_id": 900,
            "num_messages": 4,
            "num_delivered": 1,
            "num_undelivered": 1,
            "num_expired": 0,
            "num_unknown": 0,
            "num_invalid": 1,
            "messages": [
                {"recipient": 919876543202, "status": "D"},
                {"recipient": "919876543203", "status": "U", "date": "2024-03-01 11:00:00"},
                {"recipient": 919876543204, "status": "I"},
                {"recipient": 919876543299, "status": "D"},  # not one of ours
            ],  # row 5 is missing from the answer
            "status": "success",
        },
    )
    progress: list[int] = []
    started: list[int] = []
    report = run(path, client, progress=progress.append, on_start=started.append)
    assert len(rsps.calls) == 1
    assert delivery(path) == {
        2: ("delivered", None),
        3: ("undelivered", "2024-03-01T11:00:00+05:30"),
        4: ("invalid", None),
        5: (None, None),
    }
    assert (report.asked, report.changed, report.failed_lookups) == (4, 3, 1)
    assert (started, progress) == ([4], [4])


def test_failed_lookups_leave_their_rows_and_numbers_stay_masked(tmp_path, rsps, client, caplog):
    path = build(tmp_path / "r.xlsx", {2: ROWS[2], 3: ROWS[3]})
    expect_message(rsps, "1001", "D")
    rsps.post(
        MESSAGE,
        status=503,
        match=[matchers.urlencoded_params_matcher({"apikey": KEY, "message_id": "1002"})],
    )
    with caplog.at_level(logging.WARNING, logger="pipeline.report.delivery"):
        report = run(path, client)
    assert delivery(path) == {2: ("delivered", "2024-03-01T10:00:05+05:30"), 3: (None, None)}
    assert (report.asked, report.changed, report.failed_lookups) == (2, 1, 1)
    assert [r.getMessage() for r in caplog.records] == [
        "delivery lookup for message to +91******3203 failed: Textlocal /status_message/ "
        "answered HTTP 503 Service Unavailable: this call sends nothing; rerun it when "
        "Textlocal answers"
    ]


def test_rows_without_ids_are_counted_not_asked(tmp_path, rsps, client):
    path = build(tmp_path / "r.xlsx", {2: ("A", "sent", None, None, None)})
    report = run(path, client)
    assert len(rsps.calls) == 0
    assert (report.total, report.asked, report.without_id) == (1, 0, 1)


def test_lookups_run_concurrently_but_never_more_than_asked(tmp_path, rsps, client):
    rows = {r: (f"N{r}", "sent", str(1000 + r), str(500 + r), None) for r in range(2, 14)}
    path = build(tmp_path / "r.xlsx", rows)
    lock, active, peak = threading.Lock(), [0], [0]

    def slow(request):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        message_id = request.body.rsplit("=", 1)[1]
        return 200, {}, responses.json_module.dumps(answer(message_id, "D"))

    rsps.add_callback(responses.POST, MESSAGE, callback=slow)
    progress: list[int] = []
    report = run(path, client, concurrency=4, progress=progress.append)
    assert peak[0] == 4
    assert progress == [1] * 12 and report.asked == 12 == report.by_status["delivered"]


def test_summary_is_refreshed_and_other_rows_kept(tmp_path, rsps, client):
    path = build(tmp_path / "r.xlsx")
    expect_message(rsps, "1001", "D")
    expect_message(rsps, "1002", "P")
    expect_message(rsps, "1003", "E")
    run(path, client)
    delivery_rows = [
        ("delivery: delivered", 2),
        ("delivery: undelivered", 0),
        ("delivery: pending", 1),
        ("delivery: invalid", 0),
        ("delivery: expired", 1),
        ("delivery: unknown", 0),
        ("delivery rate", "50.0%"),
        ("delivery checked at", "2024-03-02T09:30:00+05:30"),
    ]
    assert read_workbook(path)[2] == SUMMARY + delivery_rows
    rsps.calls.reset()
    expect_message(rsps, "1002", "D")
    run(path, client)  # replaced in place, not appended again
    assert read_workbook(path)[2] == SUMMARY + [
        ("delivery: delivered", 3),
        *delivery_rows[1:2],
        ("delivery: pending", 0),
        *delivery_rows[3:6],
        ("delivery rate", "75.0%"),
        delivery_rows[7],
    ]


def test_every_other_cell_is_unchanged(tmp_path, rsps, client):
    path = build(tmp_path / "r.xlsx", delivered_at=True)
    before = read_workbook(path)
    expect_message(rsps, "1001", "D")
    expect_message(rsps, "1002", "U")
    expect_message(rsps, "1003", "P")
    run(path, client)
    after = read_workbook(path)
    pd.testing.assert_frame_equal(after[0], before[0])
    ours = ["delivery_status", "delivered_at"]
    pd.testing.assert_frame_equal(after[1].drop(columns=ours), before[1].drop(columns=ours))
    assert after[1]["delivery_status"].tolist() == [
        "delivered",
        "undelivered",
        "pending",
        None,
        "delivered",
        None,
    ]
    assert after[2][: len(SUMMARY)] == SUMMARY
    ws = openpyxl.load_workbook(path)["Results"]
    header = [c.value for c in ws[1]]
    assert header[:6] == ["Name", "Mobile", "status (input)", "Joined", "Amount", "source_row"]
    assert header[-1] == "delivered_at" and header[-2] == "dlt_template_id"
    assert (ws["A2"].value, ws["A2"].data_type) == (HYPERLINK, "s")
    assert (ws["A4"].value, ws["A4"].data_type) == ("=1+1", "s")
    assert ws["D2"].is_date and ws["D2"].value == dt.datetime(2024, 1, 2)
    assert (ws["E3"].value, ws["E3"].data_type) == (103.5, "n")


def test_a_crash_mid_write_leaves_the_old_workbook(tmp_path, rsps, client, monkeypatch):
    path = build(tmp_path / "r.xlsx", {2: ROWS[2]})
    old = path.read_bytes()
    expect_message(rsps, "1001", "D")

    def broken_save(self):
        Path(self._target).write_bytes(b"PK\x03\x04 half a workbook")
        raise RuntimeError("Excel write error: disk went away")

    monkeypatch.setattr(rustpy_xlsxwriter.FastExcel, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk went away"):
        run(path, client)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["r.xlsx"]


def test_a_bad_key_raises_and_leaves_the_workbook_untouched(tmp_path, rsps, client):
    path = build(tmp_path / "r.xlsx")
    old = path.read_bytes()
    rsps.assert_all_requests_are_fired = False
    rsps.post(
        MESSAGE,
        json={"errors": [{"code": 3, "message": "Invalid login details"}], "status": "failure"},
    )
    with pytest.raises(ProviderError) as err:
        run(path, client, concurrency=1)
    assert err.value.code == 3
    assert str(err.value).startswith("Textlocal error 3: Invalid login details. Check ")
    assert 1 <= len(rsps.calls) <= 2  # the lookup that failed, and at most the one queued
    assert path.read_bytes() == old


def sent_journal(path: Path, rows: dict) -> Path:
    """A journal holding `rows` as sent, like `send` leaves it."""
    with Journal.open(path) as journal:
        run_ = journal.begin_run(IDENTITY, "sha")
        pending = [Pending(row_key(number(r), f"Hi {v[0]}"), r, number(r)) for r, v in rows.items()]
        chunk, _ = journal.start_chunk(run_.id, pending)
        journal.finish_chunk(
            run_.id,
            chunk,
            [
                Outcome(p.row_key, "sent", None, v[2], v[3], "2024-03-01T10:00:00+05:30")
                for p, v in zip(pending, rows.values(), strict=True)
            ],
            "answered",
        )
    return path


def test_the_journal_is_updated_and_used_to_skip_final_rows(tmp_path, rsps, client):
    rows = {2: ROWS[2], 3: ROWS[3]}
    journal = sent_journal(tmp_path / "j.sqlite", rows)
    path = build(tmp_path / "r.xlsx", rows)
    expect_message(rsps, "1001", "D")
    expect_message(rsps, "1002", "P")
    report = run(path, client, journal=journal)
    assert report.journal_recorded == 2 and report.journal_note is None
    with Journal.open(journal) as book:
        known = book.delivery_by_message_id(["1001", "1002", "9999"])
    assert {k: (v.number, v.status, v.delivered_at) for k, v in known.items()} == {
        "1001": ("+919876543202", "delivered", "2024-03-01T10:00:05+05:30"),
        "1002": ("+919876543203", "pending", "2024-03-01T10:00:05+05:30"),
    }

    build(path, rows)  # the workbook replaced by a copy from before the first check
    rsps.calls.reset()
    expect_message(rsps, "1002", "D", date="2024-03-01 12:00:00")
    report = run(path, client, journal=journal)
    assert len(rsps.calls) == 1  # row 2 is final in the journal: not asked again
    assert (report.asked, report.already_final, report.changed) == (1, 1, 2)
    assert delivery(path) == {
        2: ("delivered", "2024-03-01T10:00:05+05:30"),
        3: ("delivered", "2024-03-01T12:00:00+05:30"),
    }


def test_a_journal_in_use_is_skipped_with_a_warning(tmp_path, rsps, client, caplog):
    rows = {2: ROWS[2]}
    journal = sent_journal(tmp_path / "j.sqlite", rows)
    path = build(tmp_path / "r.xlsx", rows)
    expect_message(rsps, "1001", "D")
    with Journal.open(journal), caplog.at_level(logging.WARNING, logger="pipeline.report.delivery"):
        report = run(path, client, journal=journal)
    assert delivery(path) == {2: ("delivered", "2024-03-01T10:00:05+05:30")}
    assert report.journal_recorded == 0
    assert report.journal_note.endswith(
        "journal in use by another smsbatch process; wait for "
        "it to finish, or give this run its own --journal"
    )
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["journal not used"]
    with Journal.open(journal) as book:
        assert book.delivery_by_message_id(["1001"]) == {}


def test_an_absent_journal_is_not_created(tmp_path, rsps, client):
    path = build(tmp_path / "r.xlsx", {2: ROWS[2]})
    expect_message(rsps, "1001", "D")
    report = run(path, client, journal=tmp_path / "none" / "j.sqlite")
    assert report.journal_note is None and report.journal_recorded == 0
    assert sorted(os.listdir(tmp_path)) == ["r.xlsx"]
