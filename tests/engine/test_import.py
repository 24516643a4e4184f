"""Recording a request in steps: hidden until complete, removed when cut short."""

from __future__ import annotations

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.db import db
from imgdesk.core.repository import Repository, prepare_catalogue

from .conftest import csv_bytes


def catalogue_rows(count: int) -> list[tuple[str, str, list[str]]]:
    return [(str(n), f"P{n}", [f"http://h/{n}-a.jpg", f"http://h/{n}-b.jpg"]) for n in range(count)]


def row_counts() -> tuple[int, int]:
    products = db.execute_sql("SELECT COUNT(*) FROM product").fetchone()[0]
    images = db.execute_sql("SELECT COUNT(*) FROM image").fetchone()[0]
    return products, images


def test_a_request_recorded_in_steps_equals_one_recorded_at_once(repo: Repository) -> None:
    catalogue = parse_catalogue(csv_bytes(catalogue_rows(25)), "big.csv")
    recording = repo.start_import(prepare_catalogue(catalogue))
    fractions = []
    while not recording.step(rows=4):
        fractions.append(recording.fraction)
        # Not listed, not offered to the engine, while its rows are still coming in.
        assert repo.list_requests() == []
        assert repo.unfinished_request_ids() == []
        assert repo.get_request(recording.request_id) is None
    assert fractions == sorted(fractions) and len(fractions) == 6
    stepped = repo.list_images(recording.request_id)

    at_once = repo.create_request(catalogue)
    expected = repo.list_images(at_once)
    assert len(stepped) == len(expected) == 50
    assert [(i.serial, i.position, i.url, i.status) for i in stepped] == [
        (i.serial, i.position, i.url, i.status) for i in expected
    ]
    assert [i.id for i in stepped] == sorted(i.id for i in stepped)  # id order is input order
    request = repo.get_request(recording.request_id)
    assert request is not None and (request.status, request.total) == ("pending", 50)
    assert repo.unfinished_request_ids() == [recording.request_id, at_once]


def test_an_import_cut_short_is_removed_at_the_next_start(repo: Repository) -> None:
    kept = repo.create_request(parse_catalogue(csv_bytes(catalogue_rows(3)), "kept.csv"))
    catalogue = parse_catalogue(csv_bytes(catalogue_rows(30)), "cut.csv")
    recording = repo.start_import(prepare_catalogue(catalogue))
    recording.step(rows=10)
    assert row_counts() == (13, 26)

    # The process died here. The next start recovers:
    assert repo.recover_interrupted() == [kept]
    assert row_counts() == (3, 6)
    assert [request.id for request in repo.list_requests()] == [kept]


def test_abandoning_an_import_removes_what_it_recorded(repo: Repository) -> None:
    catalogue = parse_catalogue(csv_bytes(catalogue_rows(30)), "cut.csv")
    recording = repo.start_import(prepare_catalogue(catalogue))
    recording.step(rows=10)
    recording.abandon()
    assert row_counts() == (0, 0)
    assert db.execute_sql("SELECT COUNT(*) FROM request").fetchone()[0] == 0
