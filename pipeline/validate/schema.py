"""The pandera model of the normalised frame: which rows hold a sendable number.

`pipeline.sms.phones` decides validity (docs/contract.md, "Phone numbers"); this model states
the result as a contract on the frame the batch builds (index `source_row`, column
`phone_e164`) and reports every failing row at once (`lazy=True`), never only the first bad
cell.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Index, Series

from pipeline.sms.phones import E164_PATTERN

PHONE_COLUMN = "phone_e164"
ROW_INDEX = "source_row"


class NormalisedRows(pa.DataFrameModel):
    """One row per input row: its Excel/CSV row number and its number in E.164, or null."""

    source_row: Index[int] = pa.Field(ge=1, unique=True, check_name=True)
    phone_e164: Series[str] = pa.Field(nullable=False, str_matches=E164_PATTERN)

    class Config:
        # phone_e164 holds None for rejected numbers (prepare builds it in the string dtype,
        # other callers may pass objects); coercing to the string dtype keeps nulls null, so
        # they fail `nullable=False` row by row instead of failing the column's dtype.
        coerce = True


def invalid_phone_rows(frame: pd.DataFrame) -> pd.Index:
    """The `source_row` labels whose `phone_e164` is null or not an E.164 Indian mobile."""
    try:
        NormalisedRows.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    else:
        return frame.index[:0]

    # failure_cases: schema_context, column, check, check_number, failure_case, index.
    # A cell failure carries its row label in `index`; anything else (missing column, a bad
    # source_row index) is a bug in the frame the batch built, not a bad number.
    on_cell = (
        (cases["schema_context"] == "Column")
        & (cases["column"] == PHONE_COLUMN)
        & cases["index"].notna()
    )
    if not on_cell.all():
        other = cases.loc[~on_cell, ["schema_context", "column", "check"]].drop_duplicates()
        found = "; ".join(
            f"{context} {column!r}: {check}" for context, column, check in other.itertuples(False)
        )
        raise ValueError(
            f"the normalised frame does not fit {NormalisedRows.__name__} ({found}); "
            f"build it with a unique integer index named {ROW_INDEX!r} and a "
            f"{PHONE_COLUMN!r} column"
        )
    # Back to the frame's own labels, in frame order, each once (a row can fail two checks).
    return frame.index[frame.index.isin(cases.loc[on_cell, "index"].unique())]
