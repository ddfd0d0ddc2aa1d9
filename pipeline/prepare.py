"""Prepare: every input row → number, message, parts, credits and a status, before any sending.

Statuses are decided in this order, the first that applies wins (contract §4–§6, issue 5):
`invalid_number` (can never be sent) → `duplicate` (the first row with a number is the one
sent) → `missing_field` (an empty cell the template needs) → `opted_out` (on a suppression
list) → `rejected` (longer than the provider's maximum) → `template_mismatch` (fits no
registered DLT template) → `ready`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from pipeline import encoding, phones, schema
from pipeline.compliance import Rules, template_warnings
from pipeline.results import RESULT_COLUMNS
from pipeline.sheet import Sheet
from pipeline.template import Template

MAX_PARTS = 5  # 765 GSM-7 characters or 335 Unicode: the provider's maximum (§7)


@dataclass
class Prepared:
    """A validated, merged sheet: one results row per input row, before any sending."""

    sheet: Sheet
    template: Template
    results: pd.DataFrame  # index = source_row; columns = RESULT_COLUMNS without source_row
    rules: Rules = field(default_factory=Rules)
    warnings: list[str] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now().astimezone())

    @property
    def ready(self) -> pd.DataFrame:
        """The rows that would be sent."""
        return self.results[self.results["status"] == "ready"]

    def credits(self, rows: pd.DataFrame | None = None) -> int:
        """Credits the given rows (default: every ready row) cost: one per part per number."""
        rows = self.ready if rows is None else rows
        return int(rows["segments"].sum())


def prepare(sheet: Sheet, template: Template, rules: Rules | None = None, *,
            checking: bool = False, template_source: str = "template") -> Prepared:
    """Normalise numbers, merge and measure every message, and give each row its status."""
    rules = rules or Rules()
    if rules.dlt is not None:
        # One clear error for a template that cannot fit, not one failure per row.
        rules.dlt.check_template(template, source=template_source)
    frame = sheet.frame
    index = frame.index
    n = len(frame)

    e164 = phones.normalise_many(frame[sheet.phone_column])
    normalised = pd.DataFrame({"phone_e164": e164}, index=index, dtype=object)
    invalid = set(schema.invalid_phone_rows(normalised))

    columns = {name: frame[name].tolist() for name in template.columns}
    messages, missing = template.render(columns, n)
    if rules.gsm_only:
        messages = [None if m is None else encoding.to_gsm(m) for m in messages]
    encodings, segments = encoding.analyse(messages)

    status: list[str] = ["ready"] * n
    detail: list[str | None] = [None] * n
    first_row: dict[str, int] = {}
    raw_phones = frame[sheet.phone_column].tolist()
    opted_out = rules.suppression.numbers if rules.suppression is not None else frozenset()
    for i, row in enumerate(index):
        if row in invalid:
            status[i] = "invalid_number"
            detail[i] = phones.explain(raw_phones[i])
            continue
        number = e164[i]
        first = first_row.setdefault(number, row)
        if first != row:
            status[i] = "duplicate"
            detail[i] = f"same number as row {first}"
        elif missing[i] is not None:
            status[i] = "missing_field"
            detail[i] = f"{missing[i]} is empty"
        elif number in opted_out:
            status[i] = "opted_out"
            detail[i] = f"on the opt-out list ({', '.join(rules.suppress_names)})"
        elif segments[i] > MAX_PARTS:
            # The provider would truncate or refuse it; say so before a credit is spent.
            status[i] = "rejected"
            detail[i] = f"not sent: {encoding.length_problem(messages[i])}"

    dlt_ids: list[str | None] = [None] * n
    if rules.dlt is not None:
        ready = [i for i in range(n) if status[i] == "ready"]
        ids, reasons = rules.dlt.match_many([messages[i] for i in ready])
        for i, template_id, reason in zip(ready, ids, reasons, strict=True):
            if template_id is None:
                status[i], detail[i] = "template_mismatch", reason
            else:
                dlt_ids[i] = template_id

    credits: list[int | None] = [None] * n
    for i in range(n):
        if status[i] == "ready":
            credits[i] = segments[i]
            if encodings[i] == "UCS-2":
                note = encoding.describe_unicode(messages[i])
                detail[i] = f"still {note}, after --gsm-only" if rules.gsm_only else note

    results = pd.DataFrame(
        {
            "phone_e164": e164,
            "message": messages,
            "encoding": encodings,
            "segments": segments,
            "status": status,
            "detail": detail,
            "provider_message_id": None,
            "batch_id": None,
            "sent_at": None,
            "delivery_status": None,
            "credits": credits,
            "dlt_template_id": dlt_ids,
            "delivered_at": None,
        },
        index=index,
        dtype=object,
    )
    assert list(results.columns) == list(RESULT_COLUMNS[1:])
    warnings = template_warnings(template.text, rules, checking=checking)
    return Prepared(sheet=sheet, template=template, results=results, rules=rules,
                    warnings=warnings)
