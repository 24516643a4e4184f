"""The window's parts on their own: the actions, and panes that keep their own layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.repository import Repository
from imgdesk.core.settings import Settings
from imgdesk.engine.engine import Engine
from imgdesk.gui.actions import (
    ACTION_SPECS,
    IMAGE_MENU,
    MENU_BAR,
    PREVIEW_BUTTONS,
    REQUEST_MENU,
    TOOLBAR,
    Action,
    WindowActions,
)
from imgdesk.gui.image_loading import ImageCache, OriginalFetcher
from imgdesk.gui.images_model import ImagesTableModel
from imgdesk.gui.images_pane import ImagesPane
from imgdesk.gui.models import RequestsTableModel
from imgdesk.gui.requests_pane import RequestsPane

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture
def ini(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "parts.ini"), QSettings.Format.IniFormat)


# -- actions ------------------------------------------------------------------------------------


def test_every_action_is_declared_and_shown_somewhere() -> None:
    assert set(ACTION_SPECS) == set(Action)
    placed = {key for _title, keys in MENU_BAR for key in keys}
    placed |= {*TOOLBAR, *REQUEST_MENU, *IMAGE_MENU, *PREVIEW_BUTTONS}
    assert set(Action) <= placed


def test_actions_run_their_slot_and_no_two_share_a_shortcut(qtbot: QtBot) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    ran: list[Action] = []
    actions = WindowActions(window, {key: (lambda key=key: ran.append(key)) for key in Action})

    actions[Action.RETRY_FAILED].trigger()
    assert ran == [Action.RETRY_FAILED]
    assert len(window.actions()) == len(Action)  # shortcuts work anywhere in the window
    shortcuts = [
        sequence.toString()
        for key in Action
        for sequence in actions[key].shortcuts()
        if sequence != QKeySequence()
    ]
    assert len(shortcuts) == len(set(shortcuts))
    with pytest.raises(ValueError, match="PAUSE"):
        WindowActions(window, {key: lambda: None for key in Action if key != Action.PAUSE})


def test_the_pause_action_says_resume_while_paused(qtbot: QtBot) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    actions = WindowActions(window, {key: lambda: None for key in Action})
    actions.show_paused(True)
    assert actions[Action.PAUSE].text() == "&Resume All"
    actions.show_paused(False)
    assert actions[Action.PAUSE].text() == "&Pause All"


# -- panes ----------------------------------------------------------------------------------------


def test_the_requests_pane_keeps_its_columns(
    qtbot: QtBot, repository: Repository, engine: Engine, ini: QSettings
) -> None:
    model = RequestsTableModel(repository, engine)
    first = RequestsPane(model, ini, ())
    qtbot.addWidget(first)
    first.horizontalHeader().resizeSection(RequestsTableModel.COL_NAME, 123)
    first.save_state()

    second = RequestsPane(model, ini, ())
    qtbot.addWidget(second)
    assert second.horizontalHeader().sectionSize(RequestsTableModel.COL_NAME) != 123
    second.restore_state()
    assert second.horizontalHeader().sectionSize(RequestsTableModel.COL_NAME) == 123


def test_the_images_pane_keeps_its_layout_and_counts_what_it_shows(
    qtbot: QtBot, repository: Repository, ini: QSettings
) -> None:
    csv = b"S. No.,Product Name,Input Image Urls\n1,A,https://x.test/a.jpg\n2,B,https://x.test/b.jpg\n"
    request_id = repository.create_request(parse_catalogue(csv, "two.csv"))
    model = ImagesTableModel(repository)
    cache, fetcher = ImageCache(), OriginalFetcher()

    def make_pane() -> ImagesPane:
        pane = ImagesPane(model, cache, fetcher, Settings, ini, (), ())
        qtbot.addWidget(pane)
        pane.resize(1200, 600)
        return pane

    try:
        first = make_pane()
        first.show_request(repository.get_request(request_id))
        assert first.count_label.text() == "2 images"
        first.search_edit.setText("B")
        assert first.count_label.text() == "2 images \u2014 1 shown"
        first.view.horizontalHeader().resizeSection(ImagesTableModel.COL_PRODUCT, 321)
        first.preview.set_compare_original(False)
        first.save_state()

        second = make_pane()
        second.restore_state()
        assert second.view.horizontalHeader().sectionSize(ImagesTableModel.COL_PRODUCT) == 321
        assert not second.preview.compare_original()
        assert second.search_edit.text() == ""  # filters start afresh
    finally:
        fetcher.stop()
        cache.shutdown()
