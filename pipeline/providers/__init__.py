"""Providers: the real Textlocal API, and the sandbox that speaks it on loopback.

`open_provider()` hands out a ready `TextlocalClient` for either, so the rest of the job never
knows which one it talks to.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError

PROVIDERS = ("sandbox", "textlocal")
SANDBOX_OUTBOX = Path("output") / "sandbox" / "outbox.sqlite"


@dataclass(frozen=True)
class Connection:
    """A client plus a one-line description of where its messages go."""

    name: str
    client: object  # TextlocalClient; typed loosely so importing this package stays cheap
    description: str


@contextmanager
def open_provider(
    name: str,
    *,
    base_url: str | None = None,
    outbox: str | Path = SANDBOX_OUTBOX,
) -> Iterator[Connection]:
    """Yield a connection to `name` ("sandbox" or "textlocal"); close it afterwards.

    `sandbox` starts the loopback server in this process (unless `base_url` points at one
    already running, e.g. from `smsbatch sandbox`). `textlocal` needs TEXTLOCAL_API_KEY and
    uses `base_url`, else TEXTLOCAL_BASE_URL, else Textlocal's India endpoint.
    """
    from pipeline.providers.textlocal import DEFAULT_BASE_URL, TextlocalClient, api_key_from_env

    if name == "textlocal":
        key = api_key_from_env()
        url = base_url or os.environ.get("TEXTLOCAL_BASE_URL") or DEFAULT_BASE_URL
        with TextlocalClient(key, url) as client:
            yield Connection(name, client, f"Textlocal at {url}: REAL messages, real credits")
    elif name == "sandbox" and base_url:
        # A sandbox started separately accepts any key unless it was given one.
        key = os.environ.get("TEXTLOCAL_API_KEY") or "sandbox"
        with TextlocalClient(key, base_url) as client:
            yield Connection(name, client, f"sandbox at {base_url}: nothing leaves this machine")
    elif name == "sandbox":
        from pipeline.providers.sandbox import SandboxServer

        key = secrets.token_urlsafe(16)  # a fresh key per run: the client must really send one
        with (
            SandboxServer(outbox, api_key=key) as server,
            TextlocalClient(key, server.url) as client,
        ):
            yield Connection(
                name, client,
                f"sandbox provider on {server.url}: nothing leaves this machine; "
                f"accepted messages are recorded in {outbox}",
            )
    else:
        raise InputError(f"unknown provider {name!r}: use one of {', '.join(PROVIDERS)}")
