"""The dashboard's figures, read from a real SQLite database through the repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QAbstractItemModel, Qt
from PySide6.QtWidgets import QLabel, QPushButton, QTableView
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.db import RequestRow, db, open_database
from imgdesk.core.errors import DatabaseBusyError
from imgdesk.core.repository import Repository
from imgdesk.gui import dashboard
from imgdesk.gui.dashboard import KEY_ROLE, Column, DashboardDialog, StatsRow, StatsTableModel

OFFSCREEN_NOISE = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

CSV_A = b"""S. No.,Product Name,Input Image Urls
1,Shirt,"https://cdn.example.com/a1.jpg, https://cdn.example.com?id=2"
2,Mug,"https://img.shop.test:8080/a3.jpg, https://cdn.example.com/a4.jpg"
3,Cap,https://img.shop.test:8080/a5.png
"""
CSV_B = b"""S. No.,Product Name,Input Image Urls
1,Lamp,https://user@CDN.Example.com/b1.jpg
2,Bag,https://img.shop.test:8080/b2.jpg
3,Tee,https://cdn.example.com/b3.jpg
"""


def done(input_bytes: int, output_bytes: int) -> dict[str, object]:
    return {"status": "done", "input_bytes": input_bytes, "output_bytes": output_bytes}


def failed(code: str) -> dict[str, object]:
    return {"status": "failed", "error_code": code, "error": f"failed: {code}"}


class Data:
    """A finished in 10 s (3 done, 2 failed); B never started (1 done, 1 failed, 1 pending)."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.a = repo.create_request(parse_catalogue(CSV_A, "spring.csv"))
        self.b = repo.create_request(parse_catalogue(CSV_B, "summer.csv"))
        a = [image.id for image in repo.list_images(self.a)]
        b = [image.id for image in repo.list_images(self.b)]
        self.b_pending = b[1]
        repo.update_images(
            {
                a[0]: done(1000, 400),
                a[1]: done(2000, 500),
                a[2]: done(3000, 600),
                a[3]: failed("http_404"),
                a[4]: failed("not_an_image"),
                b[0]: failed("http_404"),
                b[2]: done(500, 100),
            }
        )
        repo.set_request_status(self.a, "failed")
        # Fixed times, so the duration and the rate are exact.
        RequestRow.update(
            created_at=100.0, started_at=1000.0, finished_at=1010.0, active_s=10.0
        ).where(RequestRow.id == self.a).execute()
        RequestRow.update(created_at=200.0).where(RequestRow.id == self.b).execute()


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Data]:
    open_database(tmp_path / "db.sqlite3")
    yield Data(Repository())
    db.close()


@pytest.fixture
def dialog(qtbot: QtBot, data: Data) -> DashboardDialog:
    window = DashboardDialog(data.repo)
    qtbot.addWidget(window)
    window.refresh()
    errors_read(qtbot, window)
    return window


def errors_read(qtbot: QtBot, window: DashboardDialog) -> None:
    """Wait until the error tables' background reads are over."""
    qtbot.waitUntil(lambda: not window.is_reading_errors(), timeout=30_000)


def view(window: DashboardDialog, name: str) -> QTableView:
    found = window.findChild(QTableView, name)
    assert found is not None, name
    return found


def table(window: DashboardDialog, name: str) -> dict[str, dict[str, str]]:
    """The view's displayed text: row key -> column title -> text."""
    model = view(window, name).model()
    titles = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    return {
        model.index(r, 0).data(KEY_ROLE): {
            title: model.index(r, c).data() for c, title in enumerate(titles)
        }
        for r in range(model.rowCount())
    }


def keys(window: DashboardDialog, name: str) -> list[str]:
    model = view(window, name).model()
    return [model.index(r, 0).data(KEY_ROLE) for r in range(model.rowCount())]


def label(window: DashboardDialog, name: str) -> str:
    found = window.findChild(QLabel, name)
    assert found is not None, name
    return found.text()


def select(qtbot: QtBot, window: DashboardDialog, request_id: str) -> None:
    """Select a request and wait for its error tables."""
    requests = view(window, "requests")
    row = keys(window, "requests").index(request_id)
    requests.selectRow(row)
    errors_read(qtbot, window)


# -- repository queries -------------------------------------------------------------------


def test_error_counts_group_failed_images_by_code(data: Data) -> None:
    assert data.repo.error_counts() == [("http_404", 2), ("not_an_image", 1)]
    assert data.repo.error_counts(data.a) == [("http_404", 1), ("not_an_image", 1)]
    assert data.repo.error_counts(data.b) == [("http_404", 1)]


def test_host_error_counts_cover_every_host_and_normalise_it(data: Data) -> None:
    # "user@CDN.Example.com" and "cdn.example.com?id=2" are the same server as cdn.example.com.
    assert data.repo.host_error_counts() == [
        ("cdn.example.com", 2, 5),
        ("img.shop.test:8080", 1, 3),
    ]
    assert data.repo.host_error_counts(data.b) == [
        ("cdn.example.com", 1, 2),
        ("img.shop.test:8080", 0, 1),
    ]


def test_statistics_of_an_unknown_request_are_empty(data: Data) -> None:
    assert data.repo.error_counts("no-such-request") == []
    assert data.repo.host_error_counts("no-such-request") == []


# -- the dialog ---------------------------------------------------------------------------


def test_per_request_figures(dialog: DashboardDialog, data: Data) -> None:
    rows = table(dialog, "requests")
    assert rows[data.a] == {
        "CSV": "spring.csv",
        "Created": rows[data.a]["Created"],
        "Status": "Finished \u2014 2 failed",  # the window's words, not a bare "failed"
        "Images": "5",
        "Done": "3",
        "Failed": "2",
        "Cancelled": "0",
        "Duration": "10 s",  # the one duration style of the window
        "Images/s": "0.3",
        "Saved": "4.5 kB",
        "Saved %": "\u221275%",  # 4,500 of 6,000 bytes
        "Success": "60%",
        "Output": "JPEG q50",
    }
    b = rows[data.b]
    assert (b["Images"], b["Done"], b["Failed"]) == ("3", "1", "1")
    # Success counts finished images only; no duration before the request starts.
    assert (b["Duration"], b["Images/s"], b["Saved"], b["Success"]) == ("—", "—", "400 B", "50%")
    # Newest first.
    assert keys(dialog, "requests") == [data.b, data.a]
    assert "2 requests · 8 images: 4 done, 3 failed · 4.9 kB saved (\u221275%)" in label(
        dialog, "summary"
    )


def test_errors_across_all_requests(dialog: DashboardDialog) -> None:
    assert label(dialog, "scope") == "Errors of all requests"
    # The most frequent error and the host with the most failures come first.
    assert keys(dialog, "errors") == ["http_404", "not_an_image"]
    assert keys(dialog, "hosts") == ["cdn.example.com", "img.shop.test:8080"]
    errors = table(dialog, "errors")
    assert {code: row["Images"] for code, row in errors.items()} == {
        "http_404": "2",
        "not_an_image": "1",
    }
    assert errors["http_404"]["Meaning"] == "The server answered HTTP 404"
    hosts = table(dialog, "hosts")
    assert hosts["cdn.example.com"] == {
        "Host": "cdn.example.com",
        "Failed": "2",
        "Images": "5",
        "Failure rate": "40%",
    }
    assert hosts["img.shop.test:8080"]["Failure rate"] == "33%"


def test_selecting_a_request_narrows_the_errors_and_all_requests_widens_them(
    dialog: DashboardDialog, data: Data, qtbot: QtBot
) -> None:
    select(qtbot, dialog, data.b)
    assert dialog.selected_request_id() == data.b
    assert label(dialog, "scope") == "Errors of summer.csv"
    assert {code: row["Images"] for code, row in table(dialog, "errors").items()} == {
        "http_404": "1"
    }
    assert table(dialog, "hosts")["img.shop.test:8080"]["Failed"] == "0"

    show_all = dialog.findChild(QPushButton, "all_requests")
    assert show_all is not None
    qtbot.mouseClick(show_all, Qt.MouseButton.LeftButton)
    assert dialog.selected_request_id() is None
    errors_read(qtbot, dialog)
    assert table(dialog, "errors")["http_404"]["Images"] == "2"


def test_refresh_shows_new_figures_and_keeps_the_selection(
    dialog: DashboardDialog, data: Data, qtbot: QtBot
) -> None:
    select(qtbot, dialog, data.b)
    data.repo.update_images({data.b_pending: failed("timeout")})
    dialog.refresh()
    errors_read(qtbot, dialog)
    assert dialog.selected_request_id() == data.b
    assert table(dialog, "requests")[data.b]["Failed"] == "2"
    assert table(dialog, "errors")["timeout"]["Images"] == "1"

    # A new request resets the table; the selection survives that too.
    newer = data.repo.create_request(parse_catalogue(CSV_B, "autumn.csv"))
    dialog.refresh()
    errors_read(qtbot, dialog)
    assert newer in keys(dialog, "requests")
    assert dialog.selected_request_id() == data.b
    assert label(dialog, "scope") == "Errors of summer.csv"


def test_a_database_error_is_shown_not_raised(
    dialog: DashboardDialog, data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked() -> None:
        raise DatabaseBusyError("database is locked")

    monkeypatch.setattr(data.repo, "list_requests", locked)
    dialog.refresh()
    assert "database is locked" in label(dialog, "updated")
    assert len(keys(dialog, "requests")) == 2  # the last figures stay


def test_sorting_uses_raw_values(dialog: DashboardDialog, data: Data) -> None:
    requests = view(dialog, "requests")
    saved = [requests.model().headerData(c, Qt.Orientation.Horizontal) for c in range(10)]
    requests.sortByColumn(saved.index("Saved"), Qt.SortOrder.DescendingOrder)
    assert keys(dialog, "requests") == [data.a, data.b]  # 4.5 kB before 400 B
    requests.sortByColumn(saved.index("Saved"), Qt.SortOrder.AscendingOrder)
    assert keys(dialog, "requests") == [data.b, data.a]


@OFFSCREEN_NOISE
def test_refreshes_by_itself_only_while_visible(
    qtbot: QtBot, data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboard, "REFRESH_MS", 50)
    window = DashboardDialog(data.repo)
    qtbot.addWidget(window)
    window.show()
    assert table(window, "requests")[data.b]["Failed"] == "1"  # shown means fresh

    data.repo.update_images({data.b_pending: failed("timeout")})
    qtbot.waitUntil(lambda: table(window, "requests")[data.b]["Failed"] == "2", timeout=3000)

    window.hide()
    data.repo.update_images({data.b_pending: done(10, 5)})
    qtbot.wait(300)
    assert table(window, "requests")[data.b]["Failed"] == "2"


def test_the_models_pass_the_model_tester(
    dialog: DashboardDialog, qtmodeltester: ModelTester
) -> None:
    for name in ("requests", "errors", "hosts", "formats"):
        proxy = view(dialog, name).model()
        source: QAbstractItemModel = proxy.sourceModel()  # type: ignore[attr-defined]
        qtmodeltester.check(source)


def test_changed_values_update_in_place_and_new_keys_reset(qtbot: QtBot) -> None:
    model = StatsTableModel([Column("Name"), Column("Count", numeric=True)])
    model.set_rows([StatsRow("a", ("a", 1)), StatsRow("b", ("b", 2))])
    with qtbot.assertNotEmitted(model.modelReset), qtbot.waitSignal(model.dataChanged) as changed:
        model.set_rows([StatsRow("a", ("a", 1)), StatsRow("b", ("b", 3))])
    top, bottom = changed.args[:2]
    assert (top.row(), bottom.row()) == (1, 1)
    assert model.index(1, 1).data() == "3"
    with qtbot.waitSignal(model.modelReset):
        model.set_rows([StatsRow("c", ("c", 0))])
    assert model.rowCount() == 1


# -- cancellations are no failures (issue "The window, round two", 3) ---------------------


def test_cancelled_images_count_in_no_error_or_host_figure(data: Data) -> None:
    errors = data.repo.error_counts()
    # The user cancels B: its pending image (on img.shop.test) fails as "cancelled".
    assert data.repo.fail_unfinished(data.b, "cancelled", "Cancelled by the user.") == 1
    data.repo.set_request_status(data.b, "failed")
    assert data.repo.error_counts() == errors
    # No failure of the server's, and no work it did: its rate is that of what it served.
    assert data.repo.host_error_counts() == [
        ("cdn.example.com", 2, 5),
        ("img.shop.test:8080", 1, 2),
    ]
    assert data.repo.cancelled_counts() == {data.b: 1}
    assert data.repo.cancelled_counts([data.a]) == {}
    assert data.repo.cancelled_counts([]) == {}


def test_a_cancelled_request_reads_cancelled_and_its_cancellations_are_not_failures(
    qtbot: QtBot, data: Data
) -> None:
    data.repo.fail_unfinished(data.b, "cancelled", "Cancelled by the user.")
    data.repo.set_request_status(data.b, "failed")
    window = DashboardDialog(data.repo)
    qtbot.addWidget(window)
    window.refresh()
    b = table(window, "requests")[data.b]
    assert (b["Status"], b["Done"], b["Failed"], b["Cancelled"]) == (
        "Cancelled \u2014 1 failed",
        "1",
        "1",
        "1",
    )
    assert b["Success"] == "50%"  # of the images that finished: 1 done, 1 failed
    assert "8 images: 4 done, 3 failed, 1 cancelled" in label(window, "summary")


def test_one_request_is_not_written_as_requests(qtbot: QtBot, tmp_path: Path) -> None:
    open_database(tmp_path / "one.sqlite3")
    try:
        repo = Repository()
        repo.create_request(parse_catalogue(CSV_B, "one.csv"))
        window = DashboardDialog(repo)
        qtbot.addWidget(window)
        window.refresh()
        assert label(window, "summary").startswith("1 request \u00b7 3 images")
    finally:
        db.close()
