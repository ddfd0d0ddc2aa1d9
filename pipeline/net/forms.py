"""Form bodies for the two small HTTP servers we run: the sandbox and the receipt listener.

Textlocal takes `application/x-www-form-urlencoded` and `multipart/form-data` alike and (we
assume) reads parameter names case-insensitively (`apikey` / `apiKey`; docs/provider-api.md,
"Transport and authentication"); its receipt callbacks are forms too
(docs/provider-api.md, "Delivery receipts"). Both servers parse them here, the same way.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler
from typing import cast


def form_fields(content_type: str, raw: bytes) -> dict[str, str]:
    """Fields of a form-urlencoded or multipart body, names lower-cased, first value wins."""
    if content_type.lower().startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
        message = BytesParser(policy=policy.HTTP).parsebytes(head + raw)
        if not message.is_multipart():
            raise ValueError("not a multipart body")
        pairs = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            # decode=True gives the part's bytes (None for a nested multipart part)
            payload = cast("bytes | None", part.get_payload(decode=True)) or b""
            if isinstance(name, str):
                pairs.append((name, payload.decode("utf-8", "replace")))
    else:
        pairs = urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return lower_keys(pairs)


def lower_keys(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Parameter names are case-insensitive; the first value of a repeated name wins."""
    out: dict[str, str] = {}
    for name, value in pairs:
        out.setdefault(name.lower(), value)
    return out


def read_form(handler: BaseHTTPRequestHandler, max_body: int) -> dict[str, str] | None:
    """The form fields of the request's body ({} when it is not a form); None, unread, when it
    declares more than `max_body` bytes (the caller answers 413)."""
    declared = handler.headers.get("Content-Length", "0").strip()
    length = int(declared) if declared.isdigit() else 0
    if length > max_body:
        return None
    raw = handler.rfile.read(length) if length > 0 else b""
    try:
        return form_fields(handler.headers.get("Content-Type", ""), raw)
    except ValueError:
        return {}
