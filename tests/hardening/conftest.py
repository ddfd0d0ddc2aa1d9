"""Builders of hostile and broken input files for tests/hardening (made at test time, small).

Workbooks are written with `zipfile` part by part (a minimal valid .xlsx: content types,
relationships, workbook, one sheet "Contacts", shared strings) so that one part can be
tampered with. The one committed file, data/contacts.xls, was written by `write_xls` with
xlwt 1.3.0 (not a project dependency): `python -c "from tests.hardening.conftest import
write_xls; write_xls('tests/hardening/data/contacts.xls')"`.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
)
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Contacts" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
)
SHEET_PART = "xl/worksheets/sheet1.xml"
STRINGS_PART = "xl/sharedStrings.xml"

# Billion laughs: ten levels, each entity ten of the one before (10^9 "lol" if expanded).
LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{n} "{(f"&lol{n - 1};" if n > 1 else "&lol;") * 10}">' for n in range(1, 10)
    )
    + "]>"
)
XXE = '<!DOCTYPE sst [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


def sheet_xml(name_cell: str = '<c r="A2" t="s"><v>2</v></c>', prolog: str = "") -> str:
    """Worksheet XML: header Name, Mobile (shared strings 0, 1), one contact row."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        + prolog
        + '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
        f'<row r="2">{name_cell}<c r="B2"><v>9876543210</v></c></row></sheetData></worksheet>'
    )


def strings_xml(name: str = "Asha", prolog: str = "") -> str:
    """Shared strings: Name, Mobile, then the contact's name (index 2)."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        + prolog
        + '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="3" '
        f'uniqueCount="3"><si><t>Name</t></si><si><t>Mobile</t></si><si><t>{name}</t></si></sst>'
    )


def write_xlsx(
    path: Path,
    *,
    sheet: str | bytes | None = None,
    strings: str | bytes | None = None,
    extra: dict[str, bytes] | None = None,
) -> Path:
    """A minimal valid .xlsx, with the sheet or shared strings part replaced if given."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        archive.writestr(SHEET_PART, sheet if sheet is not None else sheet_xml())
        archive.writestr(STRINGS_PART, strings if strings is not None else strings_xml())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def write_bomb_xlsx(path: Path, size: int = 1 << 30) -> Path:
    """An .xlsx whose sheet part is `size` zero bytes at zlib level 9 (~1 MB on disk for
    1 GiB), written 1 MiB at a time so the test never holds the inflated part."""
    block = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        archive.writestr(STRINGS_PART, strings_xml())
        with archive.open(SHEET_PART, "w", force_zip64=True) as part:
            for _ in range(size // len(block)):
                part.write(block)
    return path


def declare_size(source: Path, target: Path, part_name: str, declared: int) -> Path:
    """Copy an .xlsx, rewriting one part's uncompressed size (and CRC, to match its first
    `declared` bytes) in the central directory and local header: a zip that lies."""
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as archive:
        info = archive.getinfo(part_name)
        with archive.open(info) as part:
            crc = zlib.crc32(part.read(declared))
    local = info.header_offset
    struct.pack_into("<I", data, local + 14, crc)
    if struct.unpack_from("<I", data, local + 22)[0] != 0xFFFFFFFF:
        struct.pack_into("<I", data, local + 22, declared)
    entry = data.find(b"PK\x01\x02")
    while entry >= 0:
        name_len = struct.unpack_from("<H", data, entry + 28)[0]
        if data[entry + 46 : entry + 46 + name_len] == part_name.encode():
            struct.pack_into("<I", data, entry + 16, crc)
            if struct.unpack_from("<I", data, entry + 24)[0] == 0xFFFFFFFF:  # in ZIP64 extra
                extra = entry + 46 + name_len
                struct.pack_into("<Q", data, extra + 4, declared)
            else:
                struct.pack_into("<I", data, entry + 24, declared)
        entry = data.find(b"PK\x01\x02", entry + 4)
    target.write_bytes(bytes(data))
    return target


# --- OLE (Compound File Binary, MS-CFB v3) -------------------------------------------------

_FREE, _END, _FAT, _NONE = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF


def _dir_entry(
    name: str, kind: int, start: int = _END, size: int = 0, right: int = _NONE, child: int = _NONE
) -> bytes:
    raw = (name + "\0").encode("utf-16-le") if name else b""
    return (
        raw.ljust(64, b"\0")
        + struct.pack("<HBB3I", len(raw), kind, 1, _NONE, right, child)
        + bytes(36)
        + struct.pack("<IQ", start, size)
    )


def write_ole(path: Path, streams: list[tuple[str, bytes]]) -> Path:
    """An OLE container (512-byte sectors) holding up to three streams of >= 4096 bytes
    (so none goes to the mini stream): sector 0 is the FAT, sector 1 the directory."""
    fat, sectors, entries = [_FAT, _END], [], []
    for i, (name, data) in enumerate(streams):
        data = data.ljust(-(-len(data) // 512) * 512, b"\0")
        first, count = 2 + sum(len(s) // 512 for s in sectors), len(data) // 512
        fat += [first + k + 1 for k in range(count - 1)] + [_END]
        entries.append(
            _dir_entry(name, 2, first, len(data), right=i + 2 if i + 1 < len(streams) else _NONE)
        )
        sectors.append(data)
    directory = [_dir_entry("Root Entry", 5, child=1 if streams else _NONE), *entries]
    directory += [_dir_entry("", 0)] * (4 - len(directory))
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + bytes(16)
        + struct.pack("<5H", 0x3E, 3, 0xFFFE, 9, 6)
        + bytes(6)
        + struct.pack("<9I", 0, 1, 1, 0, 0x1000, _END, 0, _END, 0)
        + struct.pack("<I", 0)
        + struct.pack("<I", _FREE) * 108
    )
    fat += [_FREE] * (128 - len(fat))
    path.write_bytes(header + struct.pack("<128I", *fat) + b"".join(directory) + b"".join(sectors))
    return path


def write_xls(path: str | Path) -> None:
    """How data/contacts.xls was made (needs xlwt, which the project does not install)."""
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Contacts")
    sheet.write(0, 0, "Name")
    sheet.write(0, 1, "Mobile")
    sheet.write(1, 0, "Asha")
    sheet.write(1, 1, 9876543210)
    sheet.write(2, 0, "Ravi")
    sheet.write(2, 1, "+91 98765 43211")
    book.save(str(path))


@pytest.fixture(scope="session")
def bomb_xlsx(tmp_path_factory) -> Path:
    """A 1 GiB zip bomb .xlsx, built once per session (~3 s)."""
    return write_bomb_xlsx(tmp_path_factory.mktemp("bomb") / "bomb.xlsx")
