"""Every repository query, proved the same on the embedded SQLite file and on PostgreSQL.

``any_repository`` (tests/services_pg.py) runs each test twice: on a new SQLite file, then
on a fresh database of a private PostgreSQL server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.output import OutputSettings
from imgdesk.core.repository import IMPORTING, Repository, prepare_rows
from imgdesk.core.settings import Settings
from imgdesk.core.storage_choice import StorageChoice

HEADER = "S. No.,Product Name,Input Image Urls"


def make_request(repo: Repository, rows: list[tuple[str, str, list[str]]]) -> str:
    """A request for (serial, name, urls) rows, as a dropped CSV records it."""
    lines = [HEADER] + [f'{serial},{name},"{",".join(urls)}"' for serial, name, urls in rows]
    return repo.create_request(parse_catalogue("\n".join(lines).encode(), "products.csv"))


def three_images(repo: Repository) -> tuple[str, list[int]]:
    """A request of two products with three images (one on another host); their ids."""
    request_id = make_request(
        repo,
        [
            ("1", "Chair", ["http://a.example/1.jpg", "http://a.example/2.jpg"]),
            ("2", "Table", ["http://B.example:8080/3.jpg"]),
        ],
    )
    return request_id, [image.id for image in repo.list_images(request_id)]


def done(input_bytes: int, output_bytes: int, path: str = "x.jpg") -> dict[str, object]:
    return {
        "status": "done",
        "attempts": 1,
        "input_bytes": input_bytes,
        "output_bytes": output_bytes,
        "output_path": path,
        "output_url": f"http://out/{path}",
        "output_format": "jpeg",
    }


def counts(repo: Repository, request_id: str) -> tuple[int, int, int, int, int, int]:
    request = repo.get_request(request_id)
    assert request is not None
    return (
        request.total,
        request.done,
        request.failed,
        request.in_flight,
        request.input_bytes,
        request.output_bytes,
    )


def test_settings_are_stored_and_replaced(any_repository: Repository) -> None:
    repo = any_repository
    assert repo.load_settings() == Settings()
    repo.save_settings(Settings(concurrency=3))
    repo.save_settings(Settings(concurrency=4, output=OutputSettings(quality=61)))
    assert repo.load_settings() == Settings(concurrency=4, output=OutputSettings(quality=61))
    repo.set_power_safe(True)  # a pragma on SQLite; nothing to do on PostgreSQL
    repo.set_power_safe(False)


def test_a_request_comes_back_as_it_was_recorded(any_repository: Repository) -> None:
    repo = any_repository
    data = f'{HEADER}\n1,"Ä chair, red",http://a.example/1.jpg\n,no serial,http://a/2.jpg\n'
    catalogue = parse_catalogue(data.encode(), "products.csv")
    webp = OutputSettings(format="webp", quality=60)
    bucket = StorageChoice(kind="s3", bucket="shop", prefix="p", endpoint="http://s3")
    request_id = repo.create_request(
        catalogue, Path("products.csv"), "http://hook", "s3cret", output=webp, storage=bucket
    )

    [request] = repo.list_requests()
    assert (request.id, request.csv_name, request.status) == (request_id, "products.csv", "pending")
    assert (request.total, request.pending, request.webhook_secret) == (1, 1, "s3cret")
    assert (request.output, request.storage) == (webp, bucket)
    assert repo.get_request("no such id") is None
    assert repo.find_request_id(request_id[:8]) == request_id
    exported, outputs = repo.export_data(request_id)
    assert exported.rows == catalogue.rows  # the invalid row too, cells and problems kept
    assert exported.header == catalogue.header
    assert outputs == {0: [None]}


def test_images_are_listed_in_input_order_a_page_at_a_time(any_repository: Repository) -> None:
    repo = any_repository
    rows = [(str(n), f"P{n}", [f"http://h/{n}a.jpg", f"http://h/{n}b.jpg"]) for n in range(30)]
    request_id = make_request(repo, rows)
    images = repo.list_images(request_id)
    assert [(i.serial, i.position) for i in images] == [
        (str(n), position) for n in range(30) for position in (1, 2)
    ]
    assert [i.row_index for i in images[:4]] == [0, 0, 1, 1]
    first = repo.list_images_page(request_id, 0, 7)
    second = repo.list_images_page(request_id, first[-1].id, 7)
    assert first + second == images[:14]
    ids = [i.id for i in images]
    repo.update_images({ids[3]: {"status": "failed", "error_code": "http_404"}})
    repo.update_images({ids[5]: {"status": "failed", "error_code": "timeout"}})
    assert [i.id for i in repo.list_images(request_id, ["failed"])] == [ids[3], ids[5]]
    assert repo.list_images_page(request_id, ids[3], 10, ["failed"])[0].id == ids[5]
    assert repo.image_ids(request_id, ["failed"]) == [ids[3], ids[5]]
    assert repo.image_ids(request_id, ["failed"], "timeout") == [ids[5]]
    picked = repo.get_images([ids[9], ids[2], ids[40]])
    assert [i.id for i in picked] == [ids[2], ids[9], ids[40]]
    assert repo.get_images([]) == []


def test_the_counters_follow_every_change_of_the_images(any_repository: Repository) -> None:
    repo = any_repository
    request_id, (a, b, c) = three_images(repo)
    assert counts(repo, request_id) == (3, 0, 0, 0, 0, 0)
    repo.update_images({a: {"status": "downloading"}, b: {"status": "compressing"}})
    assert counts(repo, request_id) == (3, 0, 0, 2, 0, 0)
    repo.update_images({a: done(1000, 300), b: {"status": "failed", "error_code": "timeout"}})
    assert counts(repo, request_id) == (3, 1, 1, 0, 1000, 300)
    repo.update_images({c: done(5000, 700, "c.jpg")})
    assert counts(repo, request_id) == (3, 2, 1, 0, 6000, 1000)
    assert repo.reset_done(request_id, [c]) == 1  # its file vanished
    assert counts(repo, request_id) == (3, 1, 1, 0, 1000, 300)
    assert repo.fail_unfinished(request_id, "cancelled", "Cancelled.") == 1
    assert counts(repo, request_id) == (3, 1, 2, 0, 1000, 300)
    assert repo.reset_failed(request_id) == 2
    assert counts(repo, request_id) == (3, 1, 0, 0, 1000, 300)
    with pytest.raises(ValueError, match="not image fields"):
        repo.update_images({a: {"url": "http://elsewhere"}})


def test_big_sizes_and_exact_times_are_kept(any_repository: Repository) -> None:
    # SQLite's integers are 64 bits and its reals doubles: PostgreSQL's must be too.
    repo = any_repository
    request_id, (a, b, _) = three_images(repo)
    repo.update_images({a: done(3_000_000_000, 2_500_000_000), b: done(2**40, 2**39)})
    assert counts(repo, request_id)[4:] == (3_000_000_000 + 2**40, 2_500_000_000 + 2**39)
    repo.store({}, {request_id: "processing"}, active_time={request_id: 0.125})
    request = repo.get_request(request_id)
    assert request is not None and request.started_at is not None
    assert abs(request.started_at - request.created_at) < 3600  # seconds, not float4 minutes
    assert request.active_s == 0.125


def test_store_writes_requests_images_and_the_cache_at_once(any_repository: Repository) -> None:
    repo = any_repository
    request_id, (a, b, _) = three_images(repo)
    cache = {
        "url": "http://a.example/1.jpg",
        "settings_key": "k1",
        "etag": '"v1"',
        "last_modified": None,
        "content_sha256": "00" * 32,
        "output_path": f"{request_id}/1.jpg",
        "input_bytes": 1000,
        "output_bytes": 300,
        "width": 10,
        "height": 20,
        "input_type": "jpeg",
        "note": None,
    }
    newer = {**cache, "etag": '"v2"', "output_bytes": 299}
    repo.store(
        {a: done(1000, 300), b: {"status": "downloading"}},
        {request_id: "processing"},
        [cache, newer],  # the same URL twice in one batch: the last one wins
        {request_id: 1.5},
    )
    repo.store({}, {}, [{**newer, "url": "http://other/x.jpg", "settings_key": "k2"}])
    request = repo.get_request(request_id)
    assert request is not None
    assert (request.status, request.done, request.in_flight, request.active_s) == (
        "processing",
        1,
        1,
        1.5,
    )
    found = repo.cached_outputs(["http://a.example/1.jpg", "http://nope/"], "k1")
    assert list(found) == ["http://a.example/1.jpg"]
    assert (found["http://a.example/1.jpg"].etag, found["http://a.example/1.jpg"].output_bytes) == (
        '"v2"',
        299,
    )
    assert repo.cached_outputs(["http://a.example/1.jpg"], "k2") == {}


def test_twins_and_done_outputs(any_repository: Repository) -> None:
    repo = any_repository
    request_id, (a, b, c) = three_images(repo)
    repo.update_images({a: done(10, 5, f"{request_id}/one.jpg"), c: done(10, 5, "d/three.jpg")})
    twins = repo.done_twins(request_id, ["http://a.example/1.jpg", "http://a.example/2.jpg"])
    assert {url: image.id for url, image in twins.items()} == {"http://a.example/1.jpg": a}
    assert repo.done_outputs(request_id) == {"one.jpg": [a], "three.jpg": [c]}
    assert b not in repo.image_ids(request_id, ["done"])


def test_interrupted_work_is_recovered_and_cut_short_imports_removed(
    any_repository: Repository,
) -> None:
    repo = any_repository
    request_id, (a, b, _) = three_images(repo)
    repo.store({a: {"status": "downloading"}, b: done(1, 1)}, {request_id: "processing"})
    head = parse_catalogue(f"{HEADER}\n1,a,http://h/a.jpg\n".encode(), "cut.csv")
    recording = repo.start_import(head)
    recording.add(prepare_rows(head.rows))
    assert repo.get_request(recording.request_id).status == IMPORTING  # type: ignore[union-attr]

    assert repo.recover_interrupted() == [request_id]
    request = repo.get_request(request_id)
    assert request is not None and (request.status, request.in_flight, request.done) == (
        "pending",
        0,
        1,
    )
    assert [r.id for r in repo.list_requests()] == [request_id]
    assert repo.unfinished_request_ids() == [request_id]


def test_an_import_in_chunks_keeps_its_order(any_repository: Repository) -> None:
    repo = any_repository
    lines = [HEADER] + [f"{n},P{n},http://h/{n}.jpg" for n in range(25)]
    catalogue = parse_catalogue("\n".join(lines).encode(), "big.csv")
    recording = repo.start_import(catalogue)
    for first in range(0, 25, 10):
        recording.add(prepare_rows(catalogue.rows[first : first + 10]))
    request_id = recording.finish()
    other = make_request(repo, [("x", "X", ["http://h/x.jpg"])])
    assert [i.url for i in repo.list_images(request_id)] == [f"http://h/{n}.jpg" for n in range(25)]
    assert counts(repo, request_id)[0] == 25 and counts(repo, other)[0] == 1
    repo.delete_request(request_id)
    assert [r.id for r in repo.list_requests()] == [other]


def test_statistics_leave_cancellations_out(any_repository: Repository) -> None:
    repo = any_repository
    request_id, (a, b, c) = three_images(repo)
    repo.update_images(
        {
            a: {"status": "failed", "error_code": "http_404"},
            b: {"status": "failed", "error_code": "cancelled"},
            c: {"status": "failed", "error_code": None},
        }
    )
    assert repo.cancelled_counts() == {request_id: 1}
    assert repo.cancelled_counts([]) == {}
    assert repo.error_counts(request_id) == [("http_404", 1), ("unknown", 1)]
    assert repo.host_error_counts() == [("a.example", 1, 1), ("b.example:8080", 1, 1)]


def test_request_fields_and_retention(any_repository: Repository) -> None:
    repo = any_repository
    request_id, (a, _, _) = three_images(repo)
    repo.update_images({a: done(10, 5)})
    repo.set_request_error(request_id, "Waiting for the disk.")
    repo.set_output_csv(request_id, "out.csv")
    repo.set_request_storage(request_id, StorageChoice(folder="/srv/images"))
    repo.set_request_status(request_id, "completed")
    request = repo.get_request(request_id)
    assert request is not None and request.finished_at is not None
    assert (request.error, request.output_csv, request.storage.folder) == (
        None,
        "out.csv",
        "/srv/images",
    )
    assert [r.id for r in repo.requests_finished_before(request.finished_at + 1)] == [request_id]
    assert repo.requests_finished_before(request.finished_at - 1) == []
    assert repo.export_data(request_id)[1][0] == ["http://out/x.jpg", None]
    repo.mark_files_removed(request_id, 123.0)
    assert repo.requests_finished_before(request.finished_at + 1) == []
    assert repo.export_data(request_id)[1][0] == [None, None]
    assert json.loads(json.dumps(repo.get_request(request_id).files_removed_at)) == 123.0  # type: ignore[union-attr]
