"""Build the shipped example: input/contacts.xlsx (sheet "Contacts") and input/template.txt.

Run from the repository root: `.venv/bin/python scripts/make_example_sheet.py`.
Every phone number is made up. The rows exercise what a real sheet throws at smsbatch:
numbers stored as numbers, numbers written every usual way, invalid ones (each kind of
reason), a duplicate in another format, a Hindi name (UCS-2), an empty Amount, a fully
blank row, and a pasted formula stored as text.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import openpyxl
from openpyxl.styles import Font

HEADERS = ("Name", "Mobile No.", "City", "Order ID", "Amount", "Ship Date")
PASTED_FORMULA = '=HYPERLINK("http://example.com","click")'
BLANK = None  # marks the fully blank row

# (name, mobile, city, amount); order IDs and ship dates are filled in below.
ROWS: list[tuple[str, object, str, float | int | None] | None] = [
    ("Aarav Sharma", 9876543210, "Mumbai", 1499),  # 10-digit number cell
    ("Vivaan Gupta", 919812345670, "New Delhi", 250.5),  # 12-digit number cell (91...)
    ("Ananya Iyer", "+91 99001 23456", "Chennai", 799),
    ("Diya Patel", "098250-12345", "Ahmedabad", 1250),
    ("Arjun Reddy", "(+91) 90000 12345", "Hyderabad", 349),
    ("Ishaan Mehta", "0091 9819012345", "Pune", 2199),
    ("Kavya Menon", "9447012345", "Kochi", 599),
    ("Rohan Das", "+91-98300-12345", "Kolkata", 1899),
    ("Saanvi Joshi", 7020012345, "Nagpur", 450),
    ("Aditya Singh", "91 6390012345", "Lucknow", 999),
    ("Meera Krishnan", 8050012345, "Bengaluru", 1299),
    ("Kabir Malhotra", "98100 54321", "New Delhi", 650),
    ("Anika Bose", "+919831054321", "Kolkata", 3499),
    ("Vihaan Kulkarni", "9890 123 456", "Pune", 199),
    ("Nikhil Verma", "9.19876E+11", "Jaipur", 899),  # number mangled by Excel: not a number
    ("Reyansh Agarwal", "98765432", "Indore", 1599),  # too short
    ("Nisha Kapoor", "022 2345 6789", "Mumbai", 749),  # Mumbai landline
    ("John Miller", "+1 415 555 0100", "San Francisco", 2999),  # not an Indian number
    ("Sneha Rao", "98450ABCDE", "Mangaluru", 399),  # letters
    ("Farhan Qureshi", "9167012345", "Mumbai", 1149),
    BLANK,
    ("प्रिया", "+91 97690 12345", "Mumbai", 1799),  # Hindi name: UCS-2 message
    (PASTED_FORMULA, "9920012345", "Mumbai", 549),  # text that looks like a formula
    ("Harsh Vardhan", "+91 98765 43210", "Thane", 2499),  # duplicate of Aarav Sharma's number
    ("Pooja Shetty", "9741012345", "Udupi", None),  # empty Amount: missing field
    ("Lakshmi Narayanan", "8939012345", "Madurai", 1349),
    ("Gurpreet Kaur", "+91 98140 12345", "Amritsar", 899),
    ("Mohammed Irfan", "9845054321", "Bengaluru", 1999),
    ("Sanjay Patil", "9823012345", "Kolhapur", 299),
    ("Fatima Sheikh", "7506012345", "Navi Mumbai", 1099),
    ("Rahul Nair", "9496012345", "Thiruvananthapuram", 449),
    ("Deepika Choudhary", "9414012345", "Jodhpur", 2749),
    ("Amit Tiwari", "+91 94150 12345", "Prayagraj", 699),
    ("Sunita Yadav", "6200012345", "Patna", 1549),
    ("Karthik Subramanian", "9003012345", "Coimbatore", 849),
    ("Neha Bhatt", "9825054321", "Vadodara", 3299),
    ("Vikram Rathore", "9829012345", "Udaipur", 599),
    ("Anjali Mishra", "9935012345", "Varanasi", 1199),
    ("Suresh Pillai", "9387012345", "Kollam", 2099),
    ("Zoya Khan", "9769054321", "Mumbai", 949),
]


def build(root: Path) -> tuple[Path, Path]:
    """Write the example workbook and template under root/input; return both paths."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Contacts"
    sheet.append(HEADERS)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    first_ship = dt.date(2025, 3, 3)
    for i, row in enumerate(ROWS):
        if row is BLANK:
            sheet.append([])  # a fully blank row in the middle of the data
            continue
        name, mobile, city, amount = row
        ship = first_ship + dt.timedelta(days=i % 9)
        sheet.append([name, mobile, city, f"ORD-{10231 + i}", amount, ship])
        excel_row = sheet.max_row
        sheet.cell(excel_row, 6).number_format = "dd-mm-yyyy"
        if isinstance(name, str) and name.startswith("="):
            # A user's pasted text, not a formula: store it as a string cell.
            sheet.cell(excel_row, 1).data_type = "s"
    for letter, width in zip("ABCDEF", (24, 18, 20, 12, 10, 12), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"

    out_dir = root / "input"
    out_dir.mkdir(parents=True, exist_ok=True)
    workbook_path = out_dir / "contacts.xlsx"
    book.save(workbook_path)
    template_path = out_dir / "template.txt"
    template_path.write_text(
        "Hi {Name}, your order {Order ID} of Rs {Amount} ships on {Ship Date:%d %b %Y}."
        " - Acme Stores\n",
        encoding="utf-8",
    )
    return workbook_path, template_path


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    for written in build(root):
        print(written)
