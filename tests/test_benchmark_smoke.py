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
