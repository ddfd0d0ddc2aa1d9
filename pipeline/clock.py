"""Time: India Standard Time and the one injectable clock every timestamp comes from.

Stdlib only (the kernel). A `Clock` is any function returning an aware datetime ("now");
library functions take one (default `system_clock`) so tests and notebooks can fix time
without patching. IST is the IANA zone: India has kept UTC+05:30 with no daylight saving
since 1945, and the system database (or the `tzdata` package) says so authoritatively.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

__all__ = ["IST", "Clock", "iso_now", "system_clock"]

IST = ZoneInfo("Asia/Kolkata")

Clock = Callable[[], datetime]  # returns an aware datetime ("now")


def system_clock() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def iso_now(clock: Clock = system_clock) -> str:
    """`clock()` as ISO 8601 to the second, in the machine's local offset (for journals and
    summaries people read on this machine)."""
    return clock().astimezone().isoformat(timespec="seconds")
