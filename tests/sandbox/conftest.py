"""In tests/sandbox, `client` is the real client talking to the real sandbox `server`."""

from __future__ import annotations

import pytest

from pipeline.providers.textlocal.client import TextlocalClient


@pytest.fixture
def client(server, api_key):
    with TextlocalClient(api_key, server.url, timeout=5.0) as tl:
        yield tl
