"""Resume and guard: lay the journal's earlier outcomes over a freshly prepared sheet.

Within one job (docs/contract.md, "Sending, journal and resume"): a rerun of the same `send`
sends only rows never accepted: `failed` rows and rows never tried. Rows already
`sent`/`scheduled` or `rejected` keep their earlier outcome; `unknown` rows keep theirs unless
the user asks to resend them (`--resend-unknown`).

Across jobs (docs/journal.md): a row whose exact text went to the same number through the same
account within the repeat window, from any other run (another file, folder or copy of the
sheet), is `already_sent` and not sent again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from pipeline.sending.journal import Entry, Prior, row_key
from pipeline.sms.window import IST
from pipeline.statuses import FINAL, OUTCOME_COLUMNS


@dataclass
class Resumed:
    """What the journal already knew about this job's rows."""

    skipped: Counter[str] = field(default_factory=Counter)  # status -> rows not sent again
    resending_unknown: int = 0  # unknown rows that --resend-unknown sends again
    retrying: int = 0  # rows that failed before and are sent again
    already_sent: int = 0  # rows another run sent within the repeat window

    @property
    def total_skipped(self) -> int:
        """Rows an earlier run already settled."""
        return sum(self.skipped.values())


def ready_keys(results: pd.DataFrame) -> dict[int, str]:
    """Row key of every `ready` row, by source_row."""
    ready = results[results["status"] == "ready"]
    return {
        row: row_key(number, message)
        for row, number, message in zip(
            ready.index, ready["phone_e164"], ready["message"], strict=True
        )
    }


def apply_journal(
    results: pd.DataFrame, entries: dict[str, Entry], *, resend_unknown: bool = False
) -> Resumed:
    """Give ready rows their earlier outcome where the journal has a final one (in place)."""
    resumed = Resumed()
    carried_rows: list[int] = []
    carried_values: list[list[str | None]] = []
    for row, key in ready_keys(results).items():
        entry = entries.get(key)
        if entry is None:
            continue
        if entry.status == "failed":
            resumed.retrying += 1
            continue
        if entry.status == "unknown" and resend_unknown:
            resumed.resending_unknown += 1
            continue
        if entry.status in FINAL or entry.status == "unknown":
            resumed.skipped[entry.status] += 1
            carried_rows.append(row)
            carried_values.append(
                [
                    entry.status,
                    entry.detail,
                    entry.provider_message_id,
                    entry.batch_id,
                    entry.sent_at,
                ]
            )
    if carried_rows:
        results.loc[carried_rows, OUTCOME_COLUMNS] = carried_values
    return resumed


def apply_prior_sends(
    results: pd.DataFrame, keys: dict[int, str], priors: dict[str, Prior], window: timedelta
) -> int:
    """Mark the rows of `keys` (ready_keys) that another run already sent `already_sent`
    (in place); how many."""
    rows: list[int] = []
    details: list[str] = []
    for row, key in keys.items():
        prior = priors.get(key)
        if prior is not None:
            rows.append(row)
            details.append(prior_detail(prior, window))
    if rows:
        results.loc[rows, "status"] = "already_sent"
        results.loc[rows, "detail"] = details
    return len(rows)


def prior_detail(prior: Prior, window: timedelta) -> str:
    """Why a row is `already_sent`: when, from which file, run and row; how to send anyway."""
    when = datetime.fromisoformat(prior.attempted_at).astimezone(IST)
    what = {
        "sent": "was sent",
        "scheduled": "was scheduled",
        "unknown": "may have gone (outcome unknown)",
        "sending": "was in flight",
    }[prior.status]
    return (
        f"the same text to this number {what} on {when:%Y-%m-%d %H:%M} IST from "
        f"{prior.input_name} (journal run {prior.run_id}, row {prior.source_row}), within "
        f"the {describe_window(window)} repeat window; to send it again on purpose, rerun "
        "with --repeat-window 0"
    )


def describe_window(window: timedelta) -> str:
    """A repeat window for people: `7-day`, `12-hour`, `90-minute`."""
    seconds = int(window.total_seconds())
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds % size == 0:
            return f"{seconds // size}-{unit}"
    return f"{seconds}-second"
