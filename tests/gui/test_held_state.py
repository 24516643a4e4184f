"""A request the engine holds for disk space: the requests model and the status bar ask the engine.

Nobody tells them: a real engine on a real data folder holds a request because its output
cannot be written (a folder stands where the image file goes), and lets it go once the
folder is removed. The model and the bar read the engine's answer each time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex
from pytestqt.qtbot import QtBot

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.repository import Repository
from imgdesk.core.states import RequestStatus, ShownState
from imgdesk.core.storage import output_file_name, storage_key
from imgdesk.engine.engine import Engine
from imgdesk.gui.main_window import MainWindow
from imgdesk.gui.models import STATE_ROLE, RequestsTableModel
from imgdesk.gui.status_bar import StatusBar
from tests.gui.conftest import serve_jpeg
from tests.httpservers import HttpTestServer

pytestmark = pytest.mark.timeout(60)

WAIT_MS = 15_000
ALERT = "<b>Waiting for disk space</b>"


def block_output(repository: Repository, engine: Engine, request_id: str) -> Path:
    """Put a folder where the request's first image will be written; returns the folder.

    Renaming the finished file over a folder fails like a full disk does: a storage error,
    which holds the request until a probe can write again. One image at a time, so the
    others are still queued and the request waits rather than finish.
    """
    engine.set_settings(engine.settings.replace(concurrency=1))
    request = repository.get_request(request_id)
    assert request is not None
    image = repository.list_images(request_id)[0]
    name = output_file_name(
        image.row_index + 1, image.product_name, image.position, request.output.extension
    )
    blocker = engine.storage_of(request_id).local_path(storage_key(request_id, name))
    assert blocker is not None
    blocker.mkdir(parents=True)
    return blocker


def posters_request(repository: Repository, server: HttpTestServer) -> str:
    lines = ["S. No.,Product Name,Input Image Urls"]
    lines += [f"{n},Poster {n},{serve_jpeg(server, f'poster{n}.jpg')}" for n in (1, 2, 3)]
    return repository.create_request(parse_catalogue("\n".join(lines).encode(), "posters.csv"))


def watched(
    qtbot: QtBot, repository: Repository, engine: Engine
) -> tuple[RequestsTableModel, StatusBar]:
    """The requests model and the status bar, connected to the engine as the window does."""
    model = RequestsTableModel(repository, engine)
    model.reload()
    engine.request_changed.connect(model.refresh_request)
    status = StatusBar(engine, model)
    qtbot.addWidget(status)
    return model, status


def hold(qtbot: QtBot, engine: Engine, request_id: str) -> str:
    """Start the request and wait until the engine holds it; returns the engine's message."""
    with qtbot.waitSignal(
        engine.request_held, timeout=WAIT_MS, check_params_cb=lambda _id, message: bool(message)
    ) as held:
        engine.start_request(request_id)
    return str(held.args[1])


def state_index(model: RequestsTableModel, request_id: str) -> QModelIndex:
    row = model.row_of(request_id)
    assert row is not None
    return model.index(row, model.COL_STATE)


def test_a_request_the_engine_holds_shows_as_held_until_the_engine_lets_it_go(
    qtbot: QtBot, repository: Repository, engine: Engine, server: HttpTestServer
) -> None:
    request_id = posters_request(repository, server)
    blocker = block_output(repository, engine, request_id)
    model, status = watched(qtbot, repository, engine)

    message = hold(qtbot, engine, request_id)
    assert engine.held_requests() == {request_id: message}
    model.flush()  # the row as stored now: unfinished
    assert state_index(model, request_id).data(STATE_ROLE) == ShownState.HELD
    assert state_index(model, request_id).data() == "Waiting for disk space"
    assert status.alert_label.text() == ALERT
    assert status.alert_label.toolTip() == message
    # Held says more than paused: it stays, and the bar says both.
    engine.pause()
    assert state_index(model, request_id).data(STATE_ROLE) == ShownState.HELD
    assert "Paused" in status.paused_label.text()
    engine.resume()
    assert status.paused_label.text() == ""

    blocker.rmdir()  # room again: the engine's probe notices by itself
    qtbot.waitUntil(lambda: not engine.held_requests(), timeout=WAIT_MS)
    assert state_index(model, request_id).data(STATE_ROLE) != ShownState.HELD
    assert status.alert_label.text() == ""
    assert status.alert_label.toolTip() == ""

    def completed() -> bool:
        request = repository.get_request(request_id)
        return request is not None and request.status == RequestStatus.COMPLETED

    qtbot.waitUntil(completed, timeout=WAIT_MS)
    model.flush()
    assert state_index(model, request_id).data(STATE_ROLE) == ShownState.COMPLETED
    status.stop()


def test_a_held_request_cancelled_leaves_the_status_bar(
    qtbot: QtBot, repository: Repository, engine: Engine, server: HttpTestServer
) -> None:
    # The engine forgets a cancelled request's hold without a request_held signal; a copy
    # kept in the bar said "Waiting for disk space" for ever.
    request_id = posters_request(repository, server)
    block_output(repository, engine, request_id)
    model, status = watched(qtbot, repository, engine)
    hold(qtbot, engine, request_id)
    assert status.alert_label.text() == ALERT

    engine.cancel(request_id)
    assert not engine.held_requests()
    qtbot.waitUntil(lambda: status.alert_label.text() == "", timeout=WAIT_MS)
    model.flush()
    assert state_index(model, request_id).data(STATE_ROLE) != ShownState.HELD
    status.stop()


def test_a_held_request_cancelled_leaves_the_window_status_bar(
    qtbot: QtBot, window: MainWindow, repository: Repository, engine: Engine, server: HttpTestServer
) -> None:
    request_id = posters_request(repository, server)
    block_output(repository, engine, request_id)
    hold(qtbot, engine, request_id)
    assert window.status_bar.alert_label.text() == ALERT

    engine.cancel(request_id)
    qtbot.waitUntil(lambda: window.status_bar.alert_label.text() == "", timeout=WAIT_MS)
