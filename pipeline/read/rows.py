"""Bytes to rows: open a workbook with python-calamine, decode and split a CSV file.

The formats promised are in docs/contract.md, "Reading the sheet". sheet.py finds the header in
these rows and builds the frame; suppress.py reads its lists through them too. Every workbook
passes `safety.check_workbook` before calamine parses it.

Choices where the contract is silent:
- CSV is parsed strictly: a quote that is never closed, or text after a closing quote, stops
  the run naming the line, rather than silently swallowing the lines that follow into one cell;
- text with no BOM is read as UTF-16 when every other byte is NUL (Excel's "Unicode Text"
  without its BOM); other text with NUL bytes is refused as binary;
- a cell may hold at most MAX_CELL_CHARS characters and a sheet MAX_COLUMNS columns: Excel's
  own limits, so the results workbook can hold every cell (sheet.py checks them).
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import python_calamine

from pipeline.errors import InputError
from pipeline.read.safety import (
    OLE_MAGIC,
    ZIP_MAGIC,
    check_workbook,
    damaged,
    password_protected,
)

# Not .ods: calamine expands its repeated cells (a 2 KB file can ask for ~12 GB) and the
# contract does not promise it (docs/contract.md, "Reading the sheet").
EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls"})
TEXT_SUFFIXES = frozenset({".csv", ".txt"})
MAX_CELL_CHARS = 32_767  # Excel's limit for the text of one cell
MAX_COLUMNS = 16_384  # Excel's last column is XFD


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cycle collector while millions of cells become Python objects.

    Those objects form no cycles, yet each allocation burst triggers full collections:
    pausing halves the time to read 1M rows (measured: CSV 4.7 s -> 2.2 s; the Results sheet
    of a 1M-row workbook: calamine's to_python 3.9 s -> 1.1 s).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_DELIMITERS = (",", ";", "\t")
_SNIFF_LINES = 20


# --- Excel ---------------------------------------------------------------------------------


def open_workbook(label: str, data: bytes) -> python_calamine.CalamineWorkbook:
    """Check the workbook bytes (safety.py), then open them with calamine."""
    check_workbook(label, data)
    try:
        return python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    except python_calamine.PasswordError as exc:
        raise password_protected(label) from exc
    except (python_calamine.CalamineError, ValueError, OSError) as exc:
        # calamine's own text (shown with -v via __cause__) varies by version and says
        # little to a user; the file's first bytes tell the usual cases apart.
        if data.startswith((ZIP_MAGIC, OLE_MAGIC)):
            raise damaged(label) from exc
        if data[:1024].lstrip().lower().startswith((b"<!doctype html", b"<html", b"<table")):
            raise InputError(
                f"{label}: is a web page (HTML) with a spreadsheet name, as some systems "
                "export; open it in Excel and save it as .xlsx, or export it as .csv"
            ) from exc
        raise InputError(
            f"{label}: not an Excel workbook; if it is a CSV file rename it to .csv, "
            "else re-save it from Excel as .xlsx"
        ) from exc


def sheet_rows(label: str, book: python_calamine.CalamineWorkbook, name: str) -> list[list[Any]]:
    """Every row of a worksheet from A1 on, so list index + 1 is the Excel row number."""
    try:
        return book.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except (python_calamine.CalamineError, ValueError, OSError) as exc:
        raise damaged(label) from exc


def column_letter(index: int) -> str:
    """Excel's name for a 0-based column index: 0 -> A, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


# --- CSV -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvRows:
    """The records of a CSV file and where they start."""

    rows: list[list[str]]
    starts: list[int]  # physical line (1-based) on which each record starts
    short_cells: bool  # True when no cell can exceed MAX_CELL_CHARS (cheap bound, see below)


def read_csv(label: str, data: bytes) -> CsvRows:
    """Decode and split a CSV/TXT file; InputError naming the line on malformed quoting."""
    text, one_byte = decode_text(label, data)
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    starts: list[int] = []
    line = 0
    try:
        for row in reader:
            starts.append(line + 1)
            rows.append(row)
            line = reader.line_num  # counts every line, so multi-line quoted fields keep it honest
    except csv.Error as exc:
        raise _csv_error(label, text, line + 1, delimiter, exc) from None
    return CsvRows(rows, starts, _cells_are_short(data, one_byte, starts, line))


def decode_text(label: str, data: bytes) -> tuple[str, bool]:
    """The file's text, and whether its encoding has one byte per character or fewer."""
    # docs/contract.md, "Reading the sheet": UTF-8 with or without BOM, else cp1252. Excel's
    # "Unicode Text" export (UTF-16) is accepted too.
    if data.startswith((ZIP_MAGIC, OLE_MAGIC)):
        raise InputError(
            f"{label}: is an Excel workbook, not CSV text; rename it to .xlsx (or .xls) and retry"
        )
    if data.startswith(codecs.BOM_UTF8):
        encodings: tuple[str, ...] = ("utf-8-sig",)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ("utf-16",)
    else:
        utf16 = _utf16_without_bom(data)
        encodings = (utf16,) if utf16 else ("utf-8", "cp1252")
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            raise InputError(
                f"{label}: holds NUL bytes, so it is not a text file; export the sheet "
                "again as CSV, or save it as .xlsx"
            )
        return text, not encoding.startswith("utf-16")
    raise InputError(
        f"{label}: text encoding not recognised (not UTF-8 or Windows-1252); "
        "save it as 'CSV UTF-8' and retry"
    )


def _utf16_without_bom(data: bytes) -> str | None:
    """'utf-16-le'/'utf-16-be' when NUL is nearly every other byte (ASCII-heavy UTF-16)."""
    head = data[:4096]
    odd, even = head[1::2].count(0), head[0::2].count(0)
    # Hindi text in UTF-16 puts NULs on the other side too (U+0900 is 00 09 in LE): compare.
    if odd * 5 >= len(head) and odd > 2 * even:
        return "utf-16-le"
    if even * 5 >= len(head) and even > 2 * odd:
        return "utf-16-be"
    return None


def sniff_delimiter(text: str) -> str:
    """The delimiter among , ; tab that splits the first lines into the most fields."""
    sample = []
    for line in io.StringIO(text[: 1 << 16], newline=""):
        if line.strip():
            sample.append(line)
        if len(sample) >= _SNIFF_LINES:
            break
    best, best_fields = ",", 1
    for delimiter in _DELIMITERS:
        counts = Counter(len(r) for r in csv.reader(sample, delimiter=delimiter) if r)
        fields = counts.most_common(1)[0][0] if counts else 1
        if fields > best_fields:
            best, best_fields = delimiter, fields
    return best


def _csv_error(label: str, text: str, line: int, delimiter: str, exc: csv.Error) -> InputError:
    """A one-line message for csv's error on the record starting at `line`."""
    reason = str(exc)
    if reason.startswith("field larger than field limit"):
        # csv stops a field at 131,072 characters: a huge cell, or a quote opened on this
        # line that swallows the rest of the file. An even count of quotes tells them apart.
        start = _line_text(text, line)
        if start.count('"') % 2 == 0:
            return InputError(
                f"{label}: line {line}, column {_long_field(start, delimiter)}: a cell longer "
                f"than {MAX_CELL_CHARS:,} characters (Excel's limit); shorten it and retry"
            )
        reason = "unexpected end of data"
    if reason == "unexpected end of data":
        return InputError(
            f'{label}: line {line}: a quote (") opened on this line is never closed; '
            "close it or remove it, then retry"
        )
    if reason.endswith("expected after '\"'"):
        return InputError(
            f'{label}: line {line}: a quote (") on this line is not closed where its field '
            f"ends ({reason}); fix the quotes on that line and retry"
        )
    return InputError(f"{label}: line {line}: cannot parse CSV ({reason}); fix it and retry")


def _line_text(text: str, number: int) -> str:
    for n, line in enumerate(io.StringIO(text, newline=""), start=1):
        if n == number:
            return line
    return ""


def _long_field(line: str, delimiter: str) -> str:
    """Letter of the first field over MAX_CELL_CHARS, from a prefix csv can split."""
    prefix = line[: csv.field_size_limit() - 1]
    fields = next(csv.reader([prefix], delimiter=delimiter), [""])
    index = next((i for i, f in enumerate(fields) if len(f) > MAX_CELL_CHARS), len(fields) - 1)
    return column_letter(index)


def _cells_are_short(data: bytes, one_byte: bool, starts: list[int], end_line: int) -> bool:
    """True when no cell can be longer than MAX_CELL_CHARS, judged without measuring cells.

    In UTF-8 or cp1252 a character takes at least one byte, so a record on one line holds no
    cell longer than its line's bytes: vectorised over the raw bytes this costs ~50 ms per
    100 MB, where measuring every cell costs ~0.4 s per 16M cells.
    """
    if len(data) <= MAX_CELL_CHARS:
        return True
    if not one_byte or not starts:
        return False
    first = np.asarray(starts, dtype=np.int64)
    if (np.diff(first) > 1).any() or end_line > first[-1]:
        return False  # a quoted field spans lines: its length is no single line's
    raw = np.frombuffer(data, dtype=np.uint8)
    breaks = np.flatnonzero((raw == 10) | (raw == 13))
    edges = np.concatenate(([-1], breaks, [raw.size]))
    return int(np.diff(edges).max()) - 1 <= MAX_CELL_CHARS
