"""Opt-out / DND suppression lists (docs/provider-api.md, "DND and opt-outs").

Numbers are read as in docs/contract.md, "Phone numbers".
"""

from __future__ import annotations

import codecs
from pathlib import Path

import openpyxl
import pytest

from pipeline.errors import InputError
from pipeline.validate.suppress import Suppression, load_suppression
from tests.helpers import DATA

# The same four people in every format below, written the ways people write numbers.
EXPECTED = frozenset({"+919876543210", "+918765432109", "+917654321098", "+917012345678"})


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(path: Path, *rows: list[object], sheets: dict[str, list] | None = None) -> Path:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    for title, sheet_rows in (sheets or {}).items():
        sheet = book.create_sheet(title)
        for row in sheet_rows:
            sheet.append(row)
    book.save(path)
    return path


@pytest.fixture
def txt_list(tmp_path: Path) -> Path:
    return write(
        tmp_path / "optouts.txt",
        "# Opt-outs collected in March\n"
        "+91 98765 43210\n"
        "\n"
        "08765432109   # asked on the phone\n"
        "   \n"
        "0091-7654-321-098\n"
        "7012345678\n"
        "9876543210  # again, a duplicate\n"
        "12345\n"  # too short: ignored
        "  # indented comment\n"
        "call Ramesh back\n",  # not a number: ignored
    )


@pytest.fixture
def csv_with_header(tmp_path: Path) -> Path:
    return write(
        tmp_path / "dnd.csv",
        "Name,Mobile No.,Notes\n"
        'Asha,"+91 98765-43210",stop\n'
        "Ravi,919876543210.0,duplicate as a numeric-looking cell\n"
        "Meena,(0) 87654 32109,\n"
        "Imran,7654321098,\n"
        "Nobody,,no number: not an entry\n"
        "Office,022 2345 6789,landline: ignored\n"
        "Kiran,70123 45678,\n",
    )


@pytest.fixture
def xlsx_numeric(tmp_path: Path) -> Path:
    return write_xlsx(
        tmp_path / "optouts.xlsx",
        ["Opt-out list, exported 2026-03-01"],  # a title above the header
        [],
        ["Customer", "Phone Number", "Date"],
        ["Asha", 919876543210, "2026-02-01"],
        ["Meena", 8765432109, None],
        ["Imran", 917654321098.0, None],
        ["Kiran", 7012345678, None],
        ["Ravi", 9876543210, None],
        ["Bad", 12345, None],  # ignored
    )


@pytest.fixture
def bare_csv(tmp_path: Path) -> Path:
    return write(
        tmp_path / "bare.csv",
        "9876543210\n+918765432109\n\n07654321098\n917012345678\n98765\n",
    )


def test_four_formats_give_the_same_numbers(txt_list, csv_with_header, xlsx_numeric, bare_csv):
    for path, ignored in ((txt_list, 2), (csv_with_header, 1), (xlsx_numeric, 1), (bare_csv, 1)):
        result = load_suppression([path])
        assert result == Suppression(numbers=EXPECTED, sources=(str(path),), ignored=ignored)


def test_several_files_are_merged(txt_list, csv_with_header, tmp_path):
    extra = write(tmp_path / "more.txt", "9123456789\n")
    result = load_suppression([txt_list, str(csv_with_header), extra])
    assert result.numbers == EXPECTED | {"+919123456789"}
    assert result.sources == (str(txt_list), str(csv_with_header), str(extra))
    assert result.ignored == 3


def test_txt_encodings(tmp_path):
    lines = "# liste\n+91 98765 43210\n8765432109\n"
    for name, data in [
        ("bom.txt", codecs.BOM_UTF8 + lines.encode()),
        ("utf16.txt", lines.encode("utf-16")),
        ("cp1252.txt", ("# Jos\u00e9's list\r\n" + lines).encode("cp1252")),
    ]:
        path = tmp_path / name
        path.write_bytes(data)
        result = load_suppression([path])
        assert (result.numbers, result.ignored) == ({"+919876543210", "+918765432109"}, 0)


def test_bare_xlsx_with_numeric_cells(tmp_path):
    path = write_xlsx(
        tmp_path / "bare.xlsx",
        [9876543210],
        [918765432109.0],
        [None],
        ["07654321098"],
        [7012345678],
        [12],
    )
    assert load_suppression([path]) == Suppression(EXPECTED, (str(path),), 1)


def test_bare_list_in_another_column_and_on_a_later_sheet(tmp_path):
    # Sheet1 is empty; the list sits in column C of the next sheet.
    path = write_xlsx(
        tmp_path / "later.xlsx",
        sheets={"DND": [[None, None, 9876543210], [None, None, 8765432109]]},
    )
    result = load_suppression([path])
    assert result.numbers == {"+919876543210", "+918765432109"}


def test_bare_list_of_one_number(tmp_path):
    path = write(tmp_path / "one.csv", "+91 98765 43210\n")
    assert load_suppression([path]).numbers == {"+919876543210"}


def test_single_column_under_a_title_that_is_not_a_phone_header(tmp_path):
    path = write(tmp_path / "titled.csv", "Opted out\n9876543210\n8765432109\nn/a\n")
    result = load_suppression([path])
    assert result.numbers == {"+919876543210", "+918765432109"}
    assert result.ignored == 1  # "n/a"; the title is not an entry


def test_semicolon_csv_with_header(tmp_path):
    path = write(tmp_path / "semi.csv", "Name;Contact\nAsha;98765 43210\nRavi;+91 8765432109\n")
    assert load_suppression([path]).numbers == {"+919876543210", "+918765432109"}


def test_several_phone_columns_are_all_suppressed(tmp_path):
    path = write(
        tmp_path / "two.csv",
        "Name,Mobile,WhatsApp\nAsha,9876543210,8765432109\nRavi,,7654321098\nX,bad,\n",
    )
    result = load_suppression([path])
    assert result.numbers == {"+919876543210", "+918765432109", "+917654321098"}
    assert result.ignored == 1


def test_no_phone_column_among_several(tmp_path):
    path = write(tmp_path / "names.csv", "Name,City\nAsha,Pune\nRavi,Delhi\n")
    with pytest.raises(InputError) as caught:
        load_suppression([path])
    assert str(caught.value) == (
        "--suppress file names.csv: no phone column among Name, City; head the column of "
        "numbers 'Mobile', or save the numbers one per line in a .txt"
    )


def test_bare_list_in_two_columns_is_refused(tmp_path):
    path = write(tmp_path / "two.csv", "9876543210,Asha\n8765432109,Ravi\n")
    with pytest.raises(InputError) as caught:
        load_suppression([path])
    assert str(caught.value) == (
        "--suppress file two.csv: no phone column among 9876543210, Asha; head the column of "
        "numbers 'Mobile', or save the numbers one per line in a .txt"
    )


def test_header_without_rows_passes_on_the_reader_message(tmp_path):
    path = write(tmp_path / "empty.csv", "Name,Mobile\n")
    with pytest.raises(InputError) as caught:
        load_suppression([path])
    assert str(caught.value) == (
        "--suppress file empty.csv: has a header row but no data rows; add contacts below it"
    )


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.txt", ""),
        ("comments.txt", "# nobody has opted out yet\n\n"),
        ("empty.csv", ""),
        ("mobile.csv", "Mobile\n"),
        ("blank.csv", "\n\n"),
    ],
)
def test_no_numbers_at_all(tmp_path, name, content):
    path = write(tmp_path / name, content)
    with pytest.raises(InputError) as caught:
        load_suppression([path])
    assert str(caught.value) == (
        f"--suppress file {name}: has no numbers; check it is the right file, "
        "or leave out --suppress"
    )


def test_no_valid_number(tmp_path):
    path = write(tmp_path / "junk.txt", "12345\nhello\n022 2345 6789\n")
    with pytest.raises(InputError) as caught:
        load_suppression([path])
    assert str(caught.value) == (
        "--suppress file junk.txt: none of its 3 entries is an Indian mobile number; "
        "check it is the right file, or leave out --suppress"
    )


def test_missing_file(tmp_path):
    path = tmp_path / "nope.txt"
    with pytest.raises(InputError) as caught:
        load_suppression([path])
    assert str(caught.value) == f"--suppress file {path}: not found; check the path"


def test_directory(tmp_path):
    with pytest.raises(InputError) as caught:
        load_suppression([tmp_path])
    assert str(caught.value) == (
        f"--suppress file {tmp_path}: is a directory; pass the list file inside it"
    )


def test_unknown_kind_of_file(tmp_path):
    path = write(tmp_path / "list.json", "[]")
    with pytest.raises(InputError) as caught:
        load_suppression([path])
    assert str(caught.value) == (
        "--suppress file list.json: not a list: use .txt (one number per line), .csv or .xlsx"
    )


def test_unreadable_file(tmp_path, monkeypatch):
    path = write(tmp_path / "locked.txt", "9876543210\n")

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    # Run as root, chmod 000 would not stop the read: refuse it at the file system call.
    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(InputError) as caught:
        load_suppression([path])
    assert str(caught.value) == (
        f"--suppress file {path}: cannot read (Permission denied); check its permissions"
    )


def test_undecodable_txt(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"9876543210\n\x81\x8d\x8f\x90\x9d\n")  # undefined in cp1252, bad UTF-8
    with pytest.raises(InputError) as caught:
        load_suppression([path])
    assert str(caught.value) == (
        "--suppress file bad.txt: text encoding not recognised (not UTF-8 or Windows-1252); "
        "save it as UTF-8 and retry"
    )


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        (
            "bad_truncated.xlsx",
            "workbook is damaged or incomplete; re-save it from Excel as "
            ".xlsx or export it as .csv",
        ),
        (
            "bad_renamed_csv.xlsx",
            "not an Excel workbook; if it is a CSV file rename it to .csv, "
            "else re-save it from Excel as .xlsx",
        ),
        (
            "bad_undecodable.csv",
            "text encoding not recognised (not UTF-8 or Windows-1252); "
            "save it as 'CSV UTF-8' and retry",
        ),
    ],
)
def test_unreadable_sheets_keep_the_reader_message(fixture, message):
    with pytest.raises(InputError) as caught:
        load_suppression([DATA / fixture])
    assert str(caught.value) == f"--suppress file {fixture}: {message}"


def test_first_bad_file_stops_the_load(txt_list, tmp_path):
    with pytest.raises(InputError, match=r"^--suppress file .*nope\.csv: not found"):
        load_suppression([txt_list, tmp_path / "nope.csv"])


def test_no_files_is_an_empty_suppression():
    assert load_suppression([]) == Suppression(frozenset(), (), 0)
