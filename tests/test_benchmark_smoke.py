"""The benchmark script keeps working (a tiny run; real figures come from `make bench`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_check.py"


def test_smoke_run_prints_every_stage_for_both_paths():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke"], capture_output=True,
                          text=True, check=True, timeout=300)
    lines = proc.stdout.splitlines()
    assert any(line.startswith("2,000 rows") for line in lines)
    for stage in ("read", "validate+normalise", "merge+segments", "write", "check end to end"):
        row = next(line for line in lines if line.startswith(stage))
        assert row.rstrip().endswith("x"), row  # the naive path ran too: a ratio is printed


SEND = SCRIPT.with_name("bench_send.py")


def test_send_smoke_run_reports_ratio_journal_time_and_memory_per_concurrency():
    proc = subprocess.run([sys.executable, str(SEND), "--latency", "0", "--messages", "1200",
                           "--naive", "5", "--concurrency", "1", "3"],
                          capture_output=True, text=True, check=True, timeout=300)
    lines = proc.stdout.splitlines()
    assert lines[0] == "sandbox latency 0 ms per request; 2,405 messages in the outbox"
    for concurrency in (1, 3):
        row = next(line for line in lines
                   if line.startswith(f"smsbatch (bulk_json 500, concurrency {concurrency})"))
        fields = row.split(")", 1)[1].split()
        assert fields[0] == "1,200" and fields[3].endswith("x"), row  # messages, ratio
        assert fields[5].startswith("(") and fields[5].endswith("%)"), row  # journal share
    assert any(line.startswith("one POST per message") for line in lines)
