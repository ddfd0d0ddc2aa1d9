"""The India rules the sandbox enforces as Textlocal does: promotional hours, schedules, DLT
templates and opt-outs, so a rehearsal fails where a real send would. The facts are in
docs/provider-api.md ("Promotional hours", "DLT templates and headers", "DND and opt-outs").

- Promotional hours: a 6-digit (promotional) header may only send inside the window (192), or
  schedule a time inside it (191); 6-letter headers are never windowed
  (docs/provider-api.md, "DLT templates and headers").
- Schedules: `schedule_time` is unix seconds (GMT); not a whole number >= 0 is 8, before the
  sandbox's clock is 9 (docs/provider-api.md, "The /send/ command").
- DLT templates: when templates are configured, a text must match one of them exactly, each
  `{#var#}` standing for up to 30 characters, else 80
  (docs/provider-api.md, "DLT templates and headers"). An empty list means "none
  registered": every text is refused, as with a real account.
- Opt-outs: with `optouts=true` in a request, numbers on the configured list are skipped and
  not charged (docs/provider-api.md, "DND and opt-outs"). Textlocal's code for a skipped
  number is undocumented; the sandbox says 94, its own choice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.errors import InputError

if TYPE_CHECKING:
    from pipeline.sms.window import Window

# The facts: docs/provider-api.md ("Indian mobile numbers", "DLT templates and headers").
MOBILE = re.compile(r"91[6-9]\d{9}")  # Indian mobile in wire form
PROMOTIONAL = re.compile(r"\d{6}")  # a promotional DLT header is 6 digits
DLT_VARIABLE = "{#var#}"  # case-sensitive
MAX_VARIABLE = 30  # characters per variable, "as mandated by operators"
LAST_SECOND = 253_402_300_799  # 9999-12-31 23:59:59 UTC: later schedule times are invalid (8)

INVALID_SCHEDULE, PAST_SCHEDULE, INVALID_TEMPLATE = 8, 9, 80
OPTED_OUT = 94  # the sandbox's own code: Textlocal documents none for a skipped opt-out
OUTSIDE_WINDOW, CLOSED_NOW = 191, 192

MESSAGES = {
    INVALID_SCHEDULE: "Invalid schedule date",
    PAST_SCHEDULE: "Schedule date is in the past",
    INVALID_TEMPLATE: "Invalid template",  # corroborated code; the exact wording unverified
    OPTED_OUT: "Number is on the opt-out list",
    OUTSIDE_WINDOW: "Schedule time is outside that allowed",
    CLOSED_NOW: "You cannot send message at this time",
}


class Template(Protocol):
    """A registered DLT content template (validate.dlt.matcher.DltTemplate has this shape)."""

    @property
    def id(self) -> Any: ...

    @property
    def text(self) -> str: ...


class Rules:
    """The rules in force; each check answers an error code or None (docs/provider-api.md,
    "Error and warning codes")."""

    def __init__(
        self,
        promo_window: Window | None = None,
        dlt_templates: Sequence[Template] | None = None,
        optouts: Iterable[str] | None = None,
    ) -> None:
        self.promo_window = promo_window
        self.templates = list(dlt_templates) if dlt_templates is not None else None
        self._pattern = _compile(self.templates) if self.templates is not None else None
        self.optouts = frozenset(_wire(n) for n in optouts) if optouts is not None else frozenset()

    def timing(
        self, sender: str, schedule_time: object, now: float
    ) -> tuple[int | None, int | None]:
        """(error code, accepted schedule time): may `sender` send now, or at `schedule_time`?"""
        window = self.promo_window if PROMOTIONAL.fullmatch(sender) else None
        if schedule_time is None or schedule_time == "":
            if window is not None and not window.is_open(_utc(now)):
                return CLOSED_NOW, None
            return None, None
        when = _unix(schedule_time)
        if when is None:
            return INVALID_SCHEDULE, None
        if when < now:
            return PAST_SCHEDULE, None
        if window is not None and not window.is_open(_utc(when)):
            return OUTSIDE_WINDOW, None
        return None, when

    def template_error(self, text: str) -> int | None:
        """80 when templates are configured and `text` matches none of them."""
        if self._pattern is None or self._pattern.fullmatch(text):
            return None
        return INVALID_TEMPLATE

    def opted_out(self, number: str) -> bool:
        """Whether `number` (wire form) is on the opt-out list."""
        return number in self.optouts

    def template_list(self) -> list[dict[str, Any]]:
        """The templates as `/get_templates/` lists them (a corroborated shape:
        docs/provider-api.md, "Templates and sender names")."""
        return [
            {"id": t.id, "title": str(t.id), "body": t.text, "senderName": "", "isMyDND": ""}
            for t in self.templates or []
        ]


def _compile(templates: Sequence[Template]) -> re.Pattern[str]:
    """One pattern matching any template in full: fixed text exact, each variable <= 30 chars."""
    variable = f".{{0,{MAX_VARIABLE}}}"
    branches = [
        variable.join(re.escape(fixed) for fixed in str(t.text).split(DLT_VARIABLE))
        for t in templates
    ]
    # No templates: a pattern that matches nothing, so every text is refused.
    alternatives = "|".join(f"(?:{b})" for b in branches) or r"(?!)"
    return re.compile(alternatives, re.DOTALL)  # DOTALL: a variable may hold a newline


def _wire(number: str) -> str:
    """An opt-out number as the wire form the requests use ('919876543210')."""
    text = str(number).strip().removeprefix("+")
    if not MOBILE.fullmatch(text):
        raise InputError(
            f"sandbox opt-out number {number!r} is not an Indian mobile number: write each as "
            "91XXXXXXXXXX or +91XXXXXXXXXX"
        )
    return text


def _unix(value: object) -> int | None:
    """A schedule time as whole unix seconds (JSON int or digit text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        when = value
    elif isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 15:
        when = int(value.strip())
    else:
        return None
    return when if 0 <= when <= LAST_SECOND else None


def _utc(unix_time: float) -> datetime:
    """An aware datetime for a unix time (the window converts to IST itself)."""
    return datetime.fromtimestamp(unix_time, UTC)
