"""Before the first send: can the results workbook and the journal be written at all?

A run that sends 10,000 messages and then cannot write its journal or its workbook has spent
the credits and lost the record of what went (docs/contract.md, "The results workbook",
"Sending, journal and resume"). So before any request leaves, each output folder is created if
needed, a small file is written there, fsynced and removed, and the free space is checked. A
read-only mount, a folder we may not write, or a full disk stops the run with one line saying
which folder, what is wrong and what to do.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from pipeline.errors import InputError

__all__ = [
    "DEFAULT_MIN_FREE",
    "BYTES_PER_ROW",
    "check_out_path",
    "check_writable",
    "estimate_bytes",
]

DEFAULT_MIN_FREE = 50 * 2**20  # headroom kept on every output filesystem, whatever the job
# Measured on 100,000 rows with 100-character messages: the journal takes ~320 bytes a row
# (it keeps keys, numbers and ids, not texts), the workbook ~65 (zipped XML). 512 leaves room
# for Unicode texts, which compress less, and for the temp copy written before the rename.
BYTES_PER_ROW = 512
_PROBE = b"smsbatch write probe\n".ljust(4096, b".")  # one filesystem block, really allocated

_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}
_FULL = {errno.ENOSPC, errno.EDQUOT}


def check_out_path(
    out: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    default_name: Callable[[Path], Path],
) -> Path:
    """The results workbook `--out` names, checked before anything is read (InputError).

    An existing folder (or a path written with a trailing slash) gets `default_name(folder)`
    inside it; otherwise the name must end in .xlsx and its folder must exist; and it must
    not be one of `inputs` (the sheet, the template...), whatever link or spelling leads there:
    the results would replace the contact sheet.
    """
    text = str(out)
    path = Path(out).expanduser()
    if path.is_dir():
        path = default_name(path)
    elif text.endswith(("/", os.sep)):
        raise InputError(
            f"--out {text}: no such folder; create it, or give a file name ending in .xlsx"
        )
    elif path.suffix.lower() != ".xlsx":
        raise InputError(
            f"--out {text}: the results are an Excel workbook, so the name must "
            f"end in .xlsx (e.g. {path.with_suffix('.xlsx')})"
        )
    parent = path.parent
    if not parent.exists():
        raise InputError(
            f"--out {text}: the folder {_shown(parent)} does not exist; create "
            "it or choose another --out"
        )
    if not parent.is_dir():
        raise InputError(f"--out {text}: {_shown(parent)} is not a folder; choose another --out")
    for given in inputs:
        if _same_file(path, Path(given)):
            raise InputError(
                f"--out {text} is the input file {given}: the results would "
                "replace it; choose another --out"
            )
    return path


def _same_file(a: Path, b: Path) -> bool:
    """Whether `a` and `b` are one file: the same inode (links included) or resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return a.resolve(strict=False) == b.expanduser().resolve(strict=False)


def estimate_bytes(rows: int) -> int:
    """A generous estimate of what a run over `rows` rows writes (journal + workbook)."""
    return max(rows, 0) * BYTES_PER_ROW


def check_writable(
    out_path: str | Path,
    journal_path: str | Path | None = None,
    *,
    min_free_bytes: int = DEFAULT_MIN_FREE,
    expected_bytes: int = 0,
) -> None:
    """Raise InputError unless the folders of `out_path` and `journal_path` can be written and
    have `min_free_bytes + expected_bytes` free; creates missing folders, leaves no files."""
    out_path = Path(out_path)
    if out_path.is_dir():
        raise InputError(
            f"{out_path}: is a folder; give --out a file name such as {out_path / 'results.xlsx'}"
        )
    # One check per folder, naming every option that writes there (by default both do).
    folders: dict[Path, list[str]] = {out_path.parent: ["--out"]}
    if journal_path is not None:
        folders.setdefault(Path(journal_path).parent, []).append("--journal")
    need = min_free_bytes + expected_bytes
    created: list[Path] = []
    checked_devices: set[int] = set()
    try:
        for folder, flags in folders.items():
            option = " and ".join(flags)
            created += _make_folder(folder, option)
            _probe(folder, option)
            device = folder.stat().st_dev
            if device not in checked_devices:  # out and journal on one disk: checked once
                checked_devices.add(device)
                _check_space(folder, option, need)
    except InputError:
        for folder in reversed(created):  # leave nothing behind, not even a new folder
            try:
                folder.rmdir()
            except OSError:
                pass
        raise


def _shown(folder: Path) -> str:
    """The folder as the user wrote it, with a trailing slash: `output/`."""
    return f"{folder}/" if str(folder) != "/" else "/"


def _make_folder(folder: Path, option: str) -> list[Path]:
    """Create `folder` and its missing parents; return those created, outermost first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    if not missing:
        if not folder.is_dir():
            raise InputError(
                f"{_shown(folder)} is not a folder (a file has that name); choose another {option}"
            )
        return []
    created: list[Path] = []
    for path in missing:
        try:
            path.mkdir()
        except FileExistsError:
            continue  # another process made it meanwhile: fine
        except OSError as exc:
            for done in reversed(created):
                try:
                    done.rmdir()
                except OSError:
                    pass
            raise InputError(
                f"{_shown(folder)} cannot be created ({exc.strerror}); choose another {option}"
            ) from None
        created.append(path)
    return created


def _probe(folder: Path, option: str) -> None:
    """Write, fsync and remove a small file in `folder`, as the journal and workbook will."""
    name: str | None = None
    try:
        fd, name = tempfile.mkstemp(prefix=".smsbatch-probe-", suffix=".tmp", dir=folder)
        try:
            os.write(fd, _PROBE)
            os.fsync(fd)  # a full disk or a failing device may only say so here
        finally:
            os.close(fd)
    except OSError as exc:
        raise _write_error(folder, option, exc) from None
    finally:
        if name is not None:
            try:
                os.unlink(name)
            except OSError:
                pass


def _write_error(folder: Path, option: str, exc: OSError) -> InputError:
    """The one-line message for a failed probe write."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in _FULL:
        return InputError(
            f"{_shown(folder)} is full ({reason}); free some space or choose another {option}"
        )
    if exc.errno in _NOT_WRITABLE:
        return InputError(f"{_shown(folder)} is not writable ({reason}); choose another {option}")
    return InputError(f"{_shown(folder)} cannot be written ({reason}); choose another {option}")


def _check_space(folder: Path, option: str, need: int) -> None:
    """InputError when the filesystem holding `folder` has less than `need` bytes free."""
    free = shutil.disk_usage(folder).free
    if free < need:
        raise InputError(
            f"{_shown(folder)} has {_size(free)} free, {_size(need, up=True)} "
            f"needed; free some space or choose another {option}"
        )


def _size(count: int, *, up: bool = False) -> str:
    """Bytes for people: 512 B, 3.0 KiB, 49.9 MiB, 1.2 GiB (rounded down, or `up`), so that
    a shortfall never reads as "50.0 MiB free, 50.0 MiB needed"."""
    if count < 1024:
        return f"{count} B"
    value, unit = count / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    tenths = math.ceil(value * 10) if up else math.floor(value * 10)
    return f"{tenths / 10:.1f} {unit}"
