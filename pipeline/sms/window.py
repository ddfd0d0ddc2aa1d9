"""The hours in which promotional SMS may go out, in Indian Standard Time.

docs/provider-api.md, "Promotional hours": Textlocal's FAQ says 9 AM-9 PM, but since the TCCCPR
amendment of 2025 operators reject promotional traffic outside 10:00-21:00 IST (DLT code 651,
Jio from 13 Oct 2025, Vi 17 Oct 2025). The default is the stricter 10:00-21:00; --promo-window
changes it.

Choices where the sources are silent:
- the window is [opens, closes): 21:00:00 is already closed, 10:00:00 is open;
- a window opens and closes on the same day (no overnight windows: TRAI's windows never are);
- `--promo-window` takes H[:MM]-H[:MM] (24-hour, "10:00-21:00", "9:30-21:00", "10-21"), with
  "-" or an en dash "–" between, so describe()'s own text parses too;
- time is always passed in (an aware datetime, or a Clock to call): tests need no freezegun.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from pipeline.clock import IST, Clock, system_clock
from pipeline.errors import InputError

__all__ = ["DEFAULT_WINDOW", "IST", "Clock", "Window", "system_clock"]

DEFAULT_WINDOW = "10:00-21:00"

_FORM = re.compile(r"\s*([0-9]{1,2})(?::([0-9]{2}))?\s*[-\u2013]\s*([0-9]{1,2})(?::([0-9]{2}))?\s*")
_EN_DASH = "\u2013"
_HINT = "give it as HH:MM-HH:MM in IST, e.g. --promo-window 10:00-21:00"


def _ist(when: datetime) -> datetime:
    """`when` as IST wall-clock time; a naive datetime is refused (its zone is a guess)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when.isoformat()}: pass an aware datetime (UTC or IST)")
    return when.astimezone(IST)


@dataclass(frozen=True)
class Window:
    """Daily hours [opens, closes) in IST wall-clock time; opens < closes."""

    opens: time
    closes: time

    def __post_init__(self) -> None:
        if self.opens.tzinfo is not None or self.closes.tzinfo is not None:
            raise ValueError("opens and closes are IST wall-clock times: pass naive times")
        if not self.opens < self.closes:
            raise ValueError(f"the window {self._text()} must open before it closes")

    @classmethod
    def parse(cls, text: str) -> Window:
        """Window from "10:00-21:00" (also "9:30-21:00", "10-21"); InputError if malformed."""
        found = _FORM.fullmatch(text)
        if found is None:
            raise InputError(f"--promo-window {text.strip()!r} is not a time range; {_HINT}")
        hour1, minute1, hour2, minute2 = (int(part or 0) for part in found.groups())
        for hour, minute in ((hour1, minute1), (hour2, minute2)):
            if hour > 23 or minute > 59:
                raise InputError(
                    f"--promo-window {text.strip()!r}: {hour}:{minute:02d} is not a time of day "
                    f"(00:00 to 23:59); {_HINT}"
                )
        opens, closes = time(hour1, minute1), time(hour2, minute2)
        if not opens < closes:
            raise InputError(
                f"--promo-window {text.strip()!r}: the window must open before it closes on the "
                f"same day (no overnight windows); {_HINT}"
            )
        return cls(opens, closes)

    def is_open(self, when: datetime) -> bool:
        """Whether `when` (aware) falls in the window: opens <= IST time < closes."""
        local = _ist(when).time()
        return self.opens <= local < self.closes

    def next_opening(self, when: datetime) -> datetime:
        """The next moment the window opens, strictly after `when` (aware, IST).

        Before today's opening that is today's; from the opening on (open now, or closed for
        the day) it is tomorrow's: the current window's opening is already in the past.
        """
        local = _ist(when)
        day = local.date()
        if local.time() >= self.opens:
            day += timedelta(days=1)
        return self._at(day, self.opens)

    def closing(self, when: datetime) -> datetime:
        """When the window open at `when` closes (aware, IST); closed: the next window's close."""
        local = _ist(when)
        day = local.date()
        if local.time() >= self.closes:
            day += timedelta(days=1)
        return self._at(day, self.closes)

    def describe(self) -> str:
        """The window for people: "10:00–21:00 IST"."""
        return f"{self._text(_EN_DASH)} IST"

    def _text(self, dash: str = "-") -> str:
        return f"{self.opens:%H:%M}{dash}{self.closes:%H:%M}"

    @staticmethod
    def _at(day: date, wall: time) -> datetime:
        # IST has no DST, so a wall-clock time on a date is always one real moment.
        return datetime.combine(day, wall, tzinfo=IST)
