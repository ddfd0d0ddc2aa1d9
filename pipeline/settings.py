"""Where smsbatch keeps its memory, and the environment variables that move it.

The journal (what was sent, per provider account) and the sandbox's outbox live in the user's
state directory, not under the current folder: the promise "never twice" must hold whatever
folder a command runs from and wherever the sheet has moved (docs/journal.md). Every default
is computed when it is asked for, never at import time, so a test or a user can point
SMSBATCH_STATE_DIR elsewhere at any moment.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

STATE_DIR_ENV = "SMSBATCH_STATE_DIR"  # the whole state directory
JOURNAL_ENV = "SMSBATCH_JOURNAL"  # the journal file alone
OUTBOX_ENV = "SMSBATCH_OUTBOX"  # the sandbox's outbox file alone
REPEAT_WINDOW_ENV = "SMSBATCH_REPEAT_WINDOW"

DEFAULT_REPEAT_WINDOW = timedelta(days=7)
# Messages per bulk_json request: Textlocal asks for no more than 500 (docs/provider-api.md).
BULK_LIMIT = 500
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"(\d{1,6})([smhdw])")


def state_dir() -> Path:
    """The user's smsbatch state directory: $SMSBATCH_STATE_DIR, else the platform's
    (~/.local/state/smsbatch on Linux, ~/Library/Application Support/smsbatch on macOS)."""
    given = os.environ.get(STATE_DIR_ENV, "").strip()
    if given:
        return Path(given).expanduser()
    import platformdirs

    return Path(platformdirs.user_state_dir("smsbatch", appauthor=False))


def default_journal() -> Path:
    """The journal every command uses unless told otherwise: $SMSBATCH_JOURNAL, else
    `<state dir>/journal.sqlite`."""
    given = os.environ.get(JOURNAL_ENV, "").strip()
    return Path(given).expanduser() if given else state_dir() / "journal.sqlite"


def default_outbox() -> Path:
    """The built-in sandbox's outbox: $SMSBATCH_OUTBOX, else `<state dir>/sandbox/outbox.sqlite`.

    One per user, like the journal: the sandbox is one imitation account wherever it is
    started from, so rehearsals from two folders see each other's messages.
    """
    given = os.environ.get(OUTBOX_ENV, "").strip()
    return Path(given).expanduser() if given else state_dir() / "sandbox" / "outbox.sqlite"


def locks_dir() -> Path:
    """Where the workbook locks live (one small file per results workbook being written)."""
    return state_dir() / "locks"


def parse_duration(
    text: str, option: str, *, allow_zero: bool = False, noun: str = "a duration"
) -> timedelta:
    """A duration like `90m`, `12h`, `7d` or `2w` (and `0` when `allow_zero`) for `option`."""
    cleaned = text.strip().lower()
    if allow_zero and cleaned in ("0", "off"):
        return timedelta(0)
    match = _DURATION.fullmatch(cleaned)
    if match is None or int(match.group(1)) < 1:
        from pipeline.errors import InputError

        zero = ", or 0 to switch it off" if allow_zero else ""
        raise InputError(
            f"{option} {text!r} is not {noun}: give a whole number of at "
            "least 1 and a unit, s (seconds), m (minutes), h (hours), d (days) or "
            f"w (weeks), e.g. {'7d' if allow_zero else '30d'}{zero}"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def default_repeat_window() -> timedelta:
    """The repeat window: $SMSBATCH_REPEAT_WINDOW, else 7 days."""
    given = os.environ.get(REPEAT_WINDOW_ENV, "").strip()
    if not given:
        return DEFAULT_REPEAT_WINDOW
    return parse_duration(given, REPEAT_WINDOW_ENV, allow_zero=True)
