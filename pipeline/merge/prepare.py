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
from typing import Any

import numpy as np
import pandas as pd

from pipeline.merge.template import Template
from pipeline.read.sheet import Sheet
from pipeline.sms import gsm as encoding
from pipeline.sms import phones
from pipeline.statuses import RESULT_COLUMNS
from pipeline.validate import schema
from pipeline.validate.rules import Rules, template_warnings

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

    raw_phones = frame[sheet.phone_column].tolist()
    e164 = phones.normalise_many(raw_phones)
    # Built as pandas' string dtype (None -> missing), so the model's coercion is a no-op.
    normalised = pd.DataFrame({"phone_e164": e164}, index=index, dtype="str")
    invalid = index.isin(schema.invalid_phone_rows(normalised))

    columns = {name: frame[name].tolist() for name in template.columns}
    messages, missing = template.render(columns, n)
    if rules.gsm_only:
        messages = [None if m is None else encoding.to_gsm(m) for m in messages]
    encodings, segments = encoding.analyse(messages)

    # Whole-column steps (1M rows in well under a second): each status takes the rows still
    # `open` that it applies to, in the order of the module docstring.
    numbers = _objects(e164)
    status = np.full(n, "ready", dtype=object)
    detail = np.full(n, None, dtype=object)
    rows = np.flatnonzero(invalid)
    status[rows] = "invalid_number"
    detail[rows] = _objects(_explain_each([raw_phones[i] for i in rows.tolist()]))
    open_ = ~invalid

    # The first row with a number is the one sent; rows rejected above do not count.
    candidates = np.flatnonzero(open_)
    codes, _ = pd.factorize(numbers[candidates], use_na_sentinel=False)
    # factorize numbers the distinct values in order of first appearance, so a row is the
    # first with its number exactly when its code is higher than every code before it.
    seen = np.maximum.accumulate(codes)
    first = np.ones(len(codes), dtype=bool)
    first[1:] = codes[1:] > seen[:-1]
    first_rows = index.to_numpy()[candidates[first]]  # by code
    repeats = ~first
    rows = candidates[repeats]
    status[rows] = "duplicate"
    firsts = first_rows[codes[repeats]].tolist()
    detail[rows] = _objects([f"same number as row {r}" for r in firsts])
    open_[rows] = False

    gaps = _objects(missing)
    rows = np.flatnonzero(open_ & np.not_equal(gaps, None))
    status[rows] = "missing_field"
    empty = {name: f"{name} is empty" for name in template.columns}
    detail[rows] = _objects([empty[name] for name in gaps[rows].tolist()])
    open_[rows] = False

    opted_out = rules.suppression.numbers if rules.suppression is not None else frozenset()
    if opted_out:
        rows = np.flatnonzero(open_ & pd.Series(numbers, copy=False).isin(opted_out).to_numpy())
        status[rows] = "opted_out"
        detail[rows] = f"on the opt-out list ({', '.join(rules.suppress_names)})"
        open_[rows] = False

    # The provider would truncate or refuse it; say so before a credit is spent.
    parts = _objects(segments)
    long = [i for i, count in enumerate(segments) if count is not None and count > MAX_PARTS]
    rows = np.asarray(long, dtype=np.intp)[open_[long]] if long else np.empty(0, np.intp)
    status[rows] = "rejected"
    detail[rows] = _objects([f"not sent: {encoding.length_problem(messages[i])}"
                             for i in rows.tolist()])
    open_[rows] = False

    dlt_ids = np.full(n, None, dtype=object)
    if rules.dlt is not None:
        ready = np.flatnonzero(open_)
        ids, reasons = rules.dlt.match_many([messages[i] for i in ready.tolist()])
        found = _objects(ids)
        matched = np.not_equal(found, None)
        dlt_ids[ready[matched]] = found[matched]
        rows = ready[~matched]
        status[rows] = "template_mismatch"
        detail[rows] = _objects(reasons)[~matched]
        open_[rows] = False

    # Every row still open is ready: it costs its parts, and a Unicode one says why it is.
    credits = np.full(n, None, dtype=object)
    credits[open_] = parts[open_]
    rows = np.flatnonzero(open_ & (_objects(encodings) == encoding.UCS2))
    notes = encoding.describe_unicode_many([messages[i] for i in rows.tolist()])
    if rules.gsm_only:
        notes = [f"still {note}, after --gsm-only" for note in notes]
    detail[rows] = _objects(notes)

    empty_column = np.full(n, None, dtype=object)
    results = pd.DataFrame(
        {
            "phone_e164": numbers,
            "message": _objects(messages),
            "encoding": _objects(encodings),
            "segments": parts,
            "status": status,
            "detail": detail,
            "provider_message_id": empty_column,
            "batch_id": empty_column.copy(),
            "sent_at": empty_column.copy(),
            "delivery_status": empty_column.copy(),
            "credits": credits,
            "dlt_template_id": dlt_ids,
            "delivered_at": empty_column.copy(),
        },
        index=index,
        dtype=object,
        copy=False,  # the arrays are ours: no second copy of 13 columns x n rows
    )
    assert list(results.columns) == list(RESULT_COLUMNS[1:])
    warnings = template_warnings(template.text, rules, checking=checking)
    return Prepared(sheet=sheet, template=template, results=results, rules=rules,
                    warnings=warnings)


def _objects(values: list[Any]) -> np.ndarray:
    """A list as a 1-D object array, element by element: never nested, and never through a
    fixed-width string array (which would take 4 bytes x the longest text x every row)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _explain_each(values: list[object]) -> list[str]:
    """phones.explain() for each rejected cell; a value that repeats is explained once."""
    reasons: dict[tuple[type, object], str] = {}
    out = []
    for value in values:
        try:
            # The type is part of the key: 1, 1.0 and True are equal but read differently.
            key = (type(value), value)
            reason = reasons.get(key)
            if reason is None:
                reason = reasons[key] = phones.explain(value)
        except TypeError:  # an unhashable cell
            reason = phones.explain(value)
        out.append(reason)
    return out
