"""Read a small UTF-8 text file the user wrote (a template, DLT templates), with clear errors."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import InputError


def read_text(path: str | Path, *, what: str, where: str, save_as: str = "UTF-8") -> str:
    """The file's text, BOM dropped and CRLF/CR as "\\n"; InputError naming `what` otherwise.

    `where` says what to check when the file is missing ("the --template path"); `save_as`
    how to re-save a file that is not UTF-8.
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: {what} file not found; check {where}") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder; give the {what} file's path") from None
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read the {what} ({exc.strerror}); check its permissions"
        ) from None
    try:
        # utf-8-sig: Notepad and Excel's "CSV UTF-8" may write a BOM, which is not content.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            f"save the {what} as {save_as} and rerun"
        ) from None
    # A Windows editor's CRLF is one newline to the user.
    return text.replace("\r\n", "\n").replace("\r", "\n")
