"""The window end to end: real drops, real engine, real HTTP server, real files.

Every test drives the window the way a user does (events, actions, shortcuts, dialogs) and
checks the outcome where it lands: the database, the files on disk, the models.
"""

from __future__ import annotations

import csv
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFileDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QSystemTrayIcon,
    QWidget,
)
from pytestqt.qtbot import QtBot

from imgdesk.core import repository as repository_module
from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.db import db, open_database
from imgdesk.core.paths import database_path
from imgdesk.core.repository import ImageInfo, Repository
from imgdesk.core.storage import request_folder
from imgdesk.engine.engine import Engine
from imgdesk.gui import app as gui_app
from imgdesk.gui.actions import Action
from imgdesk.gui.crash import CrashDialog, CrashHandler
from imgdesk.gui.images_model import ImagesTableModel
from imgdesk.gui.loading import RowProblemsDialog
from imgdesk.gui.main_window import MainWindow
from imgdesk.gui.models import RequestsTableModel
from tests.gui.conftest import serve_jpeg, serve_png, speed_shown, write_csv
from tests.gui.test_held_state import block_output
from tests.httpservers import Gate, HttpTestServer, delayed, gated, respond, sequence
from tests.images import make_jpeg

# The offscreen platform warns whenever a shown window has size constraints (every window
# with a layout does); it is the plugin's noise, not ours.
pytestmark = [
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
    pytest.mark.timeout(60),
]

WAIT_MS = 15_000


# -- helpers ----------------------------------------------------------------------------------


def drop_files(target: QWidget, paths: list[Path]) -> QDropEvent:
    """Drag ``paths`` over ``target`` and drop them there, as a file manager does."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    enter = QDragEnterEvent(
        QPoint(30, 30),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted(), "the window must accept dragged files"
    drop = QDropEvent(
        QPointF(30, 30),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(target, drop)
    return drop


def load_and_finish(
    qtbot: QtBot, window: MainWindow, engine: Engine, csv_path: Path
) -> tuple[str, str]:
    """Drop a CSV on the window and wait until its request finishes; (request id, status)."""
    with qtbot.waitSignal(engine.request_finished, timeout=WAIT_MS) as blocker:
        drop_files(window.centralWidget(), [csv_path])
    request_id, status = blocker.args
    # The models catch up on their own timers.
    qtbot.waitUntil(lambda: _shown_images_settled(window, request_id), timeout=WAIT_MS)
    return request_id, status


def _shown_images_settled(window: MainWindow, request_id: str) -> bool:
    request = window.current_request()
    images = window.images_model.images()
    return (
        request is not None
        and request.id == request_id
        and request.finished
        and bool(images)
        and all(image.status in ("done", "failed") for image in images)
    )


def write_unreachable_csv(path: Path, rows: int, tail: str = "") -> Path:
    """A big catalogue whose URLs are never fetched (port 9 refuses), for reading tests."""
    lines = ["S. No.,Product Name,Input Image Urls"]
    lines += [f"{n},Shirt {n},http://127.0.0.1:9/{n}.jpg" for n in range(1, rows + 1)]
    path.write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")
    return path


def proxy_row_of(window: MainWindow, predicate: Callable[[ImageInfo], bool]) -> int:
    """The first row of the images view whose image matches."""
    model = window.images_model
    for row in range(model.rowCount()):
        if predicate(model.image_at(row)):
            return row
    raise AssertionError("no such image shown")


def dialog_of(window: MainWindow, kind: type) -> QWidget:
    dialogs = [d for d in window.open_dialogs() if isinstance(d, kind)]
    assert len(dialogs) == 1, dialogs
    return dialogs[0]


def activate(qtbot: QtBot, window: MainWindow) -> None:
    """Make the window the active one, so its keyboard shortcuts apply."""
    assert window.isVisible()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)


# -- loading ----------------------------------------------------------------------------------


def test_empty_state_explains_what_to_drop(window: MainWindow) -> None:
    assert window.stack.currentWidget() is window.empty_state
    texts = " ".join(label.text() for label in window.empty_state.findChildren(QLabel))
    assert "Drop CSV files here" in texts
    assert "Input Image Urls" in texts


def test_a_dropped_csv_becomes_a_request_that_finishes(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    repository: Repository,
    server: HttpTestServer,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    urls = [serve_jpeg(server, f"shirt{i}.jpg") for i in range(3)] + [serve_png(server, "hat.png")]
    csv_path = write_csv(
        tmp_path / "products.csv", [("1", "Shirt", urls[:3]), ("2", "Hat", urls[3:])]
    )

    request_id, status = load_and_finish(qtbot, window, engine, csv_path)

    assert status == "completed"
    assert window.stack.currentWidget() is window.main_splitter
    request = repository.get_request(request_id)
    assert request is not None and (request.done, request.failed, request.total) == (4, 0, 4)
    assert window.requests_model.rowCount() == 1
    assert window.images_model.rowCount() == 4
    for image in window.images_model.images():
        assert image.output_path and Path(image.output_path).is_file()
        assert Path(image.output_path).parent == request_folder(data_dir, request_id)
    for url in urls:
        assert server.hits("/" + url.rsplit("/", 1)[1]) == 1


def test_a_big_file_is_listed_from_its_first_rows_and_started_once_read(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    repository: Repository,
    server: HttpTestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(repository_module, "IMPORT_CHUNK_ROWS", 4)
    rows = [(str(n), f"Shirt {n}", [serve_jpeg(server, f"s{n}.jpg")]) for n in range(1, 19)]
    csv_path = write_csv(tmp_path / "products.csv", rows)
    progress: list[int] = []
    seen_while_reading: list[tuple[str, int, bool]] = []

    def on_progress(request_id: str, _name: str, recorded: int) -> None:
        progress.append(recorded)
        request = repository.get_request(request_id)
        assert request is not None
        seen_while_reading.append((request.status, request.total, engine.is_busy(request_id)))

    window.importer.recording_progress.connect(on_progress)
    request_id, status = load_and_finish(qtbot, window, engine, csv_path)

    assert status == "completed"
    assert progress == [4, 8, 12, 16, 18]  # a chunk per event-loop turn
    # Listed while its rows came in, growing, and not started before the whole file was read.
    assert seen_while_reading == [("importing", n, False) for n in progress]
    assert window.current_request() is not None
    request = repository.get_request(request_id)
    assert request is not None and (request.total, request.done) == (18, 18)
    assert window.images_model.rowCount() == 18
    assert server.total_hits == 18


def test_a_request_still_being_read_can_be_scrolled_and_cancelled(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    repository: Repository,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(repository_module, "IMPORT_CHUNK_ROWS", 3)
    csv_path = write_unreachable_csv(tmp_path / "big.csv", 60_000)

    with qtbot.waitSignal(window.importer.request_listed, timeout=WAIT_MS) as blocker:
        window.load_files([csv_path])
    request_id = blocker.args[0]
    qtbot.waitUntil(lambda: window.images_model.rowCount() >= 3, timeout=WAIT_MS)
    request = window.current_request()
    assert request is not None and request.id == request_id
    state = window.requests_model.index(0, RequestsTableModel.COL_STATE)
    assert state.data() == "Reading file"
    assert not window.action(Action.EXPORT).isEnabled()
    assert window.action(Action.CANCEL).isEnabled()

    window.action(Action.CANCEL).trigger()  # while 60,000 rows are still being read

    qtbot.waitUntil(lambda: window.requests_model.rowCount() == 0, timeout=WAIT_MS)
    qtbot.waitUntil(window.importer.is_idle, timeout=WAIT_MS)
    assert repository.list_requests() == []
    assert db.execute_sql("SELECT COUNT(*) FROM image").fetchone()[0] == 0
    assert not engine.is_busy()
    qtbot.waitUntil(lambda: not multiprocessing.active_children(), timeout=WAIT_MS)


def test_closing_during_recording_leaves_no_partial_request(
    qtbot: QtBot,
    window: MainWindow,
    repository: Repository,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(repository_module, "IMPORT_CHUNK_ROWS", 2)
    rows = [(str(n), f"Shirt {n}", [f"http://127.0.0.1:9/{n}.jpg"]) for n in range(1, 41)]
    csv_path = write_csv(tmp_path / "products.csv", rows)
    with qtbot.waitSignal(
        window.importer.recording_progress,
        timeout=WAIT_MS,
        check_params_cb=lambda _id, _name, recorded: 0 < recorded < 40,
    ):
        window.load_files([csv_path])

    window.importer.shutdown()

    assert repository.list_requests() == []
    assert db.execute_sql("SELECT COUNT(*) FROM image").fetchone()[0] == 0
    assert db.execute_sql("SELECT COUNT(*) FROM product").fetchone()[0] == 0
    assert window.importer.is_idle()


def test_a_file_refused_after_its_first_rows_were_recorded_leaves_nothing(
    qtbot: QtBot,
    window: MainWindow,
    repository: Repository,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(repository_module, "IMPORT_CHUNK_ROWS", 50)
    # A quote never closed on the last line: the file is refused once it is read to the end.
    tail = '30001,"Hat,http://127.0.0.1:9/h.jpg\n'
    csv_path = write_unreachable_csv(tmp_path / "broken.csv", 30_000, tail)
    listed: list[str] = []
    window.importer.request_listed.connect(listed.append)

    with qtbot.waitSignal(window.importer.file_rejected, timeout=WAIT_MS) as blocker:
        window.load_files([csv_path])

    assert blocker.args[0] == "broken.csv"
    assert "quote" in blocker.args[1].lower()
    assert listed  # rows were recorded (and listed) while the file was read ...
    window.requests_model.flush()
    assert window.requests_model.rowCount() == 0  # ... and removed when it was refused
    assert db.execute_sql("SELECT COUNT(*) FROM request").fetchone()[0] == 0
    assert db.execute_sql("SELECT COUNT(*) FROM image").fetchone()[0] == 0


def test_several_files_dropped_at_once_each_become_a_request(
    qtbot: QtBot, window: MainWindow, engine: Engine, server: HttpTestServer, tmp_path: Path
) -> None:
    first = write_csv(tmp_path / "a.csv", [("1", "A", [serve_jpeg(server, "a.jpg")])])
    second = write_csv(tmp_path / "b.csv", [("1", "B", [serve_jpeg(server, "b.jpg")])])
    finished: list[str] = []
    engine.request_finished.connect(lambda request_id, _status: finished.append(request_id))

    drop_files(window.requests_pane.viewport(), [first, second])

    qtbot.waitUntil(lambda: len(finished) == 2, timeout=WAIT_MS)
    window.requests_model.flush()
    names = [request.csv_name for request in window.requests_model.requests()]
    assert names == ["b.csv", "a.csv"]  # newest first


def test_a_file_that_is_not_valid_is_refused_naming_the_problem_and_line(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    bad = tmp_path / "prices.csv"
    bad.write_text("S. No.,Product Name,Price\n1,Shirt,10\n", encoding="utf-8")

    with qtbot.waitSignal(window.importer.file_rejected, timeout=WAIT_MS) as blocker:
        drop_files(window, [bad])

    name, message = blocker.args
    assert name == "prices.csv"
    box = window.importer.active_dialog
    assert isinstance(box, QMessageBox)
    assert "prices.csv" in box.text()
    assert "Line 1" in box.informativeText()
    assert "Input Image Urls" in box.informativeText()
    assert message in box.informativeText()
    box.button(QMessageBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: window.importer.active_dialog is None)
    assert window.requests_model.rowCount() == 0


def test_row_problems_are_listed_and_the_valid_rows_can_go_on(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    repository: Repository,
    server: HttpTestServer,
    tmp_path: Path,
) -> None:
    good = serve_jpeg(server, "good.jpg")
    csv_path = write_csv(
        tmp_path / "mixed.csv",
        [("1", "Shirt", [good]), ("2", "", [good]), ("3", "Hat", ["ftp://example.com/x.jpg"])],
    )

    drop_files(window, [csv_path])
    qtbot.waitUntil(lambda: isinstance(window.importer.active_dialog, RowProblemsDialog))
    dialog = window.importer.active_dialog
    assert isinstance(dialog, RowProblemsDialog)
    assert dialog.table.rowCount() == 2
    assert [dialog.table.item(row, 0).text() for row in range(2)] == ["3", "4"]
    assert "2 of 3 rows" in dialog.findChildren(QLabel)[0].text()
    assert dialog.proceed_button is not None
    assert "1 valid" in dialog.proceed_button.text()

    with qtbot.waitSignal(engine.request_finished, timeout=WAIT_MS) as blocker:
        dialog.proceed_button.click()
    request = repository.get_request(blocker.args[0])
    assert request is not None and request.total == 1 and request.status == "completed"


def test_declining_row_problems_creates_nothing(
    qtbot: QtBot, window: MainWindow, repository: Repository, tmp_path: Path
) -> None:
    csv_path = write_csv(tmp_path / "bad.csv", [("1", "Shirt", ["not a url"])])
    drop_files(window, [csv_path])
    qtbot.waitUntil(lambda: isinstance(window.importer.active_dialog, RowProblemsDialog))
    dialog = window.importer.active_dialog
    assert isinstance(dialog, RowProblemsDialog)
    assert dialog.proceed_button is None  # nothing valid to go on with
    dialog.reject()
    qtbot.waitUntil(lambda: window.importer.active_dialog is None)
    assert repository.list_requests() == []


def test_open_action_loads_the_chosen_files(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    server: HttpTestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    csv_path = write_csv(tmp_path / "opened.csv", [("1", "A", [serve_jpeg(server, "a.jpg")])])
    monkeypatch.setattr(
        QFileDialog,
        "getOpenFileNames",
        staticmethod(lambda *args, **kwargs: ([str(csv_path)], "CSV files (*.csv)")),
    )
    with qtbot.waitSignal(engine.request_finished, timeout=WAIT_MS):
        window.action(Action.OPEN).trigger()
    assert window.action(Action.OPEN).shortcut().matches(Qt.Modifier.CTRL | Qt.Key.Key_O)


# -- fixing failures --------------------------------------------------------------------------


@pytest.fixture
def failing_request(
    qtbot: QtBot, window: MainWindow, engine: Engine, server: HttpTestServer, tmp_path: Path
) -> str:
    """A finished request with 3 done images and 2 failed ones (which work on a second try)."""
    good = [serve_jpeg(server, f"good{i}.jpg") for i in range(3)]
    jpeg = respond(make_jpeg(100, 80, "photo", 95), content_type="image/jpeg")
    broken = [
        server.route(f"/broken{i}.jpg", sequence(respond(b"gone", 404), jpeg)) for i in range(2)
    ]
    csv_path = write_csv(
        tmp_path / "catalogue.csv",
        [
            ("1", "Shirt", [good[0], broken[0]]),
            ("2", "Hat", [good[1]]),
            ("3", "Bag", [broken[1], good[2]]),
        ],
    )
    request_id, status = load_and_finish(qtbot, window, engine, csv_path)
    assert status == "failed"
    return request_id


def test_failures_show_their_error_and_can_be_filtered(
    window: MainWindow, failing_request: str
) -> None:
    failed = [image for image in window.images_model.images() if image.status == "failed"]
    assert {image.error_code for image in failed} == {"http_404"}
    row = window.images_model.row_of(failed[0].id)
    assert row is not None
    index = window.images_model.index(row, ImagesTableModel.COL_MESSAGE)
    assert "404" in index.data()
    assert index.data(Qt.ItemDataRole.ToolTipRole).startswith("http_404 (HTTP 404): ")
    assert window.images_model.index(row, ImagesTableModel.COL_STATE).data() == "Failed"

    pane = window.images_pane
    pane.state_filter_combo.setCurrentIndex(pane.state_filter_combo.findData("failed"))
    assert window.images_model.rowCount() == 2
    assert "2 shown" in pane.count_label.text()
    pane.search_edit.setText("Bag")
    assert window.images_model.rowCount() == 1


def test_retry_all_failures_reruns_only_the_failed_images(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    repository: Repository,
    server: HttpTestServer,
    failing_request: str,
) -> None:
    assert window.action(Action.RETRY_FAILED).isEnabled()
    with qtbot.waitSignal(engine.request_finished, timeout=WAIT_MS) as blocker:
        window.action(Action.RETRY_FAILED).trigger()
    assert blocker.args == [failing_request, "completed"]
    assert [server.hits(f"/good{i}.jpg") for i in range(3)] == [1, 1, 1]
    assert [server.hits(f"/broken{i}.jpg") for i in range(2)] == [2, 2]
    qtbot.waitUntil(lambda: all(i.status == "done" for i in window.images_model.images()))
    request = repository.get_request(failing_request)
    assert request is not None and request.failed == 0


def test_retry_selected_with_the_keyboard_reruns_just_that_image(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    repository: Repository,
    server: HttpTestServer,
    failing_request: str,
) -> None:
    row = proxy_row_of(window, lambda image: image.url.endswith("/broken1.jpg"))
    window.images_pane.view.setFocus()
    window.images_pane.view.selectRow(row)
    assert window.action(Action.RETRY_SELECTED).isEnabled()
    activate(qtbot, window)

    with qtbot.waitSignal(engine.request_finished, timeout=WAIT_MS) as blocker:
        qtbot.keyClick(window.images_pane.view, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert blocker.args == [failing_request, "failed"]  # broken0 still failed
    assert server.hits("/broken1.jpg") == 2
    assert server.hits("/broken0.jpg") == 1
    assert [server.hits(f"/good{i}.jpg") for i in range(3)] == [1, 1, 1]
    request = repository.get_request(failing_request)
    assert request is not None and (request.done, request.failed) == (4, 1)


# Popups make the offscreen plugin say what it cannot do (raise, grab); that is all it says.
@pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints",
    "This plugin does not support raise",
    "This plugin does not support grabbing",
)
def test_retry_this_image_from_the_context_menu(
    qtbot: QtBot, window: MainWindow, engine: Engine, server: HttpTestServer, failing_request: str
) -> None:
    window.images_pane.view.selectRow(proxy_row_of(window, lambda image: image.status == "done"))
    row = proxy_row_of(window, lambda image: image.url.endswith("/broken0.jpg"))
    view = window.images_pane.view
    position = view.visualRect(window.images_model.index(row, 1)).center()
    view.customContextMenuRequested.emit(position)
    menus = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMenu) and w.isVisible()]
    assert len(menus) == 1
    retry = next(a for a in menus[0].actions() if a.text() == "Retry This Image")
    assert retry.isEnabled()  # the row under the mouse failed, the selected one did not
    with qtbot.waitSignal(engine.request_finished, timeout=WAIT_MS):
        menus[0].hide()
        retry.trigger()
    assert server.hits("/broken0.jpg") == 2
    assert server.hits("/broken1.jpg") == 1
    qtbot.waitUntil(lambda: window.images_pane.context_image is None)


def test_export_action_writes_the_output_csv(
    qtbot: QtBot,
    window: MainWindow,
    repository: Repository,
    failing_request: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "out" / "catalogue-output.csv"
    target.parent.mkdir()
    asked: list[str] = []

    def choose(_parent: object, _title: str, suggested: str, _filter: str) -> tuple[str, str]:
        asked.append(suggested)
        return str(target), "CSV files (*.csv)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(choose))
    activate(qtbot, window)
    with qtbot.waitSignal(window.export_finished, timeout=WAIT_MS) as blocker:
        qtbot.keyClick(window.requests_pane, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)

    assert blocker.args == [failing_request, str(target)]
    assert asked and asked[0].endswith("catalogue-output.csv")
    with target.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["S. No.", "Product Name", "Input Image Urls", "Output Image Urls"]
    images = repository.list_images(failing_request)
    by_row: dict[int, list[str]] = {}
    for image in images:
        by_row.setdefault(image.row_index, []).append(image.output_url or "")
    assert [row[3] for row in rows[1:]] == [",".join(by_row[i]) for i in range(3)]
    assert rows[1][3].startswith("file://") and rows[1][3].endswith(",")  # failed slot empty
    request = repository.get_request(failing_request)
    assert request is not None and request.output_csv == target.absolute().as_uri()


def test_copy_output_url_puts_the_selected_urls_on_the_clipboard(
    qtbot: QtBot, window: MainWindow, failing_request: str
) -> None:
    row = proxy_row_of(window, lambda image: image.status == "done")
    window.images_pane.view.selectRow(row)
    image = window.selected_images()[0]
    activate(qtbot, window)
    qtbot.keyClick(window.images_pane.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == image.output_url


def test_the_preview_shows_the_compressed_image_and_the_original(
    qtbot: QtBot, window: MainWindow, server: HttpTestServer, failing_request: str
) -> None:
    window.images_pane.preview.set_compare_original(True)
    row = proxy_row_of(window, lambda image: image.url.endswith("/good1.jpg"))
    window.images_pane.view.selectRow(row)
    preview = window.images_pane.preview
    qtbot.waitUntil(preview.output_box().has_image, timeout=WAIT_MS)
    qtbot.waitUntil(preview.original_box().has_image, timeout=WAIT_MS)
    assert server.hits("/good1.jpg") == 2  # downloaded again for the "before" pane
    texts = " ".join(label.text() for label in preview.findChildren(QLabel))
    assert "120 \u00d7 90 px" in texts
    assert "saved" in texts

    failed_row = proxy_row_of(window, lambda image: image.status == "failed")
    window.images_pane.view.selectRow(failed_row)
    assert "failed" in preview.output_box().message


# -- request actions ----------------------------------------------------------------------------


def test_pause_and_resume_with_the_keyboard(
    qtbot: QtBot, window: MainWindow, engine: Engine
) -> None:
    activate(qtbot, window)
    with qtbot.waitSignal(engine.paused_changed, timeout=2000) as blocker:
        qtbot.keyClick(window.centralWidget(), Qt.Key.Key_Space)
    assert blocker.args == [True]
    assert engine.paused
    assert "Resume" in window.action(Action.PAUSE).text()
    assert "Paused" in window.status_bar.paused_label.text()
    with qtbot.waitSignal(engine.paused_changed, timeout=2000) as blocker:
        qtbot.keyClick(window.centralWidget(), Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert blocker.args == [False]
    assert not engine.paused


def test_pausing_holds_new_work_until_resumed(
    qtbot: QtBot, window: MainWindow, engine: Engine, server: HttpTestServer, tmp_path: Path
) -> None:
    window.action(Action.PAUSE).trigger()
    csv_path = write_csv(tmp_path / "p.csv", [("1", "A", [serve_jpeg(server, "a.jpg")])])
    drop_files(window, [csv_path])
    qtbot.waitUntil(lambda: window.requests_model.rowCount() == 1, timeout=WAIT_MS)
    state = window.requests_model.index(0, window.requests_model.COL_STATE)
    # Listed as "Reading file" from its first rows, then queued, which pausing holds.
    qtbot.waitUntil(lambda: state.data() == "Paused", timeout=WAIT_MS)
    qtbot.wait(200)
    assert server.hits("/a.jpg") == 0
    with qtbot.waitSignal(engine.request_finished, timeout=WAIT_MS):
        window.action(Action.PAUSE).trigger()
    assert server.hits("/a.jpg") == 1


def test_cancel_fails_the_unfinished_images_as_cancelled(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    repository: Repository,
    server: HttpTestServer,
    tmp_path: Path,
) -> None:
    slow = respond(make_jpeg(60, 40, "photo", 90), content_type="image/jpeg")
    urls = [server.route(f"/slow{i}.jpg", delayed(10, slow)) for i in range(8)]
    csv_path = write_csv(
        tmp_path / "slow.csv", [(str(i), f"P{i}", [url]) for i, url in enumerate(urls)]
    )
    drop_files(window, [csv_path])
    qtbot.waitUntil(lambda: engine.active_count > 0, timeout=WAIT_MS)
    window.requests_model.flush()
    assert window.action(Action.CANCEL).isEnabled()

    with qtbot.waitSignal(engine.request_finished, timeout=WAIT_MS) as blocker:
        window.action(Action.CANCEL).trigger()
    assert blocker.args[1] == "failed"
    qtbot.waitUntil(
        lambda: [i.error_code for i in window.images_model.images()] == ["cancelled"] * 8
    )
    assert window.images_model.index(0, ImagesTableModel.COL_STATE).data() == "Cancelled"
    request = repository.get_request(blocker.args[0])
    assert request is not None and request.failed == 8


def test_delete_asks_then_removes_the_request_and_its_files(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    repository: Repository,
    server: HttpTestServer,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    csv_path = write_csv(tmp_path / "d.csv", [("1", "A", [serve_jpeg(server, "a.jpg")])])
    request_id, _status = load_and_finish(qtbot, window, engine, csv_path)
    folder = request_folder(data_dir, request_id)
    assert folder.is_dir()

    activate(qtbot, window)
    qtbot.keyClick(window.requests_pane, Qt.Key.Key_Delete)
    box = dialog_of(window, QMessageBox)
    assert isinstance(box, QMessageBox)
    assert "d.csv" in box.text()
    checkbox = box.checkBox()
    assert checkbox is not None and not checkbox.isChecked()
    checkbox.setChecked(True)
    delete = next(b for b in box.buttons() if isinstance(b, QPushButton) and b.text() == "Delete")
    delete.click()

    qtbot.waitUntil(lambda: not folder.exists(), timeout=WAIT_MS)
    assert repository.get_request(request_id) is None
    assert window.requests_model.rowCount() == 0
    assert window.stack.currentWidget() is window.empty_state
    assert window.images_model.request_id is None  # its images are gone from view too


def test_delete_can_be_cancelled(
    qtbot: QtBot, window: MainWindow, engine: Engine, server: HttpTestServer, tmp_path: Path
) -> None:
    csv_path = write_csv(tmp_path / "d.csv", [("1", "A", [serve_jpeg(server, "a.jpg")])])
    request_id, _status = load_and_finish(qtbot, window, engine, csv_path)
    window.action(Action.DELETE).trigger()
    box = dialog_of(window, QMessageBox)
    assert isinstance(box, QMessageBox)
    box.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: not window.open_dialogs())
    assert window.requests_model.row_of(request_id) == 0


# -- comfort ------------------------------------------------------------------------------------


def test_status_bar_shows_rate_workers_counts_and_memory(
    qtbot: QtBot, window: MainWindow, engine: Engine, server: HttpTestServer, tmp_path: Path
) -> None:
    jpeg = respond(make_jpeg(60, 40, "photo", 90), content_type="image/jpeg")
    fast = [serve_jpeg(server, f"fast{i}.jpg") for i in range(3)]
    gate = Gate()
    slow = [server.route(f"/slow{i}.jpg", gated(gate, jpeg)) for i in range(2)]
    csv_path = write_csv(
        tmp_path / "s.csv", [(str(i), f"P{i}", [u]) for i, u in enumerate(fast + slow)]
    )
    finished: list[object] = []
    engine.image_finished.connect(finished.append)
    drop_files(window, [csv_path])
    qtbot.waitUntil(lambda: len(finished) == 3 and engine.active_count == 2, timeout=WAIT_MS)
    request = window.current_request()
    assert request is not None
    # A speed once a second of active time is in (none before: it would be noise).
    qtbot.waitUntil(lambda: speed_shown(window, request.id), timeout=WAIT_MS)
    assert window.status_bar.workers_label.text() == "Workers: 2/5"
    if sys.platform.startswith("linux"):
        assert window.status_bar.memory_label.text().startswith("Memory: ")
        assert "MB" in window.status_bar.memory_label.text()
    gate.open()
    qtbot.waitUntil(lambda: not engine.is_busy(), timeout=WAIT_MS)
    window.requests_model.flush()
    window.status_bar.refresh()
    assert window.status_bar.rate_label.text() == "Idle"
    assert window.status_bar.counts_label.text() == "5 done \u00b7 0 failed"


def test_the_log_dock_shows_log_records(qtbot: QtBot, window: MainWindow) -> None:
    logging.getLogger("imgdesk.test").warning("a line for the log dock")
    qtbot.waitUntil(lambda: "a line for the log dock" in window.log_view.toPlainText())
    assert window.log_view.isReadOnly()
    assert window.log_view.maximumBlockCount() > 0


def test_window_layout_is_remembered_but_filters_start_afresh(
    qtbot: QtBot, make_window: Callable[..., MainWindow], qsettings: QSettings
) -> None:
    first = make_window()
    first.resize(760, 560)  # within the offscreen screen, which geometry is kept inside
    first.images_pane.view.horizontalHeader().resizeSection(ImagesTableModel.COL_PRODUCT, 333)
    combo = first.images_pane.state_filter_combo
    combo.setCurrentIndex(combo.findData("failed"))
    first.log_dock.hide()
    first.close()

    second = make_window()
    header = second.images_pane.view.horizontalHeader()
    assert header.sectionSize(ImagesTableModel.COL_PRODUCT) == 333
    assert second.images_model.state_filter == "all"  # never "where are my images?"
    assert second.size().width() == 760
    assert not second.log_dock.isVisible()
    assert qsettings.value("layout/version", 0, int) >= 1


def test_a_finished_request_alerts_a_user_looking_elsewhere(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    server: HttpTestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alerts: list[QWidget] = []
    monkeypatch.setattr(window.notifier, "in_foreground", lambda: False)
    monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: False))
    monkeypatch.setattr(
        QApplication, "alert", staticmethod(lambda widget, _ms=0: alerts.append(widget))
    )
    csv_path = write_csv(tmp_path / "n.csv", [("1", "A", [serve_jpeg(server, "a.jpg")])])
    load_and_finish(qtbot, window, engine, csv_path)
    assert alerts == [window]


def test_a_finished_request_does_not_alert_a_user_watching(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    server: HttpTestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alerts: list[QWidget] = []
    monkeypatch.setattr(window.notifier, "in_foreground", lambda: True)
    monkeypatch.setattr(
        QApplication, "alert", staticmethod(lambda widget, _ms=0: alerts.append(widget))
    )
    csv_path = write_csv(tmp_path / "n.csv", [("1", "A", [serve_jpeg(server, "a.jpg")])])
    load_and_finish(qtbot, window, engine, csv_path)
    assert alerts == []
    assert "all 1 images are done" in window.statusBar().currentMessage()


def test_the_crash_dialog_shows_the_traceback_and_the_log_path(
    qtbot: QtBot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_path = tmp_path / "logs" / "imgdesk.log"
    handler = CrashHandler(log_path)
    previous = sys.excepthook
    handler.install()
    try:
        assert sys.excepthook == handler.handle
        try:
            raise ValueError("a bug for the crash dialog")
        except ValueError:
            with caplog.at_level(logging.CRITICAL):
                sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
    finally:
        handler.uninstall()
    assert sys.excepthook is previous
    dialog = handler.dialog
    assert isinstance(dialog, CrashDialog)
    assert dialog.isVisible()
    assert "ValueError: a bug for the crash dialog" in dialog.details.toPlainText()
    assert str(log_path) in dialog.log_label.text()
    assert "a bug for the crash dialog" in caplog.text
    dialog.reject()
    assert handler.dialog is None


# -- the GUI thread never waits ------------------------------------------------------------------


def test_the_gui_thread_keeps_ticking_while_slow_work_runs(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    server: HttpTestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Slow downloads, a slow "before" download, a slow CSV read and an export: no freeze.

    Every slow thing takes 1.5 s or more, so any of them on the GUI thread would show as a
    gap of that size between heartbeats.
    """
    jpeg = respond(make_jpeg(200, 150, "photo", 95), content_type="image/jpeg")
    slow_urls = [server.route(f"/slow{i}.jpg", delayed(1.5, jpeg)) for i in range(6)]
    window.images_pane.preview.set_compare_original(True)
    # A CSV on a slow disk or network share: a pipe whose writer only starts after 1.5 s.
    # Every row is invalid, so it is parsed in full and the problems dialog follows.
    content = "S. No.,Product Name,Input Image Urls\n" + "".join(
        f"{i},Product {i},not-a-url-{i}\n" for i in range(20_000)
    )
    slow_csv = tmp_path / "slow-share.csv"
    if hasattr(os, "mkfifo"):
        os.mkfifo(slow_csv)

        def feed() -> None:
            time.sleep(1.5)
            with slow_csv.open("w", encoding="utf-8") as pipe:
                pipe.write(content)

        threading.Thread(target=feed, daemon=True).start()
    else:
        slow_csv.write_text(content, encoding="utf-8")

    beats: list[float] = []
    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(lambda: beats.append(time.monotonic()))
    heartbeat.start()
    qtbot.waitUntil(lambda: len(beats) > 5)  # beating before the first slow thing starts
    try:
        csv_path = write_csv(
            tmp_path / "slow.csv", [(str(i), f"P{i}", [u]) for i, u in enumerate(slow_urls)]
        )
        with qtbot.waitSignal(engine.request_finished, timeout=WAIT_MS):
            drop_files(window, [csv_path, slow_csv])
            # While the images download: preview one (its original is slow too).
            qtbot.waitUntil(lambda: window.images_model.rowCount() == 6, timeout=WAIT_MS)
            window.images_pane.view.selectRow(0)
        qtbot.waitUntil(
            lambda: isinstance(window.importer.active_dialog, RowProblemsDialog), timeout=WAIT_MS
        )
        window.importer.active_dialog.reject()  # type: ignore[union-attr]
        preview = window.images_pane.preview
        qtbot.waitUntil(lambda: preview.original_box().has_image(), timeout=WAIT_MS)
        target = tmp_path / "slow-output.csv"
        monkeypatch.setattr(
            QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), ""))
        )
        with qtbot.waitSignal(window.export_finished, timeout=WAIT_MS):
            window.action(Action.EXPORT).trigger()
    finally:
        heartbeat.stop()
    gaps = [later - earlier for earlier, later in zip(beats, beats[1:], strict=False)]
    assert len(beats) > 100
    assert max(gaps) < 0.5, f"the GUI thread stalled for {max(gaps):.2f} s"


# -- the composition root ------------------------------------------------------------------------


def test_run_window_resumes_interrupted_work_and_loads_command_line_files(
    qtbot: QtBot, server: HttpTestServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    # A request left half-done by a crash: one image was downloading when it happened.
    open_database(database_path(data_dir))
    repository = Repository()
    url = serve_jpeg(server, "left.jpg")
    catalogue = parse_catalogue(
        f"S. No.,Product Name,Input Image Urls\n1,Left,{url}\n".encode(), "left.csv"
    )
    interrupted = repository.create_request(catalogue)
    image = repository.list_images(interrupted)[0]
    repository.update_images({image.id: {"status": "downloading", "attempts": 1}})
    repository.set_request_status(interrupted, "processing")
    db.close()
    given = write_csv(tmp_path / "given.csv", [("1", "Given", [serve_jpeg(server, "given.jpg")])])
    qsettings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    seen: dict[str, object] = {}

    def watch() -> None:
        windows = [
            w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()
        ]
        if not windows:
            return
        window = windows[0]
        window.requests_model.flush()
        requests = window.requests_model.requests()
        if len(requests) == 2 and all(r.status == "completed" for r in requests):
            seen["names"] = sorted(r.csv_name for r in requests)
            seen["data_dir"] = str(window._data_dir)
            window.close()

    poll = QTimer()
    poll.setInterval(50)
    poll.timeout.connect(watch)
    poll.start()
    # Whatever happens, the loop ends (and this guard is stopped before the next test).
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(lambda: [w.close() for w in QApplication.topLevelWidgets()])
    guard.start(WAIT_MS)
    root = logging.getLogger()
    handlers = list(root.handlers)
    level = root.level
    try:
        code = gui_app.run_window(
            str(data_dir), [given], qsettings=qsettings, install_crash_handler=False
        )
    finally:
        poll.stop()
        guard.stop()
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
    assert code == 0
    assert seen.get("names") == ["given.csv", "left.csv"]
    assert seen["data_dir"] == str(data_dir)
    assert server.hits("/left.jpg") == 1
    assert qsettings.value("layout/version", 0, int) >= 1  # the layout was saved on close


def test_the_data_folder_comes_from_the_command_line_then_env_then_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    qsettings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    qsettings.setValue("data_dir", str(tmp_path / "chosen"))
    monkeypatch.setenv("IMGDESK_DATA_DIR", str(tmp_path / "env"))
    assert gui_app.choose_data_dir(str(tmp_path / "cli"), qsettings) == tmp_path / "cli"
    assert gui_app.choose_data_dir(None, qsettings) == tmp_path / "env"
    monkeypatch.delenv("IMGDESK_DATA_DIR")
    assert gui_app.choose_data_dir(None, qsettings) == tmp_path / "chosen"
    qsettings.remove("data_dir")
    assert gui_app.choose_data_dir(None, qsettings).name.lower() == "imgdesk"


def test_the_dialogs_are_window_modal_and_never_block(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    csv_path = write_csv(tmp_path / "bad.csv", [("1", "Shirt", ["not a url"])])
    drop_files(window, [csv_path])
    qtbot.waitUntil(lambda: window.importer.active_dialog is not None)
    dialog = window.importer.active_dialog
    assert isinstance(dialog, QDialog)
    assert dialog.windowModality() == Qt.WindowModality.WindowModal
    dialog.reject()


# -- the other windows ---------------------------------------------------------------------------


def test_saved_settings_reach_the_engine_the_database_and_the_next_start(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    repository: Repository,
    qsettings: QSettings,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    from PySide6.QtWidgets import QDialogButtonBox, QLineEdit, QSpinBox

    from imgdesk.gui.settings_dialog import SettingsDialog

    changed: list[object] = []
    window.settings_changed.connect(changed.append)
    window.action(Action.SETTINGS).trigger()
    dialog = dialog_of(window, SettingsDialog)
    quality = dialog.findChild(QSpinBox, "quality")
    assert quality is not None and quality.value() == engine.settings.output.quality
    quality.setValue(72)
    folder = dialog.findChild(QLineEdit, "data_dir")
    assert folder is not None and folder.text() == str(data_dir)
    folder.setText(str(tmp_path / "elsewhere"))
    buttons = dialog.findChild(QDialogButtonBox)
    assert buttons is not None
    buttons.button(QDialogButtonBox.StandardButton.Ok).click()

    assert engine.settings.output.quality == 72
    assert repository.load_settings().output.quality == 72
    assert [s.output.quality for s in changed] == [72]
    assert qsettings.value("data_dir") == str(tmp_path / "elsewhere")
    note = dialog_of(window, QMessageBox)
    assert isinstance(note, QMessageBox)
    assert "next time" in note.text()
    note.button(QMessageBox.StandardButton.Ok).click()


def test_the_dashboard_opens_from_the_view_menu(qtbot: QtBot, window: MainWindow) -> None:
    from imgdesk.gui.dashboard import DashboardDialog

    assert window.action(Action.DASHBOARD).isEnabled()
    window.action(Action.DASHBOARD).trigger()
    dashboards = [w for w in QApplication.topLevelWidgets() if isinstance(w, DashboardDialog)]
    assert len(dashboards) == 1 and dashboards[0].isVisible()
    dashboards[0].close()


def test_ten_thousand_images_scroll_smoothly(
    qtbot: QtBot, window: MainWindow, engine: Engine, repository: Repository
) -> None:
    lines = ["S. No.,Product Name,Input Image Urls"]
    lines += [
        f'{i},Product {i},"https://cdn.example/{i}/a.jpg, https://cdn.example/{i}/b.jpg"'
        for i in range(5000)
    ]
    request_id = repository.create_request(parse_catalogue("\n".join(lines).encode(), "big.csv"))
    images = repository.list_images(request_id)
    repository.update_images(
        {
            image.id: {"status": "failed", "error_code": "http_404", "error": "Not there."}
            if image.position == 2
            else {"status": "downloading"}
            for image in images[:4000]
        }
    )
    window.requests_model.refresh_request(request_id)
    with qtbot.waitSignal(window.images_model.loading_finished, timeout=WAIT_MS):
        window.select_request(request_id)
    assert window.images_model.rowCount() == 10_000
    view = window.images_pane.view
    bar = view.verticalScrollBar()
    slowest = 0.0
    for step in range(41):
        # The engine keeps announcing changes while the user scrolls.
        changed = [image.id for image in images[step * 100 : step * 100 + 100]]
        engine.images_changed.emit(request_id, changed)
        bar.setValue(bar.maximum() * step // 40)
        started = time.perf_counter()
        QApplication.processEvents()
        view.viewport().repaint()
        slowest = max(slowest, time.perf_counter() - started)
    assert bar.value() == bar.maximum()
    assert slowest < 0.25, f"a scroll step took {slowest:.2f} s"


def test_run_window_demo_serves_and_loads_the_sample_catalogue(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("imgdesk.demo")
    monkeypatch.setattr(MainWindow, "_confirm_quit", lambda self: True)
    data_dir = tmp_path / "data"
    qsettings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    seen: dict[str, object] = {}

    def watch() -> None:
        for window in QApplication.topLevelWidgets():
            if isinstance(window, MainWindow) and window.isVisible():
                done = [i for i in window.images_model.images() if i.status == "done"]
                if done:
                    seen["request"] = window.current_request()
                    window.close()

    poll = QTimer()
    poll.setInterval(50)
    poll.timeout.connect(watch)
    poll.start()
    # Whatever happens, the loop ends (and this guard is stopped before the next test).
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(lambda: [w.close() for w in QApplication.topLevelWidgets()])
    guard.start(WAIT_MS)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        code = gui_app.run_window(
            str(data_dir), [], demo=True, qsettings=qsettings, install_crash_handler=False
        )
    finally:
        poll.stop()
        guard.stop()
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
    assert code == 0
    request = seen.get("request")
    assert request is not None
    assert (data_dir / "demo").is_dir()
    assert Path(request.csv_path).parent == data_dir / "demo"  # type: ignore[attr-defined]


def test_the_settings_dialog_webhook_test_posts_on_the_asyncio_loop(
    qtbot: QtBot, server: HttpTestServer, tmp_path: Path
) -> None:
    import asyncio

    import qasync

    from imgdesk.core.outbox import Outbox
    from imgdesk.core.settings import Settings
    from imgdesk.engine.webhooks import WebhookSender

    open_database(database_path(tmp_path / "data"))
    url = server.route("/hook", respond(b"thanks", 200))
    missing = server.url("/nowhere")
    tester = gui_app._webhook_tester(WebhookSender(Outbox(), Settings()))
    reports: list[tuple[str, bool]] = []

    async def run() -> None:
        for target in (url, missing):
            done = asyncio.get_running_loop().create_future()

            def report(text: str, ok: bool, done: asyncio.Future[None] = done) -> None:
                reports.append((text, ok))
                done.set_result(None)

            tester(target, "whsec_c2VjcmV0", report)
            await asyncio.wait_for(done, 10)

    loop = qasync.QEventLoop(QApplication.instance())
    try:
        loop.run_until_complete(run())
    finally:
        loop.close()
        asyncio.set_event_loop(None)
        db.close()
    assert reports[0][1] is True and "HTTP 200" in reports[0][0]
    assert reports[1][1] is False and "404" in reports[1][0]
    assert "webhook-signature" in {k.lower() for k in server.requests[0].headers}


def test_a_full_disk_is_shown_until_there_is_room_again(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    repository: Repository,
    server: HttpTestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alerts: list[QWidget] = []
    monkeypatch.setattr(window.notifier, "in_foreground", lambda: False)
    monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: False))
    monkeypatch.setattr(
        QApplication, "alert", staticmethod(lambda widget, _ms=0: alerts.append(widget))
    )
    messages: list[str] = []
    window.statusBar().messageChanged.connect(messages.append)
    window.action(Action.PAUSE).trigger()  # nothing starts before the disk is "full"
    rows = [(str(n), f"P{n}", [serve_jpeg(server, f"p{n}.jpg")]) for n in (1, 2)]
    drop_files(window, [write_csv(tmp_path / "full.csv", rows)])
    qtbot.waitUntil(lambda: window.current_request() is not None, timeout=WAIT_MS)
    request_id = window.current_request().id  # type: ignore[union-attr]
    blocker = block_output(repository, engine, request_id)
    state = window.requests_model.index(0, RequestsTableModel.COL_STATE)

    # The engine holds the request by itself; the window keeps no copy of it.
    with qtbot.waitSignal(
        engine.request_held, timeout=WAIT_MS, check_params_cb=lambda _id, message: bool(message)
    ) as held:
        window.action(Action.PAUSE).trigger()  # resume
    message = str(held.args[1])
    assert state.data() == "Waiting for disk space"
    assert "disk space" in window.status_bar.alert_label.text()
    assert window.status_bar.alert_label.toolTip() == message
    assert message in window.statusBar().currentMessage()
    assert alerts == [window]

    blocker.rmdir()  # room again: the engine's probe notices by itself
    qtbot.waitUntil(lambda: not engine.held_requests(), timeout=WAIT_MS)
    assert state.data() != "Waiting for disk space"
    assert window.status_bar.alert_label.text() == ""
    assert any("room again" in text for text in messages)
    qtbot.waitUntil(lambda: state.data() == "Completed", timeout=WAIT_MS)


def test_run_window_refuses_a_data_folder_another_run_is_processing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imgdesk.core.instance import DataDirLock

    data_dir = tmp_path / "data"
    other = DataDirLock(data_dir)
    assert other.acquire("imgdesk process")
    shown: list[str] = []
    monkeypatch.setattr(
        QMessageBox,
        "information",
        staticmethod(lambda _parent, _title, text, *args: shown.append(text)),
    )
    qsettings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        code = gui_app.run_window(
            str(data_dir), [], qsettings=qsettings, install_crash_handler=False
        )
    finally:
        other.release()
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
    assert code == gui_app.EXIT_ALREADY_RUNNING
    assert len(shown) == 1 and "imgdesk process" in shown[0] and str(data_dir) in shown[0]
    assert not [
        w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()
    ]
