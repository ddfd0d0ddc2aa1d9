"""Textlocal's read commands as the sandbox answers them: balance, status, history.

The sending commands and the dispatch are in api.py; these only read the store.
Choices where Textlocal's documentation is silent (assumed; docs/provider-api.md):
- Status lookups of an unknown id fail with the sandbox's own codes 22 / 23.
- Statuses are as of the sandbox's clock (receipts.py): `scheduled` until a message
  accepted for later is due, then P, then final. The status_batch counts are of final
  outcomes (docs/provider-api.md, "Status of a batch"), so `num_messages` minus their sum is
  what is still P or scheduled.
- /status_message/'s `date` is when the message took its current status, IST.
- /get_history_api/ (only corroborated: docs/provider-api.md, "Message history"):
  `start`/`limit` (at most 1000) page, `min_time`/`max_time` are inclusive unix seconds,
  newest first unless `sort_order=asc`; each message carries `customID` and `batchID`, the
  names Textlocal's receipts and history are reported to use.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pipeline.clock import IST
from pipeline.sandbox.receipts import current_status, ist
from pipeline.sandbox.store import Store, Transaction

# The sandbox's own codes: Textlocal's for an unknown id are not documented.
READ_ERRORS = {22: "Invalid message ID", 23: "Invalid batch ID"}


def _failure(code: int) -> dict[str, Any]:
    """Textlocal's failure envelope (docs/provider-api.md, "Answer envelopes")."""
    return {"errors": [{"code": code, "message": READ_ERRORS[code]}], "status": "failure"}


def _integer(value: object, default: int | None = None) -> int | None:
    """A non-negative integer parameter, or `default`."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() and len(text) < 15 else default


def _ist(created_at: str) -> str:
    """An ISO UTC timestamp as Textlocal shows dates ("2013-07-04 14:31:18")."""
    return datetime.fromisoformat(created_at).astimezone(IST).strftime("%Y-%m-%d %H:%M:%S")


class ReadCommands:
    """/balance/, /status_message/, /status_batch/ and /get_history_api/ over the store."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def balance(self, params: dict[str, str]) -> dict[str, Any]:
        """/balance/ (docs/provider-api.md, "Balance")."""
        with self._store.transaction() as tx:
            return {"balance": {"sms": tx.balance()}, "status": "success"}

    def status_message(self, params: dict[str, str]) -> dict[str, Any]:
        """/status_message/ by `message_id` (docs/provider-api.md, "Status of one message")."""
        message_id = _integer(params.get("message_id"))
        with self._store.transaction() as tx:
            row = tx.message(message_id) if message_id is not None else None
        if row is None:
            return _failure(22)
        status, since = current_status(row, self._clock())
        return {
            "message": {
                "id": row["id"],
                "recipient": int(row["number"]),
                "type": "sms",
                "status": status,
                "date": ist(since),
            },
            "status": "success",
        }

    def status_batch(self, params: dict[str, str]) -> dict[str, Any]:
        """/status_batch/ by `batch_id` (docs/provider-api.md, "Status of a batch")."""
        batch_id = _integer(params.get("batch_id"))
        with self._store.transaction() as tx:
            rows = tx.batch_messages(batch_id) if batch_id is not None else []
        if not rows:
            return _failure(23)
        now = self._clock()
        statuses = [current_status(row, now)[0] for row in rows]
        counts = {
            f"num_{name}": statuses.count(code)
            for code, name in (
                ("D", "delivered"),
                ("U", "undelivered"),
                ("E", "expired"),
                ("?", "unknown"),
                ("I", "invalid"),
            )
        }
        return {
            "batch_id": batch_id,
            "num_messages": len(rows),
            **counts,
            "messages": [
                {"recipient": int(row["number"]), "status": status}
                for row, status in zip(rows, statuses, strict=True)
            ],
            "status": "success",
        }

    def get_history_api(self, params: dict[str, str]) -> dict[str, Any]:
        """/get_history_api/: sent messages, newest first unless sort_order=asc (assumed:
        docs/provider-api.md, "Message history")."""
        start = _integer(params.get("start"), 0) or 0
        limit = min(_integer(params.get("limit"), 1000) or 1000, 1000)
        newest_first = params.get("sort_order", "desc").lower() != "asc"
        with self._store.transaction() as tx:
            total, rows = _history(tx, params, start, limit, newest_first)
        now = self._clock()
        return {
            "messages": [
                {
                    "id": row["id"],
                    "number": int(row["number"]),
                    "content": row["message"],
                    "sender": row["sender"],
                    "datetime": _ist(row["created_at"]),
                    "status": current_status(row, now)[0],
                    "customID": row["custom"] or "",
                    "batchID": row["batch_id"],
                }
                for row in rows
            ],
            "start": start,
            "limit": limit,
            "total": total,
            "status": "success",
        }


def _history(
    tx: Transaction, params: dict[str, str], start: int, limit: int, newest_first: bool
) -> tuple[int, list[sqlite3.Row]]:
    """One page of history; unix-time bounds beyond year 9999 are ignored."""
    bounds = [_integer(params.get(name)) for name in ("min_time", "max_time")]
    bounds = [b if b is not None and b < 253_402_300_800 else None for b in bounds]
    return tx.history(
        start, limit, newest_first=newest_first, min_time=bounds[0], max_time=bounds[1]
    )
