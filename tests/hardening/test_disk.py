"""Read-only or full output folders are found before the first send (pipeline/preflight.py).

Tests run as root here, where permission bits stop no write, so a real read-only or full
filesystem is a tmpfs mounted in a private mount namespace (`unshare`, gone when the child
exits); where that is not possible those tests skip, and the same failures are produced by
making the system calls fail with the errno the kernel would give.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.errors import InputError
from pipeline.sending import preflight
from pipeline.sending.preflight import check_writable, estimate_bytes

MIB = 2**20


def usage(free: int) -> SimpleNamespace:
    """What shutil.disk_usage returns, for a disk with `free` bytes free."""
    return SimpleNamespace(total=free, used=0, free=free)


PLENTY = usage(10 * 2**30)


def tree(root: Path) -> list[str]:
    """Every file and folder under root, relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def fail_in(folder: Path, call: str, code: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make os.<call> fail with `code` for files in `folder` (what the kernel would say);
    returns the log of failed calls."""
    real = getattr(os, call)
    failed: list[str] = []
    folder = folder.resolve()

    def fake(target, *args, **kwargs):
        path = target if call == "open" else _fd_path(target)
        if path is not None and Path(path).resolve().parent == folder:
            failed.append(call)
            raise OSError(code, os.strerror(code), str(path))
        return real(target, *args, **kwargs)

    monkeypatch.setattr(os, call, fake)
    return failed


def _fd_path(fd: object) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except (OSError, TypeError):
        return None


# ---- success -----------------------------------------------------------------------------


def test_writable_folders_pass_and_keep_nothing_but_the_folders(tmp_path):
    out = tmp_path / "output" / "run" / "results.xlsx"
    journal = tmp_path / "state" / "journal.sqlite"
    assert check_writable(out, journal) is None
    assert tree(tmp_path) == ["output", "output/run", "state"]


def test_a_journal_in_the_results_folder_is_checked_once(tmp_path, monkeypatch):
    calls: list[Path] = []
    real = preflight._probe
    monkeypatch.setattr(
        preflight, "_probe", lambda folder, option: (calls.append(folder), real(folder, option))
    )
    check_writable(tmp_path / "results.xlsx", tmp_path / "journal.sqlite")
    assert calls == [tmp_path]
    assert tree(tmp_path) == []


def test_relative_paths_are_named_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fail_in(tmp_path / "output", "open", errno.EROFS, monkeypatch)
    with pytest.raises(InputError) as caught:
        check_writable(Path("output/results.xlsx"), Path("output/journal.sqlite"))
    assert str(caught.value) == (
        "output/ is not writable (Read-only file system); choose another --out and --journal"
    )


# ---- not writable --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.EROFS, "Read-only file system"),
        (errno.EACCES, "Permission denied"),
        (errno.EPERM, "Operation not permitted"),
    ],
)
def test_a_folder_that_refuses_files_stops_the_run(tmp_path, monkeypatch, code, reason):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    failed = fail_in(out_dir, "open", code, monkeypatch)
    with pytest.raises(InputError) as caught:
        check_writable(out_dir / "results.xlsx", tmp_path / "journal" / "journal.sqlite")
    assert str(caught.value) == f"{out_dir}/ is not writable ({reason}); choose another --out"
    assert failed == ["open"]
    assert tree(tmp_path) == ["out"]  # the journal folder was not made either


def test_a_read_only_journal_folder_names_the_journal_option(tmp_path, monkeypatch):
    journal_dir = tmp_path / "j"
    journal_dir.mkdir()
    fail_in(journal_dir, "open", errno.EROFS, monkeypatch)
    with pytest.raises(InputError) as caught:
        check_writable(tmp_path / "out" / "results.xlsx", journal_dir / "journal.sqlite")
    assert str(caught.value) == (
        f"{journal_dir}/ is not writable (Read-only file system); choose another --journal"
    )
    assert tree(tmp_path) == ["j"]  # out/ was created for the check, and removed again


def test_a_folder_that_cannot_be_created_stops_the_run(tmp_path, monkeypatch):
    real = os.mkdir

    def mkdir(path, *args, **kwargs):
        if Path(path).name == "deep":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    out = tmp_path / "new" / "deep" / "results.xlsx"
    with pytest.raises(InputError) as caught:
        check_writable(out)
    assert str(caught.value) == (
        f"{tmp_path}/new/deep/ cannot be created (Read-only file system); choose another --out"
    )
    assert tree(tmp_path) == []  # `new` was made on the way, then taken back


def test_other_write_errors_are_reported_with_the_systems_words(tmp_path, monkeypatch):
    fail_in(tmp_path, "open", errno.EIO, monkeypatch)
    with pytest.raises(InputError) as caught:
        check_writable(tmp_path / "results.xlsx")
    assert str(caught.value) == (
        f"{tmp_path}/ cannot be written (Input/output error); choose another --out"
    )


def test_a_results_path_that_is_a_folder_is_refused(tmp_path):
    with pytest.raises(InputError) as caught:
        check_writable(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path}: is a folder; give --out a file name such as {tmp_path}/results.xlsx"
    )


def test_a_file_where_the_folder_should_be_is_refused(tmp_path):
    (tmp_path / "output").write_text("not a folder")
    with pytest.raises(InputError) as caught:
        check_writable(tmp_path / "results.xlsx", tmp_path / "output" / "journal.sqlite")
    assert str(caught.value) == (
        f"{tmp_path}/output/ is not a folder (a file has that name); choose another --journal"
    )
    assert tree(tmp_path) == ["output"]


# ---- full ---------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["write", "fsync"])
@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.ENOSPC, "No space left on device"),
        (errno.EDQUOT, "Disk quota exceeded"),
    ],
)
def test_a_full_disk_stops_the_run_and_the_probe_file_is_removed(
    tmp_path, monkeypatch, call, code, reason
):
    failed = fail_in(tmp_path, call, code, monkeypatch)
    with pytest.raises(InputError) as caught:
        check_writable(tmp_path / "results.xlsx", tmp_path / "journal.sqlite")
    assert str(caught.value) == (
        f"{tmp_path}/ is full ({reason}); free some space or choose another --out and --journal"
    )
    assert failed == [call]
    assert tree(tmp_path) == []


def test_too_little_free_space_stops_the_run(tmp_path, monkeypatch):
    seen: list[Path] = []

    monkeypatch.setattr(
        shutil, "disk_usage", lambda path: (seen.append(Path(path)), usage(10 * MIB))[1]
    )
    with pytest.raises(InputError) as caught:
        check_writable(tmp_path / "a" / "results.xlsx")
    assert str(caught.value) == (
        f"{tmp_path}/a/ has 10.0 MiB free, 50.0 MiB needed; free some space or choose another --out"
    )
    assert seen == [tmp_path / "a"]
    assert tree(tmp_path) == []


def test_expected_bytes_raise_the_bar_for_a_large_sheet(tmp_path, monkeypatch):
    free = 500 * MIB
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(free))
    check_writable(tmp_path / "results.xlsx", expected_bytes=estimate_bytes(10_000))
    with pytest.raises(InputError) as caught:
        check_writable(tmp_path / "results.xlsx", expected_bytes=estimate_bytes(1_000_000))
    # 50 MiB headroom + 1,000,000 rows x 512 bytes = 564,428,800 bytes = 538.28 MiB
    assert str(caught.value) == (
        f"{tmp_path}/ has 500.0 MiB free, 538.3 MiB needed; free some space or choose another --out"
    )


def test_shortfalls_are_rounded_so_they_read_as_shortfalls(tmp_path, monkeypatch):
    free = 50 * MIB - 1
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(free))
    with pytest.raises(InputError) as caught:
        check_writable(tmp_path / "results.xlsx")
    assert "has 49.9 MiB free, 50.0 MiB needed" in str(caught.value)
    check_writable(tmp_path / "results.xlsx", min_free_bytes=free)


def test_space_is_checked_on_each_filesystem_once(tmp_path, monkeypatch):
    seen: list[Path] = []
    monkeypatch.setattr(shutil, "disk_usage", lambda path: (seen.append(Path(path)), PLENTY)[1])
    check_writable(tmp_path / "a" / "results.xlsx", tmp_path / "b" / "journal.sqlite")
    assert seen == [tmp_path / "a"]  # a/ and b/ are on one device


def test_estimate_is_512_bytes_a_row():
    assert [estimate_bytes(n) for n in (-5, 0, 1, 1_000_000)] == [0, 0, 512, 512_000_000]


# ---- real filesystems, in a private mount namespace ----------------------------------------

CHILD = textwrap.dedent("""
    import os
    import sys
    from pathlib import Path
    from pipeline.errors import InputError
    from pipeline.sending.preflight import check_writable
    mnt = Path(sys.argv[1])
    if sys.argv[2] == "fill":
        # Fill the filesystem to the last byte, as a long-running job next door might.
        fd = os.open(mnt / "ballast", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"x" * 4096):
                pass
        except OSError:
            pass
        os.close(fd)
    try:
        check_writable(mnt / "out" / "results.xlsx", mnt / "journal.sqlite",
                       min_free_bytes=int(sys.argv[3]))
        print("OK")
    except InputError as exc:
        print(exc)
    print(sorted(p.name for p in mnt.iterdir()))
""")


def in_tmpfs(mnt: Path, options: str, mode: str, min_free: int) -> list[str]:
    """Run the CHILD check inside a fresh tmpfs mounted at `mnt` (private namespace)."""
    mnt.mkdir()
    script = 'mount -t tmpfs -o "$2" tmpfs "$1" && exec "$3" -c "$4" "$1" "$5" "$6"'
    done = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            script,
            "sh",
            str(mnt),
            options,
            sys.executable,
            CHILD,
            mode,
            str(min_free),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.fixture(scope="module")
def namespaces() -> None:
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1): cannot mount a private tmpfs here")
    probe = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            "mount -t tmpfs tmpfs /mnt",
        ],
        capture_output=True,
    )
    if probe.returncode != 0:
        pytest.skip("user and mount namespaces are not allowed here")


def test_a_real_read_only_filesystem_is_found(tmp_path, namespaces):
    mnt = tmp_path / "ro"
    lines = in_tmpfs(mnt, "ro,size=1m", "plain", 0)
    assert lines == [
        f"{mnt}/out/ cannot be created (Read-only file system); choose another --out",
        "[]",
    ]


def test_a_real_read_only_folder_that_exists_is_found(tmp_path, namespaces):
    # The mount is read-only but the results folder is the mount point itself.
    mnt = tmp_path / "ro"
    mnt.mkdir()
    script = (
        'mount -t tmpfs -o ro,size=1m tmpfs "$1" && exec "$2" -c '
        '"from pipeline.sending.preflight import check_writable as c; '
        "from pathlib import Path; "
        "import sys\ntry:\n c(Path(sys.argv[1]) / 'r.xlsx')\nexcept Exception as e:"
        ' print(e)" "$1"'
    )
    done = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            script,
            "sh",
            str(mnt),
            sys.executable,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"{mnt}/ is not writable (Read-only file system); choose another --out\n"
    )


def test_a_really_full_filesystem_is_found_and_left_as_it_was(tmp_path, namespaces):
    mnt = tmp_path / "full"
    lines = in_tmpfs(mnt, "size=256k", "fill", 0)
    # out/ could still be made (a folder takes no data block on tmpfs), the probe could not
    # be written: out/ is removed again, and only the ballast is left.
    assert lines == [
        f"{mnt}/out/ is full (No space left on device); free some space or choose another --out",
        "['ballast']",
    ]


def test_a_really_small_filesystem_fails_the_free_space_check(tmp_path, namespaces):
    mnt = tmp_path / "small"
    lines = in_tmpfs(mnt, "size=1m", "plain", preflight.DEFAULT_MIN_FREE)
    assert lines == [
        f"{mnt}/out/ has 1.0 MiB free, 50.0 MiB needed; free some space or choose another --out",
        "[]",
    ]


def test_a_real_roomy_filesystem_passes(tmp_path, namespaces):
    mnt = tmp_path / "roomy"
    lines = in_tmpfs(mnt, "size=1m", "plain", 512 * 1024)
    assert lines == ["OK", "['out']"]
