"""The benchmark script keeps working (a tiny run; real figures come from `make bench`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow  # end to end: real CLI runs, subprocesses, servers

SCRIPT = REPO / "benchmarks" / "bench_check.py"


def test_smoke_run_prints_every_stage_for_both_paths():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    lines = proc.stdout.splitlines()
    assert any(line.startswith("2,000 rows") for line in lines)
    for stage in ("read", "validate+normalise", "merge+segments", "write", "check end to end"):
        row = next(line for line in lines if line.startswith(stage))
        assert row.rstrip().endswith("x"), row  # the naive path ran too: a ratio is printed
    assert (
        "verified: every row in order, known statuses, duplicates point back, no formulas, "
        "sampled numbers judged as phonenumbers does" in lines
    )


def test_verification_reports_what_is_wrong(tmp_path):
    # Runs after the smoke run above, which generated the 2,000-row sheet.
    import importlib.util

    from pipeline import job as batch

    spec = importlib.util.spec_from_file_location("bench_check", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    sheet = SCRIPT.parent / "data" / "contacts-2000.xlsx"
    if not sheet.exists():
        bench.generate(2_000, sheet)
    out = tmp_path / "r.xlsx"
    result = batch.check(sheet, SCRIPT.parent / "data" / "template.txt", out=out)
    assert bench.verify(sheet, result, out) == []
    r = result.results
    dup = r.index[r["status"] == "duplicate"][0]
    ready = r.index[r["status"] == "ready"][0]
    r.at[dup, "phone_e164"] = "+910000000000"
    r.at[ready, "phone_e164"] = None
    r.at[ready, "status"] = "lost"
    assert bench.verify(sheet, result, out) == [
        "unknown statuses ['lost']",
        "1 duplicates name no earlier row with their number",
        "2 of 2,000 sampled numbers judged unlike phonenumbers",  # every row is sampled
    ]
    import openpyxl

    book = openpyxl.Workbook()
    book.active["A1"] = "=1+1"  # openpyxl writes this as a formula
    book.save(out)
    assert "a formula in xl/worksheets/sheet1.xml" in bench.verify(sheet, result, out)


SEND = SCRIPT.with_name("bench_send.py")


def test_send_smoke_run_reports_ratio_journal_time_and_memory_per_concurrency():
    proc = subprocess.run(
        [
            sys.executable,
            str(SEND),
            "--latency",
            "0",
            "--messages",
            "1200",
            "--naive",
            "5",
            "--concurrency",
            "1",
            "3",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    lines = proc.stdout.splitlines()
    assert lines[0] == "sandbox latency 0 ms per request; 2,405 messages in the outbox"
    for concurrency in (1, 3):
        row = next(
            line
            for line in lines
            if line.startswith(f"smsbatch (bulk_json 500, concurrency {concurrency})")
        )
        fields = row.split(")", 1)[1].split()
        assert fields[0] == "1,200" and fields[3].endswith("x"), row  # messages, ratio
        assert fields[5].startswith("(") and fields[5].endswith("%)"), row  # journal share
    assert any(line.startswith("one POST per message") for line in lines)
