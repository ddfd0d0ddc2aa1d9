"""Template parsing and rendering (docs/contract.md, "Template")."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import InputError
from pipeline.merge.template import (
    MissingValue,
    Placeholder,
    Template,
    is_empty,
    load_template,
    parse_template,
    render_value,
)

HEADERS = ["Name", "Mobile No.", "Ship Date", "Amount", "Time: slot"]


# ---- parsing ----------------------------------------------------------------------------


def test_parse_headers_with_spaces_dots_specs_and_escapes():
    text = "Hi {Name}, {{ok}} {Mobile No.} {Amount:.2f} on {Ship Date:%d %b %Y} at {Time: slot}"
    template = parse_template(text, HEADERS)
    assert template.text == text
    assert template.parts == (
        "Hi ",
        Placeholder("Name"),
        ", {ok} ",
        Placeholder("Mobile No."),
        " ",
        Placeholder("Amount", ".2f"),
        " on ",
        Placeholder("Ship Date", "%d %b %Y"),
        " at ",
        Placeholder("Time: slot"),
    )


def test_spec_is_after_the_last_colon_unless_the_whole_text_is_a_header():
    t = parse_template("{Time: slot:%H}|{Time: slot}|{ Amount : ,.2f }|{Amount:}", HEADERS)
    assert t.parts == (
        Placeholder("Time: slot", "%H"),
        "|",
        Placeholder("Time: slot"),
        "|",
        Placeholder("Amount", ",.2f"),
        "|",
        Placeholder("Amount"),
    )


def test_a_spec_may_contain_colons_when_the_column_before_it_is_a_header():
    t = parse_template("{Ship Date:%H:%M}{Time: slot:%H:%M:%S}", HEADERS)
    assert t.parts == (Placeholder("Ship Date", "%H:%M"), Placeholder("Time: slot", "%H:%M:%S"))
    assert t.render_row({"Ship Date": dt.datetime(2026, 1, 5, 9, 7), "Time: slot": "x"}) == "09:07x"
    with pytest.raises(InputError, match=r"unknown placeholder \{Slot:%H:%M\};"):
        parse_template("{Slot:%H:%M}", HEADERS)


def test_whitespace_is_trimmed_inside_braces_and_in_headers():
    t = parse_template("{  Ship Date  }", [" Ship Date ", "Name"])
    # The column is the header as given, so the row's own key still finds the cell.
    assert t.parts == (Placeholder(" Ship Date "),)
    assert t.render_row({" Ship Date ": dt.date(2026, 1, 5)}) == "2026-01-05"


def test_escaped_braces_around_a_placeholder():
    t = parse_template("{{{Name}}} }}{{", HEADERS)
    assert t.parts == ("{", Placeholder("Name"), "} }{")
    assert t.columns == ["Name"]


def test_columns_are_distinct_in_first_use_order():
    t = parse_template("{Amount} {Name} {Amount:.1f} {Mobile No.} {Name}", HEADERS)
    assert t.columns == ["Amount", "Name", "Mobile No."]


def test_text_without_placeholders():
    t = parse_template("100% off today", HEADERS)
    assert t.parts == ("100% off today",)
    assert t.columns == []
    assert t.render({}, 2) == (["100% off today", "100% off today"], [None, None])


def test_unknown_placeholder_message():
    with pytest.raises(InputError) as exc:
        parse_template("Hi {Nmae}", ["Name", "Mobile", "Amount"], source="template.txt")
    assert str(exc.value) == (
        "template.txt: unknown placeholder {Nmae}; the sheet's headers are: Name, Mobile, "
        "Amount; fix the template or the header"
    )


def test_all_unknown_placeholders_are_listed_once():
    with pytest.raises(InputError) as exc:
        parse_template("{Nmae} {Amout:.2f} {Nmae} {Name}", ["Name", "Amount"])
    assert str(exc.value) == (
        "template: unknown placeholders {Nmae}, {Amout:.2f}; the sheet's headers are: "
        "Name, Amount; fix the template or the header"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Hi\nthere {Name",
            't.txt: lone "{" at line 2, column 7; close the placeholder with "}" '
            'or write "{{" for a literal "{"',
        ),
        (
            "{a{Name}",
            't.txt: lone "{" at line 1, column 1; close the placeholder with "}" '
            'or write "{{" for a literal "{"',
        ),
        ("Hi {Name} :}", 't.txt: lone "}" at line 1, column 12; write "}}" for a literal "}"'),
        ("{{Name}", 't.txt: lone "}" at line 1, column 7; write "}}" for a literal "}"'),
        (
            "a\nb\nc {}",
            't.txt: empty placeholder "{}" at line 3, column 3; put a column header inside '
            'the braces, or write "{{}}" for literal braces',
        ),
        (
            "{   }",
            't.txt: empty placeholder "{}" at line 1, column 1; put a column header inside '
            'the braces, or write "{{}}" for literal braces',
        ),
    ],
)
def test_malformed_braces(text, message):
    with pytest.raises(InputError) as exc:
        parse_template(text, HEADERS, source="t.txt")
    assert str(exc.value) == message


# ---- load_template ----------------------------------------------------------------------


def test_load_template_strips_one_trailing_newline_bom_and_crlf(tmp_path):
    path = tmp_path / "template.txt"
    path.write_bytes("\ufeffDear {Name},\r\nRs. {Amount}\r\n\r\n".encode())
    t = load_template(path, HEADERS)
    assert t.text == "Dear {Name},\nRs. {Amount}\n"
    assert t.render_row({"Name": "Asha", "Amount": 10.0}) == "Dear Asha,\nRs. 10\n"


def test_load_template_missing_file(tmp_path):
    path = tmp_path / "nope.txt"
    with pytest.raises(InputError) as exc:
        load_template(path, HEADERS)
    assert str(exc.value) == f"{path}: template file not found; check the --template path"


@pytest.mark.parametrize("content", [b"", b"  \n\t\n", b"\n"])
def test_load_template_empty(tmp_path, content):
    path = tmp_path / "t.txt"
    path.write_bytes(content)
    with pytest.raises(InputError) as exc:
        load_template(path, HEADERS)
    assert str(exc.value) == f"{path}: the template is empty; write the message text in it"


def test_load_template_not_utf8(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("Café {Name}".encode("cp1252"))
    with pytest.raises(InputError) as exc:
        load_template(path, HEADERS)
    assert str(exc.value) == (
        f"{path}: not valid UTF-8 (byte 0xe9 at offset 3); save the template as UTF-8 and rerun"
    )


def test_load_template_errors_name_the_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("Hi {Nmae}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"^.*t\.txt: unknown placeholder \{Nmae\}; "):
        load_template(path, HEADERS)
    with pytest.raises(InputError, match="is a folder; give the template file's path"):
        load_template(tmp_path, HEADERS)


# ---- values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1499, "1499"),
        (1499.0, "1499"),
        (919876543210.0, "919876543210"),
        (-0.0, "0"),
        (250.5, "250.5"),
        (0.1 + 0.2, "0.3"),  # 15 significant digits, as Excel shows it
        (np.int64(7), "7"),
        (np.float64(2.0), "2"),
        (Decimal("1499.00"), "1499"),
        (Decimal("250.50"), "250.50"),
        (True, "TRUE"),
        (np.bool_(False), "FALSE"),
        (dt.date(2026, 1, 5), "2026-01-05"),
        (dt.datetime(2026, 1, 5, 10, 30, 59), "2026-01-05 10:30"),
        (dt.datetime(2026, 1, 5), "2026-01-05"),  # a date cell read as a datetime
        (pd.Timestamp("2026-01-05 10:30"), "2026-01-05 10:30"),
        (pd.Timestamp("2026-01-05"), "2026-01-05"),
        (np.datetime64("2026-01-05T10:30"), "2026-01-05 10:30"),
        (dt.time(9, 5, 30), "09:05"),
        ("  Asha Rao \n", "Asha Rao"),
        ("line1\nline2", "line1\nline2"),
        ("=1+1", "=1+1"),
        (None, ""),
        (float("nan"), ""),
        (pd.NaT, ""),
        (pd.NA, ""),
        ("", ""),
        (" \u00a0\t", ""),
    ],
)
def test_default_rendering(value, text):
    assert render_value(value) == text
    assert is_empty(value) is (text == "")


@pytest.mark.parametrize(
    ("value", "spec", "text"),
    [
        (1499.5, ".2f", "1499.50"),
        (1499.0, ",d", "1,499"),  # Excel numbers are floats: `d` still works when whole
        (1499, ",.2f", "1,499.00"),
        (0.255, ".1%", "25.5%"),
        ("1499.5", ".2f", "1499.50"),  # CSV cells are strings
        (" 1499 ", ",d", "1,499"),
        ("1e3", ",.0f", "1,000"),
        (dt.date(2026, 1, 5), "%d %b %Y", "05 Jan 2026"),
        (dt.datetime(2026, 1, 5, 18, 45), "%d/%m %I:%M %p", "05/01 06:45 PM"),
        (pd.Timestamp("2026-01-05 10:30"), "%H:%M", "10:30"),
        (dt.time(9, 5), "%I:%M %p", "09:05 AM"),
        ("2026-01-05", "%d %b %Y", "05 Jan 2026"),
        ("2026-01-05 10:30", "%d/%m %H:%M", "05/01 10:30"),
        ("abcdefgh", ".3", "abc"),  # string specs work on text
        ("Asha", ">6", "  Asha"),
        # Anything that cannot be formatted shows as written.
        ("abc", ".2f", "abc"),
        ("05/01/2026", "%d %b", "05/01/2026"),
        (dt.date(2026, 1, 5), ".2f", "2026-01-05"),
        (1499.5, "%d %b", "1499.5"),
        (True, ".2f", "TRUE"),
        (250.5, "q", "250.5"),
        ("abc", ".0", "abc"),  # a filled cell never renders empty
        (None, ".2f", ""),
        (float("nan"), ".2f", ""),
        ("  ", "%d", ""),
    ],
)
def test_rendering_with_spec(value, spec, text):
    assert render_value(value, spec) == text


# ---- rows and columns -------------------------------------------------------------------


def test_render_row_and_missing_field():
    t = parse_template("Hi {Name}, Rs.{Amount:.2f} by {Ship Date}", HEADERS)
    row = {"Name": " Asha ", "Amount": 250.5, "Ship Date": dt.date(2026, 1, 5)}
    assert t.render_row(row) == "Hi Asha, Rs.250.50 by 2026-01-05"
    with pytest.raises(MissingValue) as exc:
        t.render_row({"Name": "Asha", "Amount": float("nan"), "Ship Date": None})
    assert exc.value.column == "Amount"
    with pytest.raises(MissingValue) as exc:
        t.render_row({"Name": "Asha", "Amount": 1})  # an absent key is an empty cell
    assert exc.value.column == "Ship Date"


def test_render_reports_first_used_empty_column():
    t = parse_template("{Amount} {Name} {Amount:.1f} {Ship Date}", HEADERS)
    columns = {
        "Name": ["A", "", "C", None],
        "Amount": [1.0, 2.0, None, float("nan")],
        "Ship Date": [None, "2026-01-05", "2026-01-06", None],
    }
    messages, missing = t.render(columns, 4)
    assert messages == [None, None, None, None]
    assert missing == ["Ship Date", "Name", "Amount", "Amount"]
    messages, missing = t.render({k: v[:1] + ["x"] for k, v in columns.items()}, 2)
    assert messages == [None, "x x x x"]
    assert missing == ["Ship Date", None]


def test_render_escapes_percent_and_accepts_pandas_and_numpy_columns():
    t = parse_template("100% {Name} {Ship Date:%d %b} {Amount}", HEADERS)
    columns = {
        "Name": pd.Series(["Asha", None], dtype="str"),
        "Ship Date": np.array(["2026-01-05T10:30", "2026-02-01"], dtype="datetime64[ns]"),
        "Amount": pd.Series([1499.0, 2.5]),
    }
    assert t.render(columns, 2) == (["100% Asha 05 Jan 1499", None], [None, "Name"])


def test_render_rejects_bad_columns():
    t = parse_template("{Name} {Amount}", HEADERS)
    with pytest.raises(ValueError, match="no data given for column 'Amount'"):
        t.render({"Name": ["a"]}, 1)
    with pytest.raises(ValueError, match="column 'Amount' has 2 values, expected 1"):
        t.render({"Name": ["a"], "Amount": [1, 2]}, 1)
    assert t.render({"Name": [], "Amount": []}, 0) == ([], [])


def _row_by_row(t: Template, columns: dict[str, list[object]], n: int):
    messages, missing = [], []
    for i in range(n):
        try:
            messages.append(t.render_row({c: v[i] for c, v in columns.items()}))
            missing.append(None)
        except MissingValue as exc:
            messages.append(None)
            missing.append(exc.column)
    return messages, missing


def test_vectorised_render_equals_render_row_on_a_mixed_table():
    n = 400
    kinds = [
        "Asha",
        "  Ravi ",
        "",
        None,
        float("nan"),
        1499.0,
        250.5,
        7,
        True,
        "1499.5",
        dt.date(2026, 1, 5),
        dt.datetime(2026, 1, 5, 10, 30),
        pd.Timestamp("2026-02-01"),
        pd.NaT,
        "2026-03-04",
        Decimal("2.50"),
        np.int64(3),
        np.float64(4.0),
        dt.time(8, 0),
    ]
    columns = {
        "Name": [kinds[(i * 7) % len(kinds)] for i in range(n)],
        "Amount": [[1499.0, 250.5, float("nan"), 3.0][i % 4] for i in range(n)],  # float path
        "Ship Date": [kinds[(i * 5 + 3) % len(kinds)] for i in range(n)],
        "Mobile No.": [f" 98765{i:05d} " if i % 9 else "" for i in range(n)],  # str fast path
        "Time: slot": [[1, 1.0, True][i % 3] for i in range(n)],  # 1 == 1.0 == True
    }
    t = parse_template(
        "{Name} {Amount} {Amount:,.2f} {Ship Date:%d %b} {Ship Date} {Mobile No.} "
        "{Name:.3} {Time: slot} {Time: slot:.1f} {Amount:d}",
        HEADERS,
    )
    vectorised = t.render(columns, n)
    assert vectorised == _row_by_row(t, columns, n)
    messages, missing = vectorised
    assert messages[11] == "Ravi 3 3.00 Ravi Ravi 9876500011 Rav TRUE TRUE 3"
    assert messages[28] == "250.5 1499 1,499.00 05 Jan 2026-01-05 9876500028 2.5e+02 1 1.0 1499"
    assert missing[2:4] == ["Amount", "Name"]
    # Row 6: Name and Amount are both NaN; Name is used first.
    assert is_empty(columns["Name"][6]) and is_empty(columns["Amount"][6])
    assert (messages[6], missing[6]) == (None, "Name")
    assert (messages[9], missing[9]) == (None, "Mobile No.")
    assert sum(m is None for m in messages) == sum(c is not None for c in missing) > 0
    assert {c for c in missing if c} == {"Name", "Amount", "Ship Date", "Mobile No."}


@pytest.mark.parametrize(
    "values",
    [
        [1499.0, None, 250.5, float("nan"), 1499.0] * 400,  # repeats: one render per value
        [i + 0.5 if i % 3 else None for i in range(2000)],  # mostly distinct: rendered one by one
        [Decimal("1.50"), Decimal("1.5"), None] * 700,  # equal, yet they render differently
        [(1, [2]), None, "x"] * 700,  # a tuple holding a list cannot be a key
        [dt.date(2026, 1, 5), None, pd.Timestamp("2026-01-05 10:30"), " x "] * 500,
    ],
)
def test_column_rendering_matches_each_cell_alone(values):
    t = parse_template("{Amount} {Amount:.2f} {Amount:>8}", HEADERS)
    columns = {"Amount": values}
    assert t.render(columns, len(values)) == _row_by_row(t, columns, len(values))


def test_a_spec_that_fits_no_kind_of_cell_stops_the_run_naming_it():
    with pytest.raises(InputError) as caught:
        parse_template("Hi {Name},\nRs {Amount:.2q} due", HEADERS, source="t.txt")
    assert str(caught.value) == (
        't.txt: "{Amount:.2q}" at line 2, column 4: ":.2q" is not a format Python knows for '
        'numbers, text or dates; write e.g. ":.2f" or ":," for numbers, ":%d %b %Y" for dates'
    )


@pytest.mark.parametrize(
    "spec", [".2f", ",", ".1%", ">10", ".30", "d", "x", "%d %b %Y", "%H:%M", "08.3f"]
)
def test_specs_that_fit_some_kind_of_cell_are_accepted(spec):
    template = parse_template(f"{{Amount:{spec}}}", HEADERS)
    assert template.parts[0].spec == spec
