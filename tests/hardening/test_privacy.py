"""Personal data: masked in logs, owner-only files, erasable with `smsbatch purge`.

The promise: docs/contract.md, "Secrets and privacy".

Numbers and message texts are personal data. At `-v` (DEBUG, every library) stderr holds no
full number from the sheet and no message text; every file smsbatch creates is 0600 even under
umask 000; `purge` deletes old journal and outbox rows so that their bytes are gone from the
files, refuses while a send holds the journal, and asks first.
"""

from __future__ import annotations

import io
import logging
import os
import pty
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.cli.logs import MaskingFilter
from pipeline.errors import InputError
from pipeline.privacy import mask_text
from pipeline.providers.textlocal.client import Outgoing, TextlocalClient
from pipeline.purge import parse_age, purge
from pipeline.report.workbook import read_results
from pipeline.sandbox.server import Faults, SandboxServer
from pipeline.sending.journal import Journal, Outcome, Pending, RunIdentity

REPO = Path(__file__).resolve().parents[2]
UMASK_0 = (
    "import os, runpy; os.umask(0); "
    "runpy.run_module('pipeline', run_name='__main__', alter_sys=True)"
)


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TEXTLOCAL_")}


def cli(cwd: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """`smsbatch ARGS` in a subprocess started with umask 000 (files must not rely on it)."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(
        [sys.executable, "-c", UMASK_0, *args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def workdir(tmp_path):
    shutil.copytree(REPO / "input", tmp_path / "input")
    (tmp_path / "out").mkdir()  # --out names a folder that exists
    return tmp_path


# -- logs ---------------------------------------------------------------------------------


def personal_data(results_path: Path) -> tuple[set[str], set[str]]:
    """The sheet's numbers (as the 10 national digits) and every rendered message and name."""
    table = read_results(results_path)
    numbers = {n[-10:] for n in table["phone_e164"].dropna()}
    for raw in table["Mobile No."].dropna():
        text = str(int(raw)) if isinstance(raw, float) else str(raw)
        digits = re.sub(r"\D", "", text)
        if len(digits) >= 10:
            numbers.add(digits[-10:])
    texts = set(table["message"].dropna()) | set(table["Name"].dropna())
    return numbers, texts


def assert_no_personal_data(text: str, numbers: set[str], texts: set[str]) -> None:
    digits = re.sub(r"[ -]", "", text)  # "+91 98765 43210" must not slip through either
    assert [n for n in numbers if n in digits] == []
    assert [t for t in texts if t in text] == []


@pytest.mark.slow
def test_a_verbose_send_logs_no_number_and_no_message(workdir):
    with SandboxServer(
        workdir / "sandbox.sqlite", faults=Faults(drop_every=2, error_every=3)
    ) as server:
        sent = cli(
            workdir,
            "-v",
            "send",
            "input/contacts.xlsx",
            "-t",
            "input/template.txt",
            "--base-url",
            server.url,
            "--chunk-size",
            "4",
            "--concurrency",
            "1",
            "--journal",
            "out/journal.sqlite",
            "--out",
            "out/results.xlsx",
        )
        settled = cli(
            workdir, "-v", "reconcile", "--base-url", server.url, "--journal", "out/journal.sqlite"
        )
        status = cli(
            workdir,
            "-v",
            "status",
            "out/results.xlsx",
            "--base-url",
            server.url,
            "--journal",
            "out/journal.sqlite",
        )
    assert (sent.returncode, settled.returncode, status.returncode) == (0, 0, 0), sent.stderr
    numbers, texts = personal_data(workdir / "out" / "results.xlsx")
    assert (len(numbers), len(texts)) == (35, 77)  # the check has something to find
    for proc in (sent, settled, status):
        assert "DEBUG urllib3.connectionpool" in proc.stderr  # -v: every library logs
        assert_no_personal_data(proc.stderr, numbers, texts)
    # The faults made the send log its warnings: they are there, with nothing personal.
    # requests 2, 3, 4, 6, 8
    assert sent.stderr.count("WARNING pipeline.sending.chunks: chunk") == 5


LEAKY_COMMAND = """
import logging
from pipeline.cli import main

@main.command("leak")
def leak():
    "Log personal data the way a careless library might."
    log = logging.getLogger("some.library")
    log.debug("sending to %s", "+919876543210")
    log.info("payload %r", {"to": "919812345670", "alt": "+91 99001 23456"})
    log.warning("call 98765-43210 or 0 9000012345, or 09123456789")
    try:
        raise ValueError("bad number 9876501234")
    except ValueError:
        log.exception("failed for %s", "7000012345")

main(["-v", "leak"])
"""


def test_the_cli_log_setup_masks_numbers_from_any_logger():
    proc = subprocess.run(
        [sys.executable, "-c", LEAKY_COMMAND],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[:4] == [
        "DEBUG some.library: sending to +91******3210",
        "INFO some.library: payload {'to': '+91******5670', 'alt': '+91******3456'}",
        "WARNING some.library: call +91******3210 or 0 +91******2345, or +91******6789",
        "ERROR some.library: failed for +91******2345",
    ]
    assert lines[-1] == "ValueError: bad number +91******1234"
    assert not re.search(r"\d{10}", proc.stderr.replace(" ", ""))


def test_masking_filter_rewrites_message_args_and_traceback():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingFilter())
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("test.masking")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("to %s (%d rows)", "+919876543210", 3)
        log.warning("id 1151346216, batch 123456789, already +91******3210")
        log.warning("here", stack_info=True)
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[:2] == [
        "to +91******3210 (3 rows)",
        "id 1151346216, batch 123456789, already +91******3210",
    ]
    assert lines[2] == "here" and lines[3] == "Stack (most recent call last):"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+919876543210", "+91******3210"),
        ("919876543210", "+91******3210"),
        ("9876543210", "+91******3210"),
        ("09876543210", "+91******3210"),
        ("+91 98765 43210", "+91******3210"),
        ("+91-98765-43210", "+91******3210"),
        ("98765 43210", "+91******3210"),
        ("1151346216", "1151346216"),  # a message id: not a mobile number
        ("12345678901234", "12345678901234"),  # part of a longer run of digits
        ("98765432101", "98765432101"),
        ("+91******3210", "+91******3210"),
    ],
)
def test_mask_text(text, masked):
    assert mask_text(text) == masked


# -- file modes -----------------------------------------------------------------------------


@pytest.mark.slow
def test_every_file_a_send_creates_is_owner_only_even_under_umask_000(workdir, state_dir):
    sent = cli(
        workdir,
        "send",
        "input/contacts.xlsx",
        "-t",
        "input/template.txt",
        "--journal",
        "out/journal.sqlite",
        "--out",
        "out/results.xlsx",
    )
    status = cli(workdir, "status", "out/results.xlsx", "--journal", "out/journal.sqlite")
    assert (sent.returncode, status.returncode) == (0, 0), sent.stderr + status.stderr
    files = sorted(
        p.relative_to(workdir).as_posix()
        for p in workdir.rglob("*")
        if p.is_file() and "input" not in p.parts
    )
    # No temp file left behind, and every file there is 0600.
    assert files == ["out/journal.sqlite", "out/results.xlsx"]
    assert {f: oct(mode(workdir / f)) for f in files} == {f: "0o600" for f in files}
    state = sorted(p.relative_to(state_dir).as_posix() for p in state_dir.rglob("*") if p.is_file())
    assert [f for f in state if not f.startswith("locks/")] == ["sandbox/outbox.sqlite"]
    assert {f: oct(mode(state_dir / f)) for f in state} == {f: "0o600" for f in state}


def test_open_outbox_and_journal_with_their_wal_files_are_owner_only(tmp_path):
    old = os.umask(0)
    try:
        with SandboxServer(tmp_path / "box" / "outbox.sqlite") as server:
            with TextlocalClient("any-key", server.url) as client:
                client.send_bulk([Outgoing("919876543210", "Hi")], sender="TXTLCL")
            box = sorted((tmp_path / "box").iterdir())
            assert [p.name for p in box] == [
                "outbox.sqlite",
                "outbox.sqlite-shm",
                "outbox.sqlite-wal",
            ]
            assert [oct(mode(p)) for p in box] == ["0o600"] * 3
        with Journal.open(tmp_path / "j" / "journal.sqlite") as journal:
            journal.begin_run(identity("a.csv"), "sha")
            files = sorted((tmp_path / "j").iterdir())
            assert [p.name for p in files] == [
                "journal.sqlite",
                "journal.sqlite-shm",
                "journal.sqlite-wal",
            ]
            assert [oct(mode(p)) for p in files] == ["0o600"] * 3
    finally:
        os.umask(old)


# -- purge ----------------------------------------------------------------------------------

OLD_NUMBERS = ["+919811111101", "+919811111102", "+919811111103"]
NEW_NUMBERS = ["+919822222201", "+919822222202"]
OLD_TEXT, NEW_TEXT = "OLDTEXT-7c1d Rs 4410 due", "NEWTEXT-9e2a Rs 120 due"
LONG_AGO = "2020-01-01T10:00:00+05:30"


def identity(name: str) -> RunIdentity:
    return RunIdentity(name, None, "Hi {Name}", "ACMEST", "service", "textlocal", False)


def journal_send(journal: Journal, name: str, numbers: list[str]) -> None:
    run = journal.begin_run(identity(name), "sha")
    rows = [Pending(f"key-{n}", i + 2, n) for i, n in enumerate(numbers)]
    chunk_id, _ = journal.start_chunk(run.id, rows)
    journal.finish_chunk(
        run.id, chunk_id, [Outcome(p.row_key, "sent", None, "1", "2") for p in rows], "answered"
    )


@pytest.fixture
def stores(tmp_path):
    """A journal and an outbox, each with old rows (2020) and new ones (now)."""
    journal_path, outbox_path = tmp_path / "journal.sqlite", tmp_path / "outbox.sqlite"
    with Journal.open(journal_path) as journal:
        journal_send(journal, "old.csv", OLD_NUMBERS[:2])  # a run left empty by the purge
        journal_send(journal, "mixed.csv", OLD_NUMBERS[2:])  # then a new chunk in it:
        journal_send(journal, "mixed.csv", NEW_NUMBERS)  # the run stays, its old chunk goes
    with sqlite3.connect(journal_path) as db:
        olds = ",".join("?" * len(OLD_NUMBERS))
        db.execute(
            f"UPDATE messages SET updated_at = ? WHERE number IN ({olds})", (LONG_AGO, *OLD_NUMBERS)
        )
        db.execute(
            "UPDATE chunks SET started_at = ?, finished_at = ? WHERE id IN (1, 2)",
            (LONG_AGO, LONG_AGO),
        )
        db.execute(
            "UPDATE runs SET updated_at = ?, created_at = ? WHERE id = 1", (LONG_AGO, LONG_AGO)
        )
    db.close()
    with SandboxServer(outbox_path) as server, TextlocalClient("k-123456", server.url) as tl:
        tl.send_bulk([Outgoing(n[1:], OLD_TEXT) for n in OLD_NUMBERS], sender="TXTLCL")
        tl.send_bulk([Outgoing(n[1:], NEW_TEXT) for n in NEW_NUMBERS], sender="TXTLCL")
    with sqlite3.connect(outbox_path) as db:
        db.execute(
            "UPDATE messages SET created_at = '2020-01-01T04:30:00+00:00' WHERE message = ?",
            (OLD_TEXT,),
        )
        db.execute(
            "UPDATE batches SET created_at = '2020-01-01T04:30:00+00:00' "
            "WHERE id IN (SELECT batch_id FROM messages WHERE message = ?)",
            (OLD_TEXT,),
        )
    db.close()
    return journal_path, outbox_path


def file_bytes(path: Path) -> bytes:
    """The database file and its -wal, as they are on disk."""
    wal = Path(f"{path}-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def purge_args(journal: Path, outbox: Path, *extra: str) -> list[str]:
    return [
        "purge",
        "--older-than",
        "30d",
        "--journal",
        str(journal),
        "--outbox",
        str(outbox),
        *extra,
    ]


PLAN = """\
  journal {journal}: 3 messages, 2 chunks, 1 runs
  sandbox outbox {outbox}: 3 messages, 3 batches
Rerunning a purged send would send its rows again: the journal forgets they went.
"""


def test_purge_erases_old_rows_from_the_files_and_keeps_new_ones(stores, tmp_path):
    journal, outbox = stores
    before_j, before_o = file_bytes(journal), file_bytes(outbox)
    for number in OLD_NUMBERS:  # what is about to go is findable in the files now
        assert number.encode() in before_j and number[1:].encode() in before_o
    assert OLD_TEXT.encode() in before_o

    proc = cli(tmp_path, *purge_args(journal, outbox, "--yes"))

    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines(keepends=True)
    assert re.fullmatch(
        r"Records older than 30d \(last changed before "
        r"\d{4}-\d\d-\d\d \d\d:\d\d[+-]\d\d:\d\d\):\n",
        lines[0],
    )
    assert "".join(lines[1:]) == PLAN.format(journal=journal, outbox=outbox) + (
        "Deleted from the journal: 3 messages, 2 chunks, 1 runs; sandbox outbox: 3 messages, "
        "3 batches.\nThe files were compacted: the deleted records are gone from disk.\n"
    )
    with sqlite3.connect(journal) as db:
        assert sorted(r[0] for r in db.execute("SELECT number FROM messages")) == NEW_NUMBERS
        assert [r[0] for r in db.execute("SELECT id FROM chunks")] == [3]
        assert [r[0] for r in db.execute("SELECT identity LIKE '%mixed.csv%' FROM runs")] == [1]
    db.close()
    with sqlite3.connect(outbox) as db:
        assert sorted(r[0] for r in db.execute("SELECT number FROM messages")) == [
            n[1:] for n in NEW_NUMBERS
        ]
        assert db.execute("SELECT count(*) FROM batches").fetchone()[0] == 2
    db.close()
    after_j, after_o = file_bytes(journal), file_bytes(outbox)
    for number in OLD_NUMBERS:  # gone from the bytes, not just from the tables
        assert number.encode() not in after_j and number[1:].encode() not in after_o
    assert OLD_TEXT.encode() not in after_o
    for number in NEW_NUMBERS:
        assert number.encode() in after_j and number[1:].encode() in after_o
    assert NEW_TEXT.encode() in after_o
    assert (oct(mode(journal)), oct(mode(outbox))) == ("0o600", "0o600")


def run_on_a_terminal(args: list[str], answer: bytes, cwd: Path) -> tuple[int, str]:
    """Run smsbatch with a pseudo-terminal as stdin (the prompt is answered there)."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", *args],
            cwd=cwd,
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(),
        )
        os.write(leader, answer)
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(follower)
        os.close(leader)
    return proc.returncode, out.decode() + err.decode()


def count_rows(journal: Path, outbox: Path) -> tuple[int, int]:
    with sqlite3.connect(journal) as a, sqlite3.connect(outbox) as b:
        counts = (
            a.execute("SELECT count(*) FROM messages").fetchone()[0],
            b.execute("SELECT count(*) FROM messages").fetchone()[0],
        )
    a.close()
    b.close()
    return counts


def test_purge_asks_first_and_no_deletes_nothing(stores, tmp_path):
    journal, outbox = stores
    code, output = run_on_a_terminal(purge_args(journal, outbox), b"n\n", tmp_path)
    assert code == 1
    assert output.endswith(
        PLAN.format(journal=journal, outbox=outbox) + "Delete them? [y/N]: Nothing deleted.\n"
    )
    assert count_rows(journal, outbox) == (5, 5)


def test_purge_asks_first_and_yes_deletes(stores, tmp_path):
    journal, outbox = stores
    code, output = run_on_a_terminal(purge_args(journal, outbox), b"y\n", tmp_path)
    assert code == 0, output
    assert "Delete them? [y/N]: Deleted from the journal: 3 messages" in output
    assert count_rows(journal, outbox) == (2, 2)


def test_purge_without_a_terminal_refuses_unless_yes(stores, tmp_path):
    journal, outbox = stores
    proc = cli(tmp_path, *purge_args(journal, outbox))
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: purge asks before deleting and there is no terminal to ask "
        "on: rerun with --yes to delete without asking\n"
    )
    assert proc.stdout.endswith(PLAN.format(journal=journal, outbox=outbox))
    assert count_rows(journal, outbox) == (5, 5)


def test_purge_refuses_while_a_send_holds_the_journal(stores, tmp_path):
    journal, outbox = stores
    with Journal.open(journal):  # as a running send does
        proc = cli(tmp_path, *purge_args(journal, outbox, "--yes"))
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: {journal}: a send (or another smsbatch command) is using "
        "this journal; purge after it finishes\n"
    )
    assert proc.stdout == ""
    assert count_rows(journal, outbox) == (5, 5)


@pytest.mark.parametrize("age", ["30", "d", "0d", "1y", "-1d", "1.5h", "30 days", ""])
def test_a_bad_age_is_one_line_and_exit_2(tmp_path, age):
    result = CliRunner().invoke(
        main, ["purge", "--older-than", age, "--journal", str(tmp_path / "none.sqlite")]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --older-than {age!r} is not an age: give a whole number of at least 1 and a "
        "unit, s (seconds), m (minutes), h (hours), d (days) or w (weeks), e.g. 30d\n"
    )


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        (" 1d ", timedelta(days=1)),
    ],
)
def test_parse_age(text, age):
    assert parse_age(text) == age


def test_nothing_old_enough_deletes_nothing_and_asks_nothing(stores, tmp_path):
    journal, outbox = stores
    result = CliRunner().invoke(
        main, purge_args(journal, outbox)[:2] + ["9999w", *purge_args(journal, outbox)[3:]]
    )
    assert result.exit_code == 0
    assert re.fullmatch(r"Nothing older than 9999w \(before .*\) to purge\.\n", result.stdout)
    assert count_rows(journal, outbox) == (5, 5)


def test_default_paths_that_do_not_exist_are_skipped(tmp_path, monkeypatch, state_dir):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["purge", "--older-than", "30d"])
    assert result.exit_code == 0
    assert result.stdout == (
        f"Nothing to purge: no journal at {state_dir}/journal.sqlite and "
        f"no sandbox outbox at {state_dir}/sandbox/outbox.sqlite.\n"
    )
    assert list(tmp_path.iterdir()) == [] and list(state_dir.iterdir()) == []


def test_a_given_path_that_does_not_exist_is_an_error(tmp_path):
    missing = tmp_path / "nope.sqlite"
    result = CliRunner().invoke(main, ["purge", "--older-than", "30d", "--journal", str(missing)])
    assert result.exit_code == 2
    assert result.stderr == f"error: {missing}: no journal here; check --journal\n"
    assert not missing.exists()


def test_the_cutoff_compares_instants_across_utc_offsets(tmp_path):
    path = tmp_path / "journal.sqlite"
    with Journal.open(path) as journal:
        journal_send(journal, "a.csv", ["+919800000001", "+919800000002", "+919800000003"])
    now = datetime(2025, 3, 31, 12, 0, tzinfo=UTC)  # cutoff: 2025-03-01 12:00 UTC
    stamps = {
        "+919800000001": "2025-03-01T17:29:00+05:30",  # 11:59 UTC: goes
        "+919800000002": "2025-03-01T17:31:00+05:30",  # 12:01 UTC: stays
        "+919800000003": "2025-03-01T11:59:59+00:00",
    }  # goes
    with sqlite3.connect(path) as db:
        for number, stamp in stamps.items():
            db.execute("UPDATE messages SET updated_at = ? WHERE number = ?", (stamp, number))
    db.close()
    report = purge(timedelta(days=30), journal=path, now=now)
    assert report.done and report.cutoff == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert (report.counts.journal_messages, report.counts.journal_chunks) == (2, 0)
    with sqlite3.connect(path) as db:
        assert [r[0] for r in db.execute("SELECT number FROM messages")] == ["+919800000002"]
    db.close()


def test_the_library_asks_through_confirm_and_a_no_is_cancelled(stores):
    from pipeline.errors import Cancelled

    journal, outbox = stores
    seen = []
    with pytest.raises(Cancelled, match="nothing was deleted"):
        purge(
            timedelta(days=30),
            journal=journal,
            outbox=outbox,
            confirm=lambda plan: seen.append(plan.counts) or False,
        )
    assert [(c.journal_messages, c.outbox_messages, c.total) for c in seen] == [(3, 3, 12)]
    assert count_rows(journal, outbox) == (5, 5)
    with pytest.raises(InputError, match="no sandbox outbox here"):
        purge(timedelta(days=1), outbox=outbox.with_name("missing.sqlite"))


@pytest.mark.slow
def test_purging_a_large_journal_takes_seconds(tmp_path):
    # 1M rows take ~5 s on a laptop (dry-run count, delete, VACUUM); 200k keep the suite quick
    # and would still show a quadratic query.
    path = tmp_path / "journal.sqlite"
    with Journal.open(path) as journal:
        run = journal.begin_run(identity("big.csv"), "sha")
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO messages (run_id, row_key, source_row, number, status, updated_at) "
            "VALUES (?, ?, ?, ?, 'sent', ?)",
            (
                (run.id, f"k{i}", i, f"+9198{i:08d}", LONG_AGO if i % 2 else "2999-01-01T00:00:00")
                for i in range(200_000)
            ),
        )
    db.close()
    started = time.perf_counter()
    report = purge(timedelta(days=30), journal=path)
    assert report.counts.journal_messages == 100_000
    assert time.perf_counter() - started < 10


# -- .env -----------------------------------------------------------------------------------


def test_env_is_git_ignored_and_env_example_documents_the_variables():
    git = shutil.which("git")
    if git and (REPO / ".git").exists():
        ignored = subprocess.run([git, "check-ignore", "-q", ".env"], cwd=REPO)
        example = subprocess.run([git, "check-ignore", "-q", ".env.example"], cwd=REPO)
        assert (ignored.returncode, example.returncode) == (0, 1)
    else:
        patterns = (REPO / ".gitignore").read_text().split()
        assert ".env" in patterns and "!.env.example" not in patterns
    example = (REPO / ".env.example").read_text()
    assigned = dict(re.findall(r"^#? ?(TEXTLOCAL_[A-Z_]+)=(.*)$", example, flags=re.M))
    assert assigned == {
        "TEXTLOCAL_API_KEY": "",
        "TEXTLOCAL_SENDER": "",
        "TEXTLOCAL_BASE_URL": "",
    }  # documented, and no real value in it
