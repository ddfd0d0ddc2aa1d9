"""Textlocal's commands as the sandbox answers them: validation, envelopes, the outbox writes.

The HTTP side (sockets, forms, faults) is sandbox.py; this module only turns a command and its
parameters into the JSON body Textlocal would send (textlocal-api.md), writing to the store.

Choices where the spec is silent ([I] in textlocal-api.md), all on the strict side:
- A sender is required (44), as Textlocal India requires a DLT header; with no `senders`
  list any 6-letter or 6-digit header passes, else only the listed ones (43).
- A message may have at most 5 parts: 765 GSM-7 septets (§7) or, for unicode, 5 x 67 = 335
  UTF-16 units (Textlocal's unicode cap is unknown; 5 parts is the conservative guess).
- Test mode is validated like a real send (credits included) and its messages are kept with
  test = 1: never "sent", never charged, invisible to the status and history endpoints.
- Ids are typed as in the doc samples: /send/ gives string ids and int recipients (§2.2),
  bulk_json int ids and string recipients (§3), so clients meet both.
- bulk_json: a bad number, empty or too long text refuses that message only (32, 5, 6 in
  `messages_not_sent`); a bad sender or too few credits fails the whole request (44/43, 7).
  Each accepted message is its own batch and keeps its own `custom` value.
- /send/ sends once per distinct number; the command is checked (1, 2) before the key (3).
- Status lookups of an unknown id fail with the sandbox's own codes 22 / 23.
- /get_history_api/ (§5.5 [C]): `start`/`limit` (at most 1000) page, `min_time`/`max_time`
  are inclusive unix seconds, newest first unless `sort_order=asc`; each message carries
  `customID` and `batchID`, the names Textlocal's receipts and history are reported to use.
"""

from __future__ import annotations

import hmac
import json
import re
import urllib.parse
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from pipeline.providers.sandbox_store import NewBatch, Store, Transaction

MAX_NUMBERS = 10_000  # per request, else error 33 (textlocal-api.md §2.1)
MAX_PARTS = 5  # 765 GSM-7 characters = 5 x 153 (§7)
SENDING_COMMANDS = frozenset({"send", "bulk_json"})  # the ones that record messages
DEFAULT_SENDER = "TXTLCL"  # what /get_sender_names/ reports when no list is configured
IST = timezone(timedelta(hours=5, minutes=30))  # Textlocal India's dates are local time [I]

_NUMBER = re.compile(r"91[6-9]\d{9}")  # Indian mobile in wire form (§8 "Number format")
_HEADER = re.compile(r"[A-Za-z]{6}|\d{6}")  # DLT header: 6 letters, or 6 digits (promo) (§8)

# textlocal-api.md §4; 22 and 23 are the sandbox's own choice (Textlocal's codes are unknown).
ERRORS = {
    1: "No command specified",
    2: "Unrecognised command",
    3: "Invalid login details",
    4: "No recipients specified",
    5: "No message content",
    6: "Message too long",
    7: "Insufficient credits",
    10: "Invalid group ID",
    22: "Invalid message ID",
    23: "Invalid batch ID",
    32: "Invalid number format",
    33: "You have supplied too many numbers",
    34: "You have supplied both a group ID and a set of numbers",
    43: "Invalid sender name",
    44: "No sender name specified",
    51: "No valid numbers specified",
}


def _failure(code: int) -> dict:
    """Textlocal's failure envelope (textlocal-api.md §1)."""
    return {"errors": [{"code": code, "message": ERRORS[code]}], "status": "failure"}


def _flag(value: object) -> bool:
    """A boolean parameter: true/1 (form text or JSON)."""
    return value is True or value == 1 or str(value).strip().lower() in ("1", "true")


def _integer(value: object, default: int | None = None) -> int | None:
    """A non-negative integer parameter, or `default`."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() and len(text) < 15 else default


def _ist(created_at: str) -> str:
    """An ISO UTC timestamp as Textlocal shows dates ("2013-07-04 14:31:18")."""
    return datetime.fromisoformat(created_at).astimezone(IST).strftime("%Y-%m-%d %H:%M:%S")


class SandboxApi:
    """Textlocal's commands over the store; each returns the JSON body to send."""

    def __init__(self, store: Store, api_key: str | None, senders: Sequence[str] | None) -> None:
        self._store = store
        self._api_key = api_key
        self._senders = list(senders) if senders is not None else None
        self._commands = {
            "send": self.send, "bulk_json": self.bulk_json, "balance": self.balance,
            "status_message": self.status_message, "status_batch": self.status_batch,
            "get_sender_names": self.get_sender_names, "get_templates": self.get_templates,
            "get_history_api": self.get_history_api,
        }

    def handle(self, command: str, params: dict[str, str]) -> dict:
        """Authenticate, then run `command` (codes 1, 2, 3 come first, §4)."""
        if not command:
            return _failure(1)
        action = self._commands.get(command)
        if action is None:
            return _failure(2)
        key = params.get("apikey", "").encode()
        expected = self._api_key.encode() if self._api_key is not None else key
        if not key or not hmac.compare_digest(key, expected):
            return _failure(3)
        return action(params)

    def _sender_error(self, sender: object) -> dict | None:
        if not sender:
            return _failure(44)
        allowed = (sender in self._senders) if self._senders is not None else (
            isinstance(sender, str) and _HEADER.fullmatch(sender) is not None)
        return None if allowed else _failure(43)

    def send(self, params: dict[str, str]) -> dict:
        """/send/: one text to up to 10,000 comma-separated numbers (§2)."""
        from pipeline.encoding import count_segments

        if params.get("group_id"):
            # The sandbox has no contact groups.
            return _failure(34 if params.get("numbers") else 10)
        numbers = [n.strip() for n in params.get("numbers", "").split(",") if n.strip()]
        if not numbers:
            return _failure(4)
        if len(numbers) > MAX_NUMBERS:
            return _failure(33)
        message = params.get("message", "")
        if not message:
            return _failure(5)
        sender = params.get("sender", "")
        if (error := self._sender_error(sender)) is not None:
            return error
        parts = count_segments(message)
        if parts > MAX_PARTS:
            return _failure(6)
        valid = list(dict.fromkeys(n for n in numbers if _NUMBER.fullmatch(n)))  # once each
        if not valid:
            return _failure(51)
        invalid = [n for n in numbers if not _NUMBER.fullmatch(n)]
        test = _flag(params.get("test"))
        custom = params.get("custom") or None
        batch = NewBatch(sender, message, valid, parts, custom)
        with self._store.transaction() as tx:
            if batch.cost > tx.balance():
                return _failure(7)  # nothing recorded: the transaction wrote nothing
            [stored] = tx.record([batch], test=test)
        body: dict[str, Any] = {"test_mode": True} if test else {}
        body.update(
            balance=stored.balance, batch_id=stored.batch_id, cost=batch.cost,
            num_messages=len(valid),
            message={"num_parts": parts, "sender": sender, "content": message},
            receipt_url=params.get("receipt_url", ""), custom=custom or "",
            messages=[{"id": str(i), "recipient": int(n)}
                      for i, n in zip(stored.message_ids, valid, strict=True)],
        )
        if invalid:
            body["warnings"] = [{"code": 3, "message": "Invalid number"} for _ in invalid]
        body["status"] = "success"
        return body

    def bulk_json(self, params: dict[str, str]) -> dict:
        """/bulk_json/: a text per number; each accepted one is its own batch (§3)."""
        from pipeline.encoding import count_segments

        try:
            data = json.loads(params.get("data", ""))
        except ValueError:
            data = None
        items = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            return _failure(4)
        if len(items) > MAX_NUMBERS:
            return _failure(33)
        sender = data.get("sender")
        if (error := self._sender_error(sender)) is not None:
            return error
        test = _flag(data.get("test"))
        accepted: list[tuple[NewBatch, str]] = []
        not_sent = []
        for item in items:
            item = item if isinstance(item, dict) else {}
            number = str(item.get("number", "")).strip()
            # The client rawurlencodes each text (§3 doc sample); decode it once here.
            text = urllib.parse.unquote(str(item.get("text") or ""), errors="replace")
            custom = str(item["custom"]) if item.get("custom") is not None else None
            parts = count_segments(text) if text else 0
            code = None
            if not _NUMBER.fullmatch(number):
                code = 32
            elif not text:
                code = 5
            elif parts > MAX_PARTS:
                code = 6
            if code is None:
                accepted.append((NewBatch(sender, text, [number], parts, custom), number))
            else:
                not_sent.append({"unique_id": custom or "", "number": number, "message": text,
                                 "error": {"code": code, "message": ERRORS[code]}})
        total_cost = sum(batch.cost for batch, _ in accepted)
        groups = []
        with self._store.transaction() as tx:
            balance_pre = tx.balance()
            if total_cost > balance_pre:
                return _failure(7)  # the whole request fails: nothing recorded
            records = tx.record([batch for batch, _ in accepted], test=test)
            balance_post = records[-1].balance if records else balance_pre
            for (batch, number), stored in zip(accepted, records, strict=True):
                groups.append({
                    "balance": stored.balance, "batch_id": stored.batch_id, "cost": batch.cost,
                    "num_messages": 1,
                    "message": {"num_parts": batch.num_parts, "sender": sender,
                                "content": batch.message},
                    "receipt_url": "", "custom": batch.custom or "",
                    "messages": [{"id": stored.message_ids[0], "recipient": number}],
                })
        return {"test": test, "balance_pre_send": balance_pre, "total_cost": total_cost,
                "balance_post_send": balance_post, "messages": groups,
                "messages_not_sent": not_sent, "status": "success"}

    def balance(self, params: dict[str, str]) -> dict:
        """/balance/ (§5.5)."""
        with self._store.transaction() as tx:
            return {"balance": {"sms": tx.balance()}, "status": "success"}

    def status_message(self, params: dict[str, str]) -> dict:
        """/status_message/ by `message_id` (§5.1)."""
        message_id = _integer(params.get("message_id"))
        with self._store.transaction() as tx:
            row = tx.message(message_id) if message_id is not None else None
        if row is None:
            return _failure(22)
        return {"message": {"id": row["id"], "recipient": int(row["number"]), "type": "sms",
                            "status": row["status"], "date": _ist(row["created_at"])},
                "status": "success"}

    def status_batch(self, params: dict[str, str]) -> dict:
        """/status_batch/ by `batch_id` (§5.2)."""
        batch_id = _integer(params.get("batch_id"))
        with self._store.transaction() as tx:
            rows = tx.batch_messages(batch_id) if batch_id is not None else []
        if not rows:
            return _failure(23)
        statuses = [row["status"] for row in rows]
        counts = {f"num_{name}": statuses.count(code) for code, name in (
            ("D", "delivered"), ("U", "undelivered"), ("E", "expired"), ("?", "unknown"),
            ("I", "invalid"))}
        return {"batch_id": batch_id, "num_messages": len(rows), **counts,
                "messages": [{"recipient": int(row["number"]), "status": row["status"]}
                             for row in rows],
                "status": "success"}

    def get_sender_names(self, params: dict[str, str]) -> dict:
        """/get_sender_names/ (§5.5)."""
        names = self._senders or []
        return {"default_sender_name": names[0] if names else DEFAULT_SENDER,
                "sender_names": names, "status": "success"}

    def get_templates(self, params: dict[str, str]) -> dict:
        """/get_templates/: the sandbox has no registered DLT templates (§5.5)."""
        return {"templates": [], "status": "success"}

    def get_history_api(self, params: dict[str, str]) -> dict:
        """/get_history_api/: sent messages, newest first unless sort_order=asc (§5.5) [I]."""
        start = _integer(params.get("start"), 0) or 0
        limit = min(_integer(params.get("limit"), 1000) or 1000, 1000)
        newest_first = params.get("sort_order", "desc").lower() != "asc"
        with self._store.transaction() as tx:
            total, rows = _history(tx, params, start, limit, newest_first)
        return {
            "messages": [
                {"id": row["id"], "number": int(row["number"]), "content": row["message"],
                 "sender": row["sender"], "datetime": _ist(row["created_at"]),
                 "status": row["status"], "customID": row["custom"] or "",
                 "batchID": row["batch_id"]}
                for row in rows
            ],
            "start": start, "limit": limit, "total": total, "status": "success",
        }


def _history(tx: Transaction, params: dict[str, str], start: int, limit: int,
             newest_first: bool) -> tuple[int, list]:
    """One page of history; unix-time bounds beyond year 9999 are ignored."""
    bounds = [_integer(params.get(name)) for name in ("min_time", "max_time")]
    bounds = [b if b is not None and b < 253_402_300_800 else None for b in bounds]
    return tx.history(start, limit, newest_first=newest_first,
                      min_time=bounds[0], max_time=bounds[1])
