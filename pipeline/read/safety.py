"""Refuse hostile workbooks before a parser sees them: zip bombs, DTDs, encrypted OLE files.

Every Excel file the job reads (contact sheet, --suppress list) passes `check_workbook` first;
each refusal is one InputError line saying what to do (exit 2, no traceback:
docs/contract.md, "Exit codes").

What is checked, and why here rather than left to the reader (python-calamine):
- zip containers (.xlsx, .xlsm): the number of parts, read from the end-of-central-
  directory record before `zipfile` builds one object per part; the declared uncompressed
  size of all parts together; the compression ratio of every large part. Only the central
  directory is read, never a part's content, so a bomb is refused in milliseconds.
  Limit of the check: it trusts the declared sizes. A part that inflates to more than it
  declares is stopped by calamine's zip reader ("File is larger than its declared
  uncompressed size", verified with calamine 0.37 / zip 9.2), which then reads as a damaged
  workbook; both read the central directory that `zipfile` reads (the last one in the file).
- XML parts: a `<!DOCTYPE` (and so any `<!ENTITY`, which can only be declared inside one) in
  the prolog. Excel never writes one. calamine does not expand entities anyway: it resolves
  only the five predefined ones and character references, never loads a DTD, and fails on
  any other `&name;` ("unrecognized entity"), so this check is for a clear message and for
  defence in depth. XML allows a DOCTYPE only before the root element, so only the prolog
  (at most PROLOG_SCAN_BYTES of it) is read, of every part but .svg pictures (which may carry
  the W3C DOCTYPE and which calamine never parses).
- OLE (CFB) containers: Excel saves a password-protected .xlsx as an OLE file holding an
  `EncryptedPackage` stream; an OLE file with no `Workbook`/`Book` stream is another Office
  document (Word, PowerPoint), not an .xls.

The limits below are module-level defaults; `check_workbook` takes each as a keyword to
override it for one call. They sit far above real contact sheets: a 1,000,000-row sheet is a
~300 MB part compressed about 10:1.
"""

from __future__ import annotations

import codecs
import io
import struct
import zipfile
import zlib

from pipeline.errors import InputError

# At most this many parts in a zip container (a workbook has a few dozen; a hostile one may
# have millions, each costing `zipfile` memory and time before any other check).
MAX_ENTRIES = 10_000
# At most this many bytes once every part is unpacked (declared sizes, all parts together).
MAX_TOTAL_BYTES = 2 * 1024**3
# A part larger than RATIO_MIN_BYTES may be at most MAX_RATIO times its compressed size.
# Real sheet XML compresses about 10:1; a bomb of repeated bytes 1000:1 and more.
MAX_RATIO = 200
RATIO_MIN_BYTES = 16 * 1024**2
# How much of each part's start is read to find its prolog (real prologs are ~60 bytes).
PROLOG_SCAN_BYTES = 64 * 1024

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_UNFINISHED = "unfinished"  # _prolog_finding: the prolog goes on past what was read
_RESAVE = "open it in Excel and save it again as .xlsx, or export it as .csv"


def check_workbook(
    label: str,
    data: bytes,
    *,
    max_entries: int | None = None,
    max_total_bytes: int | None = None,
    max_ratio: float | None = None,
    ratio_min_bytes: int | None = None,
) -> None:
    """Raise InputError if the workbook bytes are a bomb, hold a DTD or are encrypted."""
    # A zip with bytes before it (a self-extractor, a polyglot) is still read as one.
    if data.startswith(ZIP_MAGIC) or (
        _find_eocd(data) >= 0 and zipfile.is_zipfile(io.BytesIO(data))
    ):
        _check_zip(
            label,
            data,
            MAX_ENTRIES if max_entries is None else max_entries,
            MAX_TOTAL_BYTES if max_total_bytes is None else max_total_bytes,
            MAX_RATIO if max_ratio is None else max_ratio,
            RATIO_MIN_BYTES if ratio_min_bytes is None else ratio_min_bytes,
        )
    elif data.startswith(OLE_MAGIC):
        _check_ole(label, data)


def damaged(label: str) -> InputError:
    """The error for a workbook that cannot be read as a whole."""
    return InputError(
        f"{label}: workbook is damaged or incomplete; re-save it from Excel as .xlsx "
        "or export it as .csv"
    )


def password_protected(label: str) -> InputError:
    """The error for a workbook encrypted with a password."""
    return InputError(
        f"{label}: workbook is password-protected; open it in Excel, remove the password "
        "(File > Info > Protect Workbook > Encrypt with Password) and save it, then retry"
    )


# --- zip -----------------------------------------------------------------------------------


def _check_zip(
    label: str,
    data: bytes,
    max_entries: int,
    max_total: int,
    max_ratio: float,
    ratio_min: int,
) -> None:
    declared = _declared_entries(data)
    if declared is not None and declared > max_entries:
        raise _too_many_parts(label, declared, max_entries)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        raise damaged(label) from None
    with archive:
        parts = archive.infolist()
        if len(parts) > max_entries:  # the end record may understate what zipfile found
            raise _too_many_parts(label, len(parts), max_entries)
        total = sum(part.file_size for part in parts)
        if total > max_total:
            raise InputError(
                f"{label}: workbook would unpack to {_size(total)}, over the limit of "
                f"{_size(max_total)}; split the contacts into smaller files"
            )
        for part in parts:
            if part.file_size > ratio_min and part.file_size > max_ratio * part.compress_size:
                ratio = part.file_size / max(part.compress_size, 1)
                raise InputError(
                    f"{label}: part {part.filename} would unpack from "
                    f"{_size(part.compress_size)} to {_size(part.file_size)} ({ratio:,.0f}:1, "
                    f"over the {max_ratio:,.0f}:1 limit), as a zip bomb does; refusing it: "
                    f"{_RESAVE}"
                )
        for part in parts:
            # An SVG picture may carry the W3C DOCTYPE; calamine never parses pictures.
            if part.file_size and not part.filename.lower().endswith((".svg", "/")):
                _check_prolog(label, archive, part)


def _too_many_parts(label: str, count: int, limit: int) -> InputError:
    return InputError(
        f"{label}: workbook has {count:,} parts, over the limit of {limit:,} (a real one has "
        f"a few dozen); refusing it as unsafe: {_RESAVE}"
    )


def _find_eocd(data: bytes) -> int:
    """Offset of the end-of-central-directory record (-1 if none): it ends the file, after
    at most a 64 KiB comment."""
    return data.rfind(_EOCD, max(0, len(data) - 22 - 0xFFFF))


def _declared_entries(data: bytes) -> int | None:
    """Number of parts the end-of-central-directory record declares (ZIP64 aware)."""
    end = _find_eocd(data)
    if end < 0 or end + 22 > len(data):
        return None
    entries: int
    (entries,) = struct.unpack_from("<H", data, end + 10)
    locator = end - 20
    if entries == 0xFFFF and locator >= 0 and data.startswith(_EOCD64_LOCATOR, locator):
        (offset,) = struct.unpack_from("<Q", data, locator + 8)
        if offset + 40 <= len(data) and data.startswith(_EOCD64, offset):
            (entries,) = struct.unpack_from("<Q", data, offset + 32)
    return entries


def _check_prolog(label: str, archive: zipfile.ZipFile, part: zipfile.ZipInfo) -> None:
    try:
        with archive.open(part) as stream:
            head = stream.read(1024)  # a real prolog fits; read on only if it does not
            finding = _prolog_finding(head, complete=part.file_size <= len(head))
            if finding == _UNFINISHED:
                head += stream.read(PROLOG_SCAN_BYTES - len(head))
                finding = _prolog_finding(head, complete=part.file_size <= len(head))
    except (
        zipfile.BadZipFile,
        NotImplementedError,
        RuntimeError,
        ValueError,
        OSError,
        EOFError,
        zlib.error,
    ):
        # unsupported compression, zip-level encryption, corrupt deflate data
        raise damaged(label) from None
    if finding == _UNFINISHED:
        finding = f"starts with over {_size(PROLOG_SCAN_BYTES)} of comments or blank space"
    if finding:
        raise InputError(
            f"{label}: part {part.filename} {finding}, which Excel never writes; refusing "
            f"it as unsafe: {_RESAVE}"
        )


def _prolog_finding(head: bytes, *, complete: bool) -> str | None:
    """What is wrong with the prolog of an XML part, None if nothing (or not XML at all)."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, b"<\x00", b"\x00<")):
        text = head.decode(
            "utf-16-be" if head[:1] in (b"\xfe", b"\x00") else "utf-16-le", errors="ignore"
        ).lstrip("\ufeff")
    else:
        # Markup is ASCII: latin-1 maps every byte to one character, so offsets stay simple.
        text = head.removeprefix(codecs.BOM_UTF8).decode("latin-1")
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos == len(text):
            return None if complete else _UNFINISHED
        if text.startswith("<?", pos):
            end = text.find("?>", pos + 2)
            step = 2
        elif text.startswith("<!--", pos):
            end = text.find("-->", pos + 4)
            step = 3
        elif text.startswith("<!", pos):
            return "declares a DTD or entities (<!DOCTYPE, <!ENTITY)"
        else:
            return None  # the root element, or not XML (a picture, a binary part)
        if end < 0:
            if complete:
                return None  # an unclosed comment: malformed, calamine says damaged
            return _UNFINISHED
        pos = end + step


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1000 or unit == "GiB":  # 1,019 KiB reads better as 1.0 MiB
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


# --- OLE (Compound File Binary) ------------------------------------------------------------


def _check_ole(label: str, data: bytes) -> None:
    if _has_stream(data, "EncryptedPackage"):
        raise password_protected(label)
    if not (_has_stream(data, "Workbook") or _has_stream(data, "Book")):
        raise InputError(
            f"{label}: is an Office document of another kind (Word, PowerPoint...), not an "
            "Excel workbook; check you picked the right file"
        )


def _has_stream(data: bytes, name: str) -> bool:
    """Whether the OLE file's directory has a stream of this name.

    A directory entry is 128 bytes, aligned on 128 in the file (MS-CFB 2.6): the name in
    UTF-16LE padded to 64 bytes, its byte length, then the object type (2 = stream).
    """
    raw = (name + "\0").encode("utf-16-le")
    entry = raw.ljust(64, b"\0") + struct.pack("<HB", len(raw), 2)
    pos = data.find(entry)
    while pos >= 0:
        if pos % 128 == 0:
            return True
        pos = data.find(entry, pos + 1)
    return False
