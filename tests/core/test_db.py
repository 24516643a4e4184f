"""The database file: refused untouched when it is not ours, watched while it is open.

SQLite only, by nature: these tests are about the file itself (its bytes, locks, WAL side
files, read-only mounts, upgrades of old schemas). The last two, about what a request keeps,
run on PostgreSQL too; tests/core/test_db_postgres.py holds PostgreSQL's own.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.db import SCHEMA_VERSION, check_database_file, close_database, open_database
from imgdesk.core.errors import DatabaseBusyError, DataFolderError
from imgdesk.core.output import OutputSettings
from imgdesk.core.repository import Repository
from imgdesk.core.storage_choice import StorageChoice

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _closed_afterwards() -> Iterator[None]:
    yield
    close_database()


def make_database(path: Path, products: int = 200) -> None:
    """A real imgdesk database with a request of ``products`` rows, closed (no -wal left)."""
    open_database(path)
    lines = ["S. No.,Product Name,Input Image Urls"]
    lines += [f"{n},Product {n},http://shop.example/{n}.jpg" for n in range(products)]
    Repository().create_request(parse_catalogue("\n".join(lines).encode(), "products.csv"))
    close_database()
    assert not side_files(path)


def side_files(path: Path) -> list[str]:
    """SQLite's files beside the database: ``-wal``, ``-shm``, ``-journal``."""
    return sorted(p.name for p in path.parent.glob(f"{path.name}-*"))


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def refused(path: Path) -> str:
    """Open ``path``; it must be refused with one sentence and left exactly as it was."""
    before = snapshot(path)
    others = side_files(path)
    with pytest.raises(DataFolderError) as info:
        open_database(path)
    assert snapshot(path) == before
    assert side_files(path) == others  # no -wal, no -shm
    message = info.value.message
    assert str(path) in message and "\n" not in message
    return message


def test_garbage_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "imgdesk.sqlite3"
    path.write_bytes(os.urandom(8192))
    assert refused(path) == (
        f"{path} is not an imgdesk database (file is not a database). "
        "Move it away or use another --data-dir."
    )


def test_a_text_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "imgdesk.sqlite3"
    path.write_text("S. No.,Product Name,Input Image Urls\n1,a,http://x/a.jpg\n")
    assert "(file is not a database)" in refused(path)


def test_a_truncated_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "imgdesk.sqlite3"
    make_database(path)
    assert path.stat().st_size > 4096
    with path.open("r+b") as file:
        file.truncate(4096)
    assert refused(path) == (
        f"{path} is not an imgdesk database (database disk image is malformed). "
        "Move it away or use another --data-dir."
    )


def test_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "imgdesk.sqlite3"
    make_database(path)
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode = delete")  # leaves no -wal behind
        connection.execute(
            "UPDATE key_value SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,)
        )
    connection.close()
    assert refused(path) == (
        f"The database {path} was written by a newer imgdesk (schema {SCHEMA_VERSION + 1}; "
        f"this one knows {SCHEMA_VERSION}). Update imgdesk, or use another --data-dir."
    )


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "imgdesk.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE contacts (name TEXT)")
    connection.commit()
    connection.close()
    assert "(it holds another program's tables)" in refused(path)


def test_a_good_database_opens_again_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "imgdesk.sqlite3"
    make_database(path, products=3)
    open_database(path)
    assert [request.total for request in Repository().list_requests()] == [3]


def test_an_empty_file_becomes_a_new_database(tmp_path: Path) -> None:
    path = tmp_path / "imgdesk.sqlite3"
    path.touch()
    open_database(path)
    assert Repository().list_requests() == []


def test_a_file_in_the_way_of_the_folder_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    data_dir = blocker / "data"
    with pytest.raises(DataFolderError) as info:
        open_database(data_dir / "imgdesk.sqlite3")
    assert info.value.message == (
        f"imgdesk cannot write to its data folder {data_dir} ({blocker}): a file stands where "
        "a folder should be. Choose another folder with --data-dir or IMGDESK_DATA_DIR."
    )
    assert blocker.read_text() == "not a folder"


def test_a_database_locked_by_another_program_is_busy_not_damaged(tmp_path: Path) -> None:
    path = tmp_path / "imgdesk.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA journal_mode = wal")
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(DatabaseBusyError) as info:
            open_database(path)
        assert str(path) in str(info.value)
    finally:
        holder.close()


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_database_deleted_or_replaced_while_open_is_noticed(tmp_path: Path, how: str) -> None:
    path = tmp_path / "imgdesk.sqlite3"
    open_database(path)
    check_database_file()  # the same file: nothing to say
    if how == "deleted":
        path.unlink()
    else:
        other = tmp_path / "other.sqlite3"
        make_database(other, products=1)
        open_database(path)
        os.replace(other, path)
    with pytest.raises(DataFolderError) as info:
        check_database_file()
    assert info.value.message == (
        f"The database {path} was deleted or replaced while imgdesk was running, so nothing "
        "more can be stored. Restore it, or start again with another --data-dir."
    )


# A read-only file system, for real: a private mount namespace (unshare) in a child process,
# as in test_storage.py, where even root cannot write.

_READ_ONLY_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from imgdesk.core.db import open_database
    from imgdesk.core.errors import DataFolderError
    from imgdesk.core.instance import DataDirLock
    from imgdesk.core.logs import setup_logging

    data_dir = Path(sys.argv[1])
    attempts = [
        lambda: setup_logging(data_dir),
        lambda: open_database(data_dir / "imgdesk.sqlite3"),
        lambda: DataDirLock(data_dir).acquire("window"),
    ]
    for attempt in attempts:
        try:
            attempt()
            print("ok")
        except DataFolderError as error:
            print(error.message)
    """
)


def _run_read_only(data_dir: Path, mount: str) -> list[str]:
    """Run the script with ``data_dir`` mounted read-only; skip where that is not possible."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        pytest.skip("needs Linux and unshare(1) for a private read-only mount")
    isolate = (
        ["unshare", "--mount"]
        if os.geteuid() == 0
        else ["unshare", "--user", "--map-root-user", "--mount"]
    )
    command = [*isolate, "sh", "-c", f'{mount} || exit 99; shift; exec "$@"', "sh", str(data_dir)]
    command += [sys.executable, "-c", _READ_ONLY_SCRIPT, str(data_dir)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    if done.returncode == 99 or (done.returncode != 0 and "unshare" in done.stderr):
        pytest.skip(f"cannot mount read-only here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout.splitlines()


def _read_only_sentence(data_dir: Path, name: str) -> str:
    return (
        f"imgdesk cannot write to its data folder {data_dir} ({data_dir / name}): the file "
        "system is read-only. Choose another folder with --data-dir or IMGDESK_DATA_DIR."
    )


def test_an_empty_read_only_disk_is_one_sentence_each(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    lines = _run_read_only(data_dir, 'mount -t tmpfs -o ro,size=64k imgdesk-test "$1"')
    assert lines == [
        _read_only_sentence(data_dir, "logs"),
        _read_only_sentence(data_dir, "imgdesk.sqlite3"),
        _read_only_sentence(data_dir, "imgdesk.lock"),
    ]


def test_a_data_folder_made_read_only_is_refused_and_left_untouched(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    path = data_dir / "imgdesk.sqlite3"
    make_database(path, products=3)
    (data_dir / "logs").mkdir()
    (data_dir / "logs" / "imgdesk.log").write_text("earlier lines\n")
    before = snapshot(path)
    lines = _run_read_only(data_dir, 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"')
    assert lines == [
        _read_only_sentence(data_dir, "logs/imgdesk.log"),
        _read_only_sentence(data_dir, "imgdesk.sqlite3"),
        _read_only_sentence(data_dir, "imgdesk.lock"),
    ]
    assert snapshot(path) == before
    assert sorted(p.name for p in data_dir.iterdir()) == ["imgdesk.sqlite3", "logs"]


# -- schema 3: output settings per request ----------------------------------------------------


def _as_schema_2(path: Path, stored_settings: str) -> None:
    """Turn a closed database back into what schema 2 wrote, with these stored settings."""
    raw = sqlite3.connect(path)
    for table, column in (
        ("request", "output_settings"),
        ("image", "output_format"),
        ("image", "note"),
        ("output_cache", "note"),
        ("request", "storage"),
        ("request", "files_removed_at"),
        ("request", "active_s"),
    ):
        raw.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    raw.execute("UPDATE key_value SET value = '2' WHERE key = 'schema_version'")
    raw.execute("INSERT OR REPLACE INTO key_value VALUES ('settings', ?)", (stored_settings,))
    raw.commit()
    raw.close()


def test_a_schema_2_request_keeps_jpeg_at_the_quality_it_was_made_with(tmp_path: Path) -> None:
    path = tmp_path / "imgdesk.sqlite3"
    make_database(path, products=2)
    open_database(path)
    repo = Repository()
    [request] = repo.list_requests()
    done, pending = (image.id for image in repo.list_images(request.id))
    repo.update_images({done: {"status": "done", "output_path": "/old/0001_product-0_1.jpg"}})
    close_database()
    _as_schema_2(path, json.dumps({"jpeg_quality": 70, "concurrency": 3}))

    open_database(path)

    assert [r.output for r in repo.list_requests()] == [OutputSettings(quality=70)]
    images = {image.id: image for image in repo.list_images(request.id)}
    assert (images[done].output_format, images[done].note) == ("jpeg", None)
    assert (images[pending].output_format, images[pending].note) == (None, None)
    settings = repo.load_settings()
    assert (settings.output, settings.concurrency) == (OutputSettings(quality=70), 3)
    version = sqlite3.connect(path).execute(
        "SELECT value FROM key_value WHERE key = 'schema_version'"
    )
    assert version.fetchone() == (str(SCHEMA_VERSION),) == ("5",)


def test_a_schema_3_request_stores_into_the_data_folder_as_it_did(tmp_path: Path) -> None:
    path = tmp_path / "imgdesk.sqlite3"
    make_database(path, products=1)
    raw = sqlite3.connect(path)
    raw.execute("ALTER TABLE request DROP COLUMN storage")
    raw.execute("ALTER TABLE request DROP COLUMN files_removed_at")
    raw.execute("ALTER TABLE request DROP COLUMN active_s")
    raw.execute("UPDATE request SET started_at = 1000.0, finished_at = 1012.5")
    raw.execute("UPDATE key_value SET value = '3' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()

    open_database(path)

    [request] = Repository().list_requests()
    assert request.storage == StorageChoice() and request.storage.is_default
    assert request.duration_s == request.active_s == 12.5  # the time it showed before


def test_a_request_keeps_the_storage_it_was_created_with(
    any_repository: Repository, tmp_path: Path
) -> None:
    repo = any_repository
    catalogue = parse_catalogue(b"S. No.,Product Name,Input Image Urls\n1,A,http://h/a.jpg\n", "a")
    bucket = StorageChoice(kind="s3", bucket="shop-images", prefix="spring", endpoint="http://s3")
    given = repo.create_request(catalogue, storage=bucket)
    # Without one, a request takes the stored settings' (the window's Settings > Storage).
    folder = StorageChoice(folder=str(tmp_path / "outputs"))
    repo.save_settings(repo.load_settings().replace(storage=folder))
    defaulted = repo.create_request(catalogue)
    repo.save_settings(repo.load_settings().replace(storage=StorageChoice()))

    storages = {request.id: request.storage for request in repo.list_requests()}
    assert storages == {given: bucket, defaulted: folder}
    assert repo.load_settings().storage.is_default


def test_a_schema_2_database_without_stored_settings_gets_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "imgdesk.sqlite3"
    make_database(path, products=1)
    _as_schema_2(path, "{}")
    open_database(path)
    assert [r.output for r in Repository().list_requests()] == [OutputSettings()]


def test_a_request_keeps_the_output_settings_it_was_created_with(
    any_repository: Repository,
) -> None:
    repo = any_repository
    catalogue = parse_catalogue(b"S. No.,Product Name,Input Image Urls\n1,A,http://h/a.jpg\n", "a")
    webp = OutputSettings(format="webp", quality=60, max_width=1200, target_size_kb=150)
    given = repo.create_request(catalogue, output=webp)
    # Without output settings, a request takes the stored settings' (the window's defaults).
    repo.save_settings(repo.load_settings().replace(output=OutputSettings(format="avif")))
    defaulted = repo.create_request(catalogue)
    repo.save_settings(repo.load_settings().replace(output=OutputSettings(quality=90)))

    outputs = {request.id: request.output for request in repo.list_requests()}
    assert outputs == {given: webp, defaulted: OutputSettings(format="avif")}
