"""The window's Priority submenu (SPEC 11): set from a request's menus, through the engine.

A real window over a real engine, database and loopback server; the first image is held at
a gate, so the engine has both requests in hand when the user changes a priority.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QMenu
from pytestqt.qtbot import QtBot

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.repository import Repository, RequestInfo
from imgdesk.engine.engine import Engine
from imgdesk.gui.actions import Action
from imgdesk.gui.main_window import MainWindow
from imgdesk.gui.models import RequestsTableModel
from tests.httpservers import Gate, HttpTestServer, gated, respond
from tests.images import make_jpeg

pytestmark = [
    # Popups make the offscreen plugin say what it cannot do (raise, grab); that is all.
    pytest.mark.qt_log_ignore(
        "This plugin does not support propagateSizeHints",
        "This plugin does not support raise",
        "This plugin does not support grabbing",
    ),
    pytest.mark.timeout(60),
]

WAIT_MS = 15_000
JPEG = make_jpeg(64, 48, "photo", 90)


def add_request(repository: Repository, name: str, urls: list[str]) -> str:
    """Record a request of one product with these images."""
    csv = "S. No.,Product Name,Input Image Urls\n" + f'1,Shirt,"{",".join(urls)}"\n'
    return repository.create_request(parse_catalogue(csv.encode(), name), Path(name))


def stored(repository: Repository, request_id: str) -> RequestInfo:
    """The request as stored now."""
    request = repository.get_request(request_id)
    assert request is not None
    return request


def choices(menu_action: QAction) -> dict[str, QAction]:
    """The choices of the Priority submenu by their words (no "&")."""
    menu = menu_action.menu()
    assert isinstance(menu, QMenu)
    return {action.text().replace("&", ""): action for action in menu.actions()}


def checked(menu_action: QAction) -> list[str]:
    """The checked choices of the Priority submenu."""
    return [text for text, action in choices(menu_action).items() if action.isChecked()]


def request_context_menu(window: MainWindow, request_id: str) -> QMenu:
    """Right-click the request's row; returns the menu that opened."""
    window.select_request(request_id)
    view = window.requests_pane
    row = view.selectionModel().selectedRows()[0].row()
    view.customContextMenuRequested.emit(view.visualRect(view.model().index(row, 0)).center())
    menus = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMenu) and w.isVisible()]
    assert len(menus) == 1
    return menus[0]


def shown_priority(window: MainWindow) -> str:
    """The priority of the selected request, as the window last read it."""
    request = window.current_request()
    assert request is not None
    return request.priority


def state_tip(window: MainWindow, request_id: str) -> str:
    """The requests table's tooltip on the request's state, as the model has it now."""
    model = window.requests_model
    model.refresh_request(request_id)
    model.flush()
    row = model.row_of(request_id)
    assert row is not None
    tip = model.data(model.index(row, RequestsTableModel.COL_STATE), Qt.ItemDataRole.ToolTipRole)
    return str(tip)


def test_the_context_menu_raises_a_waiting_request_above_a_running_one(
    qtbot: QtBot,
    make_window: object,
    repository: Repository,
    engine: Engine,
    server: HttpTestServer,
) -> None:
    gate = Gate()
    urls = {name: server.route(f"/{name}.jpg", gated(gate, respond(JPEG))) for name in "abcdefg"}
    first = add_request(repository, "first.csv", [urls[n] for n in "abcd"])
    second = add_request(repository, "second.csv", [urls[n] for n in "efg"])
    engine.set_settings(engine.settings.replace(concurrency=1))
    window: MainWindow = make_window()  # type: ignore[operator]
    engine.start_request(first)
    engine.start_request(second)
    qtbot.waitUntil(lambda: server.in_flight == 1, timeout=WAIT_MS)  # a at the gate

    menu = request_context_menu(window, second)
    priority = next(a for a in menu.actions() if a.text() == "Pr&iority")
    assert priority.isEnabled()
    assert checked(priority) == ["Normal"]
    menu.hide()
    choices(priority)["High"].trigger()

    assert stored(repository, second).priority == "high"
    assert "second.csv has high priority" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: shown_priority(window) == "high", timeout=WAIT_MS)
    assert checked(priority) == ["High"]
    gate.open()
    qtbot.waitUntil(
        lambda: {stored(repository, r).status for r in (first, second)} == {"completed"},
        timeout=WAIT_MS,
    )
    # a was running and finished; then every image of the raised request, then the rest.
    fetched = [request.path for request in server.requests]
    assert fetched == [f"/{name}.jpg" for name in "aefgbcd"]


def test_the_request_menu_shows_and_sets_the_priority(
    qtbot: QtBot, window: MainWindow, repository: Repository
) -> None:
    request_id = add_request(repository, "later.csv", ["https://example.test/a.jpg"])
    repository.set_priority(request_id, "low")
    window.requests_model.reload()
    window.select_request(request_id)

    request_menu = next(
        action.menu()
        for action in window.menuBar().actions()
        if action.text() == "&Request" and isinstance(action.menu(), QMenu)
    )
    assert isinstance(request_menu, QMenu)
    priority = next(a for a in request_menu.actions() if a.text() == "Pr&iority")
    assert priority is window.action(Action.PRIORITY)
    assert checked(priority) == ["Low"]
    choices(priority)["Normal"].trigger()

    assert stored(repository, request_id).priority == "normal"
    qtbot.waitUntil(lambda: shown_priority(window) == "normal", timeout=WAIT_MS)
    assert checked(priority) == ["Normal"]


def test_the_state_tooltip_says_a_priority_that_is_not_normal(
    window: MainWindow, repository: Repository, engine: Engine
) -> None:
    request_id = add_request(repository, "urgent.csv", ["https://example.test/a.jpg"])
    window.requests_model.reload()
    assert "priority" not in state_tip(window, request_id)

    engine.set_priority(request_id, "high")
    assert "High priority" in state_tip(window, request_id)
    engine.set_priority(request_id, "low")
    assert "Low priority" in state_tip(window, request_id)
