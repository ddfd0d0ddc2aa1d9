"""Crash-safe sending end to end: real `smsbatch send` subprocesses against the real sandbox.

kill -9 at random points, Ctrl-C, a second process on the same journal, dropped connections,
5xx and 429 answers: no number ever gets a message twice, and no row's outcome is lost.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pipeline.report.workbook import read_results
from pipeline.sandbox.server import Faults, SandboxServer, read_outbox
from pipeline.sending.journal import IN_FLIGHT_DETAIL

pytestmark = pytest.mark.slow  # end to end: real CLI runs, subprocesses, servers

ROWS = 5_000
SKIPPED = ("invalid_number", "duplicate", "missing_field")


def write_sheet(path: Path, rows: int, seed: int = 11) -> dict[str, int]:
    """A CSV of `rows` contacts, a few invalid and duplicated; returns status expectations."""
    rng = random.Random(seed)
    lines = ["Name,Mobile,Amount"]
    numbers = rng.sample(range(10**8), rows)
    expected = Counter()
    for i, n in enumerate(numbers):
        if i % 250 == 7:
            lines.append(f"Bad {i},12345,10")
            expected["invalid_number"] += 1
        elif i % 250 == 9:
            lines.append(f"Dup {i},98{numbers[i - 1]:08d},10")
            expected["duplicate"] += 1
        else:
            lines.append(f"Name {i},+91 98{n:08d},{100 + i % 900}")
            expected["sendable"] += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return expected


@pytest.fixture
def job(tmp_path):
    sheet = tmp_path / "contacts.csv"
    expected = write_sheet(sheet, ROWS)
    (tmp_path / "t.txt").write_text("Hi {Name}, your balance is Rs {Amount}.\n", "utf-8")
    return tmp_path, expected


def send_cmd(server: SandboxServer, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipeline",
        "send",
        "contacts.csv",
        "-t",
        "t.txt",
        "--provider",
        "sandbox",
        "--base-url",
        server.url,
        "--journal",
        "journal.sqlite",
        "--out",
        "results.xlsx",
        *extra,
    ]


def run_send(cwd: Path, server: SandboxServer, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        send_cmd(server, *extra),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=child_env(),
    )


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTLOCAL_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def outbox_count(server: SandboxServer) -> int:
    with sqlite3.connect(f"file:{server.outbox_path}?mode=ro", uri=True) as db:
        return db.execute("SELECT COUNT(*) FROM messages WHERE test = 0").fetchone()[0]


def journal_rows(cwd: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(cwd / "journal.sqlite") as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM messages").fetchall()


def assert_at_most_once(server: SandboxServer) -> list[dict]:
    outbox = read_outbox(server.outbox_path)
    counts = Counter(m["number"] for m in outbox)
    assert [n for n, c in counts.items() if c > 1] == []
    return outbox


def test_kill_9_at_random_points_never_sends_twice_and_never_loses_a_row(job):
    cwd, expected = job
    rng = random.Random(20261126)
    with SandboxServer(cwd / "outbox.sqlite", faults=Faults(latency=0.02)) as server:
        targets = sorted(rng.sample(range(200, expected["sendable"] - 300), 12))
        kills = 0
        for target in targets:
            with subprocess.Popen(
                send_cmd(server, "--chunk-size", "50"),
                cwd=cwd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=child_env(),
            ) as proc:
                deadline = time.monotonic() + 120
                while proc.poll() is None and outbox_count(server) < target:
                    assert time.monotonic() < deadline
                    time.sleep(0.005)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                proc.wait(timeout=30)
        final = run_send(cwd, server, "--chunk-size", "50")
        assert final.returncode == 0, final.stderr
        outbox = assert_at_most_once(server)

    assert kills >= 10
    table = read_results(cwd / "results.xlsx")
    statuses = Counter(table["status"])
    assert sum(statuses.values()) == ROWS
    assert {s: statuses[s] for s in SKIPPED if statuses[s]} == {
        "invalid_number": expected["invalid_number"],
        "duplicate": expected["duplicate"],
    }
    assert statuses["sent"] + statuses["unknown"] == expected["sendable"]
    assert statuses["failed"] == statuses["rejected"] == 0
    # Every sent row is in the outbox exactly once, under the id the workbook names.
    sent = table[table["status"] == "sent"]
    by_id = {m["id"]: m for m in outbox}
    for row_id, number, message in zip(
        sent["provider_message_id"], sent["phone_e164"], sent["message"], strict=True
    ):
        assert by_id[str(row_id)]["number"] == number[1:]
        assert by_id[str(row_id)]["message"] == message
    # Rows killed in flight are unknown and were never sent again.
    in_flight = [r for r in journal_rows(cwd) if r["detail"] == IN_FLIGHT_DETAIL]
    assert in_flight and {r["status"] for r in in_flight} == {"unknown"}
    assert {r["attempts"] for r in in_flight} == {1}
    assert statuses["unknown"] == len(in_flight)
    assert len(outbox) == statuses["sent"] + sum(
        1 for r in in_flight if r["number"][1:] in {m["number"] for m in outbox}
    )
    print(
        f"\nkill test: {kills} kills, {len(outbox)} messages in the outbox, 0 duplicates, "
        f"{len(in_flight)} rows unknown (killed in flight)"
    )


def test_ctrl_c_records_what_was_in_flight_and_prints_the_resume_command(job):
    cwd, expected = job
    with SandboxServer(cwd / "outbox.sqlite", faults=Faults(latency=0.2)) as server:
        with subprocess.Popen(
            send_cmd(server, "--chunk-size", "20", "--concurrency", "2"),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        ) as proc:
            while outbox_count(server) < 100:
                assert proc.poll() is None
                time.sleep(0.01)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert (
            "To send the rest, run: smsbatch send contacts.csv -t t.txt --provider sandbox "
            f"--base-url {server.url} --journal journal.sqlite --out results.xlsx "
            "--chunk-size 20 --concurrency 2"
        ) in err
        assert "Traceback" not in err
        table = read_results(cwd / "results.xlsx")
        assert len(table) == ROWS
        statuses = Counter(table["status"])
        assert statuses["sent"] == outbox_count(server)
        assert statuses["sent"] + statuses["failed"] == expected["sendable"]
        assert {r["status"] for r in journal_rows(cwd)} == {"sent"}  # nothing left in flight

        resumed = run_send(cwd, server)
        assert resumed.returncode == 0, resumed.stderr
        assert f"not sending again {statuses['sent']} sent" in resumed.stdout
        assert_at_most_once(server)
        assert outbox_count(server) == expected["sendable"]


def test_a_complete_job_rerun_sends_nothing_and_says_so(job):
    cwd, expected = job
    with SandboxServer(cwd / "outbox.sqlite") as server:
        assert run_send(cwd, server).returncode == 0
        again = run_send(cwd, server)
        assert again.returncode == 0, again.stderr
        assert "Nothing to send: every row of this job was settled by earlier runs." in again.stdout
        assert outbox_count(server) == expected["sendable"]
        table = read_results(cwd / "results.xlsx")
        assert Counter(table["status"])["sent"] == expected["sendable"]


def test_a_second_process_on_the_same_journal_exits_at_once(job):
    cwd, _ = job
    with SandboxServer(cwd / "outbox.sqlite", faults=Faults(latency=0.3)) as server:
        with subprocess.Popen(
            send_cmd(server, "--chunk-size", "10", "--concurrency", "1"),
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=child_env(),
        ) as first:
            while outbox_count(server) == 0:
                time.sleep(0.01)
            started = time.monotonic()
            second = run_send(cwd, server, "--out", "second.xlsx")
            assert time.monotonic() - started < 30
            first.kill()
        assert second.returncode == 2
        assert second.stderr == (
            "error: journal.sqlite: journal in use by another smsbatch "
            "process; wait for it to finish, or give this run its own "
            "--journal\n"
        )
        assert not (cwd / "second.xlsx").exists()


def test_dropped_answers_become_unknown_and_reconcile_settles_them(job):
    cwd, expected = job
    with SandboxServer(cwd / "outbox.sqlite", faults=Faults(drop_every=3)) as server:
        first = run_send(cwd, server, "--chunk-size", "500", "--concurrency", "1")
        assert first.returncode == 0, first.stderr
        table = read_results(cwd / "results.xlsx")
        unknown = int((table["status"] == "unknown").sum())
        assert unknown == 1500  # the 3rd, 6th and 9th of 10 requests: recorded, then dropped
        assert outbox_count(server) == expected["sendable"]  # they did arrive

        rerun = run_send(cwd, server)
        assert rerun.returncode == 0
        assert "1500 rows are unknown (may have been sent)" in rerun.stdout
        assert outbox_count(server) == expected["sendable"]  # unknown rows are not resent

        server.faults = None
        settled = subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline",
                "reconcile",
                "--provider",
                "sandbox",
                "--base-url",
                server.url,
                "--journal",
                "journal.sqlite",
            ],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            env=child_env(),
        )
        assert settled.returncode == 0, settled.stderr
        assert settled.stdout.startswith(
            "Checked 1500 unknown rows in 1 runs against the provider's history: 1500 sent, "
            "0 not sent, 0 still unknown."
        )
        final = run_send(cwd, server)
        assert final.returncode == 0
        table = read_results(cwd / "results.xlsx")
        assert Counter(table["status"])["sent"] == expected["sendable"]
        assert_at_most_once(server)


def test_unrecorded_5xx_is_unknown_and_resend_unknown_sends_it_once(job):
    cwd, expected = job
    with SandboxServer(cwd / "outbox.sqlite", faults=Faults(error_every=5)) as server:
        first = run_send(cwd, server, "--chunk-size", "500", "--concurrency", "1")
        assert first.returncode == 0, first.stderr
        # Requests 5 and 10 (500 and the last 460 rows) answered 500 and recorded nothing.
        assert outbox_count(server) == expected["sendable"] - 960
        server.faults = None
        again = run_send(cwd, server, "--resend-unknown")
        assert again.returncode == 0
        assert "warning: resending 960 rows whose earlier outcome is unknown" in again.stderr
        assert_at_most_once(server)
        assert outbox_count(server) == expected["sendable"]


def test_429_is_retried_after_the_wait_and_nothing_is_lost(job):
    cwd, expected = job
    faults = Faults(rate_limit_every=4, retry_after=1.0)
    with SandboxServer(cwd / "outbox.sqlite", faults=faults) as server:
        started = time.monotonic()
        result = run_send(cwd, server, "--chunk-size", "500", "--concurrency", "1")
        assert result.returncode == 0, result.stderr
        # Requests 4, 8 and 12 are turned away; each of those chunks waits 1 s, then goes.
        assert time.monotonic() - started >= 3.0
        assert server.fault_counts.rate_limited == 3
        assert_at_most_once(server)
        assert outbox_count(server) == expected["sendable"]
