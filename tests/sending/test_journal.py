"""The SQLite send journal: durability settings, locking, recovery, run identity, resume."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from pipeline.sending.journal import (
    IN_FLIGHT_DETAIL,
    Delivery,
    Journal,
    JournalInUse,
    Outcome,
    Pending,
    RunIdentity,
    row_key,
)
from pipeline.sending.resume import apply_journal

IDENTITY = RunIdentity(
    "/data/in.xlsx", "Contacts", "Hi {Name}", "ACMEST", "service", "textlocal", False
)


def pending(*rows: int) -> list[Pending]:
    return [Pending(row_key(f"+91987654{r:04d}", "Hi"), r, f"+91987654{r:04d}") for r in rows]


def test_pragmas_are_what_we_claim_and_the_file_is_owner_only(tmp_path):
    path = tmp_path / "j.sqlite"
    with Journal.open(path) as journal:
        assert journal.pragmas() == {"journal_mode": "wal", "synchronous": 2}  # 2 = FULL
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_second_process_on_the_same_journal_is_refused_at_once(tmp_path):
    path = tmp_path / "j.sqlite"
    with Journal.open(path):
        with pytest.raises(JournalInUse, match="journal in use by another smsbatch process"):
            with Journal.open(path):
                pass
        script = textwrap.dedent(f"""
            from pipeline.sending.journal import Journal, JournalInUse
            try:
                with Journal.open({str(path)!r}):
                    print("opened")
            except JournalInUse as exc:
                print("refused:", exc)
        """)
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
        )
        assert proc.stdout.startswith("refused: ")
    with Journal.open(path):  # released on close
        pass


def test_a_killed_process_leaves_no_stale_lock_and_its_in_flight_rows_become_unknown(tmp_path):
    path = tmp_path / "j.sqlite"
    script = textwrap.dedent(f"""
        import os
        from pipeline.sending.journal import Journal, Pending, RunIdentity
        with Journal.open({str(path)!r}) as j:
            run = j.begin_run(RunIdentity("/data/in.xlsx", "Contacts", "Hi {{Name}}", "ACMEST",
                                          "service", "textlocal", False), "sha")
            j.start_chunk(run.id, [Pending("k1", 2, "+919876540002")])
            os._exit(9)  # die holding the lock, mid-request
    """)
    proc = subprocess.run([sys.executable, "-c", script], timeout=30)
    assert proc.returncode == 9
    with Journal.open(path) as journal:
        run = journal.begin_run(IDENTITY, "sha")
        entry = journal.entries(run.id)["k1"]
        assert (entry.status, entry.detail) == ("unknown", IN_FLIGHT_DETAIL)


def test_same_job_finds_the_same_run_and_notices_a_changed_input(tmp_path):
    with Journal.open(tmp_path / "j.sqlite") as journal:
        first = journal.begin_run(IDENTITY, "sha-1")
        again = journal.begin_run(IDENTITY, "sha-1")
        changed = journal.begin_run(IDENTITY, "sha-2")
        other = journal.begin_run(RunIdentity(*[*IDENTITY.__dict__.values()][:-1], True), "sha-2")
    assert first.new and not again.new and not changed.new and other.new
    assert first.id == again.id == changed.id != other.id
    assert again.previous_input_sha256 is None
    assert changed.previous_input_sha256 == "sha-1"


def test_chunk_lifecycle_sending_then_outcomes_in_one_transaction(tmp_path):
    with Journal.open(tmp_path / "j.sqlite") as journal:
        run = journal.begin_run(IDENTITY, "sha")
        rows = pending(2, 3)
        chunk_id, custom = journal.start_chunk(run.id, rows)
        assert custom == f"smsbatch-{journal.journal_id}-{run.id}-{chunk_id}"
        assert len(custom) <= 30 and re.fullmatch(r"[0-9a-f]{12}", journal.journal_id)
        assert {e.status for e in journal.entries(run.id).values()} == {"sending"}
        journal.finish_chunk(
            run.id,
            chunk_id,
            [
                Outcome(rows[0].row_key, "sent", None, "11", "99", "2026-11-26T10:00:00+05:30"),
                Outcome(rows[1].row_key, "failed", "not sent: refused"),
            ],
            "answered",
        )
        entries = journal.entries(run.id)
        assert entries[rows[0].row_key].provider_message_id == "11"
        assert entries[rows[1].row_key].status == "failed"
        # A retry of the failed row counts a second attempt under a new chunk id.
        second, _ = journal.start_chunk(run.id, [rows[1]])
        assert second != chunk_id
        assert journal.entries(run.id)[rows[1].row_key].attempts == 2


def make_results(keys: dict[int, tuple[str, str]]) -> pd.DataFrame:
    index = pd.Index(list(keys), name="source_row")
    frame = pd.DataFrame(
        {
            c: None
            for c in [
                "phone_e164",
                "message",
                "encoding",
                "segments",
                "status",
                "detail",
                "provider_message_id",
                "batch_id",
                "sent_at",
                "delivery_status",
            ]
        },
        index=index,
        dtype=object,
    )
    frame["phone_e164"] = [n for n, _ in keys.values()]
    frame["message"] = [m for _, m in keys.values()]
    frame["status"] = "ready"
    return frame


@pytest.mark.parametrize(
    ("resend_unknown", "expected"),
    [
        (False, ["sent", "rejected", "unknown", "ready", "ready"]),
        (True, ["sent", "rejected", "ready", "ready", "ready"]),
    ],
)
def test_resume_carries_final_outcomes_and_resends_only_never_accepted(
    tmp_path, resend_unknown, expected
):
    numbers = {r: (f"+91987654{r:04d}", f"Hi {r}") for r in (2, 3, 4, 5, 6)}
    with Journal.open(tmp_path / "j.sqlite") as journal:
        run = journal.begin_run(IDENTITY, "sha")
        rows = [Pending(row_key(*numbers[r]), r, numbers[r][0]) for r in (2, 3, 4, 5)]
        chunk_id, _ = journal.start_chunk(run.id, rows)
        journal.finish_chunk(
            run.id,
            chunk_id,
            [
                Outcome(rows[0].row_key, "sent", None, "11", "99", "2026-11-26T10:00:00+05:30"),
                Outcome(rows[1].row_key, "rejected", "Textlocal error 32: Invalid number format"),
                Outcome(rows[2].row_key, "unknown", "may have been sent: read timeout"),
                Outcome(rows[3].row_key, "failed", "not sent: refused"),
            ],
            "answered",
        )
        entries = journal.entries(run.id)
    results = make_results(numbers)  # row 6 was never tried
    resumed = apply_journal(results, entries, resend_unknown=resend_unknown)
    assert results["status"].tolist() == expected
    assert results.at[2, "provider_message_id"] == "11"
    assert resumed.retrying == 1
    assert resumed.skipped["sent"] == 1 and resumed.skipped["rejected"] == 1
    assert resumed.resending_unknown == (1 if resend_unknown else 0)


def test_reordered_sheet_still_matches_by_number_and_message(tmp_path):
    number, message = "+919876540002", "Hi 2"
    with Journal.open(tmp_path / "j.sqlite") as journal:
        run = journal.begin_run(IDENTITY, "sha")
        chunk_id, _ = journal.start_chunk(run.id, [Pending(row_key(number, message), 2, number)])
        journal.finish_chunk(run.id, chunk_id, [Outcome(row_key(number, message), "sent")], "ok")
        entries = journal.entries(run.id)
    results = make_results({40: (number, message), 41: (number, "Hi changed")})
    apply_journal(results, entries)
    assert results["status"].tolist() == ["sent", "ready"]


OLD_MESSAGES = """
CREATE TABLE runs (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, identity TEXT NOT NULL,
    input_sha256 TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE messages (run_id INTEGER NOT NULL REFERENCES runs(id), row_key TEXT NOT NULL,
    source_row INTEGER NOT NULL, number TEXT NOT NULL, status TEXT NOT NULL, detail TEXT,
    provider_message_id TEXT, batch_id TEXT, sent_at TEXT, chunk_id INTEGER, custom TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, attempted_at TEXT, updated_at TEXT NOT NULL,
    PRIMARY KEY (run_id, row_key));
INSERT INTO runs VALUES (1, 'k', '{}', 'sha', '2024-03-01', '2024-03-01');
INSERT INTO messages (run_id, row_key, source_row, number, status, provider_message_id,
    batch_id, updated_at) VALUES (1, 'r2', 2, '+919876540002', 'sent', '11', '99', 'then');
"""


def test_a_journal_from_before_delivery_columns_gains_them_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(OLD_MESSAGES)
    db.close()
    with Journal.open(path) as journal:
        assert journal.entries(1)["r2"].provider_message_id == "11"
        assert journal.delivery_by_message_id(["11"]) == {}
        assert journal.record_delivery([("11", "delivered", "2024-03-01T10:00:05+05:30")]) == 1
    with Journal.open(path) as journal:  # reopened: nothing added twice
        assert journal.delivery_by_message_id(["11"]) == {
            "11": Delivery("+919876540002", "delivered", "2024-03-01T10:00:05+05:30")
        }
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(messages)")]
    assert columns[-2:] == ["delivery_status", "delivered_at"]


def test_record_delivery_is_one_transaction_and_lookups_page_past_sqlite_limits(tmp_path):
    with Journal.open(tmp_path / "j.sqlite") as journal:
        run = journal.begin_run(IDENTITY, "sha")
        rows = pending(*range(2, 1202))
        chunk_id, _ = journal.start_chunk(run.id, rows)
        journal.finish_chunk(
            run.id,
            chunk_id,
            [Outcome(p.row_key, "sent", None, str(1000 + p.source_row), None, None) for p in rows],
            "answered",
        )

        def updates():
            yield ("1002", "delivered", None)
            raise RuntimeError("interrupted")

        with pytest.raises(RuntimeError):
            journal.record_delivery(updates())
        assert journal.delivery_by_message_id(["1002"]) == {}
        changed = journal.record_delivery(
            [(str(1000 + r), "pending" if r % 2 else "delivered", None) for r in range(2, 1202)]
            + [("nope", "delivered", None)]
        )
        assert changed == 1200
        found = journal.delivery_by_message_id(str(1000 + r) for r in range(2, 1202))
    assert len(found) == 1200
    assert found["2201"] == Delivery("+919876541201", "pending", None)
    assert found["1002"].status == "delivered"


def test_a_late_pending_receipt_never_undoes_a_final_delivery(tmp_path):
    with Journal.open(tmp_path / "j.sqlite") as journal:
        run = journal.begin_run(IDENTITY, "sha")
        row = pending(2)[0]
        chunk_id, _ = journal.start_chunk(run.id, [row])
        journal.finish_chunk(run.id, chunk_id, [Outcome(row.row_key, "sent", None, "11")], "ok")
        assert journal.record_delivery([("11", "pending", None)]) == 1
        assert journal.record_delivery([("11", "delivered", "2026-11-26T10:00:05+05:30")]) == 1
        assert journal.record_delivery([("11", "pending", None)]) == 0  # arrived late
        assert journal.record_delivery([("11", "undelivered", None)]) == 1  # a final correction
        assert journal.delivery_by_message_id(["11"])["11"].status == "undelivered"
