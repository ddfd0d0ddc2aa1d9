"""Regenerate the sheet-reader fixtures in tests/data (sheet_*.xlsx/csv/txt, bad_*).

Run: `.venv/bin/python tests/data/make_fixtures.py`. The files are committed; this script
documents exactly what each holds. Phone numbers are made up.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import openpyxl

HERE = Path(__file__).resolve().parent


def basic_xlsx(path: Path) -> None:
    """Sheet "Contacts": numbers as number cells, dates, a blank and a whitespace row,
    a duplicate header, data under an empty header, an empty-headed column of spaces."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Contacts"
    ws.append(["  Name\u00a0", "Mobile", "Joined", None, "Name", None])  # row 1: header
    ws.append(["Asha", 919876543210, dt.date(2024, 3, 2), "vip", "A. K.", None])  # row 2
    ws.append(["Ravi", 9876543211, dt.datetime(2024, 3, 5, 14, 30), None, None, "\u00a0"])
    ws.append([])  # row 4: fully blank
    ws.append(["=1+1", "+91 98765 43212", None, None, None, None])  # row 5
    ws.append([" \u00a0", None, None, None, None, None])  # row 6: whitespace only
    ws["A5"].data_type = "s"  # text that looks like a formula, stored as text
    ws["C2"].number_format = "dd/mm/yyyy"
    ws["C3"].number_format = "dd/mm/yyyy hh:mm"
    book.save(path)


def title_multi_xlsx(path: Path) -> None:
    """Sheets Notes (no phone column), Contacts (title row above the header), Archive,
    Secret (hidden, has a phone column)."""
    book = openpyxl.Workbook()
    notes = book.active
    notes.title = "Notes"
    notes.append(["Topic", "Owner"])
    notes.append(["March campaign", "Meena"])
    secret = book.create_sheet("Secret")
    secret.sheet_state = "hidden"
    secret.append(["Name", "Mobile"])
    secret.append(["Hidden", 9000000001])
    contacts = book.create_sheet("Contacts")
    contacts.append(["Customer list - March 2024"])  # row 1: title
    contacts.append([])  # row 2: blank
    contacts.append(["Name", "Phone Number", "City"])  # row 3: header
    contacts.append(["Meena", "98765 43210", "Pune"])  # row 4
    contacts.append(["Imran", 9123456789, "Delhi"])  # row 5
    archive = book.create_sheet("Archive")
    archive.append(["Name", "Mobile No."])
    archive.append(["Old", "9988776655"])
    book.save(path)


def header_only_xlsx(path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.title = "Contacts"
    book.active.append(["Name", "Mobile"])
    book.active.append([])
    book.save(path)


def empty_xlsx(path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.title = "Sheet1"
    book.save(path)


def write_bytes(name: str, data: bytes) -> None:
    (HERE / name).write_bytes(data)


def main() -> None:
    basic_xlsx(HERE / "sheet_basic.xlsx")
    title_multi_xlsx(HERE / "sheet_multi.xlsx")
    header_only_xlsx(HERE / "bad_header_only.xlsx")
    empty_xlsx(HERE / "bad_empty.xlsx")

    write_bytes(
        "sheet_utf8.csv",
        (
            "Name,Mobile,City\r\nप्रिया,919876543210.0,Mumbai\r\n\r\nRavi,+91 98765 43211,Pune\r\n"
        ).encode(),
    )
    write_bytes(
        "sheet_utf8_bom.csv",
        (
            "\ufeffName;Mobile No.;Amount\nZoë;9876543210;1499\n;  ;\nAmit;09876543212;250,5\n"
        ).encode(),
    )
    write_bytes(
        "sheet_cp1252_tab.txt",
        "Name\tPhone\tNote\nJosé\t9876543210\tcafé – ok\nAna\t9876543211\t\n".encode("cp1252"),
    )
    write_bytes(
        "sheet_multiline.csv",
        b"Name,Mobile,Address\n"
        b'Asha,9876543210,"Flat 4,\nMG Road\nPune"\n'
        b"Ravi,9876543211,Delhi\n"
        b"\n"
        b'"=1+1",9876543212,"said ""hi"""\n',
    )
    write_bytes("bad_header_only.csv", b"Name,Mobile\r\n\r\n")
    write_bytes("bad_blank.csv", b"\r\n  \r\n,,\r\n")
    write_bytes("bad_undecodable.csv", b"Name,Mobile\n\x81\x8d\x90,9876543210\n")
    write_bytes("bad_renamed_csv.xlsx", b"Name,Mobile\nAsha,9876543210\n")
    buffer = io.BytesIO()
    basic = (HERE / "sheet_basic.xlsx").read_bytes()
    buffer.write(basic[: len(basic) // 2])
    write_bytes("bad_truncated.xlsx", buffer.getvalue())


if __name__ == "__main__":
    main()
