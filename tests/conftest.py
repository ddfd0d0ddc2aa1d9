"""Fixtures shared by the tests: an isolated state directory, the provider faked at the
transport (`rsps`, `client`), and the real sandbox on loopback (`server`, `sandbox`, `clock`).

A module tests with a key, clock, outbox or sandbox settings of its own by overriding the
fixture of that name (`api_key`, `clock`, `outbox`, `sandbox_options`); the plain helpers
(`Clock`, `KEY`, `BASE`, `DATA`, `REPO`) are in tests/helpers.py.
"""

from __future__ import annotations

import pytest
import responses

from pipeline.providers.textlocal.client import TextlocalClient
from pipeline.sandbox.server import SandboxServer
from tests.helpers import BASE, KEY, T0, Clock


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


# -- the provider -----------------------------------------------------------------------------


@pytest.fixture
def api_key() -> str:
    """The key `client`, `server` and `sandbox` use; a module overrides it with its own."""
    return KEY


@pytest.fixture
def base_url() -> str:
    """Where `client` sends (faked with `rsps`); a module overrides it, e.g. with the real
    Textlocal URL."""
    return BASE


@pytest.fixture
def client(api_key, base_url):
    """A Textlocal client for `base_url`, closed after the test. (In tests/sandbox it is
    overridden by a client of the sandbox `server`.)"""
    with TextlocalClient(api_key, base_url) as tl:
        yield tl


# -- the sandbox --------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    """A settable unix time (T0) for the sandbox to stamp messages with: delivery statuses
    move only when a test moves it."""
    return Clock(T0)


@pytest.fixture
def outbox(tmp_path):
    return tmp_path / "outbox.sqlite"


@pytest.fixture
def sandbox_options(api_key, clock) -> dict:
    """What `server` and `sandbox` start a SandboxServer with (besides the outbox)."""
    return {"api_key": api_key, "balance": 100, "clock": clock}


@pytest.fixture
def server(outbox, sandbox_options):
    """A started sandbox on `outbox` with `sandbox_options`, stopped after the test."""
    with SandboxServer(outbox, **sandbox_options) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(outbox, api_key, sandbox_options):
    """A factory: `sandbox(**options)` starts a sandbox on `outbox` with `sandbox_options`
    updated by `options` and returns it with a client for it (`api_key`, 5 s timeout). Every
    sandbox started is stopped after the test."""
    servers = []

    def start(**options):
        server = SandboxServer(outbox, **{**sandbox_options, **options}).start()
        servers.append(server)
        return server, TextlocalClient(api_key, server.url, timeout=5.0)

    yield start
    for server in servers:
        server.stop()
