"""Prepare: every input row → number, message, parts, credits and a status, before any sending.

Statuses (docs/contract.md, "Statuses"; the last three from "India's rules" there) are
decided in this order, the first that applies wins:
`invalid_number` (can never be sent) → `duplicate` (the first row with a number is the one
sent) → `missing_field` (an empty cell the template needs) → `opted_out` (on a suppression
list) → `rejected` (longer than the provider's maximum) → `template_mismatch` (fits no
registered DLT template) → `ready`.
"""

from __future__ import annotations

from collections.abc import Callable
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

# 765 GSM-7 characters or 335 Unicode: the provider's maximum (docs/provider-api.md,
# "Message length, encoding and credits").
MAX_PARTS = 5


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


@dataclass
class _Rows:
    """What every status rule reads: the sheet's rows, numbers and merged messages, as arrays."""

    index: pd.Index
    raw_phones: list[Any]
    numbers: np.ndarray  # E.164 or None
    invalid: np.ndarray  # bool: not a sendable Indian mobile
    messages: list[str | None]
    missing: list[str | None]  # the first empty column a row's message needs
    segments: list[int | None]
    template: Template
    rules: Rules
    dlt_ids: np.ndarray  # filled by the DLT rule for the rows it matches


# A rule looks at the rows still open and returns those it claims, with their detail.
Rule = Callable[[_Rows, np.ndarray], tuple[np.ndarray, Any]]


def _invalid_number(rows: _Rows, open_: np.ndarray) -> tuple[np.ndarray, Any]:
    claimed = np.flatnonzero(open_ & rows.invalid)
    return claimed, _objects(_explain_each([rows.raw_phones[i] for i in claimed.tolist()]))


def _duplicate(rows: _Rows, open_: np.ndarray) -> tuple[np.ndarray, Any]:
    # The first row with a number is the one sent; rows claimed above do not count.
    candidates = np.flatnonzero(open_)
    codes, _ = pd.factorize(rows.numbers[candidates], use_na_sentinel=False)
    # factorize numbers the distinct values in order of first appearance, so a row is the
    # first with its number exactly when its code is higher than every code before it.
    seen = np.maximum.accumulate(codes)
    first = np.ones(len(codes), dtype=bool)
    first[1:] = codes[1:] > seen[:-1]
    first_rows = rows.index.to_numpy()[candidates[first]]  # by code
    repeats = ~first
    firsts = first_rows[codes[repeats]].tolist()
    return candidates[repeats], _objects([f"same number as row {r}" for r in firsts])


def _missing_field(rows: _Rows, open_: np.ndarray) -> tuple[np.ndarray, Any]:
    gaps = _objects(rows.missing)
    # numpy's stubs refuse None as an operand; an elementwise "is not None" is what is meant.
    claimed = np.flatnonzero(open_ & np.not_equal(gaps, None))  # type: ignore[call-overload]
    empty = {name: f"{name} is empty" for name in rows.template.columns}
    return claimed, _objects([empty[name] for name in gaps[claimed].tolist()])


def _opted_out(rows: _Rows, open_: np.ndarray) -> tuple[np.ndarray, Any]:
    suppression = rows.rules.suppression
    if suppression is None or not suppression.numbers:
        return np.empty(0, np.intp), None
    listed = pd.Series(rows.numbers, copy=False).isin(suppression.numbers).to_numpy()
    return (
        np.flatnonzero(open_ & listed),
        f"on the opt-out list ({', '.join(rows.rules.suppress_names)})",
    )


def _too_long(rows: _Rows, open_: np.ndarray) -> tuple[np.ndarray, Any]:
    # The provider would truncate or refuse it; say so before a credit is spent.
    long = [i for i, count in enumerate(rows.segments) if count is not None and count > MAX_PARTS]
    claimed = np.asarray(long, dtype=np.intp)[open_[long]] if long else np.empty(0, np.intp)
    # A row with a part count has a message.
    return claimed, _objects(
        [f"not sent: {encoding.length_problem(rows.messages[i] or '')}" for i in claimed.tolist()]
    )


def _template_mismatch(rows: _Rows, open_: np.ndarray) -> tuple[np.ndarray, Any]:
    if rows.rules.dlt is None:
        return np.empty(0, np.intp), None
    ready = np.flatnonzero(open_)
    ids, reasons = rows.rules.dlt.match_many([rows.messages[i] or "" for i in ready.tolist()])
    found = _objects(ids)
    matched = np.not_equal(found, None)  # type: ignore[call-overload]  # as above
    rows.dlt_ids[ready[matched]] = found[matched]
    return ready[~matched], _objects(reasons)[~matched]


# The order of the module docstring: the first rule that claims a row gives its status.
STATUS_RULES: tuple[tuple[str, Rule], ...] = (
    ("invalid_number", _invalid_number),
    ("duplicate", _duplicate),
    ("missing_field", _missing_field),
    ("opted_out", _opted_out),
    ("rejected", _too_long),
    ("template_mismatch", _template_mismatch),
)


def prepare(
    sheet: Sheet,
    template: Template,
    rules: Rules | None = None,
    *,
    checking: bool = False,
    template_source: str = "template",
) -> Prepared:
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

    # Whole-column steps (1M rows in well under a second): each rule claims, among the rows
    # still open, those it applies to.
    rows = _Rows(
        index=index,
        raw_phones=raw_phones,
        numbers=_objects(e164),
        invalid=invalid,
        messages=messages,
        missing=missing,
        segments=segments,
        template=template,
        rules=rules,
        dlt_ids=np.full(n, None, dtype=object),
    )
    status = np.full(n, "ready", dtype=object)
    detail = np.full(n, None, dtype=object)
    open_ = np.ones(n, dtype=bool)
    for name, rule in STATUS_RULES:
        claimed, why = rule(rows, open_)
        status[claimed] = name
        detail[claimed] = why
        open_[claimed] = False

    # Every row still open is ready: it costs its parts, and a Unicode one says why it is.
    parts = _objects(segments)
    credits = np.full(n, None, dtype=object)
    credits[open_] = parts[open_]
    unicode_rows = np.flatnonzero(open_ & (_objects(encodings) == encoding.UCS2))
    notes = encoding.describe_unicode_many([messages[i] or "" for i in unicode_rows.tolist()])
    if rules.gsm_only:
        notes = [f"still {note}, after --gsm-only" for note in notes]
    detail[unicode_rows] = _objects(notes)

    empty_column = np.full(n, None, dtype=object)
    results = pd.DataFrame(
        {
            "phone_e164": rows.numbers,
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
            "dlt_template_id": rows.dlt_ids,
            "delivered_at": empty_column.copy(),
        },
        index=index,
        dtype=object,
        copy=False,  # the arrays are ours: no second copy of 13 columns x n rows
    )
    assert list(results.columns) == list(RESULT_COLUMNS[1:])
    warnings = template_warnings(template.text, rules, checking=checking)
    return Prepared(sheet=sheet, template=template, results=results, rules=rules, warnings=warnings)


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
