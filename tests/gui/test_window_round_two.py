"""The window, round two: what users of download managers and compressors expect (SPEC 7).

Each test drives the real window over a real engine, database and HTTP server on 127.0.0.1,
and waits for states (never for a time). A gate on the server holds images in flight, so a
request is "still processing" for as long as a test needs it to be.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QDesktopServices, QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QTextBrowser,
    QToolButton,
)
from pytestqt.qtbot import QtBot

from imgdesk.core import handover
from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.repository import Repository
from imgdesk.core.settings import Settings
from imgdesk.core.storage import request_folder
from imgdesk.core.storage_choice import StorageChoice
from imgdesk.engine.engine import Engine
from imgdesk.gui.actions import Action
from imgdesk.gui.app import undelivered_text
from imgdesk.gui.delegates import state_color
from imgdesk.gui.dialogs import PartialExportQuestion, PathDialog
from imgdesk.gui.images_model import ImagesTableModel
from imgdesk.gui.main_window import MainWindow
from imgdesk.gui.models import PROGRESS_ROLE, STATE_ROLE, RequestsTableModel
from imgdesk.gui.progress import LAUNCHER_INTERFACE, LauncherProgress
from imgdesk.gui.settings_dialog import SettingsDialog, SettingsPage
from imgdesk.gui.single_instance import HandoverServer
from tests.gui.conftest import serve_jpeg, speed_shown, write_csv
from tests.gui.test_main_window import WAIT_MS, drop_files, load_and_finish
from tests.httpservers import Gate, HttpTestServer, gated, respond
from tests.images import make_jpeg

pytestmark = [
    # The offscreen platform's noise: it has no window manager to raise a window or size it.
    pytest.mark.qt_log_ignore(
        "This plugin does not support propagateSizeHints",
        "This plugin does not support raise",
        "This plugin does not support grabbing",
    ),
    pytest.mark.timeout(90),
]

REQUESTS = RequestsTableModel


@pytest.fixture
def gate() -> Iterator[Gate]:
    """Holds the gated images in flight until a test lets them through."""
    gate = Gate()
    yield gate
    gate.open()  # nothing stays stuck for the teardown


def gated_request(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    server: HttpTestServer,
    gate: Gate,
    tmp_path: Path,
    count: int = 8,
) -> str:
    """Drop a CSV of ``count`` gated images; returns its request once work is in flight."""
    jpeg = respond(make_jpeg(80, 60, "photo", 90), content_type="image/jpeg")
    urls = [server.route(f"/held{i}.jpg", gated(gate, jpeg)) for i in range(count)]
    csv_path = write_csv(
        tmp_path / "held.csv", [(str(i), f"Product {i}", [url]) for i, url in enumerate(urls)]
    )
    drop_files(window, [csv_path])
    qtbot.waitUntil(lambda: engine.active_count > 0, timeout=WAIT_MS)
    request = window.current_request()
    assert request is not None
    return request.id


def request_cell(window: MainWindow, request_id: str, column: int, role: int = 0) -> Any:
    row = window.requests_model.row_of(request_id)
    assert row is not None
    return window.requests_model.index(row, column).data(role or Qt.ItemDataRole.DisplayRole)


# -- 3. a cancelled request is shown as cancelled, not as a failure -----------------------------


def test_a_cancelled_request_reads_cancelled_with_a_bar_of_the_share_done(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    server: HttpTestServer,
    gate: Gate,
    tmp_path: Path,
) -> None:
    request_id = gated_request(qtbot, window, engine, server, gate, tmp_path)
    finished: list[object] = []
    engine.image_finished.connect(finished.append)
    gate.allow(2)
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=WAIT_MS)
    with qtbot.waitSignal(engine.request_finished, timeout=WAIT_MS):
        window.action(Action.CANCEL).trigger()
    window.requests_model.refresh_request(request_id)
    window.requests_model.flush()

    assert request_cell(window, request_id, REQUESTS.COL_STATE) == "Cancelled"
    assert request_cell(window, request_id, REQUESTS.COL_STATE, STATE_ROLE) == "cancelled"
    assert request_cell(window, request_id, REQUESTS.COL_PROGRESS, PROGRESS_ROLE) == 2 / 8
    assert request_cell(window, request_id, REQUESTS.COL_PROGRESS) == "25%"
    assert request_cell(window, request_id, REQUESTS.COL_COUNTS) == "2 / 0 / 8"
    tip = request_cell(window, request_id, REQUESTS.COL_COUNTS, Qt.ItemDataRole.ToolTipRole)
    assert "6 cancelled" in tip
    window.status_bar.refresh()
    assert window.status_bar.counts_label.text() == "2 done \u00b7 0 failed"
    assert "6 cancelled" in window.images_pane.count_label.text()
    assert "failed" not in window.images_pane.count_label.text()
    assert "cancelled" in window.statusBar().currentMessage().casefold()


# -- 4. a request that finished with some failures is not a red failure ---------------------


def test_some_failures_read_finished_n_failed_in_a_warning_tone(
    qtbot: QtBot, window: MainWindow, engine: Engine, server: HttpTestServer, tmp_path: Path
) -> None:
    good = [serve_jpeg(server, f"good{i}.jpg") for i in range(3)]
    gone = server.route("/gone.jpg", respond(b"gone", 404))
    csv_path = write_csv(
        tmp_path / "mostly.csv", [(str(i), f"P{i}", [url]) for i, url in enumerate([*good, gone])]
    )
    request_id, status = load_and_finish(qtbot, window, engine, csv_path)
    assert status == "failed"  # the engine's state, as the spec and the webhook say
    window.requests_model.flush()
    assert request_cell(window, request_id, REQUESTS.COL_STATE) == "Finished \u2014 1 failed"
    state = request_cell(window, request_id, REQUESTS.COL_STATE, STATE_ROLE)
    assert state == "finished_with_failures"
    for palette in (QPalette(Qt.GlobalColor.white), QPalette(Qt.GlobalColor.black)):
        color = state_color(state, palette)
        assert color is not None
        assert color != state_color("failed", palette)
        assert 20 <= color.hue() <= 60  # amber, not red


def test_a_request_of_which_nothing_could_be_done_still_reads_failed(
    qtbot: QtBot, window: MainWindow, engine: Engine, server: HttpTestServer, tmp_path: Path
) -> None:
    gone = server.route("/gone.jpg", respond(b"gone", 404))
    csv_path = write_csv(tmp_path / "none.csv", [("1", "P", [gone])])
    request_id, _status = load_and_finish(qtbot, window, engine, csv_path)
    window.requests_model.flush()
    assert request_cell(window, request_id, REQUESTS.COL_STATE) == "Failed"


# -- 7. overall progress in the title and on the taskbar ----------------------------------


def test_the_title_shows_overall_progress_while_work_runs_and_plain_imgdesk_when_idle(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    server: HttpTestServer,
    gate: Gate,
    tmp_path: Path,
) -> None:
    assert window.windowTitle() == "imgdesk"
    gated_request(qtbot, window, engine, server, gate, tmp_path, count=4)
    qtbot.waitUntil(lambda: window.windowTitle() == "0 % \u2014 imgdesk", timeout=WAIT_MS)
    gate.allow(1)
    qtbot.waitUntil(lambda: window.windowTitle() == "25 % \u2014 imgdesk", timeout=WAIT_MS)
    window.action(Action.PAUSE).trigger()
    assert window.windowTitle() == "25 % (paused) \u2014 imgdesk"
    window.action(Action.PAUSE).trigger()
    with qtbot.waitSignal(engine.request_finished, timeout=WAIT_MS):
        gate.open()
    qtbot.waitUntil(lambda: window.windowTitle() == "imgdesk", timeout=WAIT_MS)


@pytest.fixture
def private_bus() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A D-Bus daemon of the test's own and a monitor of the launcher signal on it."""
    if shutil.which("dbus-daemon") is None or shutil.which("dbus-monitor") is None:
        pytest.skip("needs dbus-daemon and dbus-monitor (the D-Bus tools)")
    daemon = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert daemon.stdout is not None
    address = daemon.stdout.readline().strip()
    monitor = subprocess.Popen(
        ["dbus-monitor", "--address", address, f"type='signal',interface='{LAUNCHER_INTERFACE}'"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        read_until(monitor, "NameLost")  # it has become a monitor: it sees what follows
        yield address, monitor
    finally:
        for process in (monitor, daemon):
            process.terminate()
            process.communicate(timeout=10)


def read_until(process: subprocess.Popen[str], wanted: str, timeout_s: float = 15.0) -> str:
    """The output of ``process`` up to a line containing ``wanted`` (on a thread: no hang)."""
    seen: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)
            if wanted in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert found.wait(timeout_s), "".join(seen)
    return "".join(seen)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Unity API is Linux's")
def test_the_taskbar_icon_gets_the_progress_through_the_unity_launcher_api(
    qtbot: QtBot, private_bus: tuple[str, subprocess.Popen[str]]
) -> None:
    from PySide6.QtDBus import QDBusConnection

    address, monitor = private_bus
    connection = QDBusConnection.connectToBus(address, "imgdesk-test")
    try:
        assert connection.isConnected()
        launcher = LauncherProgress(connection)
        assert launcher.available
        launcher.set_progress(0.42)
        seen = read_until(monitor, "double 0.42")
        assert "application://" in seen
        launcher.set_progress(None)
        seen = read_until(monitor, "boolean false")
        assert "progress-visible" in seen
    finally:
        QDBusConnection.disconnectFromBus("imgdesk-test")


def test_without_a_bus_the_taskbar_progress_does_nothing(qapp: object) -> None:
    class NoBus:
        def isConnected(self) -> bool:  # noqa: N802 - Qt's name
            return False

    launcher = LauncherProgress(NoBus())
    assert not launcher.available
    launcher.set_progress(0.5)  # silently nothing


# -- 8. a second launch hands its files to the window -------------------------------------


@pytest.fixture
def handover_server(window: MainWindow, data_dir: Path) -> Iterator[HandoverServer]:
    """The window's end of the hand-over, as ``run_window`` starts it."""
    server = HandoverServer(data_dir, window.receive_files, window.cancel_by_id, window)
    assert server.start()
    yield server
    server.close()


def in_thread(qtbot: QtBot, call: Callable[[], Any]) -> Any:
    """``call()`` on another thread while the GUI thread runs its loop; its result."""
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(call()), daemon=True)
    worker.start()
    qtbot.waitUntil(lambda: not worker.is_alive(), timeout=WAIT_MS)
    return results[0]


def test_handed_over_files_become_requests_and_cancel_answers(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    repository: Repository,
    server: HttpTestServer,
    gate: Gate,
    data_dir: Path,
    tmp_path: Path,
    handover_server: HandoverServer,
) -> None:
    jpeg = respond(make_jpeg(80, 60, "photo", 90), content_type="image/jpeg")
    urls = [server.route(f"/more{i}.jpg", gated(gate, jpeg)) for i in range(3)]
    more = write_csv(tmp_path / "more.csv", [(str(i), f"P{i}", [u]) for i, u in enumerate(urls)])

    assert in_thread(qtbot, lambda: handover.send_files(data_dir, [more])) is True
    qtbot.waitUntil(lambda: window.requests_model.rowCount() == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: engine.active_count > 0, timeout=WAIT_MS)
    request = window.requests_model.requests()[0]
    assert request.csv_name == "more.csv"

    prefix = request.id[:8]  # as users type ids
    assert in_thread(qtbot, lambda: handover.request_cancel(data_dir, prefix)) is True
    stored = repository.get_request(request.id)
    assert stored is not None and stored.status == "failed"
    assert repository.cancelled_counts([request.id]) == {request.id: 3}
    qtbot.waitUntil(
        lambda: request_cell(window, request.id, REQUESTS.COL_STATE) == "Cancelled",
        timeout=WAIT_MS,
    )
    # Once finished there is nothing to cancel: the window says so in one sentence.
    answer = in_thread(qtbot, lambda: handover.ask_window(data_dir, {"cancel": request.id}))
    assert answer["ok"] is False and "already finished" in answer["error"]
    assert in_thread(qtbot, lambda: handover.request_cancel(data_dir, "no-such-id")) is False


def test_without_a_window_the_client_says_so(data_dir: Path, tmp_path: Path) -> None:
    assert handover.request_cancel(data_dir, "whatever") is None
    assert handover.send_files(data_dir, [tmp_path / "a.csv"]) is False
    # A socket file left behind by a crashed window: nobody listens on it.
    import socket

    path = handover.socket_path(data_dir)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        stale.bind(str(path))
    finally:
        stale.close()
    try:
        assert handover.request_cancel(data_dir, "whatever") is None
    finally:
        path.unlink(missing_ok=True)


def test_the_socket_name_is_one_per_data_folder_and_short_enough(tmp_path: Path) -> None:
    deep = tmp_path / ("a-very-long-folder-name-" * 8) / "data"
    assert handover.socket_path(deep) == handover.socket_path(deep / ".." / "data")
    assert handover.socket_path(deep) != handover.socket_path(tmp_path)
    assert len(str(handover.socket_path(deep)).encode()) < 104  # the AF_UNIX limit on macOS


@pytest.mark.skipif(sys.platform == "win32", reason="signals and AF_UNIX: Linux and macOS")
def test_a_second_imgdesk_hands_its_csv_to_the_open_window_and_exits_0(
    server: HttpTestServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # the window's QSettings: the test's own
    command = [sys.executable, "-m", "imgdesk", "--data-dir", str(data_dir)]
    first = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        socket_path = handover.socket_path(data_dir)
        deadline = time.monotonic() + 60
        while not socket_path.exists():
            assert first.poll() is None, first.communicate()[1]
            assert time.monotonic() < deadline, "the first window never listened"
            time.sleep(0.05)
        more = write_csv(tmp_path / "more.csv", [("1", "Mug", [serve_jpeg(server, "mug.jpg")])])
        second = subprocess.run(
            [*command, str(more)], env=env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 0, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "more.csv" in lines[0], second.stderr
        database = data_dir / "imgdesk.sqlite3"

        def requests() -> list[tuple[str, str]]:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
                return connection.execute("SELECT csv_name, status FROM request").fetchall()

        deadline = time.monotonic() + 60
        while requests() != [("more.csv", "completed")]:
            assert time.monotonic() < deadline, requests()
            time.sleep(0.1)
    finally:
        first.send_signal(signal.SIGTERM)
        _out, err = first.communicate(timeout=60)
    assert first.returncode == 128 + signal.SIGTERM, err
    assert not handover.socket_path(data_dir).exists()  # the window took its socket away


# -- 9. a layout that works at 1280x720 -----------------------------------------------------


def test_at_1280x720_settings_shows_four_requests_fit_and_the_columns_need_no_scrolling(
    qtbot: QtBot, window: MainWindow, repository: Repository
) -> None:
    # 40 images: the images table has its vertical scroll bar, which takes width too.
    rows = b"".join(
        b"%d,A long product name for a mug,https://cdn.example/a%d.jpg\n" % (n, n)
        for n in range(1, 41)
    )
    for n in range(6):
        repository.create_request(
            parse_catalogue(b"S. No.,Product Name,Input Image Urls\n" + rows, f"catalogue-{n}.csv")
        )
    window.requests_model.reload()
    window.select_request(window.requests_model.requests()[0].id)
    window.resize(1600, 1000)  # a bigger window first: its columns must not stay wide
    qtbot.waitUntil(lambda: window.size().width() == 1600)
    QApplication.processEvents()
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.size().width() == 1280 and window.size().height() == 720)
    QApplication.processEvents()

    toolbar = window.toolbar
    settings = toolbar.widgetForAction(window.action(Action.SETTINGS))
    assert settings is not None and settings.isVisible()
    assert settings.geometry().right() <= toolbar.contentsRect().right()
    overflow = toolbar.findChild(QToolButton, "qt_toolbar_ext_button")
    assert overflow is None or not overflow.isVisible()
    assert toolbar.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonTextBesideIcon

    requests = window.requests_pane
    row_height = requests.verticalHeader().defaultSectionSize()
    assert requests.viewport().height() >= 4 * row_height
    assert requests.horizontalScrollBar().maximum() == 0  # speed and time left included

    images = window.images_pane.view
    qtbot.waitUntil(lambda: images.model().rowCount() == 40)
    QApplication.processEvents()
    assert images.verticalScrollBar().isVisible()
    assert images.horizontalScrollBar().maximum() == 0  # every default column fits
    header = images.horizontalHeader()
    shown = [c for c in range(header.count()) if not header.isSectionHidden(c)]
    assert ImagesTableModel.COL_MESSAGE in shown
    assert images.viewport().height() >= 4 * images.verticalHeader().defaultSectionSize()


def test_a_narrow_window_shows_every_toolbar_button_as_an_icon(
    qtbot: QtBot, window: MainWindow
) -> None:
    window.resize(1024, 640)
    qtbot.waitUntil(lambda: window.size().width() == 1024)
    QApplication.processEvents()
    settings = window.toolbar.widgetForAction(window.action(Action.SETTINGS))
    assert settings is not None and settings.isVisible()
    assert window.toolbar.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonIconOnly
    assert settings.toolTip()  # the words are still there, on hover


# -- 11. one message column, elided, whole in its tooltip ---------------------------------


def test_hidden_columns_can_be_shown_from_the_header_menu(qtbot: QtBot, window: MainWindow) -> None:
    header = window.images_pane.view.horizontalHeader()
    assert header.isSectionHidden(ImagesTableModel.COL_URL)
    assert "Error" not in [
        window.images_model.headerData(c, Qt.Orientation.Horizontal)
        for c in range(window.images_model.columnCount())
    ]
    header.customContextMenuRequested.emit(header.rect().center())
    menus = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMenu) and w.isVisible()]
    assert len(menus) == 1
    url = next(a for a in menus[0].actions() if a.text() == "Input URL")
    assert not url.isChecked()
    url.trigger()
    assert not header.isSectionHidden(ImagesTableModel.COL_URL)
    menus[0].close()


# -- 12. settings: one unit, round numbers, a short test answer, explained fields --------


def test_a_failed_webhook_test_names_the_status_once() -> None:
    assert (
        undelivered_text(500, "HTTP 500 Internal Server Error", "failed")
        == "Not delivered: HTTP 500 Internal Server Error."
    )
    assert undelivered_text(None, "Connection refused.", "failed") == (
        "Not delivered: Connection refused."
    )
    assert undelivered_text(302, "a redirect is not followed", "failed") == (
        "Not delivered: HTTP 302: a redirect is not followed."
    )


def test_settings_speak_one_unit_round_numbers_and_explain_the_base_url(
    qtbot: QtBot, tmp_path: Path
) -> None:
    dialog = SettingsDialog(Settings(), tmp_path, send_test_event=lambda _url, _secret: None)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)

    def shown(name: str) -> str:
        box = dialog.findChild(QAbstractSpinBox, name)
        assert box is not None, name
        return box.text()

    assert shown("retry_base_delay_s") == "1 s"  # not "1.00 s"
    assert shown("webhook_first_delay_ms") == "1 s"  # not "1000 ms"
    assert shown("max_pixels") == "89 megapixels"  # not "89.47 megapixels"
    assert shown("max_download_bytes") == "10 MiB"
    note = dialog.findChild(QLabel, "public_base_url_note")
    assert note is not None and "web address" in note.text()

    dialog.show_page(SettingsPage.WEBHOOK)
    url = dialog.findChild(QLineEdit, "webhook_url")
    result = dialog.findChild(QLabel, "test_result")
    assert url is not None and result is not None
    dialog.show_test_result("Not delivered: HTTP 500 Internal Server Error. " * 3, False)
    QApplication.processEvents()
    # Across the dialog, from the labels' edge on: not wrapped into the field column.
    assert result.geometry().left() < url.geometry().left()
    assert result.width() > url.width()


# -- 13. exporting mid-run asks first -------------------------------------------------------


def test_exporting_a_request_still_processing_asks_first(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    server: HttpTestServer,
    gate: Gate,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from PySide6.QtWidgets import QFileDialog

    gated_request(qtbot, window, engine, server, gate, tmp_path, count=3)
    target = tmp_path / "partial.csv"
    asked: list[str] = []

    def choose(*_args: object, **_kwargs: object) -> tuple[str, str]:
        asked.append("where?")
        return str(target), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(choose))
    window.action(Action.EXPORT).trigger()
    questions = [d for d in window.open_dialogs() if isinstance(d, PartialExportQuestion)]
    assert len(questions) == 1
    assert questions[0].text() == "Still processing \u2014 export what is done?"
    assert not asked  # nothing asked about files before the user agreed
    questions[0].button(questions[0].StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: not window.open_dialogs())
    assert not asked and not target.exists()

    window.action(Action.EXPORT).trigger()
    question = next(d for d in window.open_dialogs() if isinstance(d, PartialExportQuestion))
    with qtbot.waitSignal(window.export_finished, timeout=WAIT_MS):
        question.defaultButton().click()
    assert asked and target.is_file()


# -- 14. Open Folder without a file manager shows the path ---------------------------------


def test_open_folder_without_a_file_manager_shows_the_path_to_copy(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    server: HttpTestServer,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    csv_path = write_csv(tmp_path / "f.csv", [("1", "A", [serve_jpeg(server, "a.jpg")])])
    request_id, _status = load_and_finish(qtbot, window, engine, csv_path)
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda _url: False))
    window.action(Action.OPEN_FOLDER).trigger()
    dialogs = [d for d in window.open_dialogs() if isinstance(d, PathDialog)]
    assert len(dialogs) == 1
    folder = str(request_folder(data_dir, request_id))
    assert dialogs[0].path_edit.text() == folder
    copy = dialogs[0].findChild(QPushButton, "copy_path")
    assert copy is not None
    copy.click()
    assert QGuiApplication.clipboard().text() == folder
    dialogs[0].reject()


def test_open_folder_goes_where_the_request_stores_its_images(
    qtbot: QtBot,
    window: MainWindow,
    repository: Repository,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    csv = b"S. No.,Product Name,Input Image Urls\n1,Mug,https://cdn.example/m.jpg\n"
    elsewhere = tmp_path / "published"
    in_folder = repository.create_request(
        parse_catalogue(csv, "a.csv"), storage=StorageChoice(folder=str(elsewhere))
    )
    in_bucket = repository.create_request(
        parse_catalogue(csv, "b.csv"),
        storage=StorageChoice(kind="s3", bucket="shop-images", prefix="spring"),
    )
    (elsewhere / in_folder).mkdir(parents=True)
    opened: list[str] = []
    monkeypatch.setattr(
        QDesktopServices,
        "openUrl",
        staticmethod(lambda url: opened.append(url.toLocalFile()) or True),
    )
    window.requests_model.reload()

    window.select_request(in_folder)
    window.action(Action.OPEN_FOLDER).trigger()
    assert opened == [str(elsewhere / in_folder)]

    window.select_request(in_bucket)
    window.action(Action.OPEN_FOLDER).trigger()
    assert opened == [str(elsewhere / in_folder)]  # nothing to open for a bucket
    assert QGuiApplication.clipboard().text() == f"s3://shop-images/spring/{in_bucket}"
    assert "s3://shop-images/spring/" in window.statusBar().currentMessage()


# -- 15. filters and sorts do not carry over -------------------------------------------------


def test_the_search_is_cleared_when_another_request_is_shown(
    qtbot: QtBot, window: MainWindow, repository: Repository
) -> None:
    csv = b"S. No.,Product Name,Input Image Urls\n1,Mug,https://cdn.example/m.jpg\n"
    first = repository.create_request(parse_catalogue(csv, "first.csv"))
    second = repository.create_request(parse_catalogue(csv, "second.csv"))
    window.requests_model.reload()
    window.select_request(first)
    window.images_pane.search_edit.setText("nothing matches this")
    assert window.images_model.rowCount() == 0
    window.select_request(second)
    assert window.images_pane.search_edit.text() == ""
    assert window.images_model.rowCount() == 1


def test_a_sort_is_not_restored_at_the_next_start(
    qtbot: QtBot, make_window: Callable[..., MainWindow], qsettings: QSettings
) -> None:
    first = make_window()
    first.images_pane.view.sortByColumn(ImagesTableModel.COL_SIZE, Qt.SortOrder.DescendingOrder)
    assert first.images_model.sort_column == ImagesTableModel.COL_SIZE
    first.images_pane.view.horizontalHeader().resizeSection(ImagesTableModel.COL_PRODUCT, 222)
    first.close()

    second = make_window()
    header = second.images_pane.view.horizontalHeader()
    assert header.sectionSize(ImagesTableModel.COL_PRODUCT) == 222  # the layout is kept
    assert header.sortIndicatorSection() == -1
    assert second.images_model.sort_column == -1  # input order: work shows as it moves


# -- 16. the small things -------------------------------------------------------------------


def test_a_long_product_name_ends_in_an_ellipsis_in_the_preview(
    qtbot: QtBot, window: MainWindow, repository: Repository
) -> None:
    name = "An extraordinarily long product name that no preview panel can show " * 3
    csv = f"S. No.,Product Name,Input Image Urls\n1,{name.strip()},https://x.test/a.jpg\n"
    request_id = repository.create_request(parse_catalogue(csv.encode(), "long.csv"))
    window.requests_model.reload()
    window.select_request(request_id)
    window.images_pane.view.selectRow(0)
    title = window.images_pane.preview._title
    assert title.text().startswith(name[:40])  # the whole name is kept
    shown = QLabel.text(title)
    assert shown.endswith("\u2026") and len(shown) < len(title.text())


def test_paused_shows_no_rate_and_running_workers_show_at_once(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    server: HttpTestServer,
    gate: Gate,
    tmp_path: Path,
) -> None:
    request_id = gated_request(qtbot, window, engine, server, gate, tmp_path, count=6)
    # The bar follows the engine's news, not only its once-a-second clock.
    qtbot.waitUntil(
        lambda: window.status_bar.workers_label.text() == "Workers: 5/5", timeout=WAIT_MS
    )
    assert window.status_bar.rate_label.text() != "Idle"
    finished: list[object] = []
    engine.image_finished.connect(finished.append)
    gate.allow(3)
    qtbot.waitUntil(lambda: len(finished) == 3, timeout=WAIT_MS)
    # A speed once a second of active time is in (none before: it would be noise).
    qtbot.waitUntil(lambda: speed_shown(window, request_id), timeout=WAIT_MS)
    window.action(Action.PAUSE).trigger()
    assert "images/s" not in window.status_bar.rate_label.text()
    assert "Paused" in window.status_bar.paused_label.text()
    window.action(Action.PAUSE).trigger()


def test_the_log_can_show_only_warnings_or_errors(qtbot: QtBot, window: MainWindow) -> None:
    import logging

    log = logging.getLogger("imgdesk.test")
    log.info("an everyday line")
    log.warning("a line worth a look")
    view = window.log_view
    qtbot.waitUntil(lambda: "a line worth a look" in view.toPlainText())
    combo = window.log_dock.level_combo
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "All",
        "Info",
        "Warnings",
        "Errors",
    ]
    combo.setCurrentIndex(combo.findText("Warnings"))
    assert "a line worth a look" in view.toPlainText()
    assert "an everyday line" not in view.toPlainText()
    log.info("another everyday line")
    log.error("a line that went wrong")
    qtbot.waitUntil(lambda: "a line that went wrong" in view.toPlainText())
    assert "another everyday line" not in view.toPlainText()
    combo.setCurrentIndex(combo.findText("All"))
    assert "another everyday line" in view.toPlainText()


def test_help_has_a_guide_shortcuts_the_log_folder_and_about(
    qtbot: QtBot, window: MainWindow
) -> None:
    help_menu = next(
        action.menu() for action in window.menuBar().actions() if action.text() == "&Help"
    )
    texts = [action.text() for action in help_menu.actions() if not action.isSeparator()]
    assert texts == [
        "imgdesk &Guide",
        "&Keyboard Shortcuts",
        "Open &Log Folder",
        "&About imgdesk",
    ]
    window.action(Action.GUIDE).trigger()
    guide = next(d for d in window.open_dialogs() if d.objectName() == "guide")
    assert isinstance(guide, QDialog)
    assert "Retry Failures" in text_of(guide)
    guide.reject()
    window.action(Action.SHORTCUTS).trigger()
    shortcuts = next(d for d in window.open_dialogs() if d.objectName() == "shortcuts")
    assert isinstance(shortcuts, QDialog)
    text = text_of(shortcuts)
    assert "Ctrl+E" in text and "Export Output CSV" in text and "Ctrl+L" in text
    shortcuts.reject()


def text_of(dialog: QDialog) -> str:
    browser = dialog.findChild(QTextBrowser, "text")
    assert browser is not None
    return browser.toPlainText()


# -- the heartbeat: a repaint costs few calls into Python ----------------------------------


def test_painting_the_images_table_costs_two_python_calls_per_cell(
    qtbot: QtBot, window: MainWindow, repository: Repository
) -> None:
    lines = ["S. No.,Product Name,Input Image Urls"]
    lines += [f'{i},Product {i},"https://cdn.example/{i}/a.jpg"' for i in range(10_000)]
    request_id = repository.create_request(parse_catalogue("\n".join(lines).encode(), "big.csv"))
    images = repository.list_images(request_id)
    repository.update_images(
        {
            image.id: {"status": "done", "input_bytes": 1000 + n, "output_bytes": 300}
            if n % 2
            else {"status": "failed", "error_code": "http_404", "error": "Not there."}
            for n, image in enumerate(images)
        }
    )
    window.resize(1600, 1000)
    window.requests_model.reload()
    with qtbot.waitSignal(window.images_model.loading_finished, timeout=WAIT_MS):
        window.select_request(request_id)
    view = window.images_pane.view
    view.sortByColumn(ImagesTableModel.COL_SIZE, Qt.SortOrder.DescendingOrder)  # sorted too
    QApplication.processEvents()
    view.viewport().repaint()  # texts are built once, at the first paint

    entries: list[str] = []

    def count(frame: Any, event: str, _arg: object) -> None:
        # A Python function Qt called: its caller is this test, inside repaint().
        if event == "call" and frame.f_back is not None and frame.f_back.f_code is here:
            entries.append(frame.f_code.co_name)

    here = sys._getframe().f_code
    sys.setprofile(count)
    try:
        view.viewport().repaint()
    finally:
        sys.setprofile(None)
    header = view.horizontalHeader()
    columns = sum(1 for c in range(header.count()) if not header.isSectionHidden(c))
    rows = view.viewport().height() // view.verticalHeader().defaultSectionSize() + 1
    cells = rows * columns
    assert cells > 100
    # Through a QSortFilterProxyModel it was about fifteen per cell (a data() call per role
    # and two index() calls each); Qt-side cells would be none. Two, plus the delegates.
    assert len(entries) <= 3 * cells, (len(entries), cells, sorted(set(entries)))
    assert entries.count("data") <= rows * 2  # only the delegates ask a single role
