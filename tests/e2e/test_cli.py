"""End-to-end: the `smsbatch` command run in-process (CliRunner) in a temp dir, with the real
sandbox server where a provider is needed."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.report.workbook import read_results
from pipeline.sandbox.server import SandboxServer, read_outbox
from pipeline.statuses import RESULT_COLUMNS
from tests.helpers import DATA, REPO

pytestmark = pytest.mark.slow  # end to end: real CLI runs, subprocesses, servers

KEY = "SENTINEL-key-5f0c1d2e3b4a"
# The example sheet's valid, distinct numbers: rows 2-15, 21, 23, 24, 27-41 (docs/contract.md,
# "Phone numbers").
SENT_ROWS = [*range(2, 16), 21, 23, 24, *range(27, 42)]
EXPECTED_CHECK_OUTPUT = """\
rows             39
ready            32
invalid           5
duplicates        1
missing           1
messages         32
unicode           1
segments         33
credits          33
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A copy of the example input in a temp working directory (output/ goes there too)."""
    shutil.copytree(REPO / "input", tmp_path / "input")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TEXTLOCAL_API_KEY", raising=False)
    monkeypatch.delenv("TEXTLOCAL_SENDER", raising=False)
    monkeypatch.delenv("TEXTLOCAL_BASE_URL", raising=False)
    return tmp_path


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def only_results_file(workdir: Path) -> Path:
    files = sorted((workdir / "output").glob("contacts-results-*.xlsx"))
    assert len(files) == 1
    return files[0]


def test_check_writes_a_status_for_every_row(workdir):
    result = run("check", "input/contacts.xlsx", "-t", "input/template.txt")
    assert result.exit_code == 0, result.output
    out = only_results_file(workdir)
    assert result.stdout == EXPECTED_CHECK_OUTPUT + f"Results: {out.relative_to(workdir)}\n"
    table = read_results(out)
    assert list(table.columns)[-len(RESULT_COLUMNS) + 1 :] == list(RESULT_COLUMNS[1:])
    assert table.index.tolist() == [*range(2, 22), *range(23, 42)]  # blank row 22 skipped
    assert table.index[table["status"] == "ready"].tolist() == SENT_ROWS
    assert table.loc[16, "status"] == "invalid_number"
    assert table.loc[16, "detail"].startswith("scientific notation")
    assert table.loc[25, ["status", "detail"]].tolist() == ["duplicate", "same number as row 2"]
    assert table.loc[26, ["status", "detail"]].tolist() == ["missing_field", "Amount is empty"]
    assert table.loc[2, "message"] == (
        "Hi Aarav Sharma, your order ORD-10231 of Rs 1499 ships on 03 Mar 2025. - Acme Stores"
    )
    assert table.loc[23, ["encoding", "segments"]].tolist() == ["UCS-2", 2]


def test_send_to_the_sandbox_delivers_each_valid_number_exactly_once(workdir, state_dir):
    result = run("send", "input/contacts.xlsx", "-t", "input/template.txt")
    assert result.exit_code == 0, result.output
    assert "nothing leaves this machine" in result.stdout
    assert "sent             32\n" in result.stdout
    table = read_results(only_results_file(workdir))
    outbox = read_outbox(state_dir / "sandbox" / "outbox.sqlite")
    sent = table[table["status"] == "sent"]
    assert sent.index.tolist() == SENT_ROWS
    assert sorted(m["number"] for m in outbox) == sorted(p[1:] for p in sent["phone_e164"])
    assert len({m["number"] for m in outbox}) == len(outbox) == 32
    by_id = {m["id"]: m for m in outbox}
    for row in SENT_ROWS:
        message = by_id[str(table.loc[row, "provider_message_id"])]
        assert message["message"] == table.loc[row, "message"]
        assert message["number"] == table.loc[row, "phone_e164"][1:]
        assert message["sender"] == "TXTLCL"
    assert by_id[str(table.loc[23, "provider_message_id"])]["message"].startswith("Hi प्रिया,")


BAD_INPUT = [
    (["missing.xlsx"], "error: missing.xlsx: file not found; check the path"),
    (["doc.pdf"], "error: doc.pdf: not a spreadsheet: use .xlsx, .xlsm, .xls or .csv"),
    (["empty.csv"], "error: empty.csv: file is empty (0 bytes); export the sheet again"),
    (
        [str(DATA / "bad_header_only.xlsx")],
        "error: bad_header_only.xlsx: sheet 'Contacts' has a header row but no data rows; "
        "add contacts below it",
    ),
    (
        [str(DATA / "bad_renamed_csv.xlsx")],
        "error: bad_renamed_csv.xlsx: not an Excel workbook; if it is a CSV file rename it to "
        ".csv, else re-save it from Excel as .xlsx",
    ),
    (
        ["nophone.csv"],
        "error: nophone.csv: no phone column found among headers: Name, City; "
        "name it with --phone-column",
    ),
    (
        ["two.csv"],
        "error: two.csv: several phone columns found: Mobile, Phone; pick one with --phone-column",
    ),
    (
        ["input/contacts.xlsx", "--phone-column", "Foo"],
        "error: contacts.xlsx: no column named 'Foo'; headers are: Name, Mobile No., City, "
        "Order ID, Amount, Ship Date; check --phone-column",
    ),
]
BAD_TEMPLATE = [
    ("nope.txt", "error: nope.txt: template file not found; check the --template path"),
    ("emptytpl.txt", "error: emptytpl.txt: the template is empty; write the message text in it"),
    (
        "unknown.txt",
        "error: unknown.txt: unknown placeholder {Nmae}; the sheet's headers are: "
        "Name, Mobile No., City, Order ID, Amount, Ship Date; fix the template or the header",
    ),
]


def write_bad_files(workdir: Path) -> None:
    (workdir / "doc.pdf").write_bytes(b"%PDF-1.4\n")
    (workdir / "empty.csv").write_bytes(b"")
    (workdir / "nophone.csv").write_text("Name,City\nAsha,Pune\n")
    (workdir / "two.csv").write_text("Name,Mobile,Phone\nAsha,9876543210,9876543211\n")
    (workdir / "emptytpl.txt").write_text("  \n")
    (workdir / "unknown.txt").write_text("Hi {Nmae}\n")


def assert_clean_failure(result, workdir: Path, message: str, code: int = 2) -> None:
    assert result.exit_code == code
    assert result.stderr == message + "\n"
    assert "Traceback" not in result.output
    assert not (workdir / "output").exists() or not any((workdir / "output").glob("*.xlsx"))


@pytest.mark.parametrize("command", ["check", "send"])
@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_bad_sheet_is_one_line_and_exit_2(workdir, command, args, message, state_dir):
    write_bad_files(workdir)
    before = hashlib.sha256((workdir / "input/contacts.xlsx").read_bytes()).hexdigest()
    result = run(command, *args, "-t", "input/template.txt")
    assert_clean_failure(result, workdir, message)
    assert hashlib.sha256((workdir / "input/contacts.xlsx").read_bytes()).hexdigest() == before
    assert not (state_dir / "sandbox").exists() or not read_outbox(
        state_dir / "sandbox" / "outbox.sqlite"
    )


@pytest.mark.parametrize(("template", "message"), BAD_TEMPLATE)
def test_bad_template_is_one_line_and_exit_2(workdir, template, message):
    write_bad_files(workdir)
    result = run("check", "input/contacts.xlsx", "-t", template)
    assert_clean_failure(result, workdir, message)


def test_textlocal_without_an_api_key_is_exit_2(workdir):
    result = run(
        "send",
        "input/contacts.xlsx",
        "-t",
        "input/template.txt",
        "--provider",
        "textlocal",
        "--sender",
        "ACMEST",
    )
    assert_clean_failure(
        result,
        workdir,
        (
            "error: TEXTLOCAL_API_KEY is not set: export it (or put it in a git-ignored .env file) "
            "to send through Textlocal; use --provider sandbox to rehearse"
        ),
    )


def test_textlocal_without_a_sender_is_exit_2(workdir, monkeypatch):
    monkeypatch.setenv("TEXTLOCAL_API_KEY", KEY)
    result = run(
        "send", "input/contacts.xlsx", "-t", "input/template.txt", "--provider", "textlocal"
    )
    assert_clean_failure(
        result,
        workdir,
        (
            "error: no sender ID: pass --sender or set TEXTLOCAL_SENDER to your DLT-approved "
            "6-letter header"
        ),
    )


def test_malformed_sender_is_exit_2(workdir):
    result = run("send", "input/contacts.xlsx", "-t", "input/template.txt", "--sender", "AB-1")
    assert_clean_failure(
        result,
        workdir,
        (
            "error: sender 'AB-1' does not fit the service route: it must be 6 letters (your DLT "
            "header, case as registered); fix --sender / TEXTLOCAL_SENDER or --route"
        ),
    )


@pytest.fixture
def textlocal(workdir, monkeypatch):
    """A separately running sandbox that stands in for api.textlocal.in, with its own key."""
    monkeypatch.setenv("TEXTLOCAL_API_KEY", KEY)
    with SandboxServer(workdir / "remote-outbox.sqlite", api_key=KEY, balance=1000) as server:
        monkeypatch.setenv("TEXTLOCAL_BASE_URL", server.url)
        yield server


def textlocal_send(*extra: str, input: str | None = None):
    return run(
        "send",
        "input/contacts.xlsx",
        "-t",
        "input/template.txt",
        "--provider",
        "textlocal",
        "--sender",
        "ACMEST",
        *extra,
        input=input,
    )


def test_real_send_asks_first_and_sends_nothing_on_no(textlocal, workdir):
    result = textlocal_send(input="n\n")
    assert result.exit_code == 1
    assert (
        "About to send 32 messages costing 33 credits from sender ACMEST.\n"
        "First message, to +91******3210:\n"
        "  Hi Aarav Sharma, your order ORD-10231 of Rs 1499 ships on 03 Mar 2025. - Acme Stores\n"
        "Send now? [y/N]: n\nNothing sent.\n"
    ) in result.stdout
    assert textlocal.outbox() == []


def test_real_send_after_yes_reaches_the_provider(textlocal, workdir):
    result = textlocal_send(input="y\n")
    assert result.exit_code == 0, result.output
    assert f"Textlocal at {textlocal.url}: REAL messages" in result.stdout
    assert len(textlocal.outbox()) == 32
    assert {m["sender"] for m in textlocal.outbox()} == {"ACMEST"}


def test_yes_skips_the_prompt(textlocal, workdir):
    result = textlocal_send("--yes")
    assert result.exit_code == 0, result.output
    assert "Send now?" not in result.stdout
    assert len(textlocal.outbox()) == 32


def test_test_mode_is_validated_but_nothing_is_sent_or_charged(textlocal, workdir):
    result = textlocal_send("--test")
    assert result.exit_code == 0, result.output
    assert textlocal.outbox() == []
    table = read_results(only_results_file(workdir))
    assert (table.loc[SENT_ROWS, "status"] == "sent").all()
    assert set(table.loc[SENT_ROWS, "detail"]) == {
        "test mode: validated by the provider, not delivered"
    }
    assert run("balance", "--provider", "textlocal").stdout == "Balance: 1000 credits (textlocal)\n"


def test_limit_and_chunk_size(textlocal, workdir):
    result = textlocal_send("--yes", "--limit", "5", "--chunk-size", "2")
    assert result.exit_code == 0, result.output
    assert len(textlocal.outbox()) == 5
    assert len({m["batch_id"] for m in textlocal.outbox()}) == 5  # one batch per message
    table = read_results(only_results_file(workdir))
    assert table.loc[SENT_ROWS[:5], "status"].tolist() == ["sent"] * 5
    assert set(table.loc[SENT_ROWS[5:], "status"]) == {"failed"}


def test_too_few_credits_is_exit_3_before_anything_is_sent(workdir, monkeypatch):
    monkeypatch.setenv("TEXTLOCAL_API_KEY", KEY)
    with SandboxServer(workdir / "poor.sqlite", api_key=KEY, balance=10) as server:
        result = run(
            "send",
            "input/contacts.xlsx",
            "-t",
            "input/template.txt",
            "--provider",
            "textlocal",
            "--base-url",
            server.url,
            "--sender",
            "ACMEST",
            "--yes",
        )
        outbox = server.outbox()
    assert result.exit_code == 3
    assert result.stderr == (
        "error: insufficient credits: this run needs 33 credits and the "
        "balance is 10; top up, or send fewer with --limit\n"
    )
    assert outbox == []
    table = read_results(only_results_file(workdir))
    assert len(table) == 39
    assert (table["status"] == "failed").sum() == 32
    assert table.loc[2, "detail"] == (
        "not sent: insufficient credits: this run needs 33 credits and the balance is 10; "
        "top up, or send fewer with --limit"
    )


def test_provider_stop_mid_run_is_exit_3_and_every_row_is_still_written(workdir, monkeypatch):
    monkeypatch.setenv("TEXTLOCAL_API_KEY", KEY)
    with SandboxServer(workdir / "o.sqlite", api_key=KEY, senders=["OTHERS"]) as server:
        result = run(
            "send",
            "input/contacts.xlsx",
            "-t",
            "input/template.txt",
            "--provider",
            "textlocal",
            "--base-url",
            server.url,
            "--sender",
            "ACMEST",
            "--yes",
            "--chunk-size",
            "8",
            "--concurrency",
            "1",
        )
        outbox = server.outbox()
    assert result.exit_code == 3
    assert result.stderr.startswith("error: Textlocal error 43: Invalid sender name")
    assert outbox == []
    table = read_results(only_results_file(workdir))
    assert len(table) == 39
    assert (table["status"] == "failed").sum() == 32
    assert table.loc[SENT_ROWS[8], "detail"].startswith("not sent: the provider stopped the run")


def test_bad_key_is_exit_3_and_the_key_is_never_shown(workdir, monkeypatch):
    monkeypatch.setenv("TEXTLOCAL_API_KEY", KEY + "-wrong")
    with SandboxServer(workdir / "o.sqlite", api_key=KEY) as server:
        result = run(
            "send",
            "input/contacts.xlsx",
            "-t",
            "input/template.txt",
            "--provider",
            "textlocal",
            "--base-url",
            server.url,
            "--sender",
            "ACMEST",
            "--yes",
        )
    assert result.exit_code == 3
    assert result.stderr.startswith("error: Textlocal error 3: Invalid login details")
    assert KEY not in result.output
    out = only_results_file(workdir)
    with zipfile.ZipFile(out) as book:
        for name in book.namelist():
            assert KEY.encode() not in book.read(name)


def test_sandbox_balance(workdir):
    result = run("balance")
    assert result.exit_code == 0
    assert result.stdout == "Balance: 10000 credits (sandbox)\n"


def test_python_dash_m_pipeline_shows_help():
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("check", "send", "balance", "sandbox"):
        assert f"  {command} " in proc.stdout


def test_standalone_sandbox_serves_until_stopped(tmp_path):
    import requests

    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "sandbox",
            "--port",
            "0",
            "--outbox",
            str(tmp_path / "o.sqlite"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            first = proc.stdout.readline()
            assert first.startswith("Sandbox Textlocal API on http://127.0.0.1:")
            url = first.split(" on ")[1].split(" ")[0]
            reply = requests.post(url + "balance/", data={"apikey": "any"}, timeout=5).json()
            assert reply == {"balance": {"sms": 10000}, "status": "success"}
        finally:
            proc.terminate()
            proc.wait(timeout=10)
