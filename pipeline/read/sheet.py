"""Read the contact sheet (xlsx/xlsm/xls or csv/txt) into a frame keyed by source row.

docs/contract.md, "Reading the sheet": cells are read as the user sees them (a phone stored as
a number is kept as a number, a date cell is a date), fully blank rows are skipped, headers are
trimmed. The input file is read once, into memory, and never written (docs/contract.md,
"Secrets and privacy"). Bytes become rows in rows.py (calamine for workbooks, after
the checks in safety.py; csv for text); this module finds the header and the phone column and
builds the frame.

Choices where the contract is silent:
- a cell holding only whitespace (NBSP included) is empty: None, like an empty cell;
- single-cell rows above the header (a title) are skipped; source_row stays the Excel row;
- an empty header over data becomes "Column C"; over no data the column is dropped;
  duplicate headers become "Name (2)", "Name (3)";
- CSV source_row is the physical line on which the record starts (header = line 1), so a
  quoted field spanning lines pushes later rows down, as a text editor shows them;
- --phone-column matches exactly, else by the normalised name if that is unambiguous;
  --sheet matches exactly, else case-insensitively (as Excel does); it is ignored for CSV;
- a cell over 32,767 characters or more than 16,384 filled columns (Excel's limits, so the
  results workbook could not hold them) stop the run naming the cell; columns past 16,384
  that are empty on every row are dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import python_calamine

from pipeline.errors import InputError
from pipeline.read.rows import (
    EXCEL_SUFFIXES,
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    TEXT_SUFFIXES,
    column_letter,
    gc_paused,
    open_workbook,
    read_csv,
    sheet_rows,
)

__all__ = [
    "EXCEL_SUFFIXES",
    "PHONE_HEADER_NAMES",
    "TEXT_SUFFIXES",
    "Sheet",
    "detect_phone_column",
    "file_sha256",
    "load_sheet",
]

# Usual names of a phone column, normalised by _normalise_header (--phone-column in
# docs/contract.md, "Commands and options").
PHONE_HEADER_NAMES: frozenset[str] = frozenset(
    {
        "mobile",
        "mobileno",
        "mobilenumber",
        "mobilenum",
        "phone",
        "phoneno",
        "phonenumber",
        "contact",
        "contactno",
        "contactnumber",
        "number",
        "cell",
        "cellno",
        "cellnumber",
        "cellphone",
        "msisdn",
    }
)
_PHONE_PREFIX = "whatsapp"  # WhatsApp, WhatsApp No., WhatsApp Number, ...

# A title or "exported on ..." line may sit above the header; look this far for the header.
_HEADER_SCAN_ROWS = 10


@dataclass(frozen=True)
class Sheet:
    """One worksheet (or CSV file) read into memory."""

    path: Path
    name: str | None  # worksheet name; None for CSV
    frame: pd.DataFrame  # object dtype, index "source_row", columns = trimmed headers
    phone_column: str
    sha256: str  # hex SHA-256 of the input file bytes


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _normalise_header(header: str) -> str:
    return "".join(ch for ch in header.casefold() if ch.isalnum())


def _phone_candidates(headers: Sequence[str]) -> list[str]:
    found = []
    for header in headers:
        norm = _normalise_header(header)
        if norm in PHONE_HEADER_NAMES or norm.startswith(_PHONE_PREFIX):
            found.append(header)
    return found


def detect_phone_column(headers: Sequence[str]) -> str:
    """Return the one header that names a phone column; InputError if none or several."""
    found = _phone_candidates(headers)
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError(
            f"no phone column found among headers: {', '.join(headers)}; "
            "name it with --phone-column"
        )
    raise InputError(
        f"several phone columns found: {', '.join(found)}; pick one with --phone-column"
    )


def _match_column(headers: Sequence[str], wanted: str) -> str | None:
    """The header the user meant by --phone-column: exact, else one normalised match."""
    wanted = wanted.strip()
    if wanted in headers:
        return wanted
    norm = _normalise_header(wanted)
    loose = [h for h in headers if norm and _normalise_header(h) == norm]
    return loose[0] if len(loose) == 1 else None


def _choose_phone_column(headers: list[str], phone_column: str | None) -> str:
    if phone_column is None:
        return detect_phone_column(headers)
    match = _match_column(headers, phone_column)
    if match is None:
        raise InputError(
            f"no column named {phone_column.strip()!r}; headers are: {', '.join(headers)}; "
            "check --phone-column"
        )
    return match


# --- cells and headers ---------------------------------------------------------------------


def _is_blank(value: Any) -> bool:
    # calamine gives '' for empty cells; a cell holding only spaces looks empty too.
    return value is None or (value.__class__ is str and (not value or value.isspace()))


def _header_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return cast(str, value.isoformat())
    return str(value).strip()


def _row_has_phone_header(row: Sequence[Any], phone_column: str | None) -> bool:
    headers = [_header_text(v) for v in row if not _is_blank(v)]
    if phone_column is not None:
        return _match_column(headers, phone_column) is not None
    return bool(_phone_candidates(headers))


def _find_header(rows: Sequence[Sequence[Any]], phone_column: str | None) -> int | None:
    """Index of the header row, None if every row is blank.

    The header is the first non-blank row, except that single-cell rows above it (a title,
    "exported on ...") are passed over: the first row naming a phone column or holding two or
    more cells wins. Data rows are never scanned, so a cell reading "Mobile" cannot win.
    """
    first = None
    for seen, (i, row) in enumerate((i, r) for i, r in enumerate(rows) if _filled(r)):
        if first is None:
            first = i
        if _filled(row) >= 2 or _row_has_phone_header(row, phone_column):
            return i
        if seen + 1 >= _HEADER_SCAN_ROWS:
            break
    return first


def _filled(row: Sequence[Any]) -> int:
    return sum(not _is_blank(v) for v in row)


def _unique(headers: list[str]) -> list[str]:
    """Make duplicate headers unique: Name, Name (2), Name (3), skipping names already used."""
    taken = set(headers)
    seen: set[str] = set()
    out = []
    for header in headers:
        name, n = header, 1
        while name in seen or (name != header and name in taken):
            n += 1
            name = f"{header} ({n})"
        seen.add(name)
        out.append(name)
    return out


def _within_columns(
    label: str, where: str, header_cells: Sequence[Any], data: list[list[Any]]
) -> tuple[Sequence[Any], list[list[Any]]]:
    """The rows cut to MAX_COLUMNS; InputError if a cell past it is filled."""
    if len(header_cells) <= MAX_COLUMNS and all(len(row) <= MAX_COLUMNS for row in data):
        return header_cells, data
    filled = max(
        next((k + 1 for k in range(len(row) - 1, -1, -1) if not _is_blank(row[k])), 0)
        for row in (header_cells, *data)
        if len(row) > MAX_COLUMNS
    )
    if filled > MAX_COLUMNS:
        raise InputError(
            f"{label}: {where}has {filled:,} columns, over Excel's limit of {MAX_COLUMNS:,} "
            f"(column {column_letter(MAX_COLUMNS - 1)}); remove the extra columns and retry"
        )
    return header_cells[:MAX_COLUMNS], [row[:MAX_COLUMNS] for row in data]


def _build_frame(
    label: str,
    where: str,
    header_cells: Sequence[Any],
    data: list[list[Any]],
    numbers: np.ndarray,
    *,
    lines: Sequence[int] | None = None,
    short_cells: bool = False,
) -> pd.DataFrame:
    """Turn the header row and data rows (lists of cells) into the Sheet frame.

    `lines` (CSV only: every cell is a str) are the physical lines of the data rows, for
    messages; `short_cells` says no cell can be over MAX_CELL_CHARS (see sheet_readers).
    """
    all_text = lines is not None
    header_cells, data = _within_columns(label, where, header_cells, data)
    for col, cell in enumerate(header_cells):
        if isinstance(cell, str) and len(cell) > MAX_CELL_CHARS:
            raise InputError(
                f"{label}: {where}header of column {column_letter(col)}: a cell of "
                f"{len(cell):,} characters, over Excel's limit of {MAX_CELL_CHARS:,}; shorten it "
                "and retry"
            )
    width = max(len(header_cells), max(map(len, data), default=0))
    if any(len(row) != width for row in data):  # ragged CSV lines; calamine rows are even
        data = [row + [""] * (width - len(row)) for row in data]
    grid = np.array(data, dtype=object).reshape(len(data), width)
    # One flat pass marks empty and whitespace-only cells; they become None. Inline
    # expressions rather than _is_blank calls: this runs once per cell (1M rows x 16 columns).
    flat = grid.ravel()
    if all_text:  # CSV: every cell is a str
        spaces = np.fromiter(map(str.isspace, flat), dtype=bool, count=flat.size)
        long = None
        if not short_cells:
            long = np.fromiter(map(len, flat), dtype=np.int64, count=flat.size) > MAX_CELL_CHARS
    else:  # 0: not blank, 1 (True): whitespace only, 2: too long
        codes = np.fromiter(
            (
                (2 if len(v) > MAX_CELL_CHARS else v.isspace()) if v.__class__ is str else 0
                for v in flat
            ),
            dtype=np.int8,
            count=flat.size,
        )
        spaces, long = codes == 1, codes == 2
    if long is not None and long.any():
        row, col = divmod(int(np.flatnonzero(long)[0]), width)
        header = header_cells[col] if col < len(header_cells) else None
        name = column_letter(col) if _is_blank(header) else repr(_header_text(header))
        place = (
            f"line {lines[row]}, column {name}"
            if lines is not None  # i.e. all_text
            else f"{where}cell {column_letter(col)}{numbers[row]} (column {name})"
        )
        raise InputError(
            f"{label}: {place}: a cell of {len(grid[row, col]):,} characters, over Excel's "
            f"limit of {MAX_CELL_CHARS:,}; shorten it and retry"
        )
    blank = (grid == "") | spaces.reshape(grid.shape)
    grid[blank] = None

    raw = [_header_text(v) if not _is_blank(v) else "" for v in header_cells]
    raw += [""] * (width - len(raw))
    has_data = ~blank.all(axis=0) if len(data) else np.zeros(width, dtype=bool)
    keep, headers = [], []
    for j, header in enumerate(raw):
        if header:
            keep.append(j)
            headers.append(header)
        elif has_data[j]:  # data under an empty header: call it what Excel shows
            keep.append(j)
            headers.append(f"Column {column_letter(j)}")
        # an empty header over an empty column (spacer, trailing) is dropped
    rows_kept = ~blank.all(axis=1) if len(data) else np.zeros(0, dtype=bool)
    if not rows_kept.any():
        raise InputError(
            f"{label}: {where}has a header row but no data rows; add contacts below it"
        )
    if not rows_kept.all() or len(keep) != width:
        # keep as an intp array: what ix_ makes of the list anyway, and what its stubs accept
        grid = grid[np.ix_(rows_kept, np.asarray(keep, dtype=np.intp))]
    index = pd.Index(numbers[rows_kept], name="source_row", dtype="int64")
    # copy=False: the grid is ours alone, and a copy of 1M x 16 cells costs a tenth of a second
    return pd.DataFrame(grid, columns=_unique(headers), index=index, dtype=object, copy=False)


# --- Excel ---------------------------------------------------------------------------------


def _pick_sheet(
    label: str, book: python_calamine.CalamineWorkbook, phone_column: str | None
) -> tuple[str, list[list[Any]], int]:
    """Default sheet (docs/contract.md, "Commands and options"): the first visible worksheet
    whose header row names a phone column. Hidden and chart sheets are read only when named
    with --sheet."""
    visible = [
        m.name
        for m in book.sheets_metadata
        if m.typ == python_calamine.SheetTypeEnum.WorkSheet
        and m.visible == python_calamine.SheetVisibleEnum.Visible
    ]
    first_with_data = None
    with_data = 0
    for name in visible:
        rows = sheet_rows(label, book, name)
        header = _find_header(rows, phone_column)
        if header is None:
            continue
        if _row_has_phone_header(rows[header], phone_column):
            return name, rows, header
        with_data += 1
        if first_with_data is None:
            first_with_data = (name, rows, header)
    if first_with_data is None:
        raise InputError(f"{label}: workbook has no data; put a header row and contacts in it")
    if with_data == 1:
        return first_with_data  # the only sheet with data: report on its headers
    what = f"a column named {phone_column.strip()!r}" if phone_column else "a phone column"
    raise InputError(
        f"{label}: no sheet has {what} (sheets: {', '.join(visible)}); "
        "pick the sheet with --sheet and the column with --phone-column"
    )


def _load_excel(
    label: str, data: bytes, sheet: str | None, phone_column: str | None
) -> tuple[str, pd.DataFrame]:
    book = open_workbook(label, data)
    try:
        if sheet is None:
            sheet, rows, header = _pick_sheet(label, book, phone_column)
        else:
            names = list(book.sheet_names)
            if sheet not in names:  # Excel itself treats sheet names case-insensitively
                sheet = next((n for n in names if n.casefold() == sheet.casefold()), sheet)
            if sheet not in names:
                raise InputError(
                    f"{label}: no sheet named {sheet!r}; sheets are: {', '.join(names)}; "
                    "pick one with --sheet"
                )
            rows = sheet_rows(label, book, sheet)
            found = _find_header(rows, phone_column)
            if found is None:
                raise InputError(
                    f"{label}: sheet {sheet!r} is empty; put a header row and contacts in it"
                )
            header = found
    finally:
        book.close()
    numbers = np.arange(header + 2, len(rows) + 1, dtype=np.int64)  # Excel row numbers
    frame = _build_frame(label, f"sheet {sheet!r} ", rows[header], rows[header + 1 :], numbers)
    return sheet, frame


# --- CSV -----------------------------------------------------------------------------------


def _load_csv(label: str, data: bytes, phone_column: str | None) -> pd.DataFrame:
    table = read_csv(label, data)
    rows, starts = table.rows, table.starts
    header = _find_header(rows, phone_column)
    if header is None:
        raise InputError(f"{label}: file has only blank lines; put a header row and contacts in it")
    # For CSV, source_row is the line number with the header as line 1 (docs/contract.md,
    # "The results workbook").
    lines = starts[header + 1 :]
    numbers = np.asarray(lines, dtype=np.int64) - starts[header] + 1
    return _build_frame(
        label,
        "",
        rows[header],
        rows[header + 1 :],
        numbers,
        lines=lines,
        short_cells=table.short_cells,
    )


# --- entry point ---------------------------------------------------------------------------


def load_sheet(
    path: str | Path, *, sheet: str | None = None, phone_column: str | None = None
) -> Sheet:
    """Read a contact sheet; InputError with a one-line fix-it message on bad input."""
    path = Path(path)
    label = path.name
    if not path.exists():
        raise InputError(f"{path}: file not found; check the path")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; pass the .xlsx or .csv file inside it")
    suffix = path.suffix.lower()
    if suffix not in EXCEL_SUFFIXES | TEXT_SUFFIXES:
        raise InputError(f"{label}: not a spreadsheet: use .xlsx, .xlsm, .xls or .csv")
    try:
        data = path.read_bytes()  # read once: what we hash is exactly what we parse
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror}); check its permissions") from None
    if not data:
        raise InputError(f"{label}: file is empty (0 bytes); export the sheet again")
    with gc_paused():
        if suffix in EXCEL_SUFFIXES:
            name, frame = _load_excel(label, data, sheet, phone_column)
        else:
            name, frame = None, _load_csv(label, data, phone_column)
    try:
        phone = _choose_phone_column(list(frame.columns), phone_column)
    except InputError as exc:
        raise InputError(f"{label}: {exc}") from None
    return Sheet(
        path=path,
        name=name,
        frame=frame,
        phone_column=phone,
        sha256=hashlib.sha256(data).hexdigest(),
    )
