"""The table models: Qt's model tester, coalesced refreshes, sorting, filtering, scale."""

from __future__ import annotations

import gc
import random
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from pytestqt.qtbot import QtBot

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.repository import Repository
from imgdesk.engine.engine import Engine
from imgdesk.gui import images_model
from imgdesk.gui.formatting import format_bytes
from imgdesk.gui.images_model import ImagesTableModel
from imgdesk.gui.models import (
    OBJECT_ROLE,
    PROGRESS_ROLE,
    SORT_ROLE,
    STATE_ROLE,
    RequestsTableModel,
    contiguous_runs,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _application(qapp: object) -> None:
    """The models run timers, which need the application (and its event dispatcher)."""


def make_request(
    repository: Repository, products: int, urls_per_product: int = 1, name: str = "p.csv"
) -> str:
    lines = ["S. No.,Product Name,Input Image Urls"]
    for i in range(products):
        urls = ", ".join(f"https://cdn.example/{i}/{k}.jpg" for k in range(urls_per_product))
        lines.append(f'{i + 1},Product {i + 1},"{urls}"')
    catalogue = parse_catalogue("\n".join(lines).encode(), name)
    return repository.create_request(catalogue, Path(name))


def done(input_bytes: int, output_bytes: int) -> dict[str, Any]:
    return {
        "status": "done",
        "attempts": 1,
        "input_bytes": input_bytes,
        "output_bytes": output_bytes,
        "width": 640,
        "height": 480,
        "input_type": "image/png",
        "output_path": "/nowhere/0001_product_1.jpg",
        "output_url": "file:///nowhere/0001_product_1.jpg",
    }


FAILED = {"status": "failed", "attempts": 4, "error_code": "http_404", "error": "Not there."}


@pytest.fixture
def mixed_request(repository: Repository) -> str:
    """Six images: done (two sizes), failed, downloading, retrying, pending."""
    request_id = make_request(repository, 6)
    ids = [image.id for image in repository.list_images(request_id)]
    repository.update_images(
        {
            ids[0]: done(400_000, 100_000),
            ids[1]: FAILED,
            ids[2]: {"status": "downloading", "attempts": 1},
            ids[3]: done(50_000, 40_000),
            ids[4]: {
                "status": "pending",
                "error_code": "timeout",
                "error": "Slow. Trying again in 2 s.",
            },
        }
    )
    return request_id


# -- helpers ------------------------------------------------------------------------------------


def test_contiguous_runs() -> None:
    assert contiguous_runs([5, 1, 2, 3, 9, 8]) == [(1, 3), (5, 5), (8, 9)]
    assert contiguous_runs([]) == []


# -- Qt's model tester ----------------------------------------------------------------------------


def test_requests_model_passes_the_model_tester(
    qtmodeltester: Any, repository: Repository, engine: Engine, mixed_request: str
) -> None:
    make_request(repository, 2, name="second.csv")
    model = RequestsTableModel(repository, engine)
    model.reload()
    assert model.rowCount() == 2
    qtmodeltester.check(model, force_py=True)
    qtmodeltester.check(model)


def test_images_model_passes_the_model_tester_sorted_and_filtered_too(
    qtmodeltester: Any, repository: Repository, mixed_request: str
) -> None:
    model = ImagesTableModel(repository)
    model.set_request(mixed_request)
    qtmodeltester.check(model, force_py=True)
    qtmodeltester.check(model)
    model.sort(ImagesTableModel.COL_SIZE, Qt.SortOrder.DescendingOrder)
    model.set_state_filter("done")
    qtmodeltester.check(model, force_py=True)
    qtmodeltester.check(model)


# -- the requests model ---------------------------------------------------------------------------


def test_requests_are_newest_first_and_show_progress(
    qtbot: QtBot, repository: Repository, engine: Engine, mixed_request: str
) -> None:
    model = RequestsTableModel(repository, engine)
    model.reload()
    newer = make_request(repository, 1, name="newer.csv")
    with qtbot.waitSignal(model.rowsInserted, timeout=2000):
        model.refresh_request(newer)
    assert [r.csv_name for r in model.requests()] == ["newer.csv", "p.csv"]
    row = model.row_of(mixed_request)
    assert row == 1
    assert model.index(row, model.COL_COUNTS).data() == "2 / 1 / 6"
    assert model.index(row, model.COL_PROGRESS).data(PROGRESS_ROLE) == pytest.approx(0.5)
    assert model.index(row, model.COL_PROGRESS).data() == "50%"
    assert model.index(row, model.COL_SAVED).data() == format_bytes(310_000)
    assert model.index(row, model.COL_STATE).data() == "Queued"
    engine.paused_changed.connect(model.repaint_states)  # as the window does
    with qtbot.waitSignal(model.dataChanged, timeout=2000):
        engine.pause()
    assert model.index(row, model.COL_STATE).data(STATE_ROLE) == "paused"

    repository.delete_request(newer)
    with qtbot.waitSignal(model.rowsRemoved, timeout=2000):
        model.refresh_request(newer)
    assert model.rowCount() == 1


def test_a_changed_request_is_reread_once_however_often_it_is_announced(
    qtbot: QtBot,
    repository: Repository,
    engine: Engine,
    mixed_request: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = RequestsTableModel(repository, engine)
    model.reload()
    reads: list[str] = []
    original = repository.get_request
    monkeypatch.setattr(repository, "get_request", lambda rid: reads.append(rid) or original(rid))
    with qtbot.waitSignal(model.dataChanged, timeout=2000):
        for _ in range(50):
            model.refresh_request(mixed_request)
    assert reads == [mixed_request]


# -- the images model -----------------------------------------------------------------------------


def test_images_show_state_sizes_savings_and_errors(
    repository: Repository, mixed_request: str
) -> None:
    model = ImagesTableModel(repository)
    model.set_request(mixed_request)

    def cell(row: int, column: int, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        return model.index(row, column).data(role)

    assert cell(0, model.COL_SERIAL) == "1"
    assert cell(0, model.COL_PRODUCT) == "Product 1"
    assert cell(0, model.COL_STATE) == "Done"
    assert cell(0, model.COL_SIZE) == "400 kB \u2192 100 kB"  # decimal, as file managers show
    assert cell(0, model.COL_SAVINGS) == "\u221275%"
    assert "640 \u00d7 480 px" in cell(0, model.COL_SIZE, Qt.ItemDataRole.ToolTipRole)
    assert cell(1, model.COL_STATE) == "Failed"
    assert cell(1, model.COL_MESSAGE) == "Not there."  # one column; the code in its tooltip
    assert cell(1, model.COL_MESSAGE, Qt.ItemDataRole.ToolTipRole) == "http_404: Not there."
    assert cell(2, model.COL_STATE, STATE_ROLE) == "downloading"
    assert cell(2, model.COL_STATE, PROGRESS_ROLE) is not None
    assert cell(4, model.COL_STATE) == "Retrying soon"
    assert cell(5, model.COL_STATE) == "Waiting"
    assert cell(4, model.COL_MESSAGE) == "Slow. Trying again in 2 s."
    assert cell(0, model.COL_URL) == "https://cdn.example/0/0.jpg"
    assert cell(0, model.COL_OUTPUT) == "/nowhere/0001_product_1.jpg"
    assert cell(0, 0, OBJECT_ROLE).id == model.image_at(0).id


def test_changed_images_are_announced_once_per_contiguous_run(
    qtbot: QtBot, repository: Repository
) -> None:
    request_id = make_request(repository, 10)
    ids = [image.id for image in repository.list_images(request_id)]
    model = ImagesTableModel(repository)
    model.set_request(request_id)
    changes: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(
        lambda top, bottom, _roles: changes.append(
            (top.row(), bottom.row(), top.column(), bottom.column())
        )
    )
    repository.update_images({ids[i]: {"status": "downloading"} for i in (2, 3, 4, 8)})
    model.refresh_images(request_id, [ids[2], ids[3]])
    model.refresh_images(request_id, [ids[4], ids[8]])
    model.refresh_images("another-request", [ids[0]])  # not shown: ignored
    with qtbot.waitSignal(model.images_refreshed, timeout=2000) as blocker:
        pass
    assert blocker.args == [sorted([ids[2], ids[3], ids[4], ids[8]])]
    first, last = model.FIRST_CHANGING_COLUMN, model.LAST_CHANGING_COLUMN
    assert changes == [(2, 4, first, last), (8, 8, first, last)]
    assert [model.image_at(i).status for i in (2, 3, 4, 8)] == ["downloading"] * 4


def test_images_sort_by_their_sort_key_and_filter_by_state_and_text(
    repository: Repository, mixed_request: str
) -> None:
    model = ImagesTableModel(repository)
    model.set_request(mixed_request)
    proxy = model  # it sorts and filters itself

    def shown(column: int = ImagesTableModel.COL_SERIAL) -> list[str]:
        return [proxy.index(row, column).data() for row in range(proxy.rowCount())]

    assert shown() == ["1", "2", "3", "4", "5", "6"]  # input order until sorted
    proxy.sort(ImagesTableModel.COL_SIZE, Qt.SortOrder.DescendingOrder)
    assert shown()[:2] == ["1", "4"]
    proxy.sort(ImagesTableModel.COL_SERIAL, Qt.SortOrder.DescendingOrder)
    assert shown() == ["6", "5", "4", "3", "2", "1"]
    proxy.set_state_filter("failed")
    assert shown() == ["2"]
    proxy.set_state_filter("done")
    assert sorted(shown()) == ["1", "4"]
    proxy.set_state_filter("active")
    assert sorted(shown()) == ["3", "5"]
    proxy.set_state_filter("all")
    proxy.set_text_filter("cdn.example/3/")
    assert shown() == ["4"]
    proxy.set_text_filter("timeout")
    assert shown() == ["5"]
    with pytest.raises(KeyError):
        proxy.set_state_filter("nonsense")


def test_the_state_filter_follows_images_as_they_change(
    qtbot: QtBot, repository: Repository, mixed_request: str
) -> None:
    model = ImagesTableModel(repository)
    model.set_request(mixed_request)
    proxy = model
    proxy.set_state_filter("failed")
    assert proxy.rowCount() == 1
    pending = [image for image in model.images() if image.status == "pending"]
    assert pending

    repository.update_images(
        {pending[0].id: {"status": "failed", "error_code": "http_404", "error": "Gone."}}
    )
    model.refresh_images(mixed_request, [pending[0].id])
    model.flush()

    assert proxy.rowCount() == 2
    proxy.set_text_filter("GONE")
    assert proxy.rowCount() == 1
    assert proxy.index(0, 0).data(OBJECT_ROLE).id == pending[0].id


def test_with_no_filter_rows_are_accepted_without_reading_them(
    qtbot: QtBot, repository: Repository, small_pages: int
) -> None:
    model = ImagesTableModel(repository)
    asked: list[int] = []
    real = model._accepts

    def counting(row: Any) -> bool:
        asked.append(row[0])
        return real(row)

    model._accepts = counting  # type: ignore[method-assign]
    with qtbot.waitSignal(model.loading_finished, timeout=5000):
        model.set_request(make_request(repository, 30))
    assert model.rowCount() == 30
    assert asked == []  # appending pages costs no Python call per row
    model.set_text_filter("Product  17 ")
    assert model.rowCount() == 1 and len(asked) == 30


def test_serials_sort_as_numbers(repository: Repository) -> None:
    request_id = make_request(repository, 12)
    model = ImagesTableModel(repository)
    model.set_request(request_id)
    proxy = model
    proxy.sort(ImagesTableModel.COL_SERIAL)
    serials = [proxy.index(row, 0).data() for row in range(proxy.rowCount())]
    assert serials == [str(i) for i in range(1, 13)]
    assert proxy.index(0, 0).data(SORT_ROLE) < proxy.index(1, 0).data(SORT_ROLE)


def test_ten_thousand_images_load_and_refresh_quickly(qtbot: QtBot, repository: Repository) -> None:
    request_id = make_request(repository, 5000, urls_per_product=2)
    model = ImagesTableModel(repository)
    started = time.perf_counter()
    with qtbot.waitSignal(model.loading_finished, timeout=10_000):
        model.set_request(request_id)
    loaded = time.perf_counter() - started
    assert model.rowCount() == 10_000
    assert loaded < 3.0, f"loading 10,000 images took {loaded:.2f} s"

    ids = [model.image_at(row).id for row in range(0, 10_000, 50)]  # 200 scattered rows
    repository.update_images({image_id: {"status": "compressing"} for image_id in ids})
    proxy = model
    proxy.set_state_filter("active")
    model.refresh_images(request_id, ids)
    started = time.perf_counter()
    model.flush()
    refreshed = time.perf_counter() - started
    assert proxy.rowCount() == 200
    assert refreshed < 1.0, f"refreshing 200 of 10,000 images took {refreshed:.2f} s"
    assert model.data(QModelIndex()) is None


def test_a_busy_database_delays_a_refresh_but_loses_nothing(
    qtbot: QtBot, repository: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imgdesk.core.errors import DatabaseBusyError

    request_id = make_request(repository, 3)
    ids = [image.id for image in repository.list_images(request_id)]
    model = ImagesTableModel(repository)
    model.set_request(request_id)
    repository.update_images({ids[1]: {"status": "compressing"}})
    real = repository.get_images
    calls: list[int] = []

    def busy_once(image_ids: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise DatabaseBusyError("database is locked")
        return real(image_ids)

    monkeypatch.setattr(repository, "get_images", busy_once)
    model.refresh_images(request_id, [ids[1]])
    model.flush()  # busy: nothing announced, kept for later
    assert model.image_at(1).status == "pending"
    with qtbot.waitSignal(model.images_refreshed, timeout=3000):
        pass
    assert model.image_at(1).status == "compressing"
    assert len(calls) == 2


# -- loading a big request a page at a time ----------------------------------------------------


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> int:
    """Pages of 7 images, each shown as it is read, so a 50-image request takes eight."""
    monkeypatch.setattr(images_model, "FIRST_PAGE_ROWS", 7)
    monkeypatch.setattr(images_model, "LOAD_PAGE_ROWS", 7)
    monkeypatch.setattr(images_model, "INSERT_BATCH_ROWS", 7)
    return 7


def test_pages_are_shown_in_batches_and_changes_meanwhile_are_not_lost(
    qtbot: QtBot, repository: Repository, small_pages: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images_model, "INSERT_BATCH_ROWS", 20)
    request_id = make_request(repository, 50)
    model = ImagesTableModel(repository)
    inserted: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))
    changed_while_unshown: list[int] = []

    def change_a_page_read_but_not_shown() -> None:
        # After the second page is read (rows 7-13) and before it is shown.
        if model._unlisted and not changed_while_unshown:
            image_id = model._unlisted[0][0]
            repository.update_images({image_id: {"status": "failed", "error": "Gone."}})
            model.refresh_images(request_id, [image_id])
            changed_while_unshown.append(image_id)

    model._load_timer.timeout.connect(change_a_page_read_but_not_shown)
    model.set_request(request_id)
    with qtbot.waitSignal(model.loading_finished, timeout=5000):
        pass
    # 7 shown at once; then pages of 7 are shown 21 at a time, and the rest at the end.
    assert inserted == [(7, 27), (28, 48), (49, 49)]
    assert [image.id for image in model.images()] == [
        image.id for image in repository.list_images(request_id)
    ]
    row = model.row_of(changed_while_unshown[0])
    assert row is not None
    qtbot.waitUntil(lambda: model.image_at(row).status == "failed", timeout=2000)


def test_a_big_request_lists_its_first_page_at_once_and_the_rest_soon(
    qtbot: QtBot, repository: Repository, small_pages: int
) -> None:
    request_id = make_request(repository, 25, urls_per_product=2)
    model = ImagesTableModel(repository)
    inserted: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))
    model.set_request(request_id)
    assert model.rowCount() == small_pages
    assert model.is_loading
    assert model.row_of(model.image_at(small_pages - 1).id) == small_pages - 1
    with qtbot.waitSignal(model.loading_finished, timeout=5000) as blocker:
        pass
    assert blocker.args == [request_id]
    assert not model.is_loading
    expected = [image.id for image in repository.list_images(request_id)]
    assert [image.id for image in model.images()] == expected
    assert [model.row_of(image_id) for image_id in expected] == list(range(50))
    assert [model.index(row, model.COL_SERIAL).data() for row in (0, 1, 48, 49)] == [
        "1",
        "1",
        "25",
        "25",
    ]
    # Every later page was one insertion of its own rows, after the first page.
    assert inserted == [(first, min(first + 6, 49)) for first in range(7, 50, 7)]


def test_a_request_that_fits_one_page_is_loaded_by_set_request(
    qtbot: QtBot, repository: Repository, mixed_request: str
) -> None:
    model = ImagesTableModel(repository)
    with qtbot.waitSignal(model.loading_finished, timeout=1000) as blocker:
        model.set_request(mixed_request)
    assert blocker.args == [mixed_request]
    assert model.rowCount() == 6
    assert not model.is_loading
    with qtbot.assertNotEmitted(model.loading_finished, wait=50):
        model.set_request(None)
    assert model.rowCount() == 0
    assert not model.is_loading


def test_switching_requests_while_loading_never_mixes_their_rows(
    qtbot: QtBot, repository: Repository, small_pages: int
) -> None:
    first = make_request(repository, 50, name="first.csv")
    second = make_request(repository, 30, name="second.csv")
    model = ImagesTableModel(repository)
    finished: list[str] = []
    model.loading_finished.connect(finished.append)
    with qtbot.waitSignal(model.rowsInserted, timeout=5000):
        model.set_request(first)  # the first page; the second follows on the event loop
    assert model.rowCount() == 2 * small_pages
    assert model.is_loading
    with qtbot.waitSignal(model.loading_finished, timeout=5000) as blocker:
        model.set_request(second)
    assert blocker.args == [second]
    qtbot.wait(50)  # turns of the event loop the first request's pages would have taken
    expected = [image.id for image in repository.list_images(second)]
    assert [image.id for image in model.images()] == expected
    assert finished == [second]

    # Switched by a slot of rowsInserted, in the middle of appending the first's last page.
    def switch_to_second(_parent: object, _first: int, last: int) -> None:
        if last == 49:
            model.rowsInserted.disconnect(switch_to_second)
            model.set_request(second)

    model.rowsInserted.connect(switch_to_second)
    model.set_request(first)
    with qtbot.waitSignal(model.loading_finished, timeout=5000) as blocker:
        pass
    assert blocker.args == [second]
    qtbot.wait(50)
    assert [image.id for image in model.images()] == expected
    assert finished == [second, second]

    model.set_request(first)
    with qtbot.assertNotEmitted(model.loading_finished, wait=100):
        model.set_request(None)  # stops loading too
    assert model.rowCount() == 0
    assert not model.is_loading


def test_an_image_changed_before_its_page_loads_shows_its_new_state(
    qtbot: QtBot, repository: Repository, small_pages: int
) -> None:
    request_id = make_request(repository, 50)
    ids = [image.id for image in repository.list_images(request_id)]
    model = ImagesTableModel(repository)
    model.set_request(request_id)
    assert model.row_of(ids[40]) is None  # not listed yet
    repository.update_images({ids[40]: {"status": "done"}})
    model.refresh_images(request_id, [ids[40]])  # ignored: read fresh with its page
    with qtbot.waitSignal(model.loading_finished, timeout=5000):
        pass
    assert model.image_at(40).status == "done"
    assert model.index(40, model.COL_STATE).data() == "Done"


def test_a_busy_database_delays_a_page_but_loses_nothing(
    qtbot: QtBot, repository: Repository, small_pages: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imgdesk.core.errors import DatabaseBusyError

    monkeypatch.setattr(images_model, "BUSY_RETRY_MS", 50)
    request_id = make_request(repository, 20)
    expected = [image.id for image in repository.list_images(request_id)]
    real = repository.list_images_page
    calls: list[int] = []

    def busy_second_page(rid: str, after_id: int, limit: int) -> Any:
        calls.append(after_id)
        if len(calls) == 2:
            raise DatabaseBusyError("database is locked")
        return real(rid, after_id, limit)

    monkeypatch.setattr(repository, "list_images_page", busy_second_page)
    model = ImagesTableModel(repository)
    with qtbot.waitSignal(model.loading_finished, timeout=5000):
        model.set_request(request_id)
    assert [image.id for image in model.images()] == expected
    assert calls[1] == calls[2]  # the busy page was read again, not skipped
    assert len(calls) == 4  # 7 + (busy) + 7 + 6


def test_loaded_images_cost_the_garbage_collector_nothing(repository: Repository) -> None:
    model = ImagesTableModel(repository)
    model.set_request(make_request(repository, 40))
    gc.collect()
    # Plain tuples of plain values are dropped from the collector's lists; named tuples are
    # not, and 300,000 of them made every full collection an 80 ms stall.
    assert not any(gc.is_tracked(row) for row in model._images)
    assert model.image_at(0).serial == "1"
    assert model.index(0, ImagesTableModel.COL_SERIAL).data() == "1"


# -- the order stays right while images change (issue "The window, round two", 1) -----------


def test_a_sorted_table_stays_sorted_while_images_finish_and_keeps_the_selection(
    qtbot: QtBot, repository: Repository
) -> None:
    request_id = make_request(repository, 60)
    ids = [image.id for image in repository.list_images(request_id)]
    model = ImagesTableModel(repository)
    model.set_request(request_id)
    model.sort(ImagesTableModel.COL_SIZE, Qt.SortOrder.DescendingOrder)
    selected = QPersistentModelIndex(model.index(model.row_of(ids[17]) or 0, 0))
    rng = random.Random(1)
    order = ids[:]
    rng.shuffle(order)
    # Images finish in batches, each refresh announcing scattered rows, as a run does.
    for start in range(0, 60, 7):
        batch = order[start : start + 7]
        repository.update_images({i: done(rng.randint(1000, 900_000), 500) for i in batch})
        model.refresh_images(request_id, batch)
        model.flush()
        sizes = [model.index(r, model.COL_SIZE).data(SORT_ROLE) for r in range(model.rowCount())]
        assert sizes == sorted(sizes, reverse=True)
        assert selected.isValid() and selected.data(OBJECT_ROLE).id == ids[17]
    assert model.rowCount() == 60


def test_a_filtered_table_follows_changes_in_and_out_of_the_filter(
    qtbot: QtBot, repository: Repository
) -> None:
    request_id = make_request(repository, 20)
    ids = [image.id for image in repository.list_images(request_id)]
    model = ImagesTableModel(repository)
    model.set_request(request_id)
    model.set_state_filter("done")
    model.sort(ImagesTableModel.COL_SERIAL, Qt.SortOrder.DescendingOrder)
    assert model.rowCount() == 0
    repository.update_images({ids[i]: done(1000 * (i + 1), 10) for i in (3, 9, 15)})
    model.refresh_images(request_id, [ids[3], ids[9], ids[15]])
    model.flush()
    assert [model.image_at(r).id for r in range(3)] == [ids[15], ids[9], ids[3]]
    repository.update_images({ids[9]: FAILED})
    model.refresh_images(request_id, [ids[9]])
    model.flush()
    assert [model.image_at(r).id for r in range(model.rowCount())] == [ids[15], ids[3]]
    assert model.row_of(ids[9]) is None
    assert len(model.images()) == 20  # every image is still listed
