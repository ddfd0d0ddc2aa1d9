"""The results workbook: the input columns untouched, then one outcome per row.

Its shape is docs/contract.md, "The results workbook". Written with rustpy-xlsxwriter, which
stores every Python str as an inline text cell: text starting with = + - @ can never become a
formula. The file appears atomically (temp file in the same directory, then os.replace) and is
owner-only, because it holds phone numbers (docs/contract.md, "Secrets and privacy").

An input header equal to one of RESULT_COLUMNS (a user's own `status` column) is written as
`status (input)`, so both survive and read_results finds ours under the contract's name.
OPTIONAL_COLUMNS (`delivered_at`, filled by `smsbatch status`) come after ours when the frame
has them; a workbook written before they existed still reads. read_workbook gives back the
three arguments of write_results, so a workbook can be updated in place (delivery.py).
Missing values (None, NaN, NaT, pd.NA) are empty cells; tz-aware datetimes become ISO 8601
text, since Excel cells carry no offset.

More rows than one Excel sheet holds (1,048,575 below the header; a CSV input can have more)
go on `Results 2`, `Results 3`, ... after `Results`, each with the header; read_results and
read_workbook put them back together. One file keeps the write atomic and every cell typed;
a CSV beside it would have to put a `'` before formula-like text, changing the text.

Speed (1M rows, see benchmarks/): the writer costs ~0.7 µs a cell, most of it in XML and
deflate inside rustpy-xlsxwriter, so the Python side touches each column once, with
whole-array operations, and copies a column only when it has a value to change.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import numbers
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import python_calamine
import rustpy_xlsxwriter

from pipeline.errors import InputError
from pipeline.read.rows import gc_paused
from pipeline.settings import locks_dir
from pipeline.statuses import OPTIONAL_COLUMNS, RESULT_COLUMNS

RESULTS_SHEET = "Results"
SUMMARY_SHEET = "Summary"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
EXCEL_MAX_ROWS = 1_048_576  # header included
EXCEL_MAX_TEXT = 32_767
_MIN_WIDTH, _MAX_WIDTH, _WIDTH_SAMPLE = 10, 60, 1000


def _output_names(original: Sequence[str]) -> list[str]:
    """Original headers, with `status` -> `status (input)` where one clashes with ours."""
    reserved = set(RESULT_COLUMNS) | set(OPTIONAL_COLUMNS)
    used = set(original) | reserved
    names = []
    for name in original:
        if name in reserved:
            new, n = f"{name} (input)", 1
            while new in used:
                n += 1
                new = f"{name} (input {n})"
            used.add(new)
            name = new
        names.append(name)
    return names


# Cell types that are never missing and that the writer stores as they are: a column of only
# these needs no pass for NaN/NaT/NA and no copy.
_PLAIN_TYPES = frozenset({str, int, bool, type(None), dt.date, dt.datetime, dt.time})


def _cell_values(column: pd.Series) -> tuple[np.ndarray, set[type]]:
    """Column values as Python objects the writer understands, and their types (None's left
    out); every missing value is None. The frame's own array when nothing needs changing."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        # Excel has no time zones: keep the offset by writing ISO 8601 text.
        text = np.array([None if v is pd.NaT else v.isoformat() for v in column], dtype=object)
        return text, {str} if column.notna().any() else set()
    values = column.to_numpy(dtype=object)  # no copy for an object column
    kinds = set(map(type, values))
    if not kinds <= _PLAIN_TYPES:
        missing = pd.isna(values)  # NaN, NaT, pd.NA: the writer would crash or print "<NA>"
        if missing.any():
            values = values.copy()  # may be the frame's own array (read-only under CoW)
            values[missing] = None
            kinds = set(map(type, values))
    kinds.discard(type(None))
    if any(issubclass(k, dt.datetime) for k in kinds):
        # tz-aware datetimes would be written as wall time with the offset silently lost
        aware = [
            i for i, v in enumerate(values) if isinstance(v, dt.datetime) and v.tzinfo is not None
        ]
        if aware:
            values = values.copy()
            for i in aware:
                values[i] = values[i].isoformat()
            kinds = set(map(type, values))
            kinds.discard(type(None))
    return values, kinds


def _takes_date_format(kinds: set[type]) -> bool:
    """A column gets the yyyy-mm-dd format when it holds dates and nothing a number format
    would change (text is fine). Datetime cells get yyyy-mm-dd hh:mm from the workbook-wide
    format; a date in a column that also has datetimes or numbers shows that format too,
    because the writer has per-column, not per-cell, formats."""
    return dt.date in kinds and not any(
        # bool first: after issubclass mypy takes k for a datetime or Number class, not knowing
        # that bool is a Number (an ABC registration)
        k is not bool and issubclass(k, dt.datetime | numbers.Number)
        for k in kinds
    )


def _truncate_long_text(columns: dict[str, np.ndarray]) -> bool:
    """Cut text past Excel's 32,767-character cell limit; True if any cell was cut."""
    cut = False
    for name, values in columns.items():
        long = [i for i, v in enumerate(values) if v.__class__ is str and len(v) > EXCEL_MAX_TEXT]
        if long:
            values = columns[name] = values.copy()  # never the caller's frame
            for i in long:
                values[i] = values[i][:EXCEL_MAX_TEXT]
            cut = True
    return cut


def _width(name: str, values: np.ndarray) -> float:
    """Column width from the header and a sample of values, clamped to 10..60 characters."""
    longest = len(name) + 2  # room for the autofilter arrow
    for v in values[:_WIDTH_SAMPLE]:
        if v is None:
            continue
        if isinstance(v, dt.datetime):
            n = 16
        elif isinstance(v, dt.date):
            n = 10
        else:
            n = max(map(len, str(v).splitlines() or [""]))
        longest = max(longest, n)
    return float(min(max(longest + 1, _MIN_WIDTH), _MAX_WIDTH))


def _result_names(original: pd.DataFrame, results: pd.DataFrame) -> list[str]:
    """Our columns to write, in order: RESULT_COLUMNS, optional ones, then any others the frame
    has (a column a user added after ours survives a workbook update)."""
    names = list(RESULT_COLUMNS[1:])
    missing = [c for c in names if c not in results.columns and c not in OPTIONAL_COLUMNS]
    if missing:
        raise ValueError(f"results frame lacks columns: {', '.join(missing)}")
    names += [c for c in OPTIONAL_COLUMNS if c in results.columns and c not in names]
    names += [c for c in results.columns if c not in names]
    taken = set(_output_names(list(original.columns))) | {"source_row"}
    clashes = [c for c in names if c in taken]
    if clashes:
        raise ValueError(f"results columns clash with sheet columns: {', '.join(clashes)}")
    return names


def _results_columns(
    original: pd.DataFrame, results: pd.DataFrame
) -> tuple[dict[str, np.ndarray], dict[str, float], list[str]]:
    """The Results sheet's columns in order, their widths, and the date-formatted ones."""
    wanted = _result_names(original, results)
    if not original.index.equals(results.index):
        raise ValueError("results frame must have the same index (source_row) as the sheet")
    columns: dict[str, np.ndarray] = {}
    widths: dict[str, float] = {}
    date_columns: list[str] = []

    def add(name: str, values: np.ndarray, kinds: set[type]) -> None:
        columns[name] = values
        widths[name] = _width(name, values)
        if _takes_date_format(kinds):
            date_columns.append(name)

    for out_name, name in zip(_output_names(list(original.columns)), original.columns, strict=True):
        add(out_name, *_cell_values(original[name]))
    add("source_row", np.asarray(original.index, dtype=np.int64).astype(object), {int})
    empty = np.full(len(results), None, dtype=object)
    for name in wanted:
        if name in results.columns:
            add(name, *_cell_values(results[name]))
        else:  # an optional column the frame lacks: empty cells
            add(name, empty, set())
    return columns, widths, date_columns


def _summary_records(summary: Sequence[tuple[str, object]]) -> list[dict[str, Any]]:
    """Summary rows as item/value records; values the writer cannot store become text."""
    records = []
    for item, value in summary:
        cell: Any
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            cell = value.isoformat()  # Excel has no time zones: keep the offset as text
        elif isinstance(value, str | bool | int | float | dt.date | np.generic):
            # cast: pandas-stubs' isna leaves out numpy scalars such as np.datetime64
            cell = None if pd.isna(cast(Any, value)) else value
        elif value is None or value is pd.NA:
            cell = None
        else:
            cell = str(value)
        records.append({"item": str(item), "value": cell})
    return records


def results_sheet_names(rows: int) -> list[str]:
    """The sheets `rows` result rows go on: `Results`, then `Results 2`, ... when they do not
    fit below one header (Excel's row limit)."""
    per_sheet = EXCEL_MAX_ROWS - 1
    count = max(1, -(-rows // per_sheet))
    return [RESULTS_SHEET] + [f"{RESULTS_SHEET} {n}" for n in range(2, count + 1)]


def _save(
    tmp: Path,
    columns: dict[str, np.ndarray],
    widths: dict[str, float],
    date_columns: list[str],
    records: list[dict[str, Any]],
) -> None:
    """One rustpy-xlsxwriter call writing every sheet (constant-memory, inline strings)."""
    # dtype=object: pandas 3 would otherwise infer its `str` dtype, whose missing value is NaN.
    frame = pd.DataFrame(columns, dtype=object, copy=False)
    date_format = {
        name: rustpy_xlsxwriter.Format().set_num_format(DATE_FORMAT) for name in date_columns
    }
    summary_widths = {
        key: _width(key, np.array([r[key] for r in records], dtype=object))
        for key in ("item", "value")
    }
    book = (
        rustpy_xlsxwriter.FastExcel(tmp, output_format="xlsx")
        # datetime cells; date columns get DATE_FORMAT through column_formats
        .format(datetime_format=DATETIME_FORMAT, bold_headers=True)
        .freeze(row=1)  # every sheet: header row stays visible
    )
    names = results_sheet_names(len(frame))
    per_sheet = EXCEL_MAX_ROWS - 1
    for n, name in enumerate(names):
        part = frame if len(names) == 1 else frame.iloc[n * per_sheet : (n + 1) * per_sheet]
        book.sheet(
            name, part, autofilter=True, column_widths=widths, column_formats=date_format or None
        )
    (
        # a frame, not the records: an empty summary still gets its item/value header
        book.sheet(
            SUMMARY_SHEET,
            pd.DataFrame(records, columns=["item", "value"], dtype=object),
            column_widths=summary_widths,
        ).save()
    )


@contextmanager
def workbook_lock(path: str | Path) -> Iterator[None]:
    """Hold the right to (re)write the results workbook at `path`, or raise InputError.

    A send holds it from before its first request until its workbook is written, `status` from
    reading the workbook until it is replaced: one can never overwrite what the other just
    wrote with an older copy. The lock is a file in the state directory named after the
    workbook's resolved path (nothing is added beside the workbook), held with flock so a
    killed process never leaves it stuck.
    """
    target = Path(path).expanduser().resolve(strict=False)
    name = hashlib.sha256(str(target).encode()).hexdigest()[:32] + ".lock"
    try:
        folder = locks_dir()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(folder / name, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise InputError(
            f"{locks_dir()}: cannot create a lock file ({exc.strerror}); check "
            "that folder, or set SMSBATCH_STATE_DIR to a writable one"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(
                f"{path}: another smsbatch command (a send or status) is writing "
                "this workbook; run this again when it has finished"
            ) from None
        yield
    finally:
        os.close(fd)


def write_results(
    path: str | Path,
    original: pd.DataFrame,
    results: pd.DataFrame,
    summary: Sequence[tuple[str, object]],
) -> Path:
    """Write the Results and Summary sheets to `path` atomically (0600); return the path."""
    target = Path(path)
    columns, widths, date_columns = _results_columns(original, results)
    records = _summary_records(summary)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp creates the file 0600 in the target's directory, so os.replace is atomic
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise InputError(
            f"{target}: cannot write results ({exc.strerror}); choose another --out"
        ) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            _save(tmp, columns, widths, date_columns, records)
        except RuntimeError:
            # The writer refuses text over Excel's cell limit (only a CSV can hold such a
            # cell); checking every cell up front would cost a pass over all of them.
            if not _truncate_long_text(columns):
                raise
            _save(tmp, columns, widths, date_columns, records)
        os.chmod(tmp, 0o600)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(
            f"{target}: cannot write results ({exc.strerror or exc}); choose another --out"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _not_ours(path: Path, why: str) -> InputError:
    return InputError(f"{path.name}: {why}; pass a workbook written by smsbatch check or send")


def _read_book(path: Path) -> tuple[list[list[Any]], list[list[Any]] | None]:
    """The Results sheet's rows and the Summary sheet's rows (None when it has none)."""
    if not path.is_file():
        raise InputError(f"{path}: results workbook not found; check the path")
    with gc_paused():  # millions of cells become Python objects
        try:
            book = python_calamine.CalamineWorkbook.from_path(str(path))
            if RESULTS_SHEET not in book.sheet_names:
                raise _not_ours(path, f"no {RESULTS_SHEET!r} sheet")
            rows = book.get_sheet_by_name(RESULTS_SHEET).to_python(skip_empty_area=False)
            # Rows past Excel's limit went on `Results 2`, `Results 3`, ... (write_results).
            n = 2
            while (more := f"{RESULTS_SHEET} {n}") in book.sheet_names:
                extra = book.get_sheet_by_name(more).to_python(skip_empty_area=False)
                if not extra or not rows or list(extra[0]) != list(rows[0]):
                    raise _not_ours(
                        path, f"sheet {more!r} does not have the {RESULTS_SHEET} header"
                    )
                rows.extend(extra[1:])
                n += 1
            summary = None
            if SUMMARY_SHEET in book.sheet_names:
                summary = book.get_sheet_by_name(SUMMARY_SHEET).to_python(skip_empty_area=False)
        except (python_calamine.CalamineError, ValueError, OSError) as exc:
            raise _not_ours(path, f"not a readable workbook ({exc})") from None
    return rows, summary


def _results_frame(path: Path, rows: list[list[Any]]) -> tuple[pd.DataFrame, int]:
    """The Results rows as an object frame indexed by source_row, and how many of its columns
    come from the input sheet (those before source_row)."""
    header = [str(h) for h in rows[0]] if rows else []
    required = [c for c in RESULT_COLUMNS if c not in OPTIONAL_COLUMNS]
    missing = [c for c in required if c not in header]
    if missing:
        raise _not_ours(path, f"not a results workbook (missing columns: {', '.join(missing)})")
    grid = np.array(rows[1:], dtype=object).reshape(len(rows) - 1, len(header))
    grid[grid == ""] = None  # calamine reads an empty cell as ''
    frame = pd.DataFrame(grid, columns=header, dtype=object)
    split = header.index("source_row")
    frame.index = pd.Index(frame.pop("source_row").astype("int64"), name="source_row")
    # segments and credits are counts: give them back as int, not as the float Excel stores
    for count in ("segments", "credits"):
        frame[count] = pd.Series(
            [_integral(v) for v in frame[count]], index=frame.index, dtype=object
        )
    for name in RESULT_COLUMNS[1:]:
        if name not in frame.columns:  # an optional column this workbook predates
            frame[name] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return frame, split


def _integral(value: object) -> object:
    """A float that holds a whole number as int (Excel stores every number as a float)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def read_results(path: str | Path) -> pd.DataFrame:
    """The Results sheet of a results workbook as an object frame indexed by source_row."""
    path = Path(path)
    rows, _ = _read_book(path)
    return _results_frame(path, rows)[0]


def read_workbook(
    path: str | Path,
) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple[str, object]]]:
    """A results workbook as (original, results, summary): write_results' arguments back."""
    path = Path(path)
    rows, summary_rows = _read_book(path)
    frame, split = _results_frame(path, rows)
    # Input columns keep their names as written (`status (input)`), which write_results
    # leaves alone, so writing them back changes no header.
    original = frame.iloc[:, :split].copy()
    results = frame.iloc[:, split:].copy()
    for name in OPTIONAL_COLUMNS:
        if name not in results.columns:
            results[name] = pd.Series([None] * len(results), index=results.index, dtype=object)
    summary: list[tuple[str, object]] = []
    for row in (summary_rows or [])[1:]:  # below the item/value header
        item, value = (list(row) + [None, None])[:2]
        if item in ("", None) and value in ("", None):
            continue
        summary.append((str(item), None if value == "" else _integral(value)))
    return original, results, summary
