"""The promotional window in IST (docs/provider-api.md, "Promotional hours")."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest

from pipeline.errors import InputError
from pipeline.sms.window import DEFAULT_WINDOW, IST, Window, system_clock

WINDOW = Window.parse(DEFAULT_WINDOW)
OFFSET = timedelta(hours=5, minutes=30)


def ist(*args: int) -> datetime:
    return datetime(*args, tzinfo=IST)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_ist_is_asia_kolkata_at_plus_0530_all_year():
    assert IST.key == "Asia/Kolkata"
    for month in range(1, 13):  # no daylight saving: the offset never moves
        assert ist(2026, month, 15, 12).utcoffset() == OFFSET
        assert ist(2026, month, 15, 12).dst() == timedelta(0)


def test_default_window_is_10_to_21():
    assert DEFAULT_WINDOW == "10:00-21:00"
    assert WINDOW == Window(time(10, 0), time(21, 0))
    assert WINDOW.describe() == "10:00\u201321:00 IST"


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (ist(2026, 3, 2, 9, 59, 59), False),
        (ist(2026, 3, 2, 9, 59, 59, 999999), False),
        (ist(2026, 3, 2, 10, 0, 0), True),
        (ist(2026, 3, 2, 20, 59, 59), True),
        (ist(2026, 3, 2, 20, 59, 59, 999999), True),
        (ist(2026, 3, 2, 21, 0, 0), False),
        (ist(2026, 3, 2, 0, 0, 0), False),
        (ist(2026, 3, 2, 23, 59, 59), False),
        # the same instants in UTC (IST = UTC + 05:30)
        (utc(2026, 3, 2, 4, 29, 59), False),
        (utc(2026, 3, 2, 4, 30, 0), True),
        (utc(2026, 3, 2, 15, 29, 59), True),
        (utc(2026, 3, 2, 15, 30, 0), False),
        # 20:00 UTC on the 1st is 01:30 IST on the 2nd; 18:30 UTC is IST midnight
        (utc(2026, 3, 1, 20, 0, 0), False),
        (utc(2026, 3, 1, 18, 29, 59), False),
        # another fixed offset: 06:00 at UTC+1 is 10:30 IST
        (datetime(2026, 3, 2, 6, 0, tzinfo=timezone(timedelta(hours=1))), True),
        (datetime(2026, 3, 2, 5, 29, 59, tzinfo=timezone(timedelta(hours=1))), False),
    ],
)
def test_is_open_boundaries(when, expected):
    assert WINDOW.is_open(when) is expected


def test_naive_datetimes_are_refused():
    naive = datetime(2026, 3, 2, 12, 0)
    for method in (WINDOW.is_open, WINDOW.next_opening, WINDOW.closing):
        with pytest.raises(ValueError, match=r"^naive datetime 2026-03-02T12:00:00: pass an aware"):
            method(naive)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (ist(2026, 3, 2, 3, 0), ist(2026, 3, 2, 10, 0)),  # before the opening: same day
        (ist(2026, 3, 2, 9, 59, 59), ist(2026, 3, 2, 10, 0)),
        (ist(2026, 3, 2, 10, 0), ist(2026, 3, 3, 10, 0)),  # open now: the next day's
        (ist(2026, 3, 2, 15, 0), ist(2026, 3, 3, 10, 0)),
        (ist(2026, 3, 2, 21, 0), ist(2026, 3, 3, 10, 0)),  # just closed: the next day
        (ist(2026, 3, 2, 23, 59, 59), ist(2026, 3, 3, 10, 0)),
        (ist(2026, 2, 28, 22, 0), ist(2026, 3, 1, 10, 0)),  # month end
        (ist(2026, 12, 31, 21, 30), ist(2027, 1, 1, 10, 0)),  # year end
        (ist(2028, 2, 28, 21, 0), ist(2028, 2, 29, 10, 0)),  # leap day
        (utc(2026, 3, 1, 21, 30), ist(2026, 3, 2, 10, 0)),  # 03:00 IST on the 2nd
        (utc(2026, 3, 2, 15, 30), ist(2026, 3, 3, 10, 0)),  # 21:00 IST
        (utc(2026, 3, 2, 4, 29, 59), ist(2026, 3, 2, 10, 0)),
    ],
)
def test_next_opening(when, expected):
    opening = WINDOW.next_opening(when)
    assert opening == expected
    assert opening.tzinfo is IST
    assert opening > when
    assert WINDOW.is_open(opening)


def test_next_opening_is_a_fixed_offset_from_utc():
    opening = WINDOW.next_opening(utc(2026, 3, 2, 16, 0))
    assert opening.astimezone(UTC) == utc(2026, 3, 3, 4, 30)
    assert opening.isoformat() == "2026-03-03T10:00:00+05:30"


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (ist(2026, 3, 2, 10, 0), ist(2026, 3, 2, 21, 0)),
        (ist(2026, 3, 2, 20, 59, 59), ist(2026, 3, 2, 21, 0)),
        (utc(2026, 3, 2, 4, 30), ist(2026, 3, 2, 21, 0)),
        # closed: the close of the window that opens next
        (ist(2026, 3, 2, 3, 0), ist(2026, 3, 2, 21, 0)),
        (ist(2026, 3, 2, 21, 0), ist(2026, 3, 3, 21, 0)),
        (ist(2026, 12, 31, 22, 0), ist(2027, 1, 1, 21, 0)),
    ],
)
def test_closing(when, expected):
    closing = WINDOW.closing(when)
    assert closing == expected
    assert closing.tzinfo is IST


def test_closing_in_utc():
    assert WINDOW.closing(utc(2026, 3, 2, 12, 0)).astimezone(UTC) == utc(2026, 3, 2, 15, 30)


@pytest.mark.parametrize(
    ("text", "opens", "closes"),
    [
        ("10:00-21:00", time(10), time(21)),
        ("9:00-21:00", time(9), time(21)),
        ("09:30-20:45", time(9, 30), time(20, 45)),
        ("10-21", time(10), time(21)),
        (" 10:00 - 21:00 ", time(10), time(21)),
        ("10:00\u201321:00", time(10), time(21)),  # the en dash describe() prints
        ("00:00-23:59", time(0), time(23, 59)),
    ],
)
def test_parse(text, opens, closes):
    window = Window.parse(text)
    assert (window.opens, window.closes) == (opens, closes)


def test_parse_round_trips_describe():
    window = Window.parse("9:05-20:30")
    assert window.describe() == "09:05\u201320:30 IST"
    assert Window.parse(window.describe().removesuffix(" IST")) == window


HINT = "give it as HH:MM-HH:MM in IST, e.g. --promo-window 10:00-21:00"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", f"--promo-window '' is not a time range; {HINT}"),
        ("10:00", f"--promo-window '10:00' is not a time range; {HINT}"),
        ("10am-9pm", f"--promo-window '10am-9pm' is not a time range; {HINT}"),
        ("10:0-21:00", f"--promo-window '10:0-21:00' is not a time range; {HINT}"),
        ("10.00-21.00", f"--promo-window '10.00-21.00' is not a time range; {HINT}"),
        ("१०-२१", f"--promo-window '१०-२१' is not a time range; {HINT}"),
        (
            "24:00-25:00",
            f"--promo-window '24:00-25:00': 24:00 is not a time of day (00:00 to 23:59); {HINT}",
        ),
        (
            "10:00-21:60",
            f"--promo-window '10:00-21:60': 21:60 is not a time of day (00:00 to 23:59); {HINT}",
        ),
        (
            "22:00-06:00",
            f"--promo-window '22:00-06:00': the window must open before it closes "
            f"on the same day (no overnight windows); {HINT}",
        ),
        (
            "10:00-10:00",
            f"--promo-window '10:00-10:00': the window must open before it closes "
            f"on the same day (no overnight windows); {HINT}",
        ),
    ],
)
def test_parse_errors(text, message):
    with pytest.raises(InputError) as caught:
        Window.parse(text)
    assert str(caught.value) == message


def test_direct_construction_checks_order_and_naive_times():
    with pytest.raises(ValueError, match=r"^the window 21:00-10:00 must open before it closes$"):
        Window(time(21), time(10))
    with pytest.raises(ValueError, match="IST wall-clock times"):
        Window(time(10, tzinfo=UTC), time(21))


def test_system_clock_is_aware_utc_now():
    before = datetime.now(UTC)
    now = system_clock()
    after = datetime.now(UTC)
    assert now.tzinfo is UTC
    assert before <= now <= after


def test_injected_clock_drives_the_decision():
    # What a caller does with a Clock: no freezegun needed.
    clocks = [lambda: utc(2026, 3, 2, 4, 29, 59), lambda: utc(2026, 3, 2, 4, 30)]
    assert [WINDOW.is_open(clock()) for clock in clocks] == [False, True]


def test_ist_arithmetic_across_a_year_has_no_dst_jumps():
    # Every day of 2026: the opening is 04:30 UTC and the window lasts exactly 11 hours.
    when = utc(2026, 1, 1, 0, 0)
    for _ in range(365):
        opening = WINDOW.next_opening(when)
        assert (opening.astimezone(UTC).hour, opening.astimezone(UTC).minute) == (4, 30)
        assert WINDOW.closing(opening) - opening == timedelta(hours=11)
        when = opening
    assert when == ist(2026, 12, 31, 10, 0)
