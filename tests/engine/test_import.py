"""Recording a request chunk by chunk: hidden until finished, removed when cut short."""

from __future__ import annotations

from collections.abc import Sequence

from imgdesk.core.csvio import Catalogue, CatalogueRow, parse_catalogue
from imgdesk.core.db import db
from imgdesk.core.repository import PreparedRows, Repository, prepare_rows

from .conftest import csv_bytes


def catalogue_bytes(count: int) -> bytes:
    rows = [(str(n), f"P{n}", [f"http://h/{n}-a.jpg", f"http://h/{n}-b.jpg"]) for n in range(count)]
    return csv_bytes(rows)


def row_counts() -> tuple[int, int]:
    products = db.execute_sql("SELECT COUNT(*) FROM product").fetchone()[0]
    images = db.execute_sql("SELECT COUNT(*) FROM image").fetchone()[0]
    return products, images


def test_rows_recorded_as_they_are_parsed_equal_a_request_recorded_at_once(
    repo: Repository,
) -> None:
    heads: list[Catalogue] = []
    chunks: list[PreparedRows] = []

    def on_rows(head: Catalogue, rows: Sequence[CatalogueRow]) -> None:
        heads.append(head)
        chunks.append(prepare_rows(rows))

    catalogue = parse_catalogue(catalogue_bytes(25), "big.csv", on_rows, chunk_rows=4)
    assert [chunk.row_count for chunk in chunks] == [4, 4, 4, 4, 4, 4, 1]
    assert heads[0].rows == () and heads[0].header == catalogue.header

    recording = repo.start_import(heads[0])
    for chunk in chunks:
        recording.add(chunk)
        # Listed as it grows, never offered to the engine while its rows are coming in.
        listed = repo.get_request(recording.request_id)
        assert listed is not None and listed.status == "importing"
        assert listed.total == len(repo.list_images(recording.request_id))
        assert repo.unfinished_request_ids() == []
    assert recording.rows_recorded == 25
    stepped_id = recording.finish()
    stepped = repo.list_images(stepped_id)

    at_once = repo.create_request(catalogue)
    expected = repo.list_images(at_once)
    assert len(stepped) == len(expected) == 50
    assert [(i.serial, i.position, i.url, i.status) for i in stepped] == [
        (i.serial, i.position, i.url, i.status) for i in expected
    ]
    assert [i.id for i in stepped] == sorted(i.id for i in stepped)  # id order is input order
    request = repo.get_request(stepped_id)
    assert request is not None and (request.status, request.total) == ("pending", 50)
    assert repo.unfinished_request_ids() == [stepped_id, at_once]
    assert [r.id for r in repo.list_requests()] == [at_once, stepped_id]


def test_an_import_cut_short_is_removed_at_the_next_start(repo: Repository) -> None:
    kept = repo.create_request(parse_catalogue(catalogue_bytes(3), "kept.csv"))
    catalogue = parse_catalogue(catalogue_bytes(30), "cut.csv")
    recording = repo.start_import(catalogue)
    recording.add(prepare_rows(catalogue.rows[:10]))
    assert row_counts() == (13, 26)

    # The process died here. The next start recovers:
    assert repo.recover_interrupted() == [kept]
    assert row_counts() == (3, 6)
    assert [request.id for request in repo.list_requests()] == [kept]


def test_abandoning_an_import_removes_what_it_recorded(repo: Repository) -> None:
    catalogue = parse_catalogue(catalogue_bytes(30), "cut.csv")
    recording = repo.start_import(catalogue)
    recording.add(prepare_rows(catalogue.rows[:10]))
    recording.abandon()
    assert row_counts() == (0, 0)
    assert db.execute_sql("SELECT COUNT(*) FROM request").fetchone()[0] == 0
