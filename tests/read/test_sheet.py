"""Reading the contact sheet: fixtures in tests/data, made by make_fixtures.py.

What is promised: docs/contract.md, "Reading the sheet".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from pathlib import Path

import openpyxl
import pytest

from pipeline.errors import InputError
from pipeline.read.sheet import PHONE_HEADER_NAMES, detect_phone_column, file_sha256, load_sheet
from tests.helpers import DATA


def rows(sheet) -> list[list[object]]:
    return sheet.frame.values.tolist()


def write_xlsx(path: Path, *rows_: list[object], title: str = "Sheet1") -> Path:
    book = openpyxl.Workbook()
    book.active.title = title
    for row in rows_:
        book.active.append(row)
    book.save(path)
    return path


# --- xlsx ----------------------------------------------------------------------------------


def test_xlsx_values_types_and_source_rows():
    sheet = load_sheet(DATA / "sheet_basic.xlsx")
    assert sheet.name == "Contacts"
    assert sheet.phone_column == "Mobile"
    # trimmed headers (NBSP too); duplicate made unique; data under an empty header named
    # by its letter; the empty-headed column holding only a space is dropped
    assert list(sheet.frame.columns) == ["Name", "Mobile", "Joined", "Column D", "Name (2)"]
    assert sheet.frame.index.name == "source_row"
    assert sheet.frame.index.tolist() == [2, 3, 5]  # row 4 blank, row 6 whitespace only
    assert [str(dtype) for dtype in sheet.frame.dtypes] == ["object"] * 5
    assert rows(sheet) == [
        ["Asha", 919876543210.0, dt.date(2024, 3, 2), "vip", "A. K."],
        ["Ravi", 9876543211.0, dt.datetime(2024, 3, 5, 14, 30), None, None],
        ["=1+1", "+91 98765 43212", None, None, None],
    ]
    mobile = sheet.frame.at[2, "Mobile"]
    assert type(mobile) is float and int(mobile) == 919876543210  # every digit kept
    assert type(sheet.frame.at[2, "Joined"]) is dt.date
    assert sheet.sha256 == hashlib.sha256((DATA / "sheet_basic.xlsx").read_bytes()).hexdigest()


def test_title_row_above_header_and_default_sheet():
    # Notes has no phone column, Secret is hidden: the default is Contacts, whose header
    # sits on row 3 under a title and a blank row; source_row stays the Excel row number.
    sheet = load_sheet(DATA / "sheet_multi.xlsx")
    assert sheet.name == "Contacts"
    assert sheet.phone_column == "Phone Number"
    assert sheet.frame.index.tolist() == [4, 5]
    assert rows(sheet) == [["Meena", "98765 43210", "Pune"], ["Imran", 9123456789.0, "Delhi"]]


def test_sheet_chosen_by_name():
    archive = load_sheet(DATA / "sheet_multi.xlsx", sheet="Archive")
    assert (archive.name, archive.phone_column) == ("Archive", "Mobile No.")
    assert archive.frame.index.tolist() == [2]
    assert load_sheet(DATA / "sheet_multi.xlsx", sheet="archive").name == "Archive"
    hidden = load_sheet(DATA / "sheet_multi.xlsx", sheet="Secret")
    assert rows(hidden) == [["Hidden", 9000000001.0]]


def test_missing_sheet_lists_sheet_names():
    with pytest.raises(InputError) as err:
        load_sheet(DATA / "sheet_multi.xlsx", sheet="Nope")
    assert str(err.value) == (
        "sheet_multi.xlsx: no sheet named 'Nope'; sheets are: Notes, Secret, Contacts, Archive; "
        "pick one with --sheet"
    )


def test_named_sheet_without_phone_column():
    with pytest.raises(InputError) as err:
        load_sheet(DATA / "sheet_multi.xlsx", sheet="Notes")
    assert str(err.value) == (
        "sheet_multi.xlsx: no phone column found among headers: Topic, Owner; "
        "name it with --phone-column"
    )


def test_no_sheet_has_a_phone_column(tmp_path):
    path = tmp_path / "book.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["Name", "City"])
    book.active.append(["Asha", "Pune"])
    book.create_sheet("Other").append(["Topic", "Owner"])
    book.save(path)
    with pytest.raises(InputError) as err:
        load_sheet(path)
    assert str(err.value) == (
        "book.xlsx: no sheet has a phone column (sheets: Sheet, Other); "
        "pick the sheet with --sheet and the column with --phone-column"
    )


def test_data_row_is_never_taken_for_the_header(tmp_path):
    # The header has no usual phone name; a data cell reading "Mobile" must not become it.
    path = write_xlsx(tmp_path / "c.xlsx", ["Name", "Tel", "Type"], ["Asha", 9876543210, "Mobile"])
    with pytest.raises(InputError) as err:
        load_sheet(path)
    assert str(err.value) == (
        "c.xlsx: no phone column found among headers: Name, Tel, Type; name it with --phone-column"
    )
    sheet = load_sheet(path, phone_column="Tel")
    assert (sheet.phone_column, sheet.frame.index.tolist()) == ("Tel", [2])


def test_single_column_sheet(tmp_path):
    path = write_xlsx(tmp_path / "c.xlsx", ["WhatsApp No."], [9876543210], ["98765 43211"])
    sheet = load_sheet(path)
    assert sheet.phone_column == "WhatsApp No."
    assert rows(sheet) == [[9876543210.0], ["98765 43211"]]


# --- CSV -----------------------------------------------------------------------------------


def test_csv_utf8_comma_values_stay_text():
    sheet = load_sheet(DATA / "sheet_utf8.csv")
    assert sheet.name is None
    assert sheet.phone_column == "Mobile"
    assert sheet.frame.index.tolist() == [2, 4]  # line 3 is blank
    assert rows(sheet) == [
        ["प्रिया", "919876543210.0", "Mumbai"],
        ["Ravi", "+91 98765 43211", "Pune"],
    ]


def test_csv_utf8_bom_semicolon():
    sheet = load_sheet(DATA / "sheet_utf8_bom.csv")
    assert list(sheet.frame.columns) == ["Name", "Mobile No.", "Amount"]  # no BOM in "Name"
    assert sheet.frame.index.tolist() == [2, 4]  # line 3 holds only separators and spaces
    assert rows(sheet) == [["Zoë", "9876543210", "1499"], ["Amit", "09876543212", "250,5"]]


def test_cp1252_tab_delimited_txt():
    sheet = load_sheet(DATA / "sheet_cp1252_tab.txt")
    assert sheet.phone_column == "Phone"
    assert rows(sheet) == [["José", "9876543210", "café – ok"], ["Ana", "9876543211", None]]


def test_csv_source_row_counts_lines_of_multiline_fields():
    # Asha's address spans lines 2-4, so Ravi is line 5; line 6 is blank; the last is line 7.
    sheet = load_sheet(DATA / "sheet_multiline.csv")
    assert sheet.frame.index.tolist() == [2, 5, 7]
    assert rows(sheet) == [
        ["Asha", "9876543210", "Flat 4,\nMG Road\nPune"],
        ["Ravi", "9876543211", "Delhi"],
        ["=1+1", "9876543212", 'said "hi"'],
    ]


def test_csv_ragged_lines_and_title_line(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b"Exported 2024-03-01,,\nName,Mobile\nAsha,9876543210,extra\nRavi\n")
    sheet = load_sheet(path)
    # header on line 2 is line 1; the stray third value gets the column's Excel letter
    assert list(sheet.frame.columns) == ["Name", "Mobile", "Column C"]
    assert sheet.frame.index.tolist() == [2, 3]
    assert rows(sheet) == [["Asha", "9876543210", "extra"], ["Ravi", None, None]]


# --- phone column ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["Name", "Mobile No."], "Mobile No."),
        (["Name", " PHONE-number "], " PHONE-number "),
        (["Contact #", "City"], "Contact #"),
        (["WhatsApp (India)", "City"], "WhatsApp (India)"),
        (["msisdn"], "msisdn"),
        (["Cell Phone", "Landline"], "Cell Phone"),
    ],
)
def test_detect_phone_column_one(headers, expected):
    assert detect_phone_column(headers) == expected


def test_detect_phone_column_none_and_several():
    with pytest.raises(InputError) as none:
        detect_phone_column(["Name", "City"])
    assert str(none.value) == (
        "no phone column found among headers: Name, City; name it with --phone-column"
    )
    with pytest.raises(InputError) as several:
        detect_phone_column(["Name", "Mobile", "WhatsApp No.", "Phone"])
    assert str(several.value) == (
        "several phone columns found: Mobile, WhatsApp No., Phone; pick one with --phone-column"
    )


def test_phone_header_names_are_normalised():
    assert all(name == "".join(filter(str.isalnum, name.casefold())) for name in PHONE_HEADER_NAMES)
    assert {"mobile", "mobileno", "phonenumber", "contactno", "msisdn"} <= PHONE_HEADER_NAMES


def test_load_reports_missing_and_ambiguous_phone_column(tmp_path):
    none = write_xlsx(tmp_path / "contacts.xlsx", ["Name", "City"], ["Asha", "Pune"])
    with pytest.raises(InputError) as err:
        load_sheet(none)
    assert str(err.value) == (
        "contacts.xlsx: no phone column found among headers: Name, City; "
        "name it with --phone-column"
    )
    several = tmp_path / "two.csv"
    several.write_text("Name,Mobile,Alt Phone,Phone\nAsha,9876543210,,9876543211\n")
    with pytest.raises(InputError) as err:
        load_sheet(several)
    assert str(err.value) == (
        "two.csv: several phone columns found: Mobile, Phone; pick one with --phone-column"
    )
    assert load_sheet(several, phone_column="Phone").phone_column == "Phone"


def test_explicit_phone_column(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("Name,Mobile,Alt Number\nAsha,9876543210,9876543211\n")
    assert load_sheet(path, phone_column="Alt Number").phone_column == "Alt Number"
    assert load_sheet(path, phone_column=" alt-number ").phone_column == "Alt Number"
    with pytest.raises(InputError) as err:
        load_sheet(path, phone_column="Tel")
    assert str(err.value) == (
        "c.csv: no column named 'Tel'; headers are: Name, Mobile, Alt Number; check --phone-column"
    )


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "bad_renamed_csv.xlsx",
            "bad_renamed_csv.xlsx: not an Excel workbook; if it is a CSV file rename it to "
            ".csv, else re-save it from Excel as .xlsx",
        ),
        (
            "bad_truncated.xlsx",
            "bad_truncated.xlsx: workbook is damaged or incomplete; re-save it from Excel as "
            ".xlsx or export it as .csv",
        ),
        (
            "bad_header_only.xlsx",
            "bad_header_only.xlsx: sheet 'Contacts' has a header row but no data rows; "
            "add contacts below it",
        ),
        (
            "bad_header_only.csv",
            "bad_header_only.csv: has a header row but no data rows; add contacts below it",
        ),
        (
            "bad_empty.xlsx",
            "bad_empty.xlsx: workbook has no data; put a header row and contacts in it",
        ),
        (
            "bad_blank.csv",
            "bad_blank.csv: file has only blank lines; put a header row and contacts in it",
        ),
        (
            "bad_undecodable.csv",
            "bad_undecodable.csv: text encoding not recognised (not UTF-8 or Windows-1252); "
            "save it as 'CSV UTF-8' and retry",
        ),
    ],
)
def test_bad_files(name, message):
    with pytest.raises(InputError) as err:
        load_sheet(DATA / name)
    assert str(err.value) == message


def test_missing_file_directory_extension_and_empty(tmp_path):
    cases = {
        tmp_path / "nope.xlsx": f"{tmp_path / 'nope.xlsx'}: file not found; check the path",
        tmp_path: f"{tmp_path}: is a directory; pass the .xlsx or .csv file inside it",
    }
    pdf = tmp_path / "contacts.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    cases[pdf] = "contacts.pdf: not a spreadsheet: use .xlsx, .xlsm, .xls or .csv"
    for empty_name in ("empty.csv", "empty.xlsx"):
        empty = tmp_path / empty_name
        empty.write_bytes(b"")
        cases[empty] = f"{empty_name}: file is empty (0 bytes); export the sheet again"
    for path, message in cases.items():
        with pytest.raises(InputError) as err:
            load_sheet(path)
        assert str(err.value) == message


def test_empty_named_sheet(tmp_path):
    path = tmp_path / "c.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["Name", "Mobile"])
    book.active.append(["Asha", "9876543210"])
    book.create_sheet("Blank")
    book.save(path)
    with pytest.raises(InputError) as err:
        load_sheet(path, sheet="Blank")
    assert str(err.value) == "c.xlsx: sheet 'Blank' is empty; put a header row and contacts in it"


def test_input_file_is_not_modified(tmp_path):
    for name in ("sheet_basic.xlsx", "sheet_multiline.csv"):
        path = tmp_path / name
        shutil.copy(DATA / name, path)
        os.utime(path, (1_000_000_000, 1_000_000_000))
        before = file_sha256(path)
        sheet = load_sheet(path)
        assert sheet.sha256 == before == file_sha256(path)
        assert os.stat(path).st_mtime == 1_000_000_000
        assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no lock/temp files
        path.unlink()


def test_file_sha256_matches_hashlib(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc" * 1_000_000)
    assert file_sha256(path) == hashlib.sha256(b"abc" * 1_000_000).hexdigest()


def test_gc_paused_restores_the_collector_as_it_was() -> None:
    import gc

    from pipeline.read.rows import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a caller who had it off keeps it off
    finally:
        gc.enable()


def test_sheet_cells_are_parsed_with_the_collector_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from pipeline.read import rows as sheet_readers

    seen: list[bool] = []
    real = sheet_readers.sheet_rows

    def recording(label: str, book: object, name: str) -> list[list]:
        seen.append(gc.isenabled())
        return real(label, book, name)

    monkeypatch.setattr("pipeline.read.sheet.sheet_rows", recording)
    loaded = load_sheet(DATA / "sheet_basic.xlsx")
    assert len(loaded.frame) > 0
    assert seen and not any(seen)
    assert gc.isenabled()
