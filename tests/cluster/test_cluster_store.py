"""The cluster's conditional writes: a message handled twice changes nothing the second time."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from imgdesk.core.cluster_store import ClusterStore
from imgdesk.core.csvio import read_catalogue
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

    assert store.store_final(work, DONE) == 1
    assert store.store_final(work, DONE) == 0  # the redelivered message's result

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

    assert store.store_final(work, DONE) == 2

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
    store.store_final(work, DONE)
    assert store.all_finished(request_id)

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

    assert store.store_final(work, DONE) == 0  # its download ends: the result is dropped
    store.back_to_pending(work, {"error_code": "timeout"})  # nor does a retry revive it
    (image,) = any_repository.list_images(request_id)
    assert (image.status, image.error_code) == ("failed", "cancelled")
    assert store.all_finished(request_id)
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
