"""Providers: the real Textlocal API, and the sandbox that speaks it on loopback.

`open_provider()` hands out a ready `Provider` (base.py) for either, so the rest of the job never
knows which one it talks to, plus the *account* its messages are charged to: the scope of the
journal's "never the same text to the same number twice" (docs/journal.md).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import InputError
from pipeline.providers.base import Provider

if TYPE_CHECKING:
    from pipeline.sandbox.store import OutboxPurge

PROVIDERS = ("sandbox", "textlocal")


def textlocal_account(base_url: str, api_key: str) -> str:
    """`textlocal:<API host>:<key fingerprint>`: one account, never the key itself.

    The fingerprint is 16 hex digits of a SHA-256 over a fixed label and the key: it tells two
    keys apart and cannot be turned back into one (a Textlocal key is long and random).
    """
    host = (urllib.parse.urlsplit(base_url).hostname or "").lower()
    digest = hashlib.sha256(f"smsbatch account v1\n{api_key.strip()}".encode()).hexdigest()
    return f"textlocal:{host}:{digest[:16]}"


def purge_outbox(path: str | Path, before: datetime, *, dry_run: bool = False) -> OutboxPurge:
    """Erase sandbox outbox messages accepted before `before` (sandbox.store.purge_outbox):
    purge reaches the sandbox's data through here, never the sandbox itself."""
    from pipeline.sandbox.store import purge_outbox as purge

    return purge(path, before, dry_run=dry_run)


@dataclass(frozen=True)
class Connection:
    """A client plus a one-line description of where its messages go."""

    name: str
    client: Provider
    description: str
    account: str  # whose messages these are: textlocal_account, or the sandbox's outbox


@contextmanager
def open_provider(
    name: str,
    *,
    base_url: str | None = None,
    outbox: str | Path | None = None,
) -> Iterator[Connection]:
    """Yield a connection to `name` ("sandbox" or "textlocal"); close it afterwards.

    `sandbox` starts the loopback server in this process on `outbox` (default:
    settings.default_outbox), unless `base_url` points at one already running, e.g. from
    `smsbatch sandbox`. `textlocal` needs TEXTLOCAL_API_KEY and uses `base_url`, else
    TEXTLOCAL_BASE_URL, else Textlocal's India endpoint.
    """
    from pipeline.providers.textlocal.client import (
        DEFAULT_BASE_URL,
        TextlocalClient,
        api_key_from_env,
    )
    from pipeline.settings import default_outbox

    if name == "textlocal":
        key = api_key_from_env()
        url = base_url or os.environ.get("TEXTLOCAL_BASE_URL") or DEFAULT_BASE_URL
        with TextlocalClient(key, url) as client:
            yield Connection(
                name,
                client,
                f"Textlocal at {url}: REAL messages, real credits",
                textlocal_account(url, key),
            )
    elif name == "sandbox" and base_url:
        # A sandbox started separately accepts any key unless it was given one.
        key = os.environ.get("TEXTLOCAL_API_KEY") or "sandbox"
        with TextlocalClient(key, base_url) as client:
            yield Connection(
                name,
                client,
                f"sandbox at {base_url}: nothing leaves this machine",
                client.sandbox_account(),
            )
    elif name == "sandbox":
        from pipeline.sandbox.server import SandboxServer

        outbox = Path(outbox) if outbox is not None else default_outbox()
        key = secrets.token_urlsafe(16)  # a fresh key per run: the client must really send one
        with (
            SandboxServer(outbox, api_key=key) as server,
            TextlocalClient(key, server.url) as client,
        ):
            yield Connection(
                name,
                client,
                f"sandbox provider on {server.url}: nothing leaves this machine; "
                f"accepted messages are recorded in {outbox}",
                server.account,
            )
    else:
        raise InputError(f"unknown provider {name!r}: use one of {', '.join(PROVIDERS)}")
