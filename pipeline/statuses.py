"""Statuses and columns: the vocabulary of the results workbook, defined once.

Stdlib only (the kernel). The meanings are in docs/contract.md ("Statuses", "The results
workbook"); the README's status table is kept in step with STATUSES by tests/test_docs.py.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """A row's status in the Results sheet."""

    READY = "ready"
    SENT = "sent"
    SCHEDULED = "scheduled"
    INVALID_NUMBER = "invalid_number"
    DUPLICATE = "duplicate"
    MISSING_FIELD = "missing_field"
    OPTED_OUT = "opted_out"
    TEMPLATE_MISMATCH = "template_mismatch"
    REJECTED = "rejected"
    ALREADY_SENT = "already_sent"
    FAILED = "failed"
    UNKNOWN = "unknown"


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
# The statuses of rows handed to the provider and accepted by it.
ACCEPTED: tuple[str, ...] = (Status.SENT.value, Status.SCHEDULED.value)
# Outcomes of one job that a rerun never sends again (resume).
FINAL: tuple[str, ...] = (Status.SENT.value, Status.SCHEDULED.value, Status.REJECTED.value)

RESULT_COLUMNS: tuple[str, ...] = (
    "source_row",
    "phone_e164",
    "message",
    "encoding",
    "segments",
    "status",
    "detail",
    "provider_message_id",
    "batch_id",
    "sent_at",
    "delivery_status",
    # Added after the contract's list, so its column positions stay as they were.
    "credits",
    "dlt_template_id",
    "delivered_at",
)
# Optional on reading: workbooks written before `delivered_at` existed still read (it comes
# back empty); write_results fills a missing one with empty cells.
OPTIONAL_COLUMNS: tuple[str, ...] = ("delivered_at",)
# What a send's outcome (or an earlier run's, on resume) fills in for a row.
OUTCOME_COLUMNS: list[str] = ["status", "detail", "provider_message_id", "batch_id", "sent_at"]

# Textlocal's delivery codes (docs/provider-api.md, "Delivery status codes") as our names.
DELIVERY_CODES: dict[str, str] = {
    "D": "delivered",
    "U": "undelivered",
    "P": "pending",
    "I": "invalid",
    "E": "expired",
    "?": "unknown",
}
DELIVERY_STATUSES: tuple[str, ...] = tuple(DELIVERY_CODES.values())
FINAL_DELIVERY = frozenset({"delivered", "undelivered", "invalid", "expired"})
