"""storage: file names, atomic writes, clear errors for real storage failures, URLs."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pytest

from imgdesk.core import storage
from imgdesk.core.errors import ErrorCode, ImageError
from imgdesk.core.output import OutputSettings
from imgdesk.core.storage import (
    check_folder_writable,
    output_file_name,
    output_url,
    remove_partial_files,
    request_folder,
    write_atomic,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUEST_ID = "3f2c7a9e-1b4d-4c8e-9f00-5a6b7c8d9e0f"
WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {
    f"{p}{n}" for p in ("com", "lpt") for n in range(10)
}
SAFE_NAME = re.compile(r"^[0-9]{4,}_[a-z0-9]+(-[a-z0-9]+)*_[0-9]+\.(jpg|webp|avif)$")


def storage_error(call: object, *args: object) -> ImageError:
    with pytest.raises(ImageError) as info:
        call(*args)  # type: ignore[operator]
    assert info.value.code == ErrorCode.STORAGE
    assert info.value.transient is False
    return info.value


# --- folders and names -----------------------------------------------------------------------


def test_request_folder(tmp_path: Path) -> None:
    assert request_folder(tmp_path, REQUEST_ID) == tmp_path / "images" / REQUEST_ID


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "a/b", "a\\b"])
def test_request_folder_never_escapes_images(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        request_folder(tmp_path, bad)


@pytest.mark.parametrize(
    ("row", "name", "position", "expected"),
    [
        (7, "Blue Cotton Shirt", 2, "0007_blue-cotton-shirt_2.jpg"),
        (1, "SKU1", 1, "0001_sku1_1.jpg"),
        (12, "Crème Brûlée — Édition “Spéciale”", 3, "0012_creme-brulee-edition-speciale_3.jpg"),
        (3, "ＦＵＬＬ　ｗｉｄｔｈ №5", 1, "0003_full-width-no5_1.jpg"),
        (4, 'a/b\\c:d*e?f"g<h>i|j', 1, "0004_a-b-c-d-e-f-g-h-i-j_1.jpg"),
        (5, "../../etc/passwd", 1, "0005_etc-passwd_1.jpg"),
        (6, "", 1, "0006_product_1.jpg"),
        (8, "   ---   ", 1, "0008_product_1.jpg"),
        (9, "衬衫", 1, "0009_product_1.jpg"),
        (10, "CON", 1, "0010_con_1.jpg"),
        (11, "nul.", 2, "0011_nul_2.jpg"),
        (12345, "x", 10, "12345_x_10.jpg"),
    ],
)
def test_output_file_name(row: int, name: str, position: int, expected: str) -> None:
    assert output_file_name(row, name, position, ".jpg") == expected


@pytest.mark.parametrize("output_format", ["jpeg", "webp", "avif"])
def test_the_output_file_name_ends_in_its_formats_extension(output_format: str) -> None:
    extension = OutputSettings(format=output_format).extension
    name = output_file_name(7, "Blue Shirt", 2, extension)
    assert name == f"0007_blue-shirt_2{extension}"
    assert name.endswith((".jpg", ".webp", ".avif"))


@pytest.mark.parametrize("extension", ["", "jpg", "./x", ".JPG", "/.jpg", ".j p"])
def test_an_extension_that_is_not_one_is_refused(extension: str) -> None:
    with pytest.raises(ValueError):
        output_file_name(1, "x", 1, extension)


@pytest.mark.parametrize(
    "name",
    ["CON", "con", "PRN", "AUX", "NUL", "COM1", "LPT9", "nul.txt", "Con ", "", ". .", "a" * 500],
)
def test_output_file_names_are_safe_on_windows(name: str) -> None:
    file_name = output_file_name(1, name, 1, ".webp")
    assert SAFE_NAME.match(file_name), file_name
    stem = file_name.split(".")[0]
    assert stem not in WINDOWS_RESERVED
    assert not file_name.endswith((".", " "))
    assert len(file_name) <= 4 + 1 + 60 + 1 + 1 + 5


def test_long_names_are_cut_without_a_trailing_dash() -> None:
    name = output_file_name(1, "word " * 40, 1, ".jpg")
    slug = name.split("_")[1]
    assert len(slug) <= 60
    assert not slug.endswith("-")


def test_names_are_unique_within_a_request_even_for_equal_products() -> None:
    products = ("Shirt", "shirt", "SHIRT!", "")  # all give the same slug (or "product")
    names = {
        output_file_name(row, products[row % 4], position, ".avif")
        for row in range(1, 60)
        for position in range(1, 6)
    }
    assert len(names) == 59 * 5
    assert len({name.lower() for name in names}) == len(names)  # case-insensitive disks too


def test_negative_numbers_are_refused() -> None:
    with pytest.raises(ValueError):
        output_file_name(-1, "x", 1, ".jpg")


# --- write_atomic ----------------------------------------------------------------------------


def test_write_atomic_creates_folders_and_leaves_only_the_file(tmp_path: Path) -> None:
    target = tmp_path / "images" / REQUEST_ID / "0001_a_1.jpg"
    data = os.urandom(3 * 1024 * 1024 + 17)
    write_atomic(target, data)
    assert target.read_bytes() == data
    assert os.listdir(target.parent) == [target.name]


def test_write_atomic_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "a.jpg"
    target.write_bytes(b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["a.jpg"]


def test_write_atomic_uses_a_recognisable_temp_file_in_the_same_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        renames.append((os.fspath(src), os.fspath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    target = tmp_path / "0001_a_1.jpg"
    write_atomic(target, b"data")
    [(src, dst)] = renames
    assert Path(dst) == target
    assert Path(src).parent == tmp_path
    assert Path(src).name.startswith(".0001_a_1.jpg.") and src.endswith(".part")


@pytest.mark.skipif(os.name != "posix", reason="file modes and umask are POSIX")
def test_written_files_follow_the_umask_like_any_other_file(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a.jpg", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.jpg").stat().st_mode & 0o777 == 0o644


def test_a_file_where_the_folder_should_be(tmp_path: Path) -> None:
    blocker = tmp_path / "images"
    blocker.write_bytes(b"I am a file")
    error = storage_error(write_atomic, blocker / "req" / "0001_a_1.jpg", b"data")
    assert f"{blocker} is a file, not a folder" in error.message
    assert "choose another data folder" in error.message
    assert blocker.read_bytes() == b"I am a file"
    assert os.listdir(tmp_path) == ["images"]


def test_a_file_with_the_folder_name_itself(tmp_path: Path) -> None:
    blocker = tmp_path / "req"
    blocker.write_bytes(b"")
    error = storage_error(write_atomic, blocker / "0001_a_1.jpg", b"data")
    assert f"Cannot create the folder {blocker}: {blocker} is a file" in error.message


def test_other_failures_name_the_system_reason_and_leave_nothing(tmp_path: Path) -> None:
    target = tmp_path / "0001_a_1.jpg"
    target.mkdir()  # a folder where the image should go: the final rename fails
    (target / "keep").write_bytes(b"")
    error = storage_error(write_atomic, target, b"data")
    assert error.message.startswith(f"Could not save 0001_a_1.jpg in {tmp_path}: ")
    assert sorted(os.listdir(tmp_path)) == ["0001_a_1.jpg"]
    assert os.listdir(target) == ["keep"]


def _chmod_stops_writes(folder: Path) -> bool:
    probe = folder / "probe"
    try:
        probe.write_bytes(b"")
    except PermissionError:
        return True
    probe.unlink()
    return False


def test_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if not _chmod_stops_writes(folder):
            pytest.skip(
                "running as root (or on a system where chmod 555 does not stop writes); "
                "test_read_only_disk covers this case with a read-only mount"
            )
        error = storage_error(write_atomic, folder / "a.jpg", b"data")
        assert error.message.startswith(f"imgdesk is not allowed to write to {folder}")
        assert "permission denied" in error.message
        storage_error(check_folder_writable, folder)
        assert os.listdir(folder) == []
    finally:
        folder.chmod(0o755)


# Real storage failures, provoked in a child process so that nothing leaks into this one.
# A tmpfs mounted in a private mount namespace (unshare) gives a real full or read-only disk
# without touching the machine's mounts: it disappears with the child.

_CHILD_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from imgdesk.core.errors import ImageError
    from imgdesk.core.storage import check_folder_writable, write_atomic

    folder = Path(sys.argv[1])
    size = int(sys.argv[2])
    checks = [lambda: write_atomic(folder / "sub" / "0001_a_1.jpg", b"x" * size)]
    checks.append(lambda: check_folder_writable(folder))
    for check in checks:
        try:
            check()
            print("ok")
        except ImageError as error:
            print(error.code, "|", error.message)
    sub = folder / "sub"
    print(sorted(os.listdir(folder)), sorted(os.listdir(sub)) if sub.exists() else None)
    """
)


def _child_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def _run_on_tmpfs(folder: Path, mount_options: str, size: int) -> list[str]:
    """Run the child script with ``folder`` a fresh tmpfs; skip where that is not possible."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        pytest.skip("needs Linux and unshare(1) to mount a private tmpfs")
    folder.mkdir()
    isolate = (
        ["unshare", "--mount"]
        if os.geteuid() == 0
        else ["unshare", "--user", "--map-root-user", "--mount"]
    )
    shell = 'mount -t tmpfs -o "$1" imgdesk-test "$2" || exit 99; shift 2; exec "$@"'
    command = [*isolate, "sh", "-c", shell, "sh", mount_options, str(folder)]
    command += [sys.executable, "-c", _CHILD_SCRIPT, str(folder), str(size)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=_child_env())
    if done.returncode == 99 or (done.returncode != 0 and "unshare" in done.stderr):
        pytest.skip(f"cannot mount a private tmpfs here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_disk_full(tmp_path: Path) -> None:
    folder = tmp_path / "disk"
    write, check, listing = _run_on_tmpfs(folder, "size=64k", 1024 * 1024)
    assert write == (
        f"storage | The disk is full: could not save 0001_a_1.jpg in {folder / 'sub'}. "
        "Free some space, then retry the failed images."
    )
    assert check == "ok"  # a tiny probe still fits
    assert listing == "['sub'] []"  # no temp file, no half-written image


def test_read_only_disk(tmp_path: Path) -> None:
    folder = tmp_path / "disk"
    write, check, listing = _run_on_tmpfs(folder, "ro,size=64k", 10)
    read_only = (
        "(the disk is read-only). Fix the folder's permissions or choose another data folder"
    )
    assert (
        write
        == f"storage | imgdesk is not allowed to write to {folder / 'sub'} {read_only} in Settings."
    )
    assert (
        check == f"storage | imgdesk is not allowed to write to {folder} {read_only} in Settings."
    )
    assert listing == "[] None"


@pytest.mark.skipif(sys.platform == "win32", reason="resource limits are POSIX")
def test_file_size_limit(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes write() fail with EFBIG (not ENOSPC) once the limit is reached."""
    prelude = (
        "import resource, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))\n"
    )
    folder = tmp_path / "disk"
    folder.mkdir()
    command = [sys.executable, "-c", prelude + _CHILD_SCRIPT, str(folder), str(1024 * 1024)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=_child_env())
    assert done.returncode == 0, done.stderr
    write, check, listing = done.stdout.splitlines()
    assert write.startswith(
        "storage | The file is too large for this disk or a system file size limit"
    )
    assert check == "ok"
    assert listing == "['sub'] []"


def test_disk_full_reported_late_by_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Network and delayed-allocation file systems may report ENOSPC only at fsync().

    No real file system here does that on demand, so this one case fakes the system call
    (os.fsync) itself; everything above it runs for real.
    """

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    error = storage_error(write_atomic, tmp_path / "0001_a_1.jpg", b"data" * 1000)
    assert error.message.startswith("The disk is full: could not save 0001_a_1.jpg")
    assert os.listdir(tmp_path) == []


def test_interrupted_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "a.jpg", b"data")
    assert os.listdir(tmp_path) == []


# --- check_folder_writable -------------------------------------------------------------------


def test_check_folder_writable_creates_the_folder_and_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "images"
    check_folder_writable(folder)
    assert folder.is_dir()
    assert os.listdir(folder) == []


def test_check_folder_writable_with_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "data").write_bytes(b"")
    error = storage_error(check_folder_writable, tmp_path / "data" / "images")
    assert f"{tmp_path / 'data'} is a file, not a folder" in error.message


# --- remove_partial_files --------------------------------------------------------------------


def test_remove_partial_files(tmp_path: Path) -> None:
    leftovers = [".0001_a_1.jpg.1a2b3c4d.part", ".x.part"]
    kept = ["0001_a_1.jpg", "visible.part", ".hidden.jpg", ".part.jpg"]
    for name in leftovers + kept:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".folder.part").mkdir()
    assert remove_partial_files(tmp_path) == 2
    assert sorted(os.listdir(tmp_path)) == sorted([*kept, ".folder.part"])
    assert remove_partial_files(tmp_path) == 0


def test_remove_partial_files_in_a_missing_folder(tmp_path: Path) -> None:
    assert remove_partial_files(tmp_path / "missing") == 0


def test_temp_files_of_a_crashed_write_are_removed(tmp_path: Path) -> None:
    """A child killed in the middle of write_atomic leaves a temp file; nothing else."""
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from imgdesk.core.storage import write_atomic\n"
        "os.replace = lambda src, dst: os._exit(9)  # die just before the rename\n"
        "write_atomic(Path(sys.argv[1]) / 'a.jpg', b'data')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        timeout=60,
        env=_child_env(),
    )
    assert done.returncode == 9
    [leftover] = os.listdir(tmp_path)
    assert leftover.startswith(".a.jpg.") and leftover.endswith(storage.PART_SUFFIX)
    assert remove_partial_files(tmp_path) == 1
    assert os.listdir(tmp_path) == []


# --- output_url ------------------------------------------------------------------------------


def test_output_url_is_a_file_uri_by_default(tmp_path: Path) -> None:
    path = tmp_path / "my images" / "crème 1.jpg"
    url = output_url(path, REQUEST_ID, "")
    assert url.startswith("file://")
    assert "my%20images/cr%C3%A8me%201.jpg" in url
    assert Path(url2pathname(urlsplit(url).path)) == path.resolve()


def test_output_url_is_absolute_even_for_a_relative_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert output_url(Path("a.jpg"), REQUEST_ID, "") == (tmp_path / "a.jpg").resolve().as_uri()


@pytest.mark.parametrize("base", ["https://cdn.example.com/imgs", "https://cdn.example.com/imgs/"])
def test_output_url_with_a_public_base_url(base: str) -> None:
    path = Path("images") / REQUEST_ID / "0001_a b#é_1.jpg"
    assert output_url(path, REQUEST_ID, base) == (
        f"https://cdn.example.com/imgs/{REQUEST_ID}/0001_a%20b%23%C3%A9_1.jpg"
    )


def test_link_atomic_shares_the_bytes_without_copying(tmp_path: Path) -> None:
    source = tmp_path / "a" / "0001_x_1.jpg"
    storage.write_atomic(source, b"jpeg bytes")
    target = tmp_path / "b" / "0001_x_1.jpg"
    storage.link_atomic(source, target)
    assert target.read_bytes() == b"jpeg bytes"
    assert os.stat(target).st_ino == os.stat(source).st_ino
    source.unlink()  # deleting the first request's files keeps the second's
    assert target.read_bytes() == b"jpeg bytes"
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_link_atomic_of_a_missing_source_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as caught:
        storage.link_atomic(tmp_path / "gone.jpg", tmp_path / "b" / "x.jpg")
    assert caught.value.code == ErrorCode.STORAGE
    assert not (tmp_path / "b" / "x.jpg").exists()
    assert not [p for p in (tmp_path / "b").iterdir() if p.name.endswith(".part")]


def test_atomic_file_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "req" / "0001_x_1.jpg"
    with pytest.raises(ValueError), storage.atomic_file(target) as handle:
        handle.write(b"half an ima")
        raise ValueError("the encoder failed")
    assert not target.exists()
    assert list((tmp_path / "req").iterdir()) == []
    with storage.atomic_file(target) as handle:
        handle.write(b"a whole image")
    assert target.read_bytes() == b"a whole image"
    assert [p.name for p in (tmp_path / "req").iterdir()] == [target.name]
