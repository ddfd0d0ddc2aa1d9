"""The job as a library call: prepare() statuses and their precedence, check() and its summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import job as batch
from pipeline.report.workbook import read_results

TEMPLATE = "Dear {Name}, Rs {Amount} due {Due:%d/%m}.\n"


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    sheet = write_csv(
        tmp_path / "people.csv",
        [
            "Name,Phone,Amount,Due",
            "Asha,98765 43210,1499,2026-01-05",  # 2 ready
            "Ravi,12345,10,2026-01-05",  # 3 invalid (too short)
            "Meera,+91 98765 43210,20,2026-01-06",  # 4 duplicate of row 2
            "Kabir,9876500001,,2026-01-07",  # 5 missing Amount
            "Dup,09876500001,5,2026-01-07",  # 6 duplicate of row 5 (first row wins)
            "Bad,abc,,2026-01-07",  # 7 invalid beats missing
            ",,,",  # 8 blank: skipped
            "Zoya,7506012345,250.5,2026-02-01",  # 9 ready
        ],
    )
    template = tmp_path / "t.txt"
    template.write_text(TEMPLATE, encoding="utf-8")
    return sheet, template


def test_prepare_gives_each_row_one_status_with_a_reason(files):
    prepared = batch.load(*files)
    r = prepared.results
    assert r.index.tolist() == [2, 3, 4, 5, 6, 7, 9]
    assert r["status"].tolist() == [
        "ready",
        "invalid_number",
        "duplicate",
        "missing_field",
        "duplicate",
        "invalid_number",
        "ready",
    ]
    assert r["detail"].tolist() == [
        None,
        "too short (5 digits)",
        "same number as row 2",
        "Amount is empty",
        "same number as row 5",
        "not a number (contains letters)",
        None,
    ]
    assert r["phone_e164"].tolist() == [
        "+919876543210",
        None,
        "+919876543210",
        "+919876500001",
        "+919876500001",
        None,
        "+917506012345",
    ]
    assert r.at[2, "message"] == "Dear Asha, Rs 1499 due 05/01."
    assert r.at[9, "message"] == "Dear Zoya, Rs 250.5 due 01/02."
    assert r.at[5, "message"] is None
    assert prepared.ready.index.tolist() == [2, 9]
    assert prepared.credits() == 2


def test_check_writes_the_workbook_and_summary(files, tmp_path):
    out = tmp_path / "out" / "r.xlsx"
    out.parent.mkdir()
    result = batch.check(*files, out=out)
    assert result.out_path == out
    assert result.counts["ready"] == 2 and result.counts["duplicate"] == 2
    assert sum(result.counts.values()) == 7
    summary = dict(result.summary)
    assert summary["mode"] == "check"
    assert summary["rows"] == 7
    assert summary["messages"] == 2 and summary["credits"] == 2
    assert summary["input file"] == "people.csv"
    assert summary["input sha256"] == result.prepared.sheet.sha256
    assert summary["template"] == TEMPLATE.rstrip("\n")
    assert summary["started at"] <= summary["finished at"]
    table = read_results(out)
    assert table["status"].tolist() == result.results["status"].tolist()


def test_default_out_path_is_under_output_with_a_timestamp():
    from datetime import datetime

    path = batch.default_out_path(Path("in/Contacts List.xlsx"), datetime(2026, 11, 26, 9, 5, 7))
    assert path == Path("output/Contacts List-results-20261126-090507.xlsx")


def test_credits_count_every_part(tmp_path):
    sheet = write_csv(tmp_path / "s.csv", ["Name,Mobile", "A,9876543210", "प्रिया,9876543211"])
    template = tmp_path / "t.txt"
    template.write_text("Hello {Name} " + "x" * 150, encoding="utf-8")
    prepared = batch.load(sheet, template)
    assert prepared.results["encoding"].tolist() == ["GSM-7", "UCS-2"]
    assert prepared.results["segments"].tolist() == [1, 3]
    assert prepared.credits() == 4


def test_default_out_path_never_overwrites_a_workbook_from_the_same_second(tmp_path, monkeypatch):
    from datetime import datetime

    monkeypatch.chdir(tmp_path)
    when = datetime(2026, 11, 26, 9, 5, 7)
    first = batch.default_out_path(Path("c.xlsx"), when)
    first.parent.mkdir()
    first.write_bytes(b"x")
    assert batch.default_out_path(Path("c.xlsx"), when) == Path(
        "output/c-results-20261126-090507-2.xlsx"
    )


def test_summary_counts_only_the_rows_going_out(files):
    prepared = batch.load(*files)
    r = prepared.results
    # Row 2 becomes a 2-part Unicode message; row 9 stays one GSM part.
    r.loc[2, ["encoding", "segments"]] = ["UCS-2", 2]
    checked = dict(
        batch.build_summary(
            prepared, mode="check", provider=None, sender=None, stopped=None, balance=None
        )
    )
    assert (
        checked["messages"],
        checked["segments"],
        checked["credits"],
        checked["unicode messages"],
    ) == (2, 3, 3, 1)
    assert checked["status: ready"] == 2 and checked["status: duplicate"] == 2
    # After a send: sent and scheduled rows went out; a failed one did not.
    r.loc[[2, 9], "status"] = ["sent", "failed"]
    sent = dict(
        batch.build_summary(
            prepared, mode="send", provider="sandbox", sender="TXTLCL", stopped=None, balance=7
        )
    )
    assert (sent["messages"], sent["segments"], sent["credits"], sent["unicode messages"]) == (
        1,
        2,
        2,
        1,
    )
    assert sent["status: sent"] == 1 and sent["status: failed"] == 1
    assert sent["provider balance after"] == 7
