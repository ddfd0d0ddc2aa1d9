"""A full disk is found before the first send, through the real `send` command."""

from __future__ import annotations

import shutil
from collections import namedtuple

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.sandbox.server import read_outbox
from tests.helpers import REPO

pytestmark = pytest.mark.slow  # end to end: real CLI runs, subprocesses, servers

Usage = namedtuple("Usage", "total used free")


def test_a_full_disk_stops_send_before_any_request(tmp_path, monkeypatch):
    shutil.copytree(REPO / "input", tmp_path / "input")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        "pipeline.sending.preflight.shutil.disk_usage",
        lambda path: Usage(10 * 2**30, 10 * 2**30 - 2**20, 2**20),
    )
    result = CliRunner().invoke(main, ["send", "input/contacts.xlsx", "-t", "input/template.txt"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: output/ has 1.0 MiB free")
    assert result.stderr.count("\n") == 1
    outbox = tmp_path / "output" / "sandbox" / "outbox.sqlite"
    assert not outbox.exists() or read_outbox(outbox) == []
    assert not list((tmp_path / "output").glob("*.xlsx"))
