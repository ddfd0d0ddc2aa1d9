"""Hostile and broken input files through the real CLI (issue "Hardening").

Each refused file must give exit code 2 and exactly one `error: ...` line on stderr, no
traceback, no results workbook (nothing at all under output/), nothing sent, and leave the
input byte-for-byte as it was. Files are built by conftest.py at test time.
"""

from __future__ import annotations

import codecs
import http.server
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import openpyxl
import pytest
import python_calamine
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.read import safety
from pipeline.read.sheet import file_sha256, load_sheet
from pipeline.report.workbook import read_results
from pipeline.sms.phones import SCIENTIFIC_REASON
from tests.hardening.conftest import (
    DATA,
    LAUGHS,
    SHEET_PART,
    STRINGS_PART,
    XXE,
    declare_size,
    sheet_xml,
    strings_xml,
    write_ole,
    write_xlsx,
)

RESAVE = "open it in Excel and save it again as .xlsx, or export it as .csv"
DAMAGED = "workbook is damaged or incomplete; re-save it from Excel as .xlsx or export it as .csv"
PASSWORD = (
    "workbook is password-protected; open it in Excel, remove the password "
    "(File > Info > Protect Workbook > Encrypt with Password) and save it, then retry"
)
DTD = "declares a DTD or entities (<!DOCTYPE, <!ENTITY), which Excel never writes"


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A temp working directory with a template; hostile files go under in/."""
    monkeypatch.chdir(tmp_path)
    for name in ("TEXTLOCAL_API_KEY", "TEXTLOCAL_SENDER", "TEXTLOCAL_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "template.txt").write_text("Hi {Name}, thanks for shopping with us.\n")
    (tmp_path / "in").mkdir()
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def assert_refused(
    work: Path, path: Path, message: str, *options: str, command: str = "check"
) -> None:
    """The CLI refuses the file with exactly this message and touches nothing."""
    before = file_sha256(path)
    listing = sorted(os.listdir(path.parent))
    output = sorted(p.name for p in (work / "output").glob("**/*"))
    result = run(command, str(path), "-t", "template.txt", *options)
    assert result.stderr == f"error: {message}\n"
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    # no results workbook, no journal, no sandbox outbox: output/ is as it was (absent)
    assert sorted(p.name for p in (work / "output").glob("**/*")) == output
    assert file_sha256(path) == before
    assert sorted(os.listdir(path.parent)) == listing


def checked(work: Path, path: Path, *options: str):
    """Run `check`, expect success, return the results frame."""
    out = work / "output" / f"{path.stem}-results.xlsx"
    out.parent.mkdir(exist_ok=True)
    result = run("check", str(path), "-t", "template.txt", "--out", str(out), *options)
    assert result.exit_code == 0, result.output
    return read_results(out)


# --- XML: entity bombs, external entities ---------------------------------------------------


@pytest.mark.parametrize(
    ("part", "sheet", "strings"),
    [
        (STRINGS_PART, None, strings_xml("&lol9;", LAUGHS)),
        (SHEET_PART, sheet_xml('<c r="A2" t="inlineStr"><is><t>&lol9;</t></is></c>', LAUGHS), None),
        (STRINGS_PART, None, strings_xml("&xxe;", XXE)),
        (SHEET_PART, sheet_xml('<c r="A2" t="inlineStr"><is><t>&xxe;</t></is></c>', XXE), None),
        # a DOCTYPE behind a comment and a processing instruction is still in the prolog
        (STRINGS_PART, None, strings_xml("&xxe;", "<!-- <sst> -->\n<?pi x?>" + XXE)),
        # an unused DTD is refused too: Excel never writes one
        (STRINGS_PART, None, strings_xml("Asha", '<!DOCTYPE sst SYSTEM "http://127.0.0.1:9/">')),
        # UTF-16 parts are read as such
        (
            STRINGS_PART,
            None,
            codecs.BOM_UTF16_LE
            + strings_xml("&xxe;", XXE)
            .replace('encoding="UTF-8"', 'encoding="UTF-16"')
            .encode("utf-16-le"),
        ),
    ],
    ids=[
        "laughs-strings",
        "laughs-sheet",
        "xxe-strings",
        "xxe-sheet",
        "behind-comment",
        "unused-dtd",
        "utf16",
    ],
)
def test_xml_with_a_dtd_is_refused(work, part, sheet, strings):
    path = write_xlsx(work / "in" / "c.xlsx", sheet=sheet, strings=strings)
    assert_refused(work, path, f"c.xlsx: part {part} {DTD}; refusing it as unsafe: {RESAVE}")


def test_svg_picture_with_its_doctype_is_fine(work):
    """Excel stores an inserted SVG as is, W3C DOCTYPE included; calamine never parses it."""
    svg = (
        b'<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd"><svg/>'
    )
    path = write_xlsx(work / "in" / "logo.xlsx", extra={"xl/media/image1.svg": svg})
    assert checked(work, path)["status"].tolist() == ["ready"]


@pytest.mark.parametrize(
    "padding", ["<!--" + "x" * (64 << 10) + "-->", " " * (64 << 10)], ids=["comment", "blank"]
)
def test_prolog_padded_past_the_scan_is_refused(work, padding):
    path = write_xlsx(work / "in" / "c.xlsx", strings=strings_xml("&xxe;", padding + XXE))
    assert_refused(
        work,
        path,
        f"c.xlsx: part {STRINGS_PART} starts with over 64.0 KiB of comments or blank space, "
        f"which Excel never writes; refusing it as unsafe: {RESAVE}",
    )


@pytest.mark.slow
def test_calamine_never_expands_entities_nor_fetches_a_dtd(work):
    """Evidence for safety.py: calamine itself (bypassing our check) resolves only the
    predefined entities, fails on any other, and loads no external DTD."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY name "FETCHED">')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        cases = {
            "local": (
                strings_xml("&name;", '<!DOCTYPE sst [<!ENTITY name "Expanded">]>'),
                "unrecognized entity `&name;`",
            ),
            "file": (strings_xml("&xxe;", XXE), "unrecognized entity `&xxe;`"),
            "laughs": (strings_xml("&lol9;", LAUGHS), "unrecognized entity `&lol9;`"),
            "param": (
                strings_xml("&name;", f'<!DOCTYPE sst [<!ENTITY % e SYSTEM "{url}/e">%e;]>'),
                "unrecognized entity `&name;`",
            ),
        }
        for name, (strings, error) in cases.items():
            path = str(write_xlsx(work / f"{name}.xlsx", strings=strings))
            with pytest.raises(python_calamine.XmlError, match=error):  # raised on opening
                python_calamine.CalamineWorkbook.from_path(path)
        external = write_xlsx(
            work / "dtd.xlsx",
            strings=strings_xml("A&amp;B&#33;", f'<!DOCTYPE sst SYSTEM "{url}/a.dtd">'),
        )
        book = python_calamine.CalamineWorkbook.from_path(str(external))
        assert book.get_sheet_by_name("Contacts").to_python() == [
            ["Name", "Mobile"],
            ["A&B!", 9876543210.0],
        ]
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []


def test_openpyxl_parses_through_defusedxml(work):
    """openpyxl (tests, scripts) refuses entities once defusedxml is installed."""
    assert openpyxl.DEFUSEDXML is True
    path = write_xlsx(work / "c.xlsx", strings=strings_xml("&lol9;", LAUGHS))
    with pytest.raises(ValueError, match="could not read strings") as err:
        openpyxl.load_workbook(path)
    assert type(err.value.__context__).__name__ == "EntitiesForbidden"


# --- zip bombs ------------------------------------------------------------------------------


@pytest.mark.slow
def test_zip_bomb_is_refused_from_its_declared_sizes_within_a_second(work, bomb_xlsx):
    path = work / "in" / "bomb.xlsx"
    path.write_bytes(bomb_xlsx.read_bytes())
    assert path.stat().st_size < 2_000_000
    message = (
        f"bomb.xlsx: part {SHEET_PART} would unpack from 1.0 MiB to 1.0 GiB (1,029:1, over "
        f"the 200:1 limit), as a zip bomb does; refusing it: {RESAVE}"
    )
    started = time.perf_counter()
    with pytest.raises(InputError) as err:
        load_sheet(path)
    assert time.perf_counter() - started < 1.0
    assert str(err.value) == message
    assert_refused(work, path, message)


@pytest.mark.slow
def test_zip_bomb_is_refused_by_send_and_nothing_is_sent(work, bomb_xlsx):
    path = work / "in" / "bomb.xlsx"
    path.write_bytes(bomb_xlsx.read_bytes())
    assert_refused(
        work,
        path,
        f"bomb.xlsx: part {SHEET_PART} would unpack from 1.0 MiB to 1.0 GiB (1,029:1, over "
        f"the 200:1 limit), as a zip bomb does; refusing it: {RESAVE}",
        command="send",
    )


@pytest.mark.slow
def test_lying_declared_size_is_stopped_by_calamine(work, bomb_xlsx):
    """The limit of the declared-size check: a part that declares 2,000 bytes passes it,
    and calamine's zip reader refuses to inflate past what is declared."""
    path = declare_size(bomb_xlsx, work / "in" / "liar.xlsx", SHEET_PART, 2000)
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    with pytest.raises(python_calamine.CalamineError, match="larger than its declared"):
        book.get_sheet_by_name("Contacts").to_python()
    started = time.perf_counter()
    assert_refused(work, path, f"liar.xlsx: {DAMAGED}")
    assert time.perf_counter() - started < 5.0


def test_total_and_entry_limits(work, monkeypatch):
    big = write_xlsx(work / "in" / "big.xlsx")
    declare_size(big, big, SHEET_PART, 3 * 1024**3)  # declares more than it holds
    assert_refused(
        work,
        big,
        "big.xlsx: workbook would unpack to 3.0 GiB, over the limit of 2.0 GiB; "
        "split the contacts into smaller files",
    )
    many = write_xlsx(
        work / "in" / "many.xlsx",
        extra={f"xl/media/{n}.bin": b"" for n in range(safety.MAX_ENTRIES)},
    )
    assert_refused(
        work,
        many,
        f"many.xlsx: workbook has 10,006 parts, over the limit of 10,000 (a real one has a "
        f"few dozen); refusing it as unsafe: {RESAVE}",
    )
    # The module-level defaults are what the CLI uses; keywords override them per call.
    monkeypatch.setattr(safety, "MAX_ENTRIES", 20_000)
    checked(work, many)
    with pytest.raises(InputError, match="has 10,006 parts, over the limit of 100 "):
        safety.check_workbook("many.xlsx", many.read_bytes(), max_entries=100)
    ok = write_xlsx(work / "ok.xlsx").read_bytes()
    with pytest.raises(InputError, match=r"workbook would unpack to 2\.2 KiB, over the limit"):
        safety.check_workbook("ok.xlsx", ok, max_total_bytes=1000)
    with pytest.raises(InputError, match=r"over the 2:1 limit"):
        safety.check_workbook("ok.xlsx", ok, max_ratio=2, ratio_min_bytes=100)


# --- broken, disguised and protected workbooks ----------------------------------------------


def test_truncated_renamed_and_disguised_workbooks(work):
    whole = write_xlsx(work / "whole.xlsx").read_bytes()
    cases = {
        "truncated.xlsx": (whole[: len(whole) // 2], DAMAGED),
        "renamed.xlsx": (
            b"Name,Mobile\nAsha,9876543210\n",
            "not an Excel workbook; if it is a CSV file rename it to .csv, "
            "else re-save it from Excel as .xlsx",
        ),
        "renamed.xls": (
            b"Name\tMobile\nAsha\t9876543210\n",
            "not an Excel workbook; if it is a CSV file rename it to .csv, "
            "else re-save it from Excel as .xlsx",
        ),
        "report.xls": (
            b"\r\n<html><body><table><tr><td>Mobile</td></tr></table></body></html>",
            "is a web page (HTML) with a spreadsheet name, as some systems export; "
            "open it in Excel and save it as .xlsx, or export it as .csv",
        ),
    }
    for name, (data, message) in cases.items():
        path = work / "in" / name
        path.write_bytes(data)
        assert_refused(work, path, f"{name}: {message}")
        path.unlink()


def test_password_protected_xlsx(work):
    """Excel saves an encrypted .xlsx as an OLE file with EncryptionInfo/EncryptedPackage."""
    path = write_ole(
        work / "in" / "locked.xlsx",
        [
            ("EncryptionInfo", b"\x04\x00\x04\x00\x40\x00\x00\x00".ljust(4096, b"\x01")),
            ("EncryptedPackage", bytes(4096)),
        ],
    )
    assert_refused(work, path, f"locked.xlsx: {PASSWORD}")
    assert_refused(work, path, f"locked.xlsx: {PASSWORD}", command="send")


def test_other_office_file_named_xls(work):
    path = write_ole(work / "in" / "letter.xls", [("WordDocument", bytes(4096))])
    assert_refused(
        work,
        path,
        "letter.xls: is an Office document of another kind (Word, PowerPoint...), not an "
        "Excel workbook; check you picked the right file",
    )


def test_real_xls_is_read(work):
    """BIFF .xls goes through calamine: data/contacts.xls was written by xlwt."""
    path = work / "in" / "contacts.xls"
    path.write_bytes((DATA / "contacts.xls").read_bytes())
    table = checked(work, path)
    assert table["Name"].tolist() == ["Asha", "Ravi"]
    assert table["status"].tolist() == ["ready", "ready"]
    assert table.index.tolist() == [2, 3]


# --- text files -----------------------------------------------------------------------------


CSV_TEXT = "Name\tMobile\r\nZoë\t9876543210\r\nप्रिया\t+91 98765 43211\r\n"


@pytest.mark.parametrize(
    "data",
    [
        codecs.BOM_UTF16_LE + CSV_TEXT.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + CSV_TEXT.encode("utf-16-be"),
        CSV_TEXT.encode("utf-16-le"),
        CSV_TEXT.encode("utf-16-be"),
    ],
    ids=["le-bom", "be-bom", "le", "be"],
)
def test_utf16_csv_is_read(work, data):
    path = work / "in" / "unicode.txt"
    path.write_bytes(data)
    table = checked(work, path)
    assert table["Name"].tolist() == ["Zoë", "प्रिया"]
    assert table["status"].tolist() == ["ready", "ready"]


def test_binary_and_workbook_named_csv(work):
    binary = work / "in" / "data.csv"
    binary.write_bytes(b"Name,Mobile\n\x00\x01\x02\x03garbage\x00\n")
    assert_refused(
        work,
        binary,
        "data.csv: holds NUL bytes, so it is not a text file; export the sheet again as "
        "CSV, or save it as .xlsx",
    )
    workbook = write_xlsx(work / "in" / "book.csv")
    assert_refused(
        work,
        workbook,
        "book.csv: is an Excel workbook, not CSV text; rename it to .xlsx (or .xls) and retry",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'Name,Mobile\nAsha,9876543210\nRavi,"9876543211\nMeena,9876543212\n',
            'line 3: a quote (") opened on this line is never closed; close it or remove it, '
            "then retry",
        ),
        (
            'Name,Mobile\nAsha,"9876543210,x\nRavi,"9876543211",y\nMeena,9876543212\n',
            'line 2: a quote (") on this line is not closed where its field ends '
            "(',' expected after '\"'); fix the quotes on that line and retry",
        ),
        (  # the quote swallows more than csv holds in one field
            'Name,Mobile\nAsha,"9876543210\n' + "Ravi,9876543211\n" * 10_000,
            'line 2: a quote (") opened on this line is never closed; close it or remove it, '
            "then retry",
        ),
    ],
    ids=["at-end", "mid-file", "swallowing"],
)
def test_unclosed_quote_names_the_line(work, text, message):
    path = work / "in" / "quotes.csv"
    path.write_text(text)
    assert_refused(work, path, f"quotes.csv: {message}")


def test_unclosed_quote_stops_send(work):
    path = work / "in" / "quotes.csv"
    path.write_text('Name,Mobile\nAsha,9876543210\nRavi,"9876543211\nMeena,9876543212\n')
    assert_refused(
        work,
        path,
        'quotes.csv: line 3: a quote (") opened on this line is never closed; close it or '
        "remove it, then retry",
        command="send",
    )


@pytest.mark.slow
def test_50_mb_cell_is_refused_quickly(work):
    path = work / "in" / "huge.csv"
    with open(path, "wb") as fh:
        fh.write(b"Name,Mobile,Note\nAsha,9876543210,ok\nRavi,9876543211,")
        fh.write(b"x" * 50_000_000)
        fh.write(b"\nMeena,9876543212,ok\n")
    started = time.perf_counter()
    assert_refused(
        work,
        path,
        "huge.csv: line 3, column C: a cell longer than 32,767 characters (Excel's limit); "
        "shorten it and retry",
    )
    assert time.perf_counter() - started < 5.0


def test_cell_over_excel_limit_names_the_cell(work):
    note = "n" * 40_000
    csv_path = work / "in" / "long.csv"
    csv_path.write_text(f"Name,Mobile,Note\nAsha,9876543210,ok\nRavi,9876543211,{note}\n")
    assert_refused(
        work,
        csv_path,
        "long.csv: line 3, column 'Note': a cell of 40,000 characters, over Excel's limit of "
        "32,767; shorten it and retry",
    )
    multiline = work / "in" / "multi.csv"  # lines are short, the quoted cell is not
    multiline.write_text('Name,Mobile,Note\nAsha,9876543210,"' + "n\n" * 20_000 + '"\n')
    assert_refused(
        work,
        multiline,
        "multi.csv: line 2, column 'Note': a cell of 40,000 characters, over Excel's limit of "
        "32,767; shorten it and retry",
    )
    header = work / "in" / "header.csv"
    header.write_text(f"Name,Mobile,{note}\nAsha,9876543210,ok\n")
    assert_refused(
        work,
        header,
        "header.csv: header of column C: a cell of 40,000 characters, over Excel's limit of "
        "32,767; shorten it and retry",
    )
    xlsx = write_xlsx(work / "in" / "long.xlsx", strings=strings_xml(note))
    assert_refused(
        work,
        xlsx,
        "long.xlsx: sheet 'Contacts' cell A2 (column 'Name'): a cell of 40,000 characters, "
        "over Excel's limit of 32,767; shorten it and retry",
    )


@pytest.mark.slow
def test_10000_columns_work_and_past_excel_limit_is_refused(work):
    wide = work / "in" / "wide.csv"
    extra = [f"F{n}" for n in range(9_998)]
    wide.write_text(
        ",".join(["Name", "Mobile", *extra])
        + "\n"
        + ",".join(["Asha", "9876543210", *("v" for _ in extra)])
        + "\n"
    )
    table = checked(work, wide)
    assert table.loc[2, "status"] == "ready"
    assert table.loc[2, "F9997"] == "v"

    too_wide = work / "in" / "too_wide.csv"
    too_wide.write_text("Name,Mobile\nAsha,9876543210" + ",v" * 16_383 + "\n")
    assert_refused(
        work,
        too_wide,
        "too_wide.csv: has 16,385 columns, over Excel's limit of 16,384 (column XFD); "
        "remove the extra columns and retry",
    )
    trailing = work / "in" / "trailing.csv"  # empty fields past XFD are not columns
    trailing.write_text("Name,Mobile\nAsha,9876543210" + "," * 20_000 + "\n")
    assert checked(work, trailing)["status"].tolist() == ["ready"]


@pytest.mark.slow
def test_more_rows_than_excel_holds_are_read(tmp_path):
    """A CSV may hold more than Excel's 1,048,576 rows: it is read whole (the results writer
    splits its output)."""
    rows = 1_048_577
    path = tmp_path / "many.csv"
    path.write_bytes(b"Mobile\n" + b"9876543210\n" * rows)
    sheet = load_sheet(path)
    assert len(sheet.frame) == rows
    assert sheet.frame.index[-1] == rows + 1


def test_scientific_notation_through_the_cli(work):
    path = work / "in" / "sci.csv"
    path.write_text("Name,Mobile\nAsha,9.19876E+11\nRavi,9876543211\n")
    table = checked(work, path)
    assert table.loc[2, ["status", "detail"]].tolist() == ["invalid_number", SCIENTIFIC_REASON]
    assert table.loc[3, "status"] == "ready"


# --- --suppress and --dlt-template files ----------------------------------------------------


@pytest.mark.slow
def test_suppress_files_get_the_same_checks(work, bomb_xlsx):
    sheet = work / "in" / "contacts.csv"
    sheet.write_text("Name,Mobile\nAsha,9876543210\n")
    bomb = work / "in" / "optout.xlsx"
    bomb.write_bytes(bomb_xlsx.read_bytes())
    dtd = write_xlsx(work / "in" / "dnd.xlsx", strings=strings_xml("&xxe;", XXE))
    quotes = work / "in" / "stop.csv"
    quotes.write_text('9876543210\n"9876543211\n9876543212\n')
    cases = {
        bomb: f"--suppress file optout.xlsx: part {SHEET_PART} would unpack from 1.0 MiB to "
        f"1.0 GiB (1,029:1, over the 200:1 limit), as a zip bomb does; refusing it: "
        f"{RESAVE}",
        dtd: f"--suppress file dnd.xlsx: part {STRINGS_PART} {DTD}; refusing it as unsafe: "
        f"{RESAVE}",
        quotes: '--suppress file stop.csv: line 2: a quote (") opened on this line is never '
        "closed; close it or remove it, then retry",
    }
    for path, message in cases.items():
        before = file_sha256(path)
        assert_refused(work, sheet, message, "--suppress", str(path))
        assert_refused(work, sheet, message, "--suppress", str(path), command="send")
        assert file_sha256(path) == before


def test_dlt_template_csv_with_unclosed_quote(work):
    sheet = work / "in" / "contacts.csv"
    sheet.write_text("Name,Mobile\nAsha,9876543210\n")
    dlt = work / "in" / "dlt.csv"
    dlt.write_text('id,text\n1001,"Hi {#var#}, thanks\n1002,Bye {#var#}\n')
    assert_refused(
        work,
        sheet,
        f"{dlt} row 2: cannot read the CSV (unexpected end of data); check the quotes on that row",
        "--dlt-template",
        str(dlt),
    )


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="KNOWN BUG upstream (tafia/calamine#693, open; python-calamine 0.9.1 = calamine "
    "0.37): a worksheet range is allocated densely from its corner cells, so two cells at A2 "
    "and XFD1048576 (a 2 KB file) ask for 550 GB and the process aborts (SIGABRT, exit 134) "
    "instead of exiting 2. A sound pre-scan of the sheet XML costs ~2 s per 1M rows; not done.",
)
def test_far_apart_cells_do_not_abort_the_process(work):
    path = write_xlsx(
        work / "in" / "corners.xlsx",
        sheet=sheet_xml('<c r="A2" t="s"><v>2</v></c><c r="XFD1048576"><v>1</v></c>'),
    )

    def cap_memory():  # runs in the child: fail a huge allocation fast, never swap
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    child = subprocess.run(
        [sys.executable, "-m", "pipeline", "check", str(path), "-t", "template.txt"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=cap_memory,
    )
    assert child.returncode == 2, child.stderr[-300:]
    assert child.stderr.startswith("error: corners.xlsx: ")
    assert child.stderr.count("\n") == 1


def test_ods_is_not_read_its_repeated_cells_can_explode(tmp_path, monkeypatch):
    """A 2 KB .ods can ask calamine for ~12 GB of cells: refused by name, not parsed."""
    from click.testing import CliRunner

    from pipeline.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "contacts.ods").write_bytes(b"PK\x03\x04 not really parsed")
    (tmp_path / "t.txt").write_text("Hi\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "contacts.ods", "-t", "t.txt"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: contacts.ods: not a spreadsheet: use .xlsx, .xlsm, .xls or .csv\n"
    )
