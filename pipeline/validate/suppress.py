"""Opt-out / DND suppression lists (--suppress FILE): numbers that must not get a message.

docs/provider-api.md, "DND and opt-outs": people who opted out must not be messaged again.
Numbers are normalised with pipeline.sms.phones exactly like the contact sheet
(docs/contract.md, "Phone numbers"), so `098765 43210`, `+91 98765-43210` and a numeric cell
919876543210 are the same entry.

Formats:
- `.txt`: one number per line; blank lines are skipped, and `#` starts a comment (a whole line
  or the end of one: a phone number never holds '#');
- `.csv`, `.xlsx`, `.xlsm`, `.xls`: read by pipeline.read.sheet.load_sheet, which finds the
  header row and its phone column (Mobile, Phone, Number...). A list with no such header but a
  single column is read whole: its first cell is a number too, unless it holds letters (then
  it is a title, like "Opted out").

Choices where the brief is silent:
- an entry that is not a sendable Indian mobile number is counted in `ignored`, not fatal;
  empty cells are not entries;
- a file that yields no valid number at all is an InputError: suppressing nothing while the
  user thinks a list is applied would message people who opted out;
- a sheet with several phone columns (Mobile and WhatsApp) suppresses the numbers of all of
  them; several columns and no phone column among them is an InputError (which one holds the
  numbers would be a guess).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import python_calamine

from pipeline.errors import InputError
from pipeline.read import rows as sheet_readers
from pipeline.read import sheet
from pipeline.sms import phones

TEXT_LIST_SUFFIX = ".txt"
SHEET_SUFFIXES = frozenset({".csv"}) | sheet.EXCEL_SUFFIXES
_DELIMITERS = (",", ";", "\t")
_HEADER_SCAN_ROWS = 10  # as pipeline.read.sheet: how far below a title to look for the header


@dataclass(frozen=True)
class Suppression:
    """Numbers never to message (E.164), the files they came from, entries not understood."""

    numbers: frozenset[str]
    sources: tuple[str, ...]
    ignored: int  # entries that were not valid Indian mobile numbers


def load_suppression(paths: Sequence[str | Path]) -> Suppression:
    """Read every --suppress file into one set of E.164 numbers; InputError on a bad file."""
    numbers: set[str] = set()
    ignored = 0
    for item in paths:
        path = Path(item)
        entries = _read_entries(path)
        valid = [number for number in phones.normalise_many(entries) if number is not None]
        if not valid:
            what = (
                f"none of its {len(entries)} entries is an Indian mobile number"
                if entries
                else "has no numbers"
            )
            raise InputError(
                f"--suppress file {path.name}: {what}; check it is the right file, "
                "or leave out --suppress"
            )
        ignored += len(entries) - len(valid)
        numbers.update(valid)
    return Suppression(
        numbers=frozenset(numbers), sources=tuple(str(p) for p in paths), ignored=ignored
    )


def _read_entries(path: Path) -> list[object]:
    """The non-blank entries of one file (cells or lines), in order, not yet normalised."""
    if not path.exists():
        raise InputError(f"--suppress file {path}: not found; check the path")
    if path.is_dir():
        raise InputError(f"--suppress file {path}: is a directory; pass the list file inside it")
    suffix = path.suffix.lower()
    if suffix != TEXT_LIST_SUFFIX and suffix not in SHEET_SUFFIXES:
        raise InputError(
            f"--suppress file {path.name}: not a list: use .txt (one number per line), "
            ".csv or .xlsx"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"--suppress file {path}: cannot read ({exc.strerror}); check its permissions"
        ) from None
    if suffix == TEXT_LIST_SUFFIX:
        return _text_lines(path.name, data)
    return _sheet_cells(path, data)


def _decode(label: str, data: bytes) -> str:
    """Text of a list: UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252 (as in
    docs/contract.md, "Reading the sheet")."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        encodings = ("utf-8-sig", "cp1252")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InputError(
        f"--suppress file {label}: text encoding not recognised (not UTF-8 or Windows-1252); "
        "save it as UTF-8 and retry"
    )


def _text_lines(label: str, data: bytes) -> list[object]:
    """Entries of a .txt list: one a line, without comments and blank lines."""
    entries: list[object] = []
    add = entries.append
    for line in _decode(label, data).splitlines():
        if "#" in line:
            line = line[: line.index("#")]
        line = line.strip()
        if line:
            add(line)
    return entries


def _sheet_cells(path: Path, data: bytes) -> list[object]:
    """Entries of a .csv or workbook list: its phone column(s), or its only column."""
    try:
        found = sheet.load_sheet(path)
    except InputError as exc:
        refused = exc  # usually "no phone column": a bare list of numbers has no header
    else:
        return _column_cells(found, [found.phone_column])
    if path.suffix.lower() == ".csv":
        rows = _text_rows(path.name, data)
    else:
        rows = _workbook_rows(path.name, data)
    if rows is None:  # not a table at all: load_sheet's message says why ("damaged", ...)
        raise InputError(f"--suppress file {refused}") from None
    cells = _single_column(rows)
    if cells is not None:
        return cells
    headers = [_cell_text(value) for value in _header_row(rows)]
    named = list(dict.fromkeys(h for h in headers if _names_phone(h)))
    if len(named) > 1:
        # Mobile and WhatsApp: a person who opted out is suppressed on every number listed.
        try:
            found = sheet.load_sheet(path, phone_column=named[0])
        except InputError as exc:
            raise InputError(f"--suppress file {exc}") from None
        return _column_cells(found, named)
    if named:  # the header names a phone column: load_sheet stopped for another reason
        raise InputError(f"--suppress file {refused}") from None
    raise InputError(
        f"--suppress file {path.name}: no phone column among {', '.join(headers)}; head the "
        "column of numbers 'Mobile', or save the numbers one per line in a .txt"
    )


def _column_cells(found: sheet.Sheet, columns: list[str]) -> list[object]:
    """The non-empty cells of these columns of a loaded sheet, column by column."""
    cells: list[object] = []
    for name in columns:
        if name in found.frame.columns:
            column = found.frame[name]
            cells += column[column.notna()].tolist()
    return cells


def _names_phone(header: str) -> bool:
    """Whether a header is one of the usual names of a phone column (Mobile, Phone...)."""
    try:
        sheet.detect_phone_column([header])
    except InputError:
        return False
    return True


def _header_row(rows: Sequence[Sequence[object]]) -> list[object]:
    """Filled cells of the header, found as load_sheet does: the first row with 2+ cells
    among the first filled ones (a one-cell title may sit above it), else the first."""
    filled = (cells for cells in ([v for v in row if not _blank(v)] for row in rows) if cells)
    first: list[object] = []
    for seen, cells in enumerate(filled):
        first = first or cells
        if len(cells) >= 2 or seen + 1 >= _HEADER_SCAN_ROWS:
            return cells if len(cells) >= 2 else first
    return first


def _blank(value: object) -> bool:
    """An empty cell: None, '' or only whitespace (as pipeline.read.sheet reads cells)."""
    return value is None or (isinstance(value, str) and (not value or value.isspace()))


def _cell_text(value: object) -> str:
    """A cell as a header text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _text_rows(label: str, data: bytes) -> Sequence[Sequence[object]] | None:
    """Rows of a CSV file; None if it cannot be decoded or parsed."""
    try:
        return _csv_rows(_decode(label, data))
    except InputError:
        return None


def _csv_rows(text: str) -> list[list[str]] | None:
    """Rows of a CSV split on the delimiter that gives the most fields; None if malformed.

    Strict, as pipeline.read.rows: a quote never closed would otherwise swallow every
    number after it, and those people would be messaged."""
    present = [d for d in _DELIMITERS if d in text] or [","]
    if len(present) == 1:
        try:
            return list(
                csv.reader(io.StringIO(text, newline=""), delimiter=present[0], strict=True)
            )
        except csv.Error:
            return None
    best: list[list[str]] | None = None
    best_width = -1
    for delimiter in present:
        try:
            rows: list[list[str]] = list(
                csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
            )
        except csv.Error:
            return None
        width = max((sum(not _blank(v) for v in row) for row in rows), default=0)
        if width > best_width:
            best, best_width = rows, width
    return best


def _workbook_rows(label: str, data: bytes) -> Sequence[Sequence[object]] | None:
    """Rows of the first visible worksheet with data ([] if none); None if unreadable."""
    try:
        book = sheet_readers.open_workbook(label, data)  # zip bomb, DTD... checks first
    except InputError:
        return None
    try:
        for meta in book.sheets_metadata:
            if (
                meta.typ != python_calamine.SheetTypeEnum.WorkSheet
                or meta.visible != python_calamine.SheetVisibleEnum.Visible
            ):
                continue
            rows = book.get_sheet_by_name(meta.name).to_python(skip_empty_area=False)
            if _first_filled(rows):
                return rows
    except (python_calamine.CalamineError, ValueError, OSError):
        return None
    finally:
        book.close()
    return []


def _first_filled(rows: Sequence[Sequence[object]]) -> list[object]:
    """The non-blank cells of the first row that has any."""
    for row in rows:
        cells = [value for value in row if not _blank(value)]
        if cells:
            return cells
    return []


def _single_column(rows: Sequence[Sequence[object]]) -> list[object] | None:
    """The non-blank cells of the one filled column, minus a title; None if several columns."""
    cells: list[object] = []
    add = cells.append
    column = None
    for row in rows:
        for j, value in enumerate(row):
            if value is None or value == "" or (value.__class__ is str and value.isspace()):
                continue
            if column is None:
                column = j
            elif j != column:
                return None
            add(value)
    # A title over a bare list ("Opted out", "DND list") has letters; a number never does.
    if cells and isinstance(cells[0], str) and any(char.isalpha() for char in cells[0]):
        del cells[0]
    return cells
