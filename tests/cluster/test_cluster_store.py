"""The cluster's conditional writes: a message handled twice changes nothing the second time."""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import pytest

from imgdesk.core.cluster_store import ClusterStore, ImageWork, StoredResult
from imgdesk.core.csvio import read_catalogue
from imgdesk.core.db import OutputCache
from imgdesk.core.errors import DatabaseBusyError
from imgdesk.core.outbox import Outbox
from imgdesk.core.repository import Repository

DONE = {"status": "done", "attempts": 1, "input_bytes": 100, "output_bytes": 40}


def make_request(repo: Repository, tmp_path: Path, urls: list[str]) -> str:
    path = tmp_path / "products.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["S. No.", "Product Name", "Input Image Urls"])
        for number, url in enumerate(urls, start=1):
            writer.writerow([str(number), f"SKU{number}", url])
    return repo.create_request(read_catalogue(path), webhook_url="http://127.0.0.1:9/hook")


def test_a_result_stored_twice_counts_once(any_repository: Repository, tmp_path: Path) -> None:
    request_id = make_request(any_repository, tmp_path, ["http://a.test/1.png"])
    store = ClusterStore()
    (image_id,) = store.images_to_send(request_id)
    work = store.load_image_work(image_id)
    assert work is not None and not work.finished
    assert store.claim_image(work) == 1

    assert store.store_final(work, DONE).stored == 1
    assert store.store_final(work, DONE).stored == 0  # the redelivered message's result

    request = any_repository.get_request(request_id)
    assert request is not None
    assert (request.done, request.failed, request.in_flight, request.input_bytes) == (1, 0, 0, 100)
    assert store.claim_image(work) is None  # a third delivery does not start it again
    loaded = store.load_image_work(image_id)
    assert loaded is not None and loaded.finished


def test_twins_are_one_message_and_share_the_result(
    any_repository: Repository, tmp_path: Path
) -> None:
    url = "http://a.test/same.png"
    request_id = make_request(any_repository, tmp_path, [url, url, "http://a.test/other.png"])
    store = ClusterStore()
    first, other = store.images_to_send(request_id)
    work = store.load_image_work(first)
    assert work is not None
    store.claim_image(work)

    assert store.store_final(work, DONE) == StoredResult(stored=2, remaining=1)

    request = any_repository.get_request(request_id)
    assert request is not None and (request.done, request.total) == (2, 3)
    assert store.images_to_send(request_id) == [other]


def test_only_one_worker_finishes_a_request(any_repository: Repository, tmp_path: Path) -> None:
    request_id = make_request(any_repository, tmp_path, ["http://a.test/1.png"])
    store = ClusterStore()
    (image_id,) = store.images_to_send(request_id)
    work = store.load_image_work(image_id)
    assert work is not None
    store.claim_image(work)
    assert store.store_final(work, DONE).remaining == 0

    first = store.finish_request(request_id, "file:///out.csv", "", "")
    second = store.finish_request(request_id, "file:///out.csv", "", "")

    assert first is not None and first.request.status == "completed"
    assert first.request.started_at is not None and first.request.finished_at is not None
    # Its time is the time from its start (no engine measures active time in the cluster).
    assert first.request.duration_s == pytest.approx(
        first.request.finished_at - first.request.started_at
    )
    assert first.delivery_id is not None
    assert second is None
    deliveries = Outbox().list_deliveries(request_id)
    assert [delivery.id for delivery in deliveries] == [first.delivery_id]
    assert store.latest_delivery_id(request_id) == first.delivery_id


def test_an_image_cancelled_while_downloading_stays_cancelled(
    any_repository: Repository, tmp_path: Path
) -> None:
    request_id = make_request(any_repository, tmp_path, ["http://a.test/1.png"])
    store = ClusterStore()
    (image_id,) = store.images_to_send(request_id)
    work = store.load_image_work(image_id)
    assert work is not None
    assert store.claim_image(work) == 1  # a worker downloads it

    assert store.cancel_request(request_id) == 1

    # Its download ends: the result is dropped, and nothing of the request is left to do.
    assert store.store_final(work, DONE) == StoredResult(stored=0, remaining=0)
    store.back_to_pending(work, {"error_code": "timeout"})  # nor does a retry revive it
    (image,) = any_repository.list_images(request_id)
    assert (image.status, image.error_code) == ("failed", "cancelled")
    finished = store.finish_request(request_id, "", "", "")
    assert finished is not None
    assert (finished.request.status, finished.request.failed) == ("failed", 1)


def test_retry_puts_failed_and_cancelled_images_back_and_lists_them_to_send(
    any_repository: Repository, tmp_path: Path
) -> None:
    urls = ["http://a.test/1.png", "http://a.test/2.png", "http://a.test/2.png"]
    request_id = make_request(any_repository, tmp_path, urls)
    store = ClusterStore()
    first, second = store.images_to_send(request_id)
    work = store.load_image_work(first)
    assert work is not None
    store.claim_image(work)
    store.store_final(work, DONE)
    store.cancel_request(request_id)
    store.finish_request(request_id, "", "", "")
    assert store.request_finished(request_id)

    assert store.retry_request(request_id) == 2  # the twins of the second URL

    assert not store.request_finished(request_id)
    assert store.images_waiting(request_id) == [second]  # one message for the two twins
    request = any_repository.get_request(request_id)
    assert request is not None and (request.status, request.done, request.failed) == (
        "pending",
        1,
        0,
    )


def test_the_pause_flag_is_shared(any_repository: Repository) -> None:
    store = ClusterStore()
    assert not store.is_paused()
    store.set_paused(True)
    assert store.is_paused()
    store.set_paused(True)  # twice is the same
    assert store.is_paused()
    store.set_paused(False)
    assert not store.is_paused()


CACHE_ROW = {
    "settings_key": "v3;jpeg;q=50",
    "etag": '"abc"',
    "last_modified": None,
    "content_sha256": "0" * 64,
    "output_path": "earlier/1-SKU1.jpg",
    "input_bytes": 100,
    "output_bytes": 40,
    "width": 48,
    "height": 32,
    "input_type": "image/png",
    "note": None,
}


def test_the_image_comes_with_the_pause_flag_its_requests_count_and_earlier_outputs(
    any_repository: Repository, tmp_path: Path
) -> None:
    url = "http://a.test/1.png"
    request_id = make_request(any_repository, tmp_path, [url, "http://a.test/2.png"])
    store = ClusterStore()
    first, _ = store.images_to_send(request_id)
    work = store.load_image_work(first)
    assert work is not None
    assert (work.remaining, work.paused, work.cached) == (2, False, {})

    store.set_paused(True)
    other_settings = {**CACHE_ROW, "settings_key": "v3;webp;q=80", "etag": '"other"'}
    for row in (CACHE_ROW, other_settings):
        OutputCache.insert(url=url, updated_at=1.0, **row).execute()
    # A row of imgdesk 0.1 held the file's absolute path: not a storage key, left out.
    OutputCache.insert(
        url=url, updated_at=1.0, **{**CACHE_ROW, "settings_key": "old", "output_path": "/x/y.jpg"}
    ).execute()
    work = store.load_image_work(first)

    assert work is not None and work.paused and work.remaining == 2
    assert sorted(work.cached) == ["v3;jpeg;q=50", "v3;webp;q=80"]
    cached = work.cached["v3;jpeg;q=50"]
    assert (cached.key, cached.etag, cached.input_bytes) == ("earlier/1-SKU1.jpg", '"abc"', 100)


def test_a_claim_counts_each_attempt_once_the_request_is_under_way(
    any_repository: Repository, tmp_path: Path
) -> None:
    url = "http://a.test/same.png"
    request_id = make_request(any_repository, tmp_path, [url, url, "http://a.test/2.png"])
    store = ClusterStore()
    first, second = store.images_to_send(request_id)
    assert store.claim_image(_work(store, second)) == 1  # the request goes to processing
    work = _work(store, first)
    assert work.request_status == "processing"

    assert store.claim_image(work) == 1  # one statement on PostgreSQL (RETURNING)
    store.back_to_pending(work, {"error_code": "timeout"})
    assert store.claim_image(_work(store, first)) == 2
    attempts = sorted(image.attempts for image in any_repository.list_images(request_id))
    assert attempts == [1, 2, 2]  # the twins share their attempts
    store.store_final(work, DONE)
    assert store.claim_image(_work(store, first)) is None


def test_the_output_cache_row_is_stored_with_a_stored_result_only(
    any_repository: Repository, tmp_path: Path
) -> None:
    urls = ["http://a.test/1.png", "http://a.test/2.png"]
    request_id = make_request(any_repository, tmp_path, urls)
    store = ClusterStore()
    first, second = (_work(store, image_id) for image_id in store.images_to_send(request_id))
    store.claim_image(first)
    store.claim_image(second)
    key = "v3;jpeg;q=50"

    stored = store.store_final(first, DONE, {**CACHE_ROW, "url": urls[0]})
    store.cancel_request(request_id)
    dropped = store.store_final(second, DONE, {**CACHE_ROW, "url": urls[1]})

    assert (stored, dropped) == (StoredResult(1, 1), StoredResult(0, 0))
    assert sorted(any_repository.cached_outputs(urls, key)) == [urls[0]]
    # A later result of the same URL and settings replaces the row.
    again = make_request(any_repository, tmp_path, [urls[0]])
    (image_id,) = store.images_to_send(again)
    work = _work(store, image_id)
    store.claim_image(work)
    newer = {**CACHE_ROW, "url": urls[0], "etag": '"newer"', "output_path": "again/1.jpg"}
    assert store.store_final(work, DONE, newer) == StoredResult(1, 0)
    cached = any_repository.cached_outputs(urls, key)[urls[0]]
    assert (cached.key, cached.etag) == ("again/1.jpg", '"newer"')
    assert _work(store, image_id).cached[key].etag == '"newer"'


def test_of_workers_storing_at_once_the_last_one_reads_nothing_left(
    any_repository: Repository, tmp_path: Path
) -> None:
    count = 8
    urls = [f"http://a.test/{n}.png" for n in range(count)]
    request_id = make_request(any_repository, tmp_path, urls)
    store = ClusterStore()
    works = [_work(store, image_id) for image_id in store.images_to_send(request_id)]
    for work in works:
        store.claim_image(work)
    start = threading.Barrier(count)
    left: list[int] = []

    def store_one(work: ImageWork) -> None:
        start.wait()
        for _ in range(200):  # SQLite's one writer: try again while another holds the file
            try:
                left.append(store.store_final(work, DONE).remaining)
                return
            except DatabaseBusyError:
                time.sleep(0.05)

    threads = [threading.Thread(target=store_one, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(left) == count
    assert 0 in left  # the worker whose write came last finishes the request
    request = any_repository.get_request(request_id)
    assert request is not None and (request.done, request.in_flight) == (count, 0)


def _work(store: ClusterStore, image_id: int) -> ImageWork:
    work = store.load_image_work(image_id)
    assert work is not None
    return work
