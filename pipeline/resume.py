"""Resume: lay the journal's earlier outcomes over a freshly prepared sheet (contract §7).

A rerun of the same `send` sends only rows never accepted: `failed` rows and rows never tried.
Rows already `sent`/`scheduled` or `rejected` keep their earlier outcome; `unknown` rows keep
theirs unless the user asks to resend them (`--resend-unknown`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from pipeline.journal import FINAL, Entry, row_key

# The columns an earlier outcome fills in.
CARRIED = ["status", "detail", "provider_message_id", "batch_id", "sent_at"]


@dataclass
class Resumed:
    """What the journal already knew about this job's rows."""

    skipped: Counter = field(default_factory=Counter)  # status -> rows not sent again
    resending_unknown: int = 0  # unknown rows that --resend-unknown sends again
    retrying: int = 0  # rows that failed before and are sent again

    @property
    def total_skipped(self) -> int:
        """Rows an earlier run already settled."""
        return sum(self.skipped.values())


def ready_keys(results: pd.DataFrame) -> dict[int, str]:
    """Row key of every `ready` row, by source_row."""
    ready = results[results["status"] == "ready"]
    return {row: row_key(number, message) for row, number, message in
            zip(ready.index, ready["phone_e164"], ready["message"], strict=True)}


def apply_journal(results: pd.DataFrame, entries: dict[str, Entry], *,
                  resend_unknown: bool = False) -> Resumed:
    """Give ready rows their earlier outcome where the journal has a final one (in place)."""
    resumed = Resumed()
    carried_rows: list[int] = []
    carried_values: list[list] = []
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
            carried_values.append([entry.status, entry.detail, entry.provider_message_id,
                                   entry.batch_id, entry.sent_at])
    if carried_rows:
        results.loc[carried_rows, CARRIED] = carried_values
    return resumed
