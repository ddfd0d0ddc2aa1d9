"""Never twice, never lost: wherever the sheet, the folder or the journal is (docs/journal.md).

Real `smsbatch` subprocesses against the real sandbox, as a user would run them: moved and
copied sheets from other folders with the default journal, two campaigns to the same numbers,
links to a journal in use, an emptied or damaged journal, `--out` naming an input, a workbook
being written while `status` runs, and a journal whose disk fills up mid-send.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pipeline.report.workbook import read_results, workbook_lock
from pipeline.sandbox.server import Faults, SandboxServer, read_outbox

pytestmark = pytest.mark.slow  # end to end: real CLI runs, subprocesses, servers

NUMBERS = [f"98{n:08d}" for n in range(10_000_000, 10_000_060)]  # 60 distinct mobiles


def write_sheet(path: Path, numbers: list[str] = NUMBERS) -> Path:
    lines = ["Name,Mobile"] + [f"Name {i},+91 {n}" for i, n in enumerate(numbers)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TEXTLOCAL_")}


def smsbatch(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
    )


def start_send(cwd: Path, *args: str) -> subprocess.Popen:
    """`smsbatch send` in the background, its output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "send", *args],
        cwd=cwd,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_outbox_has_more_than(server: SandboxServer, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(server.outbox()) <= count and time.monotonic() < deadline:
        time.sleep(0.02)


def per_number(outbox: Path, text: str | None = None) -> Counter:
    return Counter(m["number"] for m in read_outbox(outbox) if text is None or m["message"] == text)


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, start: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {start}"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def test_moved_copied_and_rerun_from_three_folders_each_number_gets_it_once(tmp_path, state_dir):
    first, second, third = (tmp_path / name for name in ("first", "second", "third"))
    for folder in (first, second, third):
        folder.mkdir()
    template = tmp_path / "t.txt"
    template.write_text("Hi {Name}, your order is ready.\n", "utf-8")
    sheet = write_sheet(first / "contacts.csv")

    part = smsbatch(first, "send", "contacts.csv", "-t", str(template), "--limit", "20")
    assert part.returncode == 0, part.stderr
    outbox = state_dir / "sandbox" / "outbox.sqlite"  # the built-in sandbox, one per user
    assert sum(per_number(outbox).values()) == 20

    moved = second / "Contacts (final).csv"
    shutil.move(sheet, moved)
    after_move = smsbatch(second, "send", moved.name, "-t", str(template))
    assert after_move.returncode == 0, after_move.stderr
    statuses = Counter(read_results(next(second.glob("output/*.xlsx")))["status"])
    assert statuses == {"already_sent": 20, "sent": 40}

    copy = third / "copy.csv"
    shutil.copy(moved, copy)
    after_copy = smsbatch(third, "send", str(copy), "-t", str(template))
    assert after_copy.returncode == 0, after_copy.stderr
    table = read_results(next(third.glob("output/*.xlsx")))
    assert Counter(table["status"]) == {"already_sent": 60}
    assert table["detail"].iloc[0].startswith("the same text to this number was sent on ")
    assert "from contacts.csv (journal run 1, row 2)" in table["detail"].iloc[0]
    assert "--repeat-window 0" in table["detail"].iloc[0]

    again = smsbatch(first, "send", str(moved), "-t", str(template))  # the first folder again
    assert again.returncode == 0, again.stderr
    counts = per_number(outbox)
    assert len(counts) == 60 and set(counts.values()) == {1}

    on_purpose = smsbatch(
        third, "send", str(copy), "-t", str(template), "--repeat-window", "0", "--out", "again.xlsx"
    )
    assert on_purpose.returncode == 0, on_purpose.stderr
    assert set(per_number(outbox).values()) == {2}


def test_test_mode_never_blocks_a_real_send(tmp_path, state_dir):
    (tmp_path / "t.txt").write_text("Hi {Name}.\n", "utf-8")
    write_sheet(tmp_path / "a.csv", NUMBERS[:5])
    write_sheet(tmp_path / "b.csv", NUMBERS[:5])
    rehearsal = smsbatch(tmp_path, "send", "a.csv", "-t", "t.txt", "--test")
    assert rehearsal.returncode == 0, rehearsal.stderr
    real = smsbatch(tmp_path, "send", "b.csv", "-t", "t.txt", "--out", "b.xlsx")
    assert real.returncode == 0, real.stderr
    assert Counter(read_results(tmp_path / "b.xlsx")["status"]) == {"sent": 5}


def test_two_campaigns_with_5xx_reconcile_and_rerun_each_number_gets_the_second_once(tmp_path):
    (tmp_path / "one.txt").write_text("Sale ends Sunday, {Name}.\n", "utf-8")
    (tmp_path / "two.txt").write_text("Your bill is due, {Name}.\n", "utf-8")
    write_sheet(tmp_path / "c.csv")
    with SandboxServer(tmp_path / "outbox.sqlite") as server:
        base = ["--base-url", server.url, "--chunk-size", "10", "--concurrency", "1"]
        one = smsbatch(
            tmp_path,
            "send",
            "c.csv",
            "-t",
            "one.txt",
            "--journal",
            "j1.sqlite",
            "--out",
            "one.xlsx",
            *base,
        )
        assert one.returncode == 0, one.stderr
        server.faults = Faults(error_every=2)  # every other request: 5xx, nothing recorded
        two = smsbatch(
            tmp_path,
            "send",
            "c.csv",
            "-t",
            "two.txt",
            "--journal",
            "j2.sqlite",
            "--out",
            "two.xlsx",
            *base,
        )
        assert two.returncode == 0, two.stderr
        assert Counter(read_results(tmp_path / "two.xlsx")["status"]) == {"sent": 30, "unknown": 30}
        server.faults = None
        settled = smsbatch(
            tmp_path, "reconcile", "--journal", "j2.sqlite", "--base-url", server.url
        )
        assert settled.returncode == 0, settled.stderr
        assert "30 sent" not in settled.stdout  # campaign one's messages are not evidence
        assert "0 sent, 30 not sent" in settled.stdout
        rerun = smsbatch(
            tmp_path,
            "send",
            "c.csv",
            "-t",
            "two.txt",
            "--journal",
            "j2.sqlite",
            "--out",
            "two.xlsx",
            *base,
        )
        assert rerun.returncode == 0, rerun.stderr
        texts = {n: f"Your bill is due, Name {i}." for i, n in enumerate(NUMBERS)}
        second = Counter(
            m["number"] for m in server.outbox() if m["message"] == texts[m["number"][2:]]
        )
        assert len(second) == 60 and set(second.values()) == {1}
        assert Counter(read_results(tmp_path / "two.xlsx")["status"]) == {"sent": 60}


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_a_second_send_through_a_link_to_a_journal_in_use_exits_at_once(tmp_path, link):
    (tmp_path / "t.txt").write_text("Hi {Name}.\n", "utf-8")
    (tmp_path / "t2.txt").write_text("Second campaign, {Name}.\n", "utf-8")
    write_sheet(tmp_path / "c.csv")
    journal = tmp_path / "journal.sqlite"
    with SandboxServer(tmp_path / "outbox.sqlite", faults=Faults(latency=0.5)) as server:
        with start_send(
            tmp_path,
            "c.csv",
            "-t",
            "t.txt",
            "--base-url",
            server.url,
            "--journal",
            str(journal),
            "--out",
            "first.xlsx",
            "--chunk-size",
            "5",
            "--concurrency",
            "1",
        ) as first:
            wait_until_outbox_has_more_than(server, 0)
            other = tmp_path / "other.sqlite"
            if link == "symlink":
                other.symlink_to(journal)
            else:
                os.link(journal, other)
            started = time.monotonic()
            second = smsbatch(
                tmp_path,
                "send",
                "c.csv",
                "-t",
                "t2.txt",
                "--base-url",
                server.url,
                "--journal",
                str(other),
                "--out",
                "second.xlsx",
            )
            took = time.monotonic() - started
            first.kill()
        assert took < 30
        assert_one_line_error(second, 2, f"{other}: journal in use by another smsbatch process")
        assert not (tmp_path / "second.xlsx").exists()
        assert [m for m in server.outbox() if m["message"].startswith("Second")] == []
        assert set(per_number(server.outbox_path).values()) == {1}


def test_a_journal_with_two_names_is_refused_even_when_idle(tmp_path):
    (tmp_path / "t.txt").write_text("Hi {Name}.\n", "utf-8")
    write_sheet(tmp_path / "c.csv", NUMBERS[:3])
    assert (
        smsbatch(
            tmp_path, "send", "c.csv", "-t", "t.txt", "--journal", "j.sqlite", "--out", "a.xlsx"
        ).returncode
        == 0
    )
    os.link(tmp_path / "j.sqlite", tmp_path / "k.sqlite")
    again = smsbatch(
        tmp_path, "send", "c.csv", "-t", "t.txt", "--journal", "k.sqlite", "--out", "b.xlsx"
    )
    assert_one_line_error(again, 2, "k.sqlite: the journal has 2 names (hard links)")


def test_an_emptied_journal_is_refused_and_nothing_is_resent(tmp_path, state_dir):
    (tmp_path / "t.txt").write_text("Hi {Name}.\n", "utf-8")
    write_sheet(tmp_path / "c.csv")
    assert (
        smsbatch(
            tmp_path, "send", "c.csv", "-t", "t.txt", "--limit", "30", "--out", "a.xlsx"
        ).returncode
        == 0
    )
    journal = state_dir / "journal.sqlite"
    journal.write_bytes(b"")  # `: > journal.sqlite`
    outbox = state_dir / "sandbox" / "outbox.sqlite"
    before = per_number(outbox)
    rerun = smsbatch(tmp_path, "send", "c.csv", "-t", "t.txt", "--out", "b.xlsx")
    assert_one_line_error(rerun, 2, f"{journal}: the journal is empty (0 bytes)")
    assert "Restore it from a backup" in rerun.stderr
    assert per_number(outbox) == before
    assert journal.read_bytes() == b""  # never silently recreated


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other-sqlite"])
def test_a_damaged_journal_is_one_line_and_exit_2(tmp_path, damage):
    (tmp_path / "t.txt").write_text("Hi {Name}.\n", "utf-8")
    write_sheet(tmp_path / "c.csv")
    journal = tmp_path / "j.sqlite"
    assert (
        smsbatch(
            tmp_path, "send", "c.csv", "-t", "t.txt", "--journal", str(journal), "--out", "a.xlsx"
        ).returncode
        == 0
    )
    if damage == "garbage":
        journal.write_bytes(b"this is not a database\n" * 100)
        expected = "this is not an SQLite database"
    elif damage == "truncated":
        data = journal.read_bytes()
        journal.write_bytes(data[: len(data) // 2])
        expected = "the journal is damaged"
    else:
        journal.unlink()
        with sqlite3.connect(journal) as db:
            db.execute("CREATE TABLE notes (text TEXT)")
        expected = "this SQLite file is not an smsbatch journal"
    rerun = smsbatch(
        tmp_path, "send", "c.csv", "-t", "t.txt", "--journal", str(journal), "--out", "b.xlsx"
    )
    assert_one_line_error(rerun, 2, f"{journal}: {expected}")
    assert not (tmp_path / "b.xlsx").exists()


@pytest.mark.parametrize("command", ["check", "send"])
@pytest.mark.parametrize("spelling", ["same", "symlink", "hardlink", "dotted"])
def test_out_naming_the_input_sheet_is_refused_and_the_sheet_untouched(tmp_path, command, spelling):
    (tmp_path / "t.txt").write_text("Hi {Name}.\n", "utf-8")
    sheet = write_sheet(tmp_path / "c.xlsx.csv")
    xlsx = tmp_path / "contacts.xlsx"
    shutil.copy(Path(__file__).parents[2] / "input" / "contacts.xlsx", xlsx)
    original = xlsx.read_bytes()
    out = {
        "same": "contacts.xlsx",
        "dotted": "./sub/../contacts.xlsx",
        "symlink": "link.xlsx",
        "hardlink": "hard.xlsx",
    }[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "symlink":
        (tmp_path / "link.xlsx").symlink_to(xlsx)
    if spelling == "hardlink":
        os.link(xlsx, tmp_path / "hard.xlsx")
    result = smsbatch(tmp_path, command, "contacts.xlsx", "-t", "t.txt", "--out", out)
    assert_one_line_error(result, 2, f"--out {out} is the input file contacts.xlsx")
    assert xlsx.read_bytes() == original
    assert sheet.exists()


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (
            "results.csv",
            "--out results.csv: the results are an Excel workbook, so the name must "
            "end in .xlsx (e.g. results.xlsx)",
        ),
        (
            "missing/r.xlsx",
            "--out missing/r.xlsx: the folder missing/ does not exist; create it "
            "or choose another --out",
        ),
        (
            "nowhere/",
            "--out nowhere/: no such folder; create it, or give a file name ending in .xlsx",
        ),
        ("t.txt", "--out t.txt: the results are an Excel workbook"),
    ],
)
def test_bad_out_is_refused_before_anything_is_read(tmp_path, out, message):
    (tmp_path / "t.txt").write_text("Hi {Name}.\n", "utf-8")
    # The sheet does not exist: the --out check comes first, before any reading.
    result = smsbatch(tmp_path, "check", "absent.csv", "-t", "t.txt", "--out", out)
    assert_one_line_error(result, 2, message)
    assert not (tmp_path / "missing").exists() and not (tmp_path / "results.csv").exists()


def test_out_naming_a_folder_gets_the_default_name_inside_it(tmp_path):
    (tmp_path / "t.txt").write_text("Hi {Name}.\n", "utf-8")
    write_sheet(tmp_path / "c.csv", NUMBERS[:3])
    (tmp_path / "reports").mkdir()
    result = smsbatch(tmp_path, "check", "c.csv", "-t", "t.txt", "--out", "reports")
    assert result.returncode == 0, result.stderr
    [made] = (tmp_path / "reports").iterdir()
    assert made.name.startswith("c-results-") and made.suffix == ".xlsx"
    assert not (tmp_path / "output").exists()


def test_status_refuses_while_a_send_writes_the_workbook_and_loses_no_update(tmp_path):
    (tmp_path / "t.txt").write_text("Hi {Name}.\n", "utf-8")
    write_sheet(tmp_path / "c.csv")
    workbook = tmp_path / "r.xlsx"
    with SandboxServer(tmp_path / "outbox.sqlite", faults=Faults(latency=0.4)) as server:
        base = [
            "--base-url",
            server.url,
            "--journal",
            "j.sqlite",
            "--out",
            str(workbook),
            "--chunk-size",
            "10",
            "--concurrency",
            "1",
        ]
        first = smsbatch(tmp_path, "send", "c.csv", "-t", "t.txt", "--limit", "10", *base)
        assert first.returncode == 0, first.stderr
        with start_send(tmp_path, "c.csv", "-t", "t.txt", *base) as rest:
            wait_until_outbox_has_more_than(server, 10)
            status = smsbatch(tmp_path, "status", str(workbook), "--base-url", server.url)
            _, err = rest.communicate(timeout=120)
        assert rest.returncode == 0, err
        assert_one_line_error(
            status,
            2,
            f"{workbook}: another smsbatch command (a send or status) is writing this workbook",
        )
        assert Counter(read_results(workbook)["status"]) == {"sent": 60}
        after = smsbatch(tmp_path, "status", str(workbook), "--base-url", server.url)
        assert after.returncode == 0, after.stderr
        table = read_results(workbook)
        assert Counter(table["status"]) == {"sent": 60}
        assert table["delivery_status"].notna().all()


def test_status_waits_for_no_one_it_refuses_a_held_workbook_in_one_line(tmp_path):
    (tmp_path / "t.txt").write_text("Hi {Name}.\n", "utf-8")
    write_sheet(tmp_path / "c.csv", NUMBERS[:3])
    assert smsbatch(tmp_path, "send", "c.csv", "-t", "t.txt", "--out", "r.xlsx").returncode == 0
    before = (tmp_path / "r.xlsx").read_bytes()
    with workbook_lock(tmp_path / "r.xlsx"):
        result = smsbatch(tmp_path, "status", "r.xlsx")
    assert_one_line_error(result, 2, "r.xlsx: another smsbatch command")
    assert (tmp_path / "r.xlsx").read_bytes() == before


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB filesystem of its own (tmpfs), or skip where one cannot be mounted."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("cannot mount a small filesystem here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 2**20)
                fh.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_mid_send_is_one_line_nothing_twice_nothing_lost(tmp_path, small_disk):
    (tmp_path / "t.txt").write_text("Hi {Name}.\n", "utf-8")
    write_sheet(tmp_path / "c.csv")
    journal = small_disk / "journal.sqlite"
    with SandboxServer(tmp_path / "outbox.sqlite", faults=Faults(latency=0.3)) as server:
        with start_send(
            tmp_path,
            "c.csv",
            "-t",
            "t.txt",
            "--base-url",
            server.url,
            "--journal",
            str(journal),
            "--out",
            "r.xlsx",
            "--chunk-size",
            "5",
            "--concurrency",
            "1",
        ) as run:
            wait_until_outbox_has_more_than(server, 0)
            filler = fill(small_disk)
            out, err = run.communicate(timeout=120)
        assert run.returncode == 3, (out, err)
        assert "Traceback" not in err
        assert err.count("\n") == 1 and err.startswith("error: cannot write the journal ")
        assert "disk is full" in err
        table = read_results(tmp_path / "r.xlsx")
        assert len(table) == 60  # every row, with a status
        sent = set(table.loc[table["status"] == "sent", "phone_e164"])
        assert sent == {"+" + m["number"] for m in server.outbox()}
        assert set(table["status"]) <= {"sent", "failed"}

        filler.unlink()
        rerun = smsbatch(
            tmp_path,
            "send",
            "c.csv",
            "-t",
            "t.txt",
            "--base-url",
            server.url,
            "--journal",
            str(journal),
            "--out",
            "r2.xlsx",
        )
        assert rerun.returncode == 0, rerun.stderr
        counts = per_number(server.outbox_path)
        assert len(counts) == 60 and set(counts.values()) == {1}


def test_a_journal_left_in_output_by_an_earlier_version_is_pointed_out(tmp_path, state_dir):
    (tmp_path / "t.txt").write_text("Hi {Name}.\n", "utf-8")
    write_sheet(tmp_path / "c.csv", NUMBERS[:2])
    (tmp_path / "output").mkdir()
    old = smsbatch(
        tmp_path,
        "send",
        "c.csv",
        "-t",
        "t.txt",
        "--journal",
        "output/journal.sqlite",
        "--out",
        "a.xlsx",
    )
    assert old.returncode == 0, old.stderr
    result = smsbatch(tmp_path, "send", "c.csv", "-t", "t.txt", "--out", "b.xlsx")
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "warning: output/journal.sqlite is a journal from an earlier smsbatch; this send uses "
        f"{state_dir}/journal.sqlite and does not know what that one sent: to keep its memory, "
        f"move it to {state_dir}/journal.sqlite (if none is there yet) or pass --journal "
        "output/journal.sqlite\n"
    )


def test_purge_erases_the_default_journal_and_outbox_wherever_they_live(tmp_path, state_dir):
    (tmp_path / "t.txt").write_text("Hi {Name}.\n", "utf-8")
    write_sheet(tmp_path / "c.csv", NUMBERS[:4])
    assert smsbatch(tmp_path, "send", "c.csv", "-t", "t.txt").returncode == 0
    time.sleep(2.2)  # the outbox keeps whole seconds: be two seconds past them
    purged = smsbatch(tmp_path, "purge", "--older-than", "1s", "--yes")
    assert purged.returncode == 0, purged.stderr
    assert "journal: 4 messages, 1 chunks, 1 runs" in purged.stdout
    assert "sandbox outbox: 4 messages" in purged.stdout
    with sqlite3.connect(state_dir / "journal.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    assert read_outbox(state_dir / "sandbox" / "outbox.sqlite") == []


def test_a_send_says_how_many_rows_were_already_sent_and_how_to_send_them_anyway(tmp_path):
    (tmp_path / "t.txt").write_text("Hi {Name}.\n", "utf-8")
    write_sheet(tmp_path / "a.csv", NUMBERS[:3])
    write_sheet(tmp_path / "b.csv", NUMBERS[:3])
    assert smsbatch(tmp_path, "send", "a.csv", "-t", "t.txt").returncode == 0
    again = smsbatch(tmp_path, "send", "b.csv", "-t", "t.txt")
    assert again.returncode == 0, again.stderr
    assert (
        "Not sending 3 rows already_sent: the same text went to those numbers through this "
        "account within the repeat window, from another file, folder or run (`detail` says "
        "which; --repeat-window 0 sends them anyway).\nNothing to send: every sendable row "
        "was already sent by another run.\n"
    ) in again.stdout
