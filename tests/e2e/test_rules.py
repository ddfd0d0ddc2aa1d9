"""India's rules end to end: check and send against the real sandbox, with time under control."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import job as batch
from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.providers.textlocal.client import TextlocalClient
from pipeline.report.workbook import read_results
from pipeline.sandbox.server import SandboxServer, read_outbox
from pipeline.sms.window import IST
from pipeline.validate.dlt import load_dlt_templates
from pipeline.validate.rules import load_rules
from tests.helpers import Clock

pytestmark = pytest.mark.slow  # end to end: real CLI runs, subprocesses, servers

LONG = "x" * 800
ROWS = [
    ("Asha", "98765 43210", "1499"),  # 2 ready, template 1001
    ("Ravi", "9876543211", "250"),  # 3 opted out
    ("A" * 31, "9876543212", "10"),  # 4 template_mismatch: variable 31 chars
    ("Kabir’s", "9876543213", "99"),  # 5 Unicode because of ’ (GSM with --gsm-only)
    (LONG, "9876543214", "5"),  # 6 rejected: too long (before the DLT check)
    ("प्रिया", "9876543215", "7"),  # 7 Unicode (Hindi), 1001
]
TEMPLATE = "Dear {Name}, your bill of Rs {Amount} is due."
LONG_MESSAGE = f"Dear {LONG}, your bill of Rs 5 is due."
DLT = "1001\tDear {#var#}, your bill of Rs {#var#} is due.\n"


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = ["Name,Mobile,Amount"] + [",".join(r) for r in ROWS]
    (tmp_path / "people.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "t.txt").write_text(TEMPLATE + "\n", encoding="utf-8")
    (tmp_path / "dlt.txt").write_text(DLT, encoding="utf-8")
    (tmp_path / "optout.txt").write_text("# opted out by SMS\n+91 98765-43211\n", "utf-8")
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_check_applies_suppression_length_dlt_and_names_unicode_characters(files):
    result = run(
        "check",
        "people.csv",
        "-t",
        "t.txt",
        "--dlt-template",
        "dlt.txt",
        "--suppress",
        "optout.txt",
        "--out",
        "r.xlsx",
    )
    assert result.exit_code == 0, result.output
    assert "no --dlt-template given" not in result.stderr
    table = read_results("r.xlsx")
    assert table["status"].tolist() == [
        "ready",
        "opted_out",
        "template_mismatch",
        "ready",
        "rejected",
        "ready",
    ]
    assert table.loc[3, "detail"] == "on the opt-out list (optout.txt)"
    assert table.loc[4, "detail"] == (
        "template 1001: variable 1 is 31 characters (1 over the 30 limit)"
    )
    assert table.loc[5, "detail"] == "Unicode because of ’ U+2019 at position 11"
    assert table.loc[6, "detail"] == (
        f"not sent: too long: {len(LONG_MESSAGE)} GSM-7 characters (max 765, 5 parts)"
    )
    assert table["dlt_template_id"].tolist() == ["1001", None, None, "1001", None, "1001"]
    assert table["credits"].tolist() == [1, None, None, 1, None, 1]
    assert table.loc[7, "encoding"] == "UCS-2"


def test_gsm_only_replaces_look_alikes(files):
    result = run("check", "people.csv", "-t", "t.txt", "--gsm-only", "--out", "r.xlsx")
    assert result.exit_code == 0
    table = read_results("r.xlsx")
    assert table.loc[5, ["message", "encoding"]].tolist() == [
        "Dear Kabir's, your bill of Rs 99 is due.",
        "GSM-7",
    ]
    assert table.loc[7, "detail"].startswith("still Unicode because of प U+092A at position 6")


def test_check_without_dlt_templates_warns_once(files):
    result = run("check", "people.csv", "-t", "t.txt", "--out", "r.xlsx")
    assert result.stderr.count("warning: no --dlt-template given") == 1


def test_a_template_that_cannot_fit_the_dlt_template_is_one_error(files):
    (files / "bad.txt").write_text("Dear {Name}, your bill Rs {Amount} is due.\n", "utf-8")
    result = run("check", "people.csv", "-t", "bad.txt", "--dlt-template", "dlt.txt")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: bad.txt does not fit any registered DLT template")
    assert result.stderr.count("\n") == 1


def test_credits_equal_what_the_sandbox_charged(files):
    with SandboxServer(files / "outbox.sqlite", balance=1000) as server:
        prepared = batch.load("people.csv", "t.txt")
        with TextlocalClient("k", server.url) as client:
            result = batch.send(
                prepared,
                client,
                provider="sandbox",
                sender="ACMEST",
                journal=files / "j.sqlite",
                out=files / "r.xlsx",
            )
            left = client.balance()
    sent = result.results[result.results["status"] == "sent"]
    assert sent.index.tolist() == [2, 3, 4, 5, 7]
    assert 1000 - left == int(sent["credits"].sum()) == prepared.credits(sent) == 5
    assert dict(result.summary)["credits"] == 5


def fixed(ist: str) -> datetime:
    return datetime.fromisoformat(ist).replace(tzinfo=IST)


def promo_send(files: Path, clock: Clock, **options):
    rules = load_rules(route="promotional", **options)
    prepared = batch.load("people.csv", "t.txt", rules=rules)
    with SandboxServer(files / "outbox.sqlite", clock=clock.unix) as server:
        with TextlocalClient("k", server.url) as client:
            result = batch.send(
                prepared,
                client,
                provider="sandbox",
                sender="123456",
                journal=files / "j.sqlite",
                out=files / "r.xlsx",
                clock=clock,
                chunk_size=1,
                concurrency=1,
                progress=lambda n: setattr(clock, "now", clock.now + timedelta(seconds=4)),
            )
        outbox = read_outbox(files / "outbox.sqlite", at=clock.unix())
    return result, outbox


def test_promotional_outside_the_window_is_scheduled_for_the_next_opening(files):
    result, outbox = promo_send(files, Clock(fixed("2026-11-26 21:30:00")))
    going = result.results[result.results["status"] == "scheduled"]
    assert len(going) == 5 and len(outbox) == 5
    assert set(going["detail"]) == {
        "scheduled for 2026-11-27 10:00 IST (outside the promotional window)"
    }
    assert {m["status"] for m in outbox} == {"scheduled"}


def test_promotional_outside_the_window_with_no_schedule_refuses_to_start(files):
    with pytest.raises(InputError) as info:
        promo_send(files, Clock(fixed("2026-11-26 09:59:59")), schedule=False)
    assert str(info.value) == (
        "promotional messages may only go out 10:00–21:00 IST and it is now 09:59 IST; rerun "
        "after 2026-11-26 10:00 IST, or drop --no-schedule to schedule them for then"
    )


def test_a_run_crossing_21_00_stops_sending_at_the_boundary(files):
    # Each message takes 4 s: 20:59:52, :56 go now; from 21:00:00 the rest are scheduled.
    result, outbox = promo_send(files, Clock(fixed("2026-11-26 20:59:52")))
    assert result.results["status"].tolist() == [
        "sent",
        "sent",
        "scheduled",
        "scheduled",
        "rejected",
        "scheduled",
    ]
    assert [m["status"] for m in outbox] == ["D", "D", "scheduled", "scheduled", "scheduled"]


def test_a_run_crossing_21_00_with_no_schedule_leaves_the_rest_for_a_rerun(files):
    result, outbox = promo_send(files, Clock(fixed("2026-11-26 20:59:52")), schedule=False)
    assert len(outbox) == 2
    assert result.results["status"].tolist() == [
        "sent",
        "sent",
        "failed",
        "failed",
        "rejected",
        "failed",
    ]
    assert result.results.loc[7, "detail"] == (
        "not sent: the promotional window 10:00–21:00 IST closed; rerun the same command after "
        "2026-11-27 10:00 IST"
    )


def test_dlt_templates_file_loads_for_the_sandbox_too(files):
    assert [t.id for t in load_dlt_templates(files / "dlt.txt")] == ["1001"]
