"""Old outputs: the files of requests finished long ago go, their rows stay and say so."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgdesk.core.csvio import output_csv_name, parse_catalogue
from imgdesk.core.db import close_database, open_database
from imgdesk.core.errors import ErrorCode, ImageError, SettingsError
from imgdesk.core.repository import Repository
from imgdesk.core.retention import DAY_S, remove_expired_files, removed_notice
from imgdesk.core.settings import Settings
from imgdesk.core.storage import LocalStorage, Storage, storage_key
from imgdesk.core.storage_choice import StorageChoice, StorageShelf

NOW = 1_800_000_000.0  # a fixed "now", so ages do not depend on the clock
IMAGE = b"\xff\xd8 not really a jpeg, but bytes of a known size \xff\xd9"
CSV_COPY = b"S. No.,Product Name,Input Image Urls,Output Image Urls\r\n"


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    open_database(tmp_path / "imgdesk.sqlite3")
    yield tmp_path
    close_database()


def make_request(
    data_dir: Path,
    name: str,
    finished_days_ago: float | None,
    choice: StorageChoice | None = None,
) -> str:
    """A request of two done images whose files (and CSV copy) are stored.

    Finished ``finished_days_ago`` days before NOW, or left unfinished with None.
    """
    repo = Repository()
    csv = b"S. No.,Product Name,Input Image Urls\n1,Shirt,http://shop.example/a.jpg\n"
    csv += b"2,Mug,http://shop.example/b.jpg\n"
    request_id = repo.create_request(parse_catalogue(csv, name), storage=choice or StorageChoice())
    storage = StorageShelf(data_dir).open(choice or StorageChoice())
    updates = {}
    for number, image in enumerate(repo.list_images(request_id), start=1):
        key = storage_key(request_id, f"000{number}_product_0.jpg")
        storage.put_bytes(key, IMAGE)
        updates[image.id] = {
            "status": "done",
            "output_bytes": len(IMAGE),
            "output_path": key,
            "output_url": storage.url(key),
        }
    storage.put_bytes(storage_key(request_id, output_csv_name(name)), CSV_COPY)
    repo.update_images(updates)
    if finished_days_ago is None:
        return request_id
    repo.set_request_status(request_id, "completed")
    # "Old" is a date in the database, set directly: no test waits days.
    with sqlite3.connect(data_dir / "imgdesk.sqlite3") as conn:
        conn.execute(
            "UPDATE request SET finished_at = ? WHERE id = ?",
            (NOW - finished_days_ago * DAY_S, request_id),
        )
    return request_id


def stored_names(data_dir: Path, request_id: str) -> set[str]:
    return LocalStorage(data_dir / "images").names(request_id)


def test_a_dry_run_lists_what_a_real_run_removes_and_removes_nothing(data_dir: Path) -> None:
    old = make_request(data_dir, "old.csv", finished_days_ago=40)
    recent = make_request(data_dir, "recent.csv", finished_days_ago=5)
    unfinished = make_request(data_dir, "unfinished.csv", finished_days_ago=None)
    repo = Repository()

    dry = remove_expired_files(repo, StorageShelf(data_dir), 30, NOW, dry_run=True)

    assert dry.dry_run and not dry.problems
    assert [entry.request_id for entry in dry.removed] == [old]
    entry = dry.removed[0]
    assert (entry.csv_name, entry.files) == ("old.csv", 3)  # two images and the CSV copy
    assert entry.size_bytes == 2 * len(IMAGE) + len(CSV_COPY)
    assert entry.exact
    assert entry.finished_at == NOW - 40 * DAY_S
    assert len(stored_names(data_dir, old)) == 3
    assert repo.get_request(old).files_removed_at is None  # type: ignore[union-attr]

    real = remove_expired_files(repo, StorageShelf(data_dir), 30, NOW)

    assert real.removed == dry.removed and not real.problems
    assert (real.files, real.size_bytes) == (3, entry.size_bytes)
    assert not (data_dir / "images" / old).exists()
    assert len(stored_names(data_dir, recent)) == 3
    assert len(stored_names(data_dir, unfinished)) == 3
    cleaned = repo.get_request(old)
    assert cleaned is not None and cleaned.files_removed_at == NOW
    assert cleaned.done == 2  # the rows stay
    assert [
        r.files_removed_at for r in (repo.get_request(recent), repo.get_request(unfinished))
    ] == [
        None,
        None,
    ]

    again = remove_expired_files(repo, StorageShelf(data_dir), 30, NOW + 60)
    assert again.removed == [] and again.problems == []


def test_a_cleaned_request_exports_no_output_urls(data_dir: Path) -> None:
    old = make_request(data_dir, "old.csv", finished_days_ago=40)
    recent = make_request(data_dir, "recent.csv", finished_days_ago=1)
    repo = Repository()
    remove_expired_files(repo, StorageShelf(data_dir), 30, NOW)

    _, outputs = repo.export_data(old)
    assert outputs == {0: [None], 1: [None]}
    _, kept = repo.export_data(recent)
    assert all(url and url.startswith("file://") for urls in kept.values() for url in urls)
    assert removed_notice(NOW) == (
        "The files of this request were removed on 2027-01-15 by cleanup; its output URLs "
        "are left empty."
    )


class _GoneBucket(LocalStorage):
    """A storage that lists its files but refuses to delete them, like a bucket gone away."""

    def delete_request(self, request_id: str) -> None:
        raise ImageError(ErrorCode.STORAGE, "The bucket old-shop does not exist any more.")


class _ShelfWithGoneBucket(StorageShelf):
    """The real shelf, but one folder stands for an unreachable bucket."""

    def __init__(self, data_dir: Path, gone: StorageChoice) -> None:
        super().__init__(data_dir)
        self._gone = gone

    def open(self, choice: StorageChoice) -> Storage:
        if choice == self._gone:
            return _GoneBucket(Path(choice.folder))
        return super().open(choice)


def test_a_storage_that_cannot_delete_is_one_problem_and_the_others_go(
    data_dir: Path, tmp_path: Path
) -> None:
    gone = StorageChoice(folder=str(tmp_path / "bucket"))
    first = make_request(data_dir, "first.csv", finished_days_ago=50)
    stuck = make_request(data_dir, "stuck.csv", finished_days_ago=45, choice=gone)
    last = make_request(data_dir, "last.csv", finished_days_ago=40)
    repo = Repository()

    report = remove_expired_files(repo, _ShelfWithGoneBucket(data_dir, gone), 30, NOW)

    assert [entry.request_id for entry in report.removed] == [first, last]
    assert [(p.request_id, p.csv_name, p.message) for p in report.problems] == [
        (stuck, "stuck.csv", "The bucket old-shop does not exist any more.")
    ]
    assert repo.get_request(stuck).files_removed_at is None  # type: ignore[union-attr]
    assert len(LocalStorage(tmp_path / "bucket").names(stuck)) == 3
    # Tried again next time, with the real storage this time.
    retried = remove_expired_files(repo, StorageShelf(data_dir), 30, NOW)
    assert [entry.request_id for entry in retried.removed] == [stuck]


class _RemoteFiles(LocalStorage):
    """A storage whose files are not on this computer (as in a bucket): no local path."""

    def local_path(self, key: str) -> Path | None:
        return None


class _ShelfWithRemoteFiles(StorageShelf):
    def open(self, choice: StorageChoice) -> Storage:
        return _RemoteFiles(Path(choice.folder))


def test_files_that_are_not_local_are_sized_from_the_database_as_about(
    data_dir: Path, tmp_path: Path
) -> None:
    remote = StorageChoice(folder=str(tmp_path / "bucket"))
    old = make_request(data_dir, "old.csv", finished_days_ago=40, choice=remote)

    report = remove_expired_files(Repository(), _ShelfWithRemoteFiles(data_dir), 30, NOW)

    assert [entry.request_id for entry in report.removed] == [old]
    assert report.removed[0].files == 3
    assert report.removed[0].size_bytes == 2 * len(IMAGE)  # the images' count, no CSV copy
    assert not report.removed[0].exact and not report.exact
    assert not (tmp_path / "bucket" / old).exists()


def test_the_retention_setting_is_off_by_default_and_checked() -> None:
    assert Settings().retention_days == 0
    assert Settings.from_dict(Settings(retention_days=90).to_dict()).retention_days == 90
    assert Settings.from_dict({}).retention_days == 0  # settings saved before it existed
    for wrong in (-1, 36501):
        with pytest.raises(SettingsError, match="retention_days"):
            Settings(retention_days=wrong)


def test_requests_finished_before_skips_unfinished_recent_and_cleaned(data_dir: Path) -> None:
    older = make_request(data_dir, "older.csv", finished_days_ago=60)
    old = make_request(data_dir, "old.csv", finished_days_ago=31)
    make_request(data_dir, "recent.csv", finished_days_ago=29)
    make_request(data_dir, "unfinished.csv", finished_days_ago=None)
    repo = Repository()
    cutoff = NOW - 30 * DAY_S

    assert [r.id for r in repo.requests_finished_before(cutoff)] == [older, old]
    repo.mark_files_removed(older, time.time())
    assert [r.id for r in repo.requests_finished_before(cutoff)] == [old]
