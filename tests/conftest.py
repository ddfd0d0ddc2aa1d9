"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest
import responses


@pytest.fixture(autouse=True)
def state_dir(tmp_path_factory, monkeypatch):
    """Every test gets its own smsbatch state directory (journal, sandbox outbox, locks), so
    no test reads or writes the real user's, and none sees another's sends."""
    folder = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("SMSBATCH_STATE_DIR", str(folder))
    for name in ("SMSBATCH_JOURNAL", "SMSBATCH_OUTBOX", "SMSBATCH_REPEAT_WINDOW"):
        monkeypatch.delenv(name, raising=False)
    return folder


@pytest.fixture
def rsps():
    """HTTP faked at the transport; every registered response must be used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock
