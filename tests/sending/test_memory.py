"""The journal as one memory per user and account (docs/journal.md): the cross-job guard,
refused files, the lock on the inode, correlation ids, reconcile's evidence, the account scope,
the default paths and the --out checks. End-to-end versions live in tests/e2e."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pipeline.errors import InputError
from pipeline.providers import textlocal_account
from pipeline.providers.textlocal.answers import HistoryMessage
from pipeline.sending.journal import (
    Journal,
    JournalInUse,
    JournalRefused,
    JournalWriteError,
    Outcome,
    Pending,
    RunIdentity,
    row_key,
)
from pipeline.sending.preflight import check_out_path
from pipeline.sending.reconcile import reconcile
from pipeline.sending.resume import apply_prior_sends, describe_window, ready_keys
from pipeline.settings import (
    default_journal,
    default_outbox,
    default_repeat_window,
    parse_duration,
)

NUMBER, TEXT = "+919876540001", "Hi Asha, your order is ready."
KEY = row_key(NUMBER, TEXT)


def identity(
    path: str = "/a/contacts.csv",
    *,
    account: str | None = "textlocal:x:1",
    test: bool = False,
    template: str = "Hi {Name}",
) -> RunIdentity:
    return RunIdentity(path, None, template, "ACMEST", "service", "textlocal", test, account)


def send_one(
    book: Journal, ident: RunIdentity, status: str = "sent", number: str = NUMBER, text: str = TEXT
) -> tuple[int, str]:
    run = book.begin_run(ident, "sha")
    key = row_key(number, text)
    chunk, custom = book.start_chunk(run.id, [Pending(key, 5, number)])
    if status != "sending":
        book.finish_chunk(run.id, chunk, [Outcome(key, status)], status)
    return run.id, custom


SINCE = datetime.now(UTC) - timedelta(days=7)


@pytest.mark.parametrize("status", ["sent", "scheduled", "unknown"])
def test_another_runs_send_of_the_same_text_blocks_it(tmp_path, status):
    with Journal.open(tmp_path / "j.sqlite") as book:
        first, _ = send_one(book, identity("/a/contacts.csv"), status)
        later = book.begin_run(identity("/b/copy of contacts.csv"), "sha")
        found = book.prior_sends(
            [KEY], account="textlocal:x:1", test=False, since=SINCE, exclude_run=later.id
        )
    assert list(found) == [KEY]
    assert (found[KEY].status, found[KEY].run_id, found[KEY].input_name, found[KEY].source_row) == (
        status,
        first,
        "contacts.csv",
        5,
    )


@pytest.mark.parametrize("status", ["failed", "rejected"])
def test_rows_known_not_sent_do_not_block(tmp_path, status):
    with Journal.open(tmp_path / "j.sqlite") as book:
        send_one(book, identity(), status)
        assert book.prior_sends([KEY], account="textlocal:x:1", test=False, since=SINCE) == {}


def test_other_account_other_text_test_mode_and_the_same_run_do_not_block(tmp_path):
    with Journal.open(tmp_path / "j.sqlite") as book:
        run, _ = send_one(book, identity())
        rehearsal, _ = send_one(book, identity("/t.csv", test=True), number="+919876540002")
        asks = dict(account="textlocal:x:1", since=SINCE)
        assert book.prior_sends([KEY], account="textlocal:y:2", test=False, since=SINCE) == {}
        assert book.prior_sends([row_key(NUMBER, TEXT + "!")], test=False, **asks) == {}
        assert book.prior_sends([KEY], test=True, **asks) == {}
        assert book.prior_sends([row_key("+919876540002", TEXT)], test=False, **asks) == {}
        assert book.prior_sends([KEY], test=False, exclude_run=run, **asks) == {}
        assert (
            book.prior_sends(
                [KEY],
                account="textlocal:x:1",
                test=False,
                since=datetime.now(UTC) + timedelta(minutes=1),
            )
            == {}
        )


def test_a_run_from_before_accounts_blocks_every_account(tmp_path):
    with Journal.open(tmp_path / "j.sqlite") as book:
        send_one(book, identity(account=None))
        found = book.prior_sends([KEY], account="sandbox:abc", test=False, since=SINCE)
    assert list(found) == [KEY]


def test_already_sent_rows_name_when_where_and_how_to_send_anyway(tmp_path):
    results = pd.DataFrame(
        {
            "phone_e164": [NUMBER, "+919876540002"],
            "message": [TEXT, TEXT],
            "status": ["ready", "ready"],
            "detail": [None, None],
        },
        index=[2, 3],
    )
    with Journal.open(tmp_path / "j.sqlite") as book:
        send_one(book, identity())
        keys = ready_keys(results)
        priors = book.prior_sends(keys.values(), account="textlocal:x:1", test=False, since=SINCE)
    assert apply_prior_sends(results, keys, priors, timedelta(days=7)) == 1
    assert results["status"].tolist() == ["already_sent", "ready"]
    assert results.at[2, "detail"].startswith("the same text to this number was sent on ")
    assert results.at[2, "detail"].endswith(
        " IST from contacts.csv (journal run 1, row 5), within the 7-day repeat window; to "
        "send it again on purpose, rerun with --repeat-window 0"
    )


@pytest.mark.parametrize(
    ("window", "text"),
    [
        (timedelta(days=7), "7-day"),
        (timedelta(hours=12), "12-hour"),
        (timedelta(minutes=90), "90-minute"),
        (timedelta(seconds=45), "45-second"),
    ],
)
def test_describe_window(window, text):
    assert describe_window(window) == text


def test_correlation_ids_differ_between_journals_and_fit_in_30_characters(tmp_path):
    customs = []
    for name in ("a.sqlite", "b.sqlite"):
        with Journal.open(tmp_path / name) as book:
            run = book.begin_run(identity(), "sha")
            customs.append(book.start_chunk(run.id, [Pending(KEY, 2, NUMBER)])[1])
    assert customs[0] != customs[1]
    assert customs[0].endswith("-1-1") and customs[1].endswith("-1-1")
    assert all(len(c) <= 30 for c in customs)


def test_the_journal_id_survives_reopening(tmp_path):
    with Journal.open(tmp_path / "j.sqlite") as book:
        first = book.journal_id
    with Journal.open(tmp_path / "j.sqlite") as book:
        assert book.journal_id == first


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_the_lock_is_on_the_file_not_the_name(tmp_path, link):
    path = tmp_path / "j.sqlite"
    other = tmp_path / "other.sqlite"
    with Journal.open(path):
        if link == "symlink":
            other.symlink_to(path)
        else:
            os.link(path, other)
        with pytest.raises((JournalInUse, JournalRefused)) as caught:
            with Journal.open(other):
                pass
    assert isinstance(caught.value, JournalInUse)
    assert str(caught.value).startswith(f"{other}: journal in use")


def test_a_symlinked_journal_opens_its_target_with_one_write_ahead_log(tmp_path):
    real = tmp_path / "real" / "j.sqlite"
    (tmp_path / "real").mkdir()
    with Journal.open(real) as book:
        send_one(book, identity())
    (tmp_path / "link.sqlite").symlink_to(real)
    with Journal.open(tmp_path / "link.sqlite") as book:
        assert book.path == real
        assert list(book.prior_sends([KEY], account="textlocal:x:1", test=False, since=SINCE))
    assert not (tmp_path / "link.sqlite-wal").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the journal is empty (0 bytes), as if truncated"),
        (b"PK\x03\x04 a spreadsheet, not a journal" * 50, "this is not an SQLite database"),
    ],
)
def test_a_journal_that_cannot_be_trusted_is_refused_and_left_as_it_was(tmp_path, content, message):
    path = tmp_path / "j.sqlite"
    path.write_bytes(content)
    with pytest.raises(JournalRefused) as caught:
        with Journal.open(path):
            pass
    assert str(caught.value).startswith(
        f"{path}: {message}, so it cannot say what was already sent. Restore it from a backup"
    )
    assert path.read_bytes() == content


def test_an_sqlite_file_that_is_not_a_journal_is_refused(tmp_path):
    path = tmp_path / "notes.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(JournalRefused, match="this SQLite file is not an smsbatch journal"):
        with Journal.open(path):
            pass


def test_a_truncated_journal_is_refused(tmp_path):
    path = tmp_path / "j.sqlite"
    with Journal.open(path) as book:
        for i in range(200):
            send_one(book, identity(f"/{i}.csv"), number=f"+9198765{i:05d}")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(JournalRefused, match="the journal is damaged"):
        with Journal.open(path):
            pass


def test_a_new_journal_leaves_no_temporary_file_behind(tmp_path):
    with Journal.open(tmp_path / "new" / "j.sqlite"):
        pass
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["j.sqlite"]


def test_a_full_journal_raises_one_line_and_keeps_what_was_committed(tmp_path):
    path = tmp_path / "j.sqlite"
    with Journal.open(path) as book:
        run = book.begin_run(identity(), "sha")
        # SQLite's own size cap: the same SQLITE_FULL a full disk gives.
        book._db.execute("PRAGMA max_page_count = 1")  # noqa: SLF001 - a disk we can fill
        with pytest.raises(JournalWriteError) as caught:
            book.start_chunk(
                run.id,
                [
                    Pending(row_key(f"+9198765{i:05d}", TEXT), i, f"+9198765{i:05d}")
                    for i in range(500)
                ],
            )
    text = str(caught.value)
    assert text.startswith(f"cannot write the journal {path} (database or disk is full)")
    assert "free some space" in text and "\n" not in text
    with Journal.open(path) as book:
        assert book.entries(run.id) == {}  # the chunk was rolled back whole: nothing sent


class History:
    """A provider whose history is the given messages."""

    def __init__(self, messages: list[HistoryMessage]) -> None:
        self.messages = messages

    def history(self, **window: int) -> list[HistoryMessage]:
        return self.messages


def unknown_row(path: Path) -> tuple[int, str]:
    with Journal.open(path) as book:
        run, custom = send_one(book, identity(), "unknown")
    return run, custom


def message(custom: str | None, content: str | None, number: str = NUMBER[1:]):
    return HistoryMessage("77", number, "9", custom, "D", "2026-12-06 10:00:00", content)


def outcome(path: Path, run: int) -> str:
    with Journal.open(path) as book:
        return next(iter(book.entries(run).values())).status


def test_reconcile_calls_a_row_sent_only_on_id_number_and_exact_text(tmp_path):
    path = tmp_path / "j.sqlite"
    run, custom = unknown_row(path)
    found = reconcile(History([message(custom, TEXT)]), path, settle=0)
    assert (found.sent, found.failed, outcome(path, run)) == (1, 0, "sent")


@pytest.mark.parametrize(
    ("custom", "content", "status"),
    [
        ("smsbatch-000000000000-1-1", TEXT, "failed"),  # another journal's campaign, same text
        ("smsbatch-1-1", "Sale ends Sunday", "failed"),  # an old id and another text
        (None, "Sale ends Sunday", "failed"),  # no id, another text: not ours
        ("OURS", "Hi Asha, your order is ready. ", "unknown"),  # our id, text altered: not proof
        (None, TEXT, "unknown"),  # the same text with no id: may be ours
        (None, None, "unknown"),  # nothing to tell: may be ours
    ],
)
def test_less_than_id_number_and_text_is_not_evidence(tmp_path, custom, content, status):
    path = tmp_path / "j.sqlite"
    run, ours = unknown_row(path)
    found = reconcile(
        History([message(ours if custom == "OURS" else custom, content)]), path, settle=0
    )
    assert outcome(path, run) == status
    assert found.sent == 0


def test_the_account_is_host_and_a_key_fingerprint_never_the_key():
    key = "Zx9-secret-key-12345"
    account = textlocal_account("https://api.textlocal.in/", key)
    assert account.startswith("textlocal:api.textlocal.in:") and len(account) == 43
    assert key not in account
    assert account == textlocal_account("https://API.textlocal.in/v2/", f" {key} ")
    assert account != textlocal_account("https://api.textlocal.in/", key + "x")
    assert account != textlocal_account("https://api.txtlocal.com/", key)


def test_defaults_follow_the_state_directory(state_dir, monkeypatch):
    assert default_journal() == state_dir / "journal.sqlite"
    assert default_outbox() == state_dir / "sandbox" / "outbox.sqlite"
    monkeypatch.setenv("SMSBATCH_JOURNAL", "~/elsewhere.sqlite")
    assert default_journal() == Path.home() / "elsewhere.sqlite"
    assert default_repeat_window() == timedelta(days=7)
    monkeypatch.setenv("SMSBATCH_REPEAT_WINDOW", "0")
    assert default_repeat_window() == timedelta(0)


def test_without_an_override_the_state_directory_is_the_platforms(monkeypatch, tmp_path):
    monkeypatch.delenv("SMSBATCH_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_journal() == tmp_path / "smsbatch" / "journal.sqlite"


@pytest.mark.parametrize(
    ("text", "zero", "value"),
    [
        ("7d", False, timedelta(days=7)),
        (" 12H ", False, timedelta(hours=12)),
        ("0", True, timedelta(0)),
        ("off", True, timedelta(0)),
        ("45s", True, timedelta(seconds=45)),
    ],
)
def test_parse_duration(text, zero, value):
    assert parse_duration(text, "--repeat-window", allow_zero=zero) == value


@pytest.mark.parametrize("text", ["", "7", "d", "1.5d", "-1d", "0d", "1y"])
def test_a_bad_duration_says_what_to_give(text):
    with pytest.raises(InputError) as caught:
        parse_duration(text, "--repeat-window", allow_zero=True)
    assert str(caught.value) == (
        f"--repeat-window {text!r} is not a duration: give a whole number of at least 1 and "
        "a unit, s (seconds), m (minutes), h (hours), d (days) or w (weeks), e.g. 7d, or 0 to "
        "switch it off"
    )


def default_name(folder: Path) -> Path:
    return folder / "default.xlsx"


def test_out_checks(tmp_path):
    sheet = tmp_path / "contacts.xlsx"
    sheet.write_bytes(b"x")
    (tmp_path / "reports").mkdir()
    ok = check_out_path(tmp_path / "r.XLSX", inputs=[sheet], default_name=default_name)
    assert ok == tmp_path / "r.XLSX"
    assert (
        check_out_path(tmp_path / "reports", inputs=[sheet], default_name=default_name)
        == tmp_path / "reports" / "default.xlsx"
    )
    (tmp_path / "alias.xlsx").symlink_to(sheet)
    for same in (sheet, tmp_path / "alias.xlsx", tmp_path / "reports" / ".." / "contacts.xlsx"):
        with pytest.raises(InputError, match="is the input file"):
            check_out_path(same, inputs=[sheet], default_name=default_name)
    with pytest.raises(InputError, match="the folder .*/missing/ does not exist"):
        check_out_path(tmp_path / "missing" / "r.xlsx", inputs=[sheet], default_name=default_name)
    with pytest.raises(InputError, match="must end in .xlsx"):
        check_out_path(tmp_path / "r.csv", inputs=[sheet], default_name=default_name)
    assert not (tmp_path / "missing").exists()
