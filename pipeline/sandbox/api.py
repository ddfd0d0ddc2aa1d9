"""Textlocal's commands as the sandbox answers them: validation, envelopes, the outbox writes.

The HTTP side (sockets, forms, faults) is sandbox.py; this module only turns a command and its
parameters into the JSON body Textlocal would send (docs/provider-api.md), writing to the
store. The read commands are in reads.py, the India rules in rules.py.

Choices where Textlocal's documentation is silent (assumed: docs/provider-api.md), all on the
strict side:
- A sender is required (44), as Textlocal India requires a DLT header; with no `senders`
  list any 6-letter or 6-digit header passes, else only the listed ones (43).
- A message may have at most 5 parts: 765 GSM-7 septets or, for unicode, 5 x 67 = 335
  UTF-16 units (Textlocal's unicode cap is unknown; 5 parts is the conservative guess;
  docs/provider-api.md, "Message length, encoding and credits").
- Test mode is validated like a real send (credits included) and its messages are kept with
  test = 1: never "sent", never charged, invisible to the status and history endpoints.
- Ids are typed as in the doc samples: /send/ gives string ids and int recipients,
  bulk_json int ids and string recipients, so clients meet both
  (docs/provider-api.md, "Ids and number types").
- bulk_json: a bad number, empty or too long text refuses that message only (32, 5, 6 in
  `messages_not_sent`); a bad sender or too few credits fails the whole request (44/43, 7).
  Each accepted message is its own batch and keeps its own `custom` value.
- /send/ sends once per distinct number; the command is checked (1, 2) before the key (3).
- India rules (rules.py): promotional hours (192) and schedules (8, 9, 191) and a
  template mismatch on /send/ (80) fail the whole request; in bulk_json a template mismatch
  (80) or a skipped opt-out (94) refuses that message only, and /send/ warns (94) per
  skipped opt-out. A scheduled request is charged now and its messages read `scheduled`.
- Receipts (receipts.py): /send/'s `receipt_url`, or bulk_json's top-level
  `receipt_url` (or `receiptUrl`, as one client spells it), is kept with each message and
  echoed in the answer; a URL that is not loopback http fails the request with 95, the
  sandbox's own code (docs/provider-api.md, "Sending with /bulk_json/").
"""

from __future__ import annotations

import hmac
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.sandbox.reads import READ_ERRORS, ReadCommands
from pipeline.sandbox.receipts import BAD_RECEIPT_URL, RECEIPT_ERRORS, loopback_url
from pipeline.sandbox.rules import MESSAGES, MOBILE, OPTED_OUT, Rules
from pipeline.sandbox.store import NewBatch, Store

MAX_NUMBERS = 10_000  # per request, else error 33 (docs/provider-api.md, "The /send/ command")
# At most 5 parts: docs/provider-api.md, "Message length, encoding and credits".
MAX_PARTS = 5  # 765 GSM-7 characters = 5 x 153
SENDING_COMMANDS = frozenset({"send", "bulk_json"})  # the ones that record messages
DEFAULT_SENDER = "TXTLCL"  # what /get_sender_names/ reports when no list is configured

# A DLT header, 6 letters or 6 digits: docs/provider-api.md, "DLT templates and headers".
_HEADER = re.compile(r"[A-Za-z]{6}|\d{6}")

# docs/provider-api.md, "Error and warning codes"
ERRORS = {
    1: "No command specified",
    2: "Unrecognised command",
    3: "Invalid login details",
    4: "No recipients specified",
    5: "No message content",
    6: "Message too long",
    7: "Insufficient credits",
    10: "Invalid group ID",
    32: "Invalid number format",
    33: "You have supplied too many numbers",
    34: "You have supplied both a group ID and a set of numbers",
    43: "Invalid sender name",
    44: "No sender name specified",
    51: "No valid numbers specified",
    **MESSAGES,  # the India rules' codes (rules.py)
    **READ_ERRORS,  # the sandbox's own, for unknown ids (reads.py)
    **RECEIPT_ERRORS,  # the sandbox's own, for a receipt URL it will not call
}


def _failure(code: int) -> dict[str, Any]:
    """Textlocal's failure envelope (docs/provider-api.md, "Answer envelopes")."""
    return {"errors": [{"code": code, "message": ERRORS[code]}], "status": "failure"}


def _flag(value: object) -> bool:
    """A boolean parameter: true/1 (form text or JSON)."""
    return value is True or value == 1 or str(value).strip().lower() in ("1", "true")


class SandboxApi:
    """Textlocal's commands over the store; each returns the JSON body to send."""

    def __init__(
        self,
        store: Store,
        api_key: str | None,
        senders: Sequence[str] | None,
        rules: Rules | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._api_key = api_key
        self._senders = list(senders) if senders is not None else None
        self._rules = rules if rules is not None else Rules()
        self._clock = clock
        reads = ReadCommands(store, clock)
        self._commands: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            "send": self.send,
            "bulk_json": self.bulk_json,
            "balance": reads.balance,
            "status_message": reads.status_message,
            "status_batch": reads.status_batch,
            "get_sender_names": self.get_sender_names,
            "get_templates": self.get_templates,
            "get_history_api": reads.get_history_api,
            # Not Textlocal's: which imitation account (outbox) this is, so a client reaching a
            # separately started sandbox scopes its journal records to the outbox, not the port.
            "sandbox_account": lambda params: {"account": store.account, "status": "success"},
        }

    def handle(self, command: str, params: dict[str, str]) -> dict[str, Any]:
        """Authenticate, then run `command` (codes 1, 2, 3 come first)."""
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

    def _sender_error(self, sender: object) -> dict[str, Any] | None:
        if not sender:
            return _failure(44)
        allowed = (
            (sender in self._senders)
            if self._senders is not None
            else (isinstance(sender, str) and _HEADER.fullmatch(sender) is not None)
        )
        return None if allowed else _failure(43)

    def send(self, params: dict[str, str]) -> dict[str, Any]:
        """/send/: one text to up to 10,000 comma-separated numbers (docs/provider-api.md,
        "The /send/ command")."""
        from pipeline.sms.gsm import count_segments

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
        receipt_url = params.get("receipt_url") or None
        if receipt_url is not None and not loopback_url(receipt_url):
            return _failure(BAD_RECEIPT_URL)
        parts = count_segments(message)
        if parts > MAX_PARTS:
            return _failure(6)
        if (code := self._rules.template_error(message)) is not None:
            return _failure(code)
        code, scheduled = self._rules.timing(sender, params.get("schedule_time"), self._clock())
        if code is not None:
            return _failure(code)
        valid = list(dict.fromkeys(n for n in numbers if MOBILE.fullmatch(n)))  # once each
        invalid = [n for n in numbers if not MOBILE.fullmatch(n)]
        skipped: list[str] = []
        if _flag(params.get("optouts")):
            skipped = [n for n in valid if self._rules.opted_out(n)]
            valid = [n for n in valid if not self._rules.opted_out(n)]
        if not valid:
            return _failure(51)
        test = _flag(params.get("test"))
        custom = params.get("custom") or None
        batch = NewBatch(sender, message, valid, parts, custom, receipt_url)
        with self._store.transaction() as tx:
            if batch.cost > tx.balance():
                return _failure(7)  # nothing recorded: the transaction wrote nothing
            [stored] = tx.record([batch], test=test, scheduled_at=scheduled)
        body: dict[str, Any] = {"test_mode": True} if test else {}
        body.update(
            balance=stored.balance,
            batch_id=stored.batch_id,
            cost=batch.cost,
            num_messages=len(valid),
            message={"num_parts": parts, "sender": sender, "content": message},
            receipt_url=receipt_url or "",
            custom=custom or "",
            messages=[
                {"id": str(i), "recipient": int(n)}
                for i, n in zip(stored.message_ids, valid, strict=True)
            ],
        )
        warnings = [{"code": 3, "message": "Invalid number"} for _ in invalid] + [
            {"code": OPTED_OUT, "message": ERRORS[OPTED_OUT]} for _ in skipped
        ]
        if warnings:
            body["warnings"] = warnings
        body["status"] = "success"
        return body

    def bulk_json(self, params: dict[str, str]) -> dict[str, Any]:
        """/bulk_json/: a text per number; each accepted one is its own batch
        (docs/provider-api.md, "Sending with /bulk_json/")."""
        from pipeline.sms.gsm import count_segments

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
        receipt_url = data.get("receipt_url") or data.get("receiptUrl") or None
        if receipt_url is not None and not (
            isinstance(receipt_url, str) and loopback_url(receipt_url)
        ):
            return _failure(BAD_RECEIPT_URL)
        code, scheduled = self._rules.timing(sender, data.get("schedule_time"), self._clock())
        if code is not None:
            return _failure(code)  # nothing recorded, nothing charged
        test = _flag(data.get("test"))
        optouts = _flag(data.get("optouts"))
        accepted: list[tuple[NewBatch, str]] = []
        not_sent = []
        for item in items:
            item = item if isinstance(item, dict) else {}
            number = str(item.get("number", "")).strip()
            # The client rawurlencodes each text, as Textlocal's doc sample does; decode it
            # once here (docs/provider-api.md, "Sending with /bulk_json/").
            text = urllib.parse.unquote(str(item.get("text") or ""), errors="replace")
            custom = str(item["custom"]) if item.get("custom") is not None else None
            parts = count_segments(text) if text else 0
            code = None
            if not MOBILE.fullmatch(number):
                code = 32
            elif optouts and self._rules.opted_out(number):
                code = OPTED_OUT
            elif not text:
                code = 5
            elif parts > MAX_PARTS:
                code = 6
            else:
                code = self._rules.template_error(text)
            if code is None:
                accepted.append(
                    (NewBatch(sender, text, [number], parts, custom, receipt_url), number)
                )
            else:
                not_sent.append(
                    {
                        "unique_id": custom or "",
                        "number": number,
                        "message": text,
                        "error": {"code": code, "message": ERRORS[code]},
                    }
                )
        total_cost = sum(batch.cost for batch, _ in accepted)
        groups = []
        with self._store.transaction() as tx:
            balance_pre = tx.balance()
            if total_cost > balance_pre:
                return _failure(7)  # the whole request fails: nothing recorded
            records = tx.record([batch for batch, _ in accepted], test=test, scheduled_at=scheduled)
            balance_post = records[-1].balance if records else balance_pre
            for (batch, number), stored in zip(accepted, records, strict=True):
                groups.append(
                    {
                        "balance": stored.balance,
                        "batch_id": stored.batch_id,
                        "cost": batch.cost,
                        "num_messages": 1,
                        "message": {
                            "num_parts": batch.num_parts,
                            "sender": sender,
                            "content": batch.message,
                        },
                        "receipt_url": receipt_url or "",
                        "custom": batch.custom or "",
                        "messages": [{"id": stored.message_ids[0], "recipient": number}],
                    }
                )
        return {
            "test": test,
            "balance_pre_send": balance_pre,
            "total_cost": total_cost,
            "balance_post_send": balance_post,
            "messages": groups,
            "messages_not_sent": not_sent,
            "status": "success",
        }

    def get_sender_names(self, params: dict[str, str]) -> dict[str, Any]:
        """/get_sender_names/ (docs/provider-api.md, "Templates and sender names")."""
        names = self._senders or []
        return {
            "default_sender_name": names[0] if names else DEFAULT_SENDER,
            "sender_names": names,
            "status": "success",
        }

    def get_templates(self, params: dict[str, str]) -> dict[str, Any]:
        """/get_templates/: the DLT templates the sandbox was given, if any
        (docs/provider-api.md, "Templates and sender names")."""
        return {"templates": self._rules.template_list(), "status": "success"}
