"""prepare(): every row's number, message, parts, credits and status, in the documented order."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.merge.prepare import prepare
from pipeline.merge.template import parse_template
from pipeline.read.sheet import Sheet
from pipeline.statuses import RESULT_COLUMNS
from pipeline.validate.dlt.matcher import DltMatcher, DltTemplate
from pipeline.validate.rules import Rules
from pipeline.validate.suppress import Suppression

HINDI = "प्रिया"


def sheet(rows: list[tuple[object, object, object]], start: int = 2) -> Sheet:
    frame = pd.DataFrame(rows, columns=["Name", "Mobile", "Amount"], dtype=object)
    frame.index = pd.Index(range(start, start + len(rows)), name="source_row")
    return Sheet(
        path=Path("people.csv"), name=None, frame=frame, phone_column="Mobile", sha256="0" * 64
    )


def run(rows, text="Hi {Name}, Rs {Amount}", **rules):
    loaded = sheet(rows)
    return prepare(loaded, parse_template(text, list(loaded.frame.columns)), Rules(**rules))


def table(prepared) -> list[tuple]:
    res = prepared.results
    return list(zip(res.index, res["status"], res["detail"], res["credits"], strict=True))


def test_statuses_in_order_with_their_details():
    prepared = run(
        [
            ("Asha", "9876543210", 1499.0),  # 2 ready
            ("Ravi", "n/a", 10),  # 3 invalid
            ("Meera", 9876543210, 5),  # 4 duplicate of 2 (a number cell)
            ("Kabir", "9876543211", None),  # 5 missing Amount
            ("Arjun", "+91 98765 43211", 7),  # 6 duplicate of 5, although 5 is not sent
            ("Rohan", "n/a", 8),  # 7 invalid again: never "first" of anything
            ("x" * 800, "9876543212", 9),  # 8 too long
            (HINDI, "9876543213", 1),  # 9 ready, Unicode
            ("Ananya", "022 2345 6789", 2),  # 10 landline
        ]
    )
    assert table(prepared) == [
        (2, "ready", None, 1),
        (3, "invalid_number", "not a number (contains letters)", None),
        (4, "duplicate", "same number as row 2", None),
        (5, "missing_field", "Amount is empty", None),
        (6, "duplicate", "same number as row 5", None),
        (7, "invalid_number", "not a number (contains letters)", None),
        (8, "rejected", "not sent: too long: 809 GSM-7 characters (max 765, 5 parts)", None),
        (
            9,
            "ready",
            "Unicode because of प U+092A at position 4, U+094D DEVANAGARI SIGN VIRAMA "
            "at position 5, र U+0930 at position 6, +3 more",
            1,
        ),
        (10, "invalid_number", "landline", None),
    ]
    res = prepared.results
    assert list(res.columns) == list(RESULT_COLUMNS[1:])
    assert res.index.name == "source_row"
    assert res["phone_e164"].tolist() == [
        "+919876543210",
        None,
        "+919876543210",
        "+919876543211",
        "+919876543211",
        None,
        "+919876543212",
        "+919876543213",
        None,
    ]
    assert res.loc[2, "message"] == "Hi Asha, Rs 1499"
    assert res.loc[5, "message"] is None and res.loc[5, "segments"] is None
    assert res.loc[8, "segments"] == 6 and res.loc[8, "encoding"] == "GSM-7"
    assert (res.loc[9, "encoding"], res.loc[9, "segments"]) == ("UCS-2", 1)
    assert set(res.dtypes) == {pd.api.types.pandas_dtype(object)}
    for column in (
        "provider_message_id",
        "batch_id",
        "sent_at",
        "delivery_status",
        "dlt_template_id",
        "delivered_at",
    ):
        assert res[column].tolist() == [None] * 9
    assert prepared.ready.index.tolist() == [2, 9]
    assert prepared.credits() == 2


def test_opt_outs_and_the_dlt_check_come_after_the_row_checks():
    dlt = DltMatcher([DltTemplate("1001", "Hi {#var#}, Rs {#var#}")], var_max=5)
    optouts = Suppression(
        numbers=frozenset({"+919876543211", "+919876543213"}), sources=("dnd.csv",), ignored=0
    )
    prepared = run(
        [
            ("Asha", "9876543210", 1),  # 2 ready, template 1001
            ("Ravi", "9876543211", 2),  # 3 opted out
            ("Meera", "9876543211", 3),  # 4 duplicate wins over opted out
            ("Kabir", "9876543213", None),  # 5 missing wins over opted out
            ("Arjunan", "9876543214", 4),  # 6 a variable over 5 characters
        ],
        dlt=dlt,
        suppression=optouts,
        suppress_names=("dnd.csv",),
    )
    assert table(prepared) == [
        (2, "ready", None, 1),
        (3, "opted_out", "on the opt-out list (dnd.csv)", None),
        (4, "duplicate", "same number as row 3", None),
        (5, "missing_field", "Amount is empty", None),
        (
            6,
            "template_mismatch",
            "template 1001: variable 1 is 7 characters (2 over the 5 limit)",
            None,
        ),
    ]
    assert prepared.results["dlt_template_id"].tolist() == ["1001", None, None, None, None]


def test_gsm_only_says_when_a_message_is_still_unicode():
    prepared = run([("Kabir’s", "9876543210", 1), (HINDI, "9876543211", 2)], gsm_only=True)
    res = prepared.results
    assert res["message"].tolist() == ["Hi Kabir's, Rs 1", f"Hi {HINDI}, Rs 2"]
    assert res["encoding"].tolist() == ["GSM-7", "UCS-2"]
    assert res["detail"].tolist() == [
        None,
        "still Unicode because of प U+092A at position 4, U+094D DEVANAGARI SIGN VIRAMA "
        "at position 5, र U+0930 at position 6, +3 more, after --gsm-only",
    ]


@pytest.mark.parametrize(
    "rows",
    [
        [("Asha", "n/a", 1)],
        [("Asha", "9876543210", 1)],
        [("Asha", "9876543210", None)],
    ],
)
def test_a_single_row(rows):
    status = run(rows).results["status"].tolist()
    assert status == [
        {"n/a": "invalid_number"}.get(rows[0][1])
        or ("missing_field" if rows[0][2] is None else "ready")
    ]


def test_many_rows_agree_with_a_row_at_a_time():
    # The whole-column steps give each row what it would get alone (bar duplicates).
    rows = [
        (f"N{i}", f"98765{i % 700:05d}" if i % 13 else "bad", i if i % 17 else None)
        for i in range(3000)
    ]
    res = run(rows).results
    seen: dict[str, int] = {}
    for (row, number, status), (_, _, amount) in zip(
        zip(res.index, res["phone_e164"], res["status"], strict=True), rows, strict=True
    ):
        if number is None:
            expected = "invalid_number"
        elif seen.setdefault(number, row) != row:
            expected = "duplicate"
        else:
            expected = "missing_field" if amount is None else "ready"
        assert status == expected, row
