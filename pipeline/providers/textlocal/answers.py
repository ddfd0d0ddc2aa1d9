"""Reading Textlocal's answers: success bodies into per-number outcomes, history pages, headers.

The client (textlocal.py) owns the transport and the key; this module only reads JSON it was
handed. Anything it cannot read is an OutcomeUnknown, never a guess: a message we cannot
account for must not be resent blindly (docs/contract.md, "Statuses": `unknown`). Error texts
describe a value's *shape* (`sketch`), never its content, since numbers and message texts are
private (docs/contract.md, "Secrets and privacy").
The client hands over bodies already passed through `scrub_json`, so not even their keys can
carry the API key back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pipeline.errors import OutcomeUnknown, ProviderError
from pipeline.providers.base import Accepted, BulkResponse, HistoryMessage, Refused

READ_ADVICE = "this call sends nothing; rerun it when Textlocal answers"

# What to do next for the codes that stop a run (docs/provider-api.md, "Error and warning
# codes").
_ADVICE = {
    3: "Check TEXTLOCAL_API_KEY (an India key from Textlocal Messenger > Settings > API Keys)",
    7: "Top up credits in your Textlocal account, then rerun the same command",
    43: "Check --sender / TEXTLOCAL_SENDER is your DLT-approved 6-letter header",
    44: "Check --sender / TEXTLOCAL_SENDER is your DLT-approved 6-letter header",
    192: "Promotional messages may only go out in the allowed time window (10:00-21:00 IST); "
    "rerun the same command inside it",
    9: "Choose a schedule time in the future and rerun",
    191: "Schedule promotional messages inside the allowed time window (10:00-21:00 IST) and rerun",
    80: "Make the text match a DLT template registered in your Textlocal account exactly "
    "(no extra spaces or line breaks, each variable at most 30 characters) and rerun",
}
_GENERIC_ADVICE = "See https://api.textlocal.in/docs/ for the code, fix the cause and rerun"


def parse_bulk(body: dict[str, Any]) -> BulkResponse:
    """Map a bulk_json (or plain /send/) success body to per-number outcomes."""
    accepted: dict[str, Accepted] = {}
    refused: dict[str, Refused] = {}
    groups = body.get("messages", [])
    if "batch_id" in body:
        # The plain /send/ shape, accepted defensively (docs/provider-api.md, "The /send/ command").
        groups = [body]
    if not isinstance(groups, list):
        raise unexpected("answer from Textlocal /bulk_json/", body)
    for group in groups:
        inner = group.get("messages") if isinstance(group, dict) else None
        batch_id = as_id(group.get("batch_id")) if isinstance(group, dict) else None
        if batch_id is None or not isinstance(inner, list) or not inner:
            raise unexpected("message group from Textlocal", group)
        cost = as_int(group.get("cost"))
        share = cost // len(inner) if cost is not None and cost % len(inner) == 0 else None
        for item in inner:
            number = as_number(item.get("recipient")) if isinstance(item, dict) else None
            message_id = as_id(item.get("id")) if isinstance(item, dict) else None
            if number is None or message_id is None:
                raise unexpected("message from Textlocal", item)
            accepted[number] = Accepted(number, message_id, batch_id, share)
    not_sent = body.get("messages_not_sent") or []
    for item in not_sent if isinstance(not_sent, list) else []:
        number = as_number(item.get("number")) if isinstance(item, dict) else None
        if number is None:
            raise unexpected("refusal from Textlocal", item)
        error = item.get("error")
        error = error if isinstance(error, dict) else {}
        refused[number] = Refused(
            number, as_int(error.get("code")), str(error.get("message") or "not sent")
        )
    balance = as_int(body.get("balance_post_send", body.get("balance")))
    total_cost = as_int(body.get("total_cost", body.get("cost")))
    test_mode = body.get("test", body.get("test_mode", False)) in (True, 1, "1", "true")
    return BulkResponse(accepted, refused, balance, total_cost, test_mode)


def parse_balance(body: dict[str, Any]) -> int:
    """The SMS credits in a `/balance/` success body."""
    value = body.get("balance")
    number = as_int(value.get("sms") if isinstance(value, dict) else None)
    if number is None:
        raise unexpected("answer from Textlocal /balance/", body)
    return number


def failure_error(body: dict[str, Any], scrub: Callable[[str], str]) -> ProviderError:
    """The ProviderError for a `"status": "failure"` envelope.

    See docs/provider-api.md, "Answer envelopes" and "Error and warning codes".

    `scrub` cleans the provider's own error text (which might quote the key back).
    """
    errors = body.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else {}
    code = as_int(first.get("code")) if isinstance(first, dict) else None
    text = str(first.get("message", "")) if isinstance(first, dict) else ""
    text = scrub(text).rstrip(".") or "no error message"
    advice = _ADVICE.get(code, _GENERIC_ADVICE) if code is not None else _GENERIC_ADVICE
    return ProviderError(f"Textlocal error {code}: {text}. {advice}", code=code)


def history_message(item: object) -> HistoryMessage:
    """One `/get_history_api/` message; its field names are only corroborated, the
    alternatives assumed (docs/provider-api.md, "Message history")."""
    if not isinstance(item, dict):
        raise unexpected("message in Textlocal's history", item, read=True)
    message_id = as_id(_first(item, "id", "message_id", "messageID"))
    number = as_number(_first(item, "number", "recipient"))
    if message_id is None or number is None:
        raise unexpected("message in Textlocal's history", item, read=True)
    return HistoryMessage(
        message_id=message_id,
        number=number,
        batch_id=as_id(_first(item, "batchID", "batch_id", "batchId")),
        custom=_text(_first(item, "customID", "custom", "customId", "custom_id")),
        status=_text(item.get("status")),
        sent_at=_text(_first(item, "datetime", "date", "sent_at")),
        content=next(
            (v for v in (item.get("content"), item.get("message")) if isinstance(v, str)), None
        ),
    )


def as_int(value: object) -> int | None:
    """An int from a JSON int or digit string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def as_id(value: object) -> str | None:
    """An id as text (Textlocal sends ids as numbers or strings; docs/provider-api.md, "Ids and
    number types")."""
    number = as_int(value)
    if number is not None:
        return str(number)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def as_number(value: object) -> str | None:
    """A phone number (int or str, maybe with '+') as a digit string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip().lstrip("+").isdigit():
        return value.strip().lstrip("+")
    return None


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def unexpected(what: str, value: object, *, read: bool = False) -> OutcomeUnknown:
    """OutcomeUnknown for a success answer this client cannot read: never resend blindly."""
    if read:
        return OutcomeUnknown(f"unexpected {what} ({sketch(value)}): {READ_ADVICE}")
    return OutcomeUnknown(
        f"unexpected {what} ({sketch(value)}): the messages may or may not have been sent; "
        "check the Textlocal history before resending"
    )


def scrub_json(value: object, scrub: Callable[[str], str]) -> object:
    """A copy of parsed JSON `value` with `scrub` applied to every object key and string."""
    # A loop, not recursion: json.loads nests deeper than the Python stack allows from here.
    holder: list[object] = [value]
    # (container, slot): a list and an index into it, or a dict and one of its keys
    pending: list[tuple[list[object] | dict[str, object], Any]] = [(holder, 0)]
    while pending:
        parent, slot = pending.pop()
        item = parent[slot]
        if isinstance(item, str):
            parent[slot] = scrub(item)
        elif isinstance(item, list):
            parent[slot] = copy = list(item)
            pending.extend((copy, index) for index in range(len(copy)))
        elif isinstance(item, dict):
            # Two keys that differ only by the key they quote become one: either value will do.
            parent[slot] = fields = {scrub(str(name)): field for name, field in item.items()}
            pending.extend((fields, name) for name in fields)
    return holder[0]


def sketch(value: object) -> str:
    """The shape of an unexpected JSON value, without its data (numbers and texts are private)."""
    if isinstance(value, dict):
        return "an object with keys " + (", ".join(sorted(map(str, value)))[:200] or "none")
    return f"a JSON {type(value).__name__}"


def _first(item: dict[str, Any], *names: str) -> object:
    """The value of the first of `names` present and not None/""."""
    for name in names:
        value = item.get(name)
        if value is not None and value != "":
            return value
    return None


def _text(value: object) -> str | None:
    """A JSON scalar as stripped text; None for missing or empty."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    return str(value).strip() or None
