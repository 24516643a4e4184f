"""The export policy on finish and the webhook deliveries view, end to end.

A real engine processes a dropped CSV from a local image server; the window writes the
output CSV into the request's folder and queues the webhook, which a real receiver on
127.0.0.1 answers. The webhook sender runs on qasync's loop over the test QApplication, as
in the app: :class:`Turner` turns that loop until the expected state is reached.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import gc
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import qasync
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication, QMenu, QPushButton, QTabWidget
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from imgdesk.core.outbox import FAILED, PENDING, AttemptInfo, DeliveryInfo, Outbox
from imgdesk.core.repository import Repository
from imgdesk.core.settings import Settings
from imgdesk.core.storage import request_folder
from imgdesk.core.webhook import DELIVERED
from imgdesk.engine import finisher as finisher_module
from imgdesk.engine.engine import Engine
from imgdesk.engine.webhooks import WebhookSender
from imgdesk.gui import app as gui_app
from imgdesk.gui.main_window import MainWindow
from imgdesk.gui.webhook_view import AttemptsTableModel, DeliveriesTableModel, WebhookPanel
from tests.gui.conftest import serve_jpeg, write_csv
from tests.gui.test_main_window import drop_files
from tests.httpservers import HttpTestServer, respond, sequence

pytestmark = [
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
    pytest.mark.timeout(60),
]

WAIT_S = 15.0


# -- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
def settings(http_server: HttpTestServer) -> Settings:
    """Quick retries for images and webhooks; the webhook goes to the test receiver."""
    return Settings(
        max_retries=1,
        retry_base_delay_s=0.05,
        connect_timeout_s=5.0,
        webhook_url=http_server.url("/hook"),
        webhook_first_delay_ms=20,
    )


@pytest.fixture
def loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    """qasync's loop on the test QApplication, as the window runs it."""
    event_loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(event_loop)
    yield event_loop
    event_loop.close()
    asyncio.set_event_loop(None)
    del event_loop
    gc.collect()  # the loop's Qt timers die here, on their own thread


@pytest.fixture
def sender(
    loop: qasync.QEventLoop, repository: Repository, settings: Settings
) -> Iterator[WebhookSender]:
    """The app's webhook sender; what it still owes stays in the outbox at the end."""
    webhooks = WebhookSender(Outbox(), settings)
    yield webhooks
    loop.run_until_complete(webhooks.stop())


@pytest.fixture
def window(sender: WebhookSender, make_window: Callable[..., MainWindow]) -> MainWindow:
    """A shown window that sends webhooks.

    The sender comes first so that it (and the loop it runs at its end) outlive the window:
    a loop turned after pytest-qt has scheduled the window's deletion would delete it.
    """
    return make_window(webhooks=sender)


class Turner:
    """Turns qasync's loop for a test, as the app's loop turns all the time.

    Between two turns the loop stops, and Qt may deliver a queued signal in between (qasync
    processes pending events once more after stopping); a delivery queued then waits in the
    outbox, which is exactly what the sender's ``start()`` picks up, as the app does at the
    next launch. Each turn begins with it, so nothing queued between turns is left behind.
    """

    def __init__(self, loop: qasync.QEventLoop, sender: WebhookSender) -> None:
        self.loop = loop
        self.sender = sender

    def until(self, predicate: Callable[[], object], timeout_s: float = WAIT_S) -> None:
        """Turn the loop until ``predicate()`` is true; fail after ``timeout_s``."""

        async def poll() -> None:
            self.sender.start()
            deadline = time.monotonic() + timeout_s
            while not predicate():
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out after {timeout_s} s waiting for {predicate}")
                await asyncio.sleep(0.02)

        self.loop.run_until_complete(poll())

    def do(self, action: Callable[[], object]) -> None:
        """Do ``action`` with the loop running, as every click in the app is."""

        async def act() -> None:
            self.sender.start()
            action()

        self.loop.run_until_complete(act())


@pytest.fixture
def turn(loop: qasync.QEventLoop, sender: WebhookSender) -> Turner:
    """Turns the loop the window's sender runs on."""
    return Turner(loop, sender)


def hook_posts(server: HttpTestServer) -> list[dict[str, object]]:
    """The webhook bodies the receiver got, in order, with their webhook-id."""
    posts = []
    for request in list(server.requests):
        if request.method == "POST" and request.path == "/hook":
            headers = {name.lower(): value for name, value in request.headers.items()}
            posts.append({"id": headers["webhook-id"], **json.loads(request.body)})
    return posts


def finish_one_request(
    turn: Turner, window: MainWindow, server: HttpTestServer, tmp_path: Path
) -> str:
    """Drop a two-product CSV and turn the loop until its request finished; its id."""
    urls = [serve_jpeg(server, "shirt.jpg"), serve_jpeg(server, "hat.jpg")]
    csv_path = write_csv(
        tmp_path / "spring.csv", [("1", "Shirt", urls[:1]), ("2", "Hat", urls[1:])]
    )
    finished: list[str] = []
    window._engine.request_finished.connect(lambda request_id, _status: finished.append(request_id))
    drop_files(window, [csv_path])
    turn.until(lambda: finished)
    return finished[0]


def delivery(status: str = DELIVERED, attempts: int = 1, **changes: object) -> DeliveryInfo:
    history = tuple(
        AttemptInfo(i, "msg_1", 1000.0 + i, 500 if i < attempts else 200, None, 12, "ok")
        for i in range(1, attempts + 1)
    )
    info = DeliveryInfo(
        id="msg_1",
        request_id="r1",
        event="request.completed",
        url="http://127.0.0.1:9/hook?token=x",
        secret=None,
        payload="{}",
        status=status,
        attempts=attempts,
        next_attempt_at=1000.0,
        created_at=999.0,
        finished_at=1001.0,
        last_error=None,
        history=history,
    )
    return dataclasses.replace(info, **changes)


# -- the export policy on finish -----------------------------------------------------------------


def test_a_finished_request_writes_its_output_csv_then_sends_its_webhook(
    turn: Turner,
    window: MainWindow,
    repository: Repository,
    server: HttpTestServer,
    http_server: HttpTestServer,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    http_server.route("/hook", respond(b"ok", 200))

    request_id = finish_one_request(turn, window, server, tmp_path)
    turn.until(lambda: hook_posts(http_server))

    output = request_folder(data_dir, request_id) / "spring-output.csv"
    assert output.is_file()
    with output.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][-1] == "Output Image Urls"
    assert all(row[-1].startswith("file://") for row in rows[1:])
    request = repository.get_request(request_id)
    assert request is not None and request.output_csv == output.absolute().as_uri()
    [post] = hook_posts(http_server)
    assert post["request_id"] == request_id
    assert post["event"] == "request.completed"
    assert post["output_csv"] == output.absolute().as_uri()


def test_a_failed_write_still_sends_the_webhook_and_warns(
    turn: Turner,
    window: MainWindow,
    server: HttpTestServer,
    http_server: HttpTestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    http_server.route("/hook", respond(b"ok", 200))

    def disk_full(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(finisher_module, "write_output_rows", disk_full)
    written: list[tuple[str, str]] = []
    window.finish_exported.connect(lambda request_id, path: written.append((request_id, path)))

    with caplog.at_level(logging.WARNING, logger="imgdesk.engine.finisher"):
        request_id = finish_one_request(turn, window, server, tmp_path)
        turn.until(lambda: hook_posts(http_server))

    assert written == [(request_id, "")]
    [post] = hook_posts(http_server)
    assert post["request_id"] == request_id and post["output_csv"] is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("The disk is full" in r.getMessage() for r in warnings)
    assert "could not be written" in window.statusBar().currentMessage()


def test_closing_right_after_a_finish_still_queues_the_webhook_with_the_csv(
    qtbot: QtBot,
    make_window: Callable[..., MainWindow],
    engine: Engine,
    repository: Repository,
    settings: Settings,
    server: HttpTestServer,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No event loop runs: the event waits in the outbox for the next start, as at a quit.
    window = make_window(webhooks=WebhookSender(Outbox(), settings))
    real_write = finisher_module.write_output_rows

    def slow_write(*args: object, **kwargs: object) -> None:
        time.sleep(0.3)  # still being written when the window closes
        real_write(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(finisher_module, "write_output_rows", slow_write)
    csv_path = write_csv(tmp_path / "late.csv", [("1", "Shirt", [serve_jpeg(server, "a.jpg")])])
    with qtbot.waitSignal(engine.request_finished, timeout=int(WAIT_S * 1000)) as blocker:
        drop_files(window, [csv_path])
    request_id = blocker.args[0]
    assert not Outbox().list_deliveries(request_id)  # the CSV comes first

    window.close()

    output = request_folder(data_dir, request_id) / "late-output.csv"
    assert output.is_file()
    [queued] = Outbox().list_deliveries(request_id)
    assert queued.status == PENDING
    assert json.loads(queued.payload)["output_csv"] == output.absolute().as_uri()


# -- the deliveries view -------------------------------------------------------------------------


def test_the_deliveries_view_shows_every_attempt_of_the_event(
    turn: Turner,
    window: MainWindow,
    server: HttpTestServer,
    http_server: HttpTestServer,
    tmp_path: Path,
) -> None:
    http_server.route("/hook", sequence(respond(b"", 500), respond(b"thanks")))
    panel = window.webhook_panel

    request_id = finish_one_request(turn, window, server, tmp_path)
    turn.until(lambda: panel.deliveries_model.rowCount() == 1)
    turn.until(lambda: panel.attempts_model.rowCount() == 2)

    assert window.current_request() is not None and window.current_request().id == request_id  # type: ignore[union-attr]
    model = panel.deliveries_model
    row = {column: model.index(0, column).data() for column in range(model.columnCount())}
    posts = hook_posts(http_server)
    assert len(posts) == 2 and posts[0]["id"] == posts[1]["id"]
    assert row[DeliveriesTableModel.COL_EVENT] == "request.completed"
    assert row[DeliveriesTableModel.COL_WEBHOOK_ID] == posts[0]["id"]
    assert row[DeliveriesTableModel.COL_ATTEMPTS] == "2"
    turn.until(lambda: model.index(0, DeliveriesTableModel.COL_STATUS).data() == "Delivered")
    attempts = panel.attempts_model
    first, second = (
        [attempts.index(r, c).data() for c in range(attempts.columnCount())] for r in range(2)
    )
    assert "500" in first[AttemptsTableModel.COL_RESULT]
    assert second[AttemptsTableModel.COL_RESULT] == "HTTP 200"
    assert second[AttemptsTableModel.COL_RESPONSE] == "thanks"
    assert second[AttemptsTableModel.COL_DURATION].endswith(" ms")
    assert panel.current_delivery() is not None  # selected without a click
    assert panel.redeliver_button.isEnabled()


def test_redeliver_sends_the_same_webhook_id_and_shows_the_new_attempt(
    qtbot: QtBot,
    turn: Turner,
    window: MainWindow,
    server: HttpTestServer,
    http_server: HttpTestServer,
    tmp_path: Path,
) -> None:
    http_server.route("/hook", respond(b"ok", 200))
    panel = window.webhook_panel
    finish_one_request(turn, window, server, tmp_path)
    turn.until(lambda: panel.redeliver_button.isEnabled())
    assert panel.attempts_model.rowCount() == 1

    turn.do(lambda: qtbot.mouseClick(panel.redeliver_button, Qt.MouseButton.LeftButton))
    # Pending again: a second click would send it twice, so it is disabled until settled.
    assert not panel.redeliver_button.isEnabled()
    assert not panel.action_redeliver.isEnabled()
    turn.until(lambda: panel.attempts_model.rowCount() == 2)

    first, again = hook_posts(http_server)
    assert again["id"] == first["id"]
    assert again["output_csv"] == first["output_csv"]
    turn.until(lambda: panel.redeliver_button.isEnabled())
    status = panel.deliveries_model.index(0, DeliveriesTableModel.COL_STATUS).data()
    assert status == "Delivered"
    assert panel.deliveries_model.index(0, DeliveriesTableModel.COL_ATTEMPTS).data() == "2"


@pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints",
    "This plugin does not support raise",
    "This plugin does not support grabbing",
)
def test_redeliver_from_the_context_menu(
    turn: Turner,
    window: MainWindow,
    server: HttpTestServer,
    http_server: HttpTestServer,
    tmp_path: Path,
) -> None:
    http_server.route("/hook", respond(b"", 503))  # never delivered: given up after 4
    panel = window.webhook_panel
    finish_one_request(turn, window, server, tmp_path)
    turn.until(lambda: panel.redeliver_button.isEnabled())
    model = panel.deliveries_model
    assert model.index(0, DeliveriesTableModel.COL_STATUS).data() == "Failed"
    assert panel.attempts_model.rowCount() == 4

    view = panel.deliveries_view
    view.customContextMenuRequested.emit(view.visualRect(model.index(0, 0)).center())
    menus = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMenu) and w.isVisible()]
    assert len(menus) == 1
    redeliver = next(a for a in menus[0].actions() if a.text() == "&Redeliver")
    menus[0].hide()
    http_server.route("/hook", respond(b"ok", 200))
    turn.do(redeliver.trigger)
    turn.until(lambda: model.index(0, DeliveriesTableModel.COL_STATUS).data() == "Delivered")

    assert panel.attempts_model.rowCount() == 5
    assert len({post["id"] for post in hook_posts(http_server)}) == 1


def test_without_a_webhook_url_the_view_says_where_to_set_one(
    qtbot: QtBot,
    make_window: Callable[..., MainWindow],
    engine: Engine,
    repository: Repository,
) -> None:
    from imgdesk.core.csvio import parse_catalogue
    from imgdesk.gui.settings_dialog import SettingsDialog

    engine.set_settings(dataclasses.replace(engine.settings, webhook_url=""))
    request_id = repository.create_request(
        parse_catalogue(b"S. No.,Product Name,Input Image Urls\n1,A,http://x.test/a.jpg\n", "a.csv")
    )
    window = make_window()
    window.select_request(request_id)
    panel = window.webhook_panel

    assert panel.stack.currentIndex() == 0
    text = panel.hint_label.text()
    assert "No webhook is set up" in text and "Settings \u2192 Webhook" in text
    button = panel.findChild(QPushButton, "webhook_hint_settings")
    assert button is not None
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    [dialog] = [d for d in window.open_dialogs() if isinstance(d, SettingsDialog)]
    tabs = dialog.findChild(QTabWidget)
    assert tabs is not None and tabs.tabText(tabs.currentIndex()) == "Webhook"
    dialog.reject()

    # A URL set in the settings turns the hint into the (empty) deliveries view.
    window._apply_settings(
        dataclasses.replace(engine.settings, webhook_url="https://example.test/hook"),
        window._data_dir,
    )
    assert panel.stack.currentIndex() == 1
    assert "https://example.test" in panel.summary_label.text()


def test_the_webhook_dock_sits_beside_the_log_and_is_toggled_from_view(
    window: MainWindow,
) -> None:
    assert window.tabifiedDockWidgets(window.log_dock) == [window.webhook_dock]
    toggle = window.webhook_dock.toggleViewAction()
    assert toggle in window.view_menu.actions()
    toggle.trigger()
    assert not window.webhook_dock.isVisible()
    toggle.trigger()
    assert window.webhook_dock.isVisible()


# -- the models ----------------------------------------------------------------------------------


def test_the_deliveries_model_passes_the_model_tester_and_updates_in_place(
    qtmodeltester: ModelTester,
) -> None:
    model = DeliveriesTableModel()
    model.set_deliveries([delivery(), delivery(id="msg_2", status=FAILED, last_error="HTTP 500")])
    qtmodeltester.check(model)
    assert model.index(1, DeliveriesTableModel.COL_STATUS).data() == "Failed"
    assert "HTTP 500" in model.index(1, DeliveriesTableModel.COL_STATUS).data(
        Qt.ItemDataRole.ToolTipRole
    )
    # The receiver column shows the origin only; the token stays in the tooltip.
    assert model.index(0, DeliveriesTableModel.COL_RECEIVER).data() == "http://127.0.0.1:9"

    resets: list[bool] = []
    changes: list[tuple[int, int]] = []
    model.modelReset.connect(lambda: resets.append(True))
    model.dataChanged.connect(lambda top, bottom, _roles: changes.append((top.row(), bottom.row())))
    model.set_deliveries([delivery(attempts=2), delivery(id="msg_2", status=FAILED)])
    assert not resets and changes == [(0, 1)]
    assert model.index(0, DeliveriesTableModel.COL_ATTEMPTS).data() == "2"
    model.set_deliveries([delivery(id="msg_3")])
    assert resets == [True]
    qtmodeltester.check(model)


def test_the_attempts_model_passes_the_model_tester_and_appends_new_attempts(
    qtmodeltester: ModelTester,
) -> None:
    history = delivery(attempts=3).history
    model = AttemptsTableModel()
    model.set_attempts("msg_1", history[:2])
    qtmodeltester.check(model)
    inserted: list[tuple[int, int]] = []
    resets: list[bool] = []
    model.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))
    model.modelReset.connect(lambda: resets.append(True))

    model.set_attempts("msg_1", history)
    assert inserted == [(2, 2)] and not resets  # a new attempt is a new row, nothing reset
    assert model.index(0, AttemptsTableModel.COL_RESULT).data() == "HTTP 500"
    assert model.index(2, AttemptsTableModel.COL_RESULT).data() == "HTTP 200"
    failed = AttemptInfo(9, "msg_2", 2000.0, None, "could not connect", 5, None)
    model.set_attempts("msg_2", [failed])
    assert resets == [True]
    assert model.index(0, AttemptsTableModel.COL_RESULT).data() == "could not connect"
    qtmodeltester.check(model)


def test_a_reply_in_html_shows_as_text_in_the_tooltip() -> None:
    model = AttemptsTableModel()
    reply = "<h1>Oops</h1>\n<script>x</script>"
    model.set_attempts("msg_1", [AttemptInfo(1, "msg_1", 1.0, 500, "HTTP 500", 3, reply)])
    assert (
        model.index(0, AttemptsTableModel.COL_RESPONSE).data() == "<h1>Oops</h1> <script>x</script>"
    )
    tooltip = model.index(0, AttemptsTableModel.COL_RESPONSE).data(Qt.ItemDataRole.ToolTipRole)
    assert "&lt;h1&gt;" in tooltip and "<h1>" not in tooltip


def test_the_panel_without_a_sender_reads_but_cannot_redeliver(
    qtbot: QtBot, repository: Repository, settings: Settings
) -> None:
    from imgdesk.core.csvio import parse_catalogue

    outbox = Outbox()
    request_id = repository.create_request(
        parse_catalogue(b"S. No.,Product Name,Input Image Urls\n1,A,http://x.test/a.jpg\n", "a.csv")
    )
    outbox.enqueue(request_id, "request.failed", "http://127.0.0.1:9/hook", None, "{}", 1.0)
    panel = WebhookPanel(outbox, None, lambda: settings)
    qtbot.addWidget(panel)
    panel.set_request(repository.get_request(request_id))
    assert panel.deliveries_model.rowCount() == 1
    assert panel.current_delivery() is not None
    assert not panel.redeliver_button.isEnabled()


# -- the demo's data folder ----------------------------------------------------------------------


def test_the_demo_gets_a_temporary_data_folder_unless_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("IMGDESK_DATA_DIR", raising=False)
    folder = gui_app.choose_demo_data_dir(None)
    assert folder is not None and folder.is_dir()
    assert folder.parent == tmp_path and folder.name.startswith("imgdesk-demo-")
    assert gui_app.choose_demo_data_dir(str(tmp_path / "cli")) is None
    monkeypatch.setenv("IMGDESK_DATA_DIR", str(tmp_path / "env"))
    assert gui_app.choose_demo_data_dir(None) is None


def test_run_window_demo_uses_a_temporary_folder_and_removes_it(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("imgdesk.demo")
    monkeypatch.setattr(MainWindow, "_confirm_quit", lambda self: True)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("IMGDESK_DATA_DIR", raising=False)
    qsettings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    qsettings.setValue("data_dir", str(tmp_path / "history"))  # the user's real folder
    seen: list[Path] = []

    def watch() -> None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, MainWindow) and widget.isVisible():
                seen.append(widget._data_dir)
                widget.close()

    poll = QTimer()
    poll.setInterval(20)
    poll.timeout.connect(watch)
    poll.start()
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(lambda: [w.close() for w in QApplication.topLevelWidgets()])
    guard.start(int(WAIT_S * 1000))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        code = gui_app.run_window(
            None, [], demo=True, qsettings=qsettings, install_crash_handler=False
        )
    finally:
        poll.stop()
        guard.stop()
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
    assert code == 0
    assert seen and seen[0].parent == tmp_path and seen[0].name.startswith("imgdesk-demo-")
    assert not seen[0].exists()  # removed at exit
    assert not (tmp_path / "history").exists()  # the user's folder was never touched
