"""The results workbook: written, then read back with openpyxl and calamine.

Its shape: docs/contract.md, "The results workbook".
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import rustpy_xlsxwriter

from pipeline.errors import InputError
from pipeline.read.sheet import load_sheet
from pipeline.report import workbook as results_module
from pipeline.report.workbook import read_results, read_workbook, write_results
from pipeline.statuses import RESULT_COLUMNS, STATUSES
from tests.helpers import DATA

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
HYPERLINK = '=HYPERLINK("http://example.com","click")'
SUMMARY = [("input file", "contacts.xlsx"), ("sent", 2), ("template", "=Hi {Name}")]


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    index = pd.Index([2, 3, 5], name="source_row")
    original = pd.DataFrame(
        {
            "Name": ["=1+1", "@SUM(A1)", HYPERLINK],
            "Mobile": [919876543210.0, "+91 98765 43211", "-5"],
            "status": ["vip", None, "new"],  # clashes with our status column
            "Ship Date": [dt.date(2024, 3, 2), "TBD", None],
            "Booked": [dt.datetime(2024, 3, 1, 9, 15), None, dt.datetime(2024, 3, 1, 18, 0)],
            "Amount": [1499.0, 250.5, None],
        },
        index=index,
        dtype=object,
    )
    results = pd.DataFrame(
        {
            "phone_e164": ["+919876543210", "+919876543211", None],
            "message": ["Hi =1+1", "Hi @SUM(A1)", None],
            "encoding": ["GSM-7", "GSM-7", None],
            "segments": [1, 2, None],
            "status": ["sent", "sent", "invalid_number"],
            "detail": [None, None, "not a number"],
            "provider_message_id": ["1001", "1002", None],
            "batch_id": ["77", "77", None],
            "sent_at": ["2024-03-01T10:00:00+05:30", "2024-03-01T10:00:01+05:30", None],
            "delivery_status": [None, None, None],
            "credits": [1, 2, None],
            "dlt_template_id": ["1007", "1007", None],
            "delivered_at": [None, None, None],
        },
        index=index,
        dtype=object,
    )
    return original, results


EXPECTED_HEADER = [
    "Name",
    "Mobile",
    "status (input)",
    "Ship Date",
    "Booked",
    "Amount",
    *RESULT_COLUMNS,
]


@pytest.fixture
def written(tmp_path) -> Path:
    original, results = frames()
    return write_results(tmp_path / "out" / "results.xlsx", original, results, SUMMARY)


def cells(ws) -> list[list[openpyxl.cell.Cell]]:
    return [list(row) for row in ws.iter_rows()]


def test_sheets_header_and_source_rows(written):
    assert written.name == "results.xlsx"
    book = openpyxl.load_workbook(written)
    assert book.sheetnames == ["Results", "Summary"]
    ws = book["Results"]
    assert [c.value for c in ws[1]] == EXPECTED_HEADER
    assert [ws.cell(r, 7).value for r in range(2, 5)] == [2, 3, 5]
    assert ws.max_row == 4
    assert [ws.cell(r, 12).value for r in range(2, 5)] == ["sent", "sent", "invalid_number"]
    assert [ws.cell(r, 3).value for r in range(2, 5)] == ["vip", None, "new"]


def test_formula_like_text_stays_text(written):
    ws = openpyxl.load_workbook(written)["Results"]
    texts = {(r, c): ws.cell(r, c) for r, c in [(2, 1), (3, 1), (4, 1), (3, 2), (4, 2), (2, 8)]}
    assert [(cell.value, cell.data_type) for cell in texts.values()] == [
        ("=1+1", "s"),
        ("@SUM(A1)", "s"),
        (HYPERLINK, "s"),
        ("+91 98765 43211", "s"),
        ("-5", "s"),
        ("+919876543210", "s"),
    ]
    summary = openpyxl.load_workbook(written)["Summary"]
    assert (summary["B4"].value, summary["B4"].data_type) == ("=Hi {Name}", "s")


def test_no_formula_element_in_any_sheet(written):
    with zipfile.ZipFile(written) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
        assert sheets == ["xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml"]
        for name in sheets:
            xml = archive.read(name).decode()
            assert re.search(r"<f[ >]", xml) is None
        assert (
            f'<c r="A4" t="inlineStr"><is><t>{HYPERLINK}</t></is></c>'
            in archive.read(sheets[0]).decode()
        )


def test_numbers_and_dates_keep_their_types(written):
    ws = openpyxl.load_workbook(written)["Results"]
    mobile, amount, segments = ws["B2"], ws["F3"], ws["K3"]
    assert (mobile.value, mobile.data_type) == (919876543210, "n")
    assert (amount.value, amount.data_type) == (250.5, "n")
    assert (segments.value, segments.data_type) == (2, "n")
    ship, booked = ws["D2"], ws["E2"]
    assert ship.is_date and ship.number_format == "yyyy-mm-dd"
    assert ship.value == dt.datetime(2024, 3, 2)
    assert booked.is_date and booked.number_format == "yyyy-mm-dd hh:mm"
    assert booked.value == dt.datetime(2024, 3, 1, 9, 15)
    assert (ws["D3"].value, ws["D3"].data_type) == ("TBD", "s")  # text in a date column
    assert ws["F4"].value is None and ws["K4"].value is None  # missing -> empty cell


def test_frozen_header_autofilter_and_widths(written):
    book = openpyxl.load_workbook(written)
    results, summary = book["Results"], book["Summary"]
    assert results.freeze_panes == "A2"
    assert summary.freeze_panes == "A2"
    assert results.auto_filter.ref == "A1:T4"
    with zipfile.ZipFile(written) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    widths = [float(w) for w in re.findall(r'<col min="\d+" max="\d+" width="([\d.]+)"', xml)]
    assert widths and all(10 <= w <= 61 for w in widths)
    assert results.column_dimensions["A"].width == pytest.approx(41.71, abs=0.01)  # HYPERLINK
    assert results.column_dimensions["F"].width == pytest.approx(10.71, abs=0.01)  # minimum


def test_summary_rows_in_order(tmp_path):
    original, results = frames()
    started = dt.datetime(2024, 3, 1, 10, 0, tzinfo=IST)
    summary = [
        ("status: sent", 2),
        ("started", started),
        ("credits", 3.5),
        ("sender", None),
        ("unset", pd.NA),
        ("ratio", float("nan")),
        ("journal", Path("output/journal.db")),
        ("test mode", True),
    ]
    path = write_results(tmp_path / "r.xlsx", original, results, summary)
    ws = openpyxl.load_workbook(path)["Summary"]
    assert [[c.value for c in row] for row in ws.iter_rows()] == [
        ["item", "value"],
        ["status: sent", 2],
        ["started", "2024-03-01T10:00:00+05:30"],  # Excel has no time zones: ISO text
        ["credits", 3.5],
        ["sender", None],
        ["unset", None],
        ["ratio", None],
        ["journal", "output/journal.db"],
        ["test mode", True],
    ]


def test_read_results_round_trip(written):
    frame = read_results(written)
    assert frame.index.name == "source_row"
    assert frame.index.tolist() == [2, 3, 5]
    assert list(frame.columns) == [c for c in EXPECTED_HEADER if c != "source_row"]
    assert frame.loc[2].tolist() == [
        "=1+1",
        919876543210.0,
        "vip",
        dt.date(2024, 3, 2),
        dt.datetime(2024, 3, 1, 9, 15),
        1499.0,
        "+919876543210",
        "Hi =1+1",
        "GSM-7",
        1,
        "sent",
        None,
        "1001",
        "77",
        "2024-03-01T10:00:00+05:30",
        None,
        1,
        "1007",
        None,
    ]
    assert frame["segments"].tolist() == [1, 2, None]
    assert frame["credits"].tolist() == [1, 2, None]


def test_control_characters_round_trip_exactly(tmp_path):
    original, results = frames()
    original["Name"] = ["\tTab", "\r=CR", "_x000D_ literal"]
    path = write_results(tmp_path / "r.xlsx", original, results, SUMMARY)
    assert read_results(path)["Name"].tolist() == ["\tTab", "\r=CR", "_x000D_ literal"]


def test_pandas_missing_values_become_empty_cells(tmp_path):
    original, results = frames()
    original = original.assign(
        Count=pd.array([1, None, 3], dtype="Int64"),
        Code=pd.array(["a", None, "c"], dtype="str"),
        When=pd.to_datetime(["2024-03-01 10:30", None, "2024-03-02 11:00"]),
        Score=[np.nan, 2.5, np.float64(1.0)],
    )
    results["sent_at"] = pd.to_datetime(["2024-03-01T04:30:00Z", None, None], utc=True).tz_convert(
        "Asia/Kolkata"
    )
    path = write_results(tmp_path / "r.xlsx", original, results, SUMMARY)
    ws = openpyxl.load_workbook(path)["Results"]
    header = [c.value for c in ws[1]]
    column = {
        name: [ws.cell(r, header.index(name) + 1).value for r in (2, 3, 4)]
        for name in ("Count", "Code", "When", "Score", "sent_at")
    }
    assert column == {
        "Count": [1, None, 3],
        "Code": ["a", None, "c"],
        "When": [dt.datetime(2024, 3, 1, 10, 30), None, dt.datetime(2024, 3, 2, 11, 0)],
        "Score": [None, 2.5, 1],
        "sent_at": ["2024-03-01T10:00:00+05:30", None, None],
    }
    with zipfile.ZipFile(path) as archive:
        assert "&lt;NA&gt;" not in archive.read("xl/worksheets/sheet1.xml").decode()


def test_loaded_sheet_round_trips_original_values(tmp_path):
    sheet = load_sheet(DATA / "sheet_basic.xlsx")
    results = pd.DataFrame(
        {c: [None] * 3 for c in RESULT_COLUMNS[1:]}, index=sheet.frame.index, dtype=object
    )
    results["status"] = ["ready", "ready", "invalid_number"]
    path = write_results(tmp_path / "r.xlsx", sheet.frame, results, [])
    back = read_results(path)
    assert back[list(sheet.frame.columns)].values.tolist() == sheet.frame.values.tolist()
    assert back.index.tolist() == [2, 3, 5]
    summary = openpyxl.load_workbook(path)["Summary"]
    assert [[c.value for c in row] for row in summary.iter_rows()] == [["item", "value"]]


def test_long_text_is_cut_to_excel_limit(tmp_path):
    original, results = frames()
    results["detail"] = ["x" * 40_000, None, "short"]
    path = write_results(tmp_path / "r.xlsx", original, results, SUMMARY)
    assert read_results(path)["detail"].tolist() == ["x" * 32_767, None, "short"]


def test_file_is_owner_only_even_when_replacing(tmp_path):
    target = tmp_path / "r.xlsx"
    target.write_bytes(b"old")
    os.chmod(target, 0o644)
    original, results = frames()
    write_results(target, original, results, SUMMARY)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert zipfile.is_zipfile(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.xlsx"]


@pytest.mark.parametrize("existing", [None, b"previous results"])
def test_failed_write_leaves_target_alone(tmp_path, monkeypatch, existing):
    target = tmp_path / "r.xlsx"
    if existing is not None:
        target.write_bytes(existing)

    def broken_save(self):
        Path(self._target).write_bytes(b"PK\x03\x04 half a workbook")
        raise RuntimeError("Excel write error: disk went away")

    monkeypatch.setattr(rustpy_xlsxwriter.FastExcel, "save", broken_save)
    original, results = frames()
    with pytest.raises(RuntimeError, match="disk went away"):
        write_results(target, original, results, SUMMARY)
    if existing is None:
        assert list(tmp_path.iterdir()) == []
    else:
        assert target.read_bytes() == existing
        assert list(tmp_path.iterdir()) == [target]


def test_unwritable_target_is_an_input_error(tmp_path, monkeypatch):
    def full_disk(self):
        Path(self._target).write_bytes(b"PK")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rustpy_xlsxwriter.FastExcel, "save", full_disk)
    original, results = frames()
    with pytest.raises(InputError) as err:
        write_results(tmp_path / "r.xlsx", original, results, SUMMARY)
    assert str(err.value) == (
        f"{tmp_path / 'r.xlsx'}: cannot write results (No space left on device); "
        "choose another --out"
    )
    assert list(tmp_path.iterdir()) == []


def test_parent_directory_is_created(tmp_path):
    original, results = frames()
    path = write_results(tmp_path / "a" / "b" / "r.xlsx", original, results, SUMMARY)
    assert path == tmp_path / "a" / "b" / "r.xlsx" and path.is_file()


def test_rows_past_the_excel_limit_go_on_more_results_sheets(tmp_path, monkeypatch):
    monkeypatch.setattr(results_module, "EXCEL_MAX_ROWS", 3)  # a header and 2 rows a sheet
    original, results = frames()
    index = pd.Index([2, 3, 5, 6, 7], name="source_row")
    original = pd.concat([original, original.iloc[:2]]).set_axis(index)
    results = pd.concat([results, results.iloc[:2]]).set_axis(index)
    results["status"] = ["sent", "ready", "invalid_number", "duplicate", "failed"]
    path = write_results(tmp_path / "r.xlsx", original, results, SUMMARY)

    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Results", "Results 2", "Results 3", "Summary"]
    for name, rows in [("Results", [2, 3]), ("Results 2", [5, 6]), ("Results 3", [7])]:
        ws = book[name]
        assert [c.value for c in ws[1]] == EXPECTED_HEADER
        assert [ws.cell(r, 7).value for r in range(2, ws.max_row + 1)] == rows
        assert ws.freeze_panes == "A2"
        assert ws.auto_filter.ref == f"A1:T{len(rows) + 1}"
    for cell, text in [(book["Results 2"]["A3"], "=1+1"), (book["Results 3"]["A2"], "@SUM(A1)")]:
        assert (cell.value, cell.data_type) == (text, "s")  # text stays text on every sheet
    assert book["Results 2"]["D3"].number_format == "yyyy-mm-dd"  # column formats on each

    again = write_results(tmp_path / "again.xlsx", *read_workbook(path))  # `smsbatch status`
    with zipfile.ZipFile(path) as first, zipfile.ZipFile(again) as second:
        names = [n for n in first.namelist() if n.startswith("xl/worksheets/sheet")]
        assert len(names) == 4 and names == [
            n for n in second.namelist() if n.startswith("xl/worksheets/sheet")
        ]
        assert [first.read(n) for n in names] == [second.read(n) for n in names]

    monkeypatch.undo()  # reading needs no limit: every Results sheet comes back, in order
    back = read_results(path)
    assert back.index.tolist() == [2, 3, 5, 6, 7]
    assert back["status"].tolist() == ["sent", "ready", "invalid_number", "duplicate", "failed"]
    assert back["Name"].tolist() == ["=1+1", "@SUM(A1)", HYPERLINK, "=1+1", "@SUM(A1)"]
    assert back["segments"].tolist() == [1, 2, None, 1, 2]
    back_original, back_results, back_summary = read_workbook(path)
    assert back_original.index.tolist() == [2, 3, 5, 6, 7]
    assert back_results["status"].tolist() == back["status"].tolist()
    assert back_summary == SUMMARY


def test_sheet_names_for_a_row_count(monkeypatch):
    assert results_module.results_sheet_names(0) == ["Results"]
    assert results_module.results_sheet_names(1_048_575) == ["Results"]
    assert results_module.results_sheet_names(1_048_576) == ["Results", "Results 2"]
    monkeypatch.setattr(results_module, "EXCEL_MAX_ROWS", 3)
    assert results_module.results_sheet_names(5) == ["Results", "Results 2", "Results 3"]


def test_a_continuation_sheet_with_another_header_is_refused(tmp_path):
    path = tmp_path / "r.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Results"
    book.active.append(["Name", *RESULT_COLUMNS])
    book.create_sheet("Results 2").append(["Other", *RESULT_COLUMNS])
    book.save(path)
    with pytest.raises(InputError) as err:
        read_results(path)
    assert str(err.value) == (
        "r.xlsx: sheet 'Results 2' does not have the Results header; "
        "pass a workbook written by smsbatch check or send"
    )


def test_the_callers_frames_are_never_changed(tmp_path):
    original, results = frames()
    original["Score"] = [np.nan, 2.5, None]
    results["detail"] = ["x" * 40_000, None, None]
    results["sent_at"] = [dt.datetime(2024, 3, 1, 10, 0, tzinfo=IST), None, None]
    before = (original.copy(deep=True), results.copy(deep=True))
    write_results(tmp_path / "r.xlsx", original, results, SUMMARY)
    pd.testing.assert_frame_equal(original, before[0])
    pd.testing.assert_frame_equal(results, before[1])


def test_mismatched_frames_are_programming_errors(tmp_path):
    original, results = frames()
    with pytest.raises(ValueError, match="lacks columns: delivery_status"):
        write_results(tmp_path / "r.xlsx", original, results.drop(columns="delivery_status"), [])
    with pytest.raises(ValueError, match="same index"):
        write_results(tmp_path / "r.xlsx", original, results.iloc[:2], [])


def test_read_results_rejects_other_workbooks(tmp_path):
    with pytest.raises(InputError) as err:
        read_results(DATA / "sheet_basic.xlsx")
    assert str(err.value) == (
        "sheet_basic.xlsx: no 'Results' sheet; pass a workbook written by smsbatch check or send"
    )
    other = tmp_path / "other.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Results"
    book.active.append(["source_row", "status"])
    book.save(other)
    with pytest.raises(InputError) as err:
        read_results(other)
    assert str(err.value).startswith(
        "other.xlsx: not a results workbook (missing columns: phone_e164, message, encoding,"
    )
    with pytest.raises(InputError) as err:
        read_results(tmp_path / "nope.xlsx")
    assert str(err.value) == f"{tmp_path / 'nope.xlsx'}: results workbook not found; check the path"


def test_status_vocabulary():
    assert STATUSES == (
        "ready",
        "sent",
        "scheduled",
        "invalid_number",
        "duplicate",
        "missing_field",
        "opted_out",
        "template_mismatch",
        "rejected",
        "already_sent",
        "failed",
        "unknown",
    )
    assert RESULT_COLUMNS[:11] == (
        "source_row",
        "phone_e164",
        "message",
        "encoding",
        "segments",
        "status",
        "detail",
        "provider_message_id",
        "batch_id",
        "sent_at",
        "delivery_status",
    )  # the contract's order
    assert RESULT_COLUMNS[11:] == ("credits", "dlt_template_id", "delivered_at")  # appended


# -- delivered_at (optional) and read_workbook: updating a workbook in place ---------------


def sheet_xml(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return [archive.read(f"xl/worksheets/sheet{n}.xml").decode() for n in (1, 2)]


def test_delivered_at_is_written_empty_when_missing_and_older_workbooks_still_read(
    tmp_path, monkeypatch
):
    original, results = frames()
    results["delivered_at"] = ["2024-03-01T10:00:05+05:30", None, None]
    path = write_results(tmp_path / "r.xlsx", original, results, SUMMARY)
    assert [c.value for c in openpyxl.load_workbook(path)["Results"][1]] == EXPECTED_HEADER
    assert read_results(path)["delivered_at"].tolist() == ["2024-03-01T10:00:05+05:30", None, None]
    missing = write_results(
        tmp_path / "m.xlsx", original, results.drop(columns="delivered_at"), SUMMARY
    )
    assert read_results(missing)["delivered_at"].tolist() == [None, None, None]
    # A workbook from before the column existed still reads, with it empty.
    monkeypatch.setattr(results_module, "RESULT_COLUMNS", RESULT_COLUMNS[:-1])
    monkeypatch.setattr(results_module, "OPTIONAL_COLUMNS", ())
    old = write_results(
        tmp_path / "old.xlsx", original, results.drop(columns="delivered_at"), SUMMARY
    )
    monkeypatch.undo()
    assert "delivered_at" not in [c.value for c in openpyxl.load_workbook(old)["Results"][1]]
    assert read_results(old)["delivered_at"].tolist() == [None, None, None]
    with pytest.raises(ValueError, match="lacks columns: credits"):
        write_results(tmp_path / "r.xlsx", original, results.drop(columns="credits"), [])


def test_an_input_column_named_like_an_optional_one_is_renamed(tmp_path):
    original, results = frames()
    original["delivered_at"] = ["yesterday", None, None]
    results["delivered_at"] = [None, "2024-03-01T10:00:05+05:30", None]
    path = write_results(tmp_path / "r.xlsx", original, results, SUMMARY)
    table = read_results(path)
    assert table["delivered_at (input)"].tolist() == ["yesterday", None, None]
    assert table["delivered_at"].tolist() == [None, "2024-03-01T10:00:05+05:30", None]


def test_read_workbook_gives_back_what_write_results_took(tmp_path):
    original, results = frames()
    summary = [*SUMMARY, ("credits", 3.5), ("test mode", True), ("sender", None)]
    first = write_results(tmp_path / "a.xlsx", original, results, summary)
    back_original, back_results, back_summary = read_workbook(first)
    assert list(back_original.columns) == EXPECTED_HEADER[:6]
    assert back_original.index.tolist() == [2, 3, 5]
    assert back_original.loc[2].tolist() == [
        "=1+1",
        919876543210.0,
        "vip",
        dt.date(2024, 3, 2),
        dt.datetime(2024, 3, 1, 9, 15),
        1499.0,
    ]
    assert list(back_results.columns) == list(RESULT_COLUMNS[1:])
    assert back_results["delivered_at"].tolist() == [None, None, None]
    assert back_summary == [
        ("input file", "contacts.xlsx"),
        ("sent", 2),
        ("template", "=Hi {Name}"),
        ("credits", 3.5),
        ("test mode", True),
        ("sender", None),
    ]
    second = write_results(tmp_path / "b.xlsx", back_original, back_results, back_summary)
    assert sheet_xml(second) == sheet_xml(first)  # cell for cell, formats and widths too


def test_a_column_added_after_ours_survives_an_update(tmp_path):
    original, results = frames()
    results["delivered_at"] = None
    results["my notes"] = ["call back", None, "=not a formula"]
    path = write_results(tmp_path / "r.xlsx", original, results, SUMMARY)
    back_original, back_results, _ = read_workbook(path)
    assert list(back_results.columns)[-2:] == ["delivered_at", "my notes"]
    assert back_results["my notes"].tolist() == ["call back", None, "=not a formula"]
    again = write_results(tmp_path / "again.xlsx", back_original, back_results, SUMMARY)
    assert sheet_xml(again) == sheet_xml(path)
    results["Name"] = None  # the same name as an input column: refused, not overwritten
    with pytest.raises(ValueError, match="clash with sheet columns: Name"):
        write_results(tmp_path / "x.xlsx", original, results, SUMMARY)


def test_read_workbook_without_a_summary_sheet(tmp_path):
    path = tmp_path / "r.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Results"
    book.active.append(["Name", *RESULT_COLUMNS])
    book.active.append(
        [
            "Asha",
            2,
            "+919876543210",
            "Hi",
            "GSM-7",
            1,
            "sent",
            None,
            "7",
            "8",
            "2024-03-01T10:00:00+05:30",
            None,
            1,
            None,
        ]
    )
    book.save(path)
    original, results, summary = read_workbook(path)
    assert (original.columns.tolist(), original.index.tolist()) == (["Name"], [2])
    assert results.loc[2, "provider_message_id"] == "7"
    assert summary == []


def _recording_calamine(monkeypatch: pytest.MonkeyPatch, module: object) -> list[bool]:
    """Wrap `module.python_calamine` so every workbook opened records whether the cycle
    collector was on at that moment."""
    import gc
    import types

    import python_calamine

    seen: list[bool] = []

    def from_path(path: str) -> python_calamine.CalamineWorkbook:
        seen.append(gc.isenabled())
        return python_calamine.CalamineWorkbook.from_path(path)

    fake = types.SimpleNamespace(
        CalamineWorkbook=types.SimpleNamespace(from_path=from_path),
        CalamineError=python_calamine.CalamineError,
    )
    monkeypatch.setattr(module, "python_calamine", fake)
    return seen


def test_results_are_read_with_the_cycle_collector_paused_then_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pausing it cut the Results sheet of a 1M-row workbook from 3.9 s to 1.1 s of to_python.
    import gc

    original, results = frames()
    path = write_results(tmp_path / "r.xlsx", original, results, SUMMARY)
    seen = _recording_calamine(monkeypatch, results_module)
    assert gc.isenabled()
    assert list(read_results(path).index) == [2, 3, 5]
    assert seen == [False]
    assert gc.isenabled()
