"""The dashboard's error tables are read on a pool thread: the window never waits for them.

A real SQLite file (the figures of ``test_dashboard``); the repository only adds a gate to
``error_counts`` so the test can hold a read while it watches the GUI thread and changes
the selection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from imgdesk.core.db import db, open_database
from imgdesk.core.errors import DatabaseError
from imgdesk.core.repository import Repository
from imgdesk.gui.dashboard import DashboardDialog
from tests.gui.test_dashboard import Data, errors_read, keys, label, table, view

WAIT_MS = 30_000


class GatedRepository(Repository):
    """The real repository, whose error read waits at a gate the test opens.

    Attributes:
        scopes: the request id (or None) of each error read, in order.
        threads: the thread each error read ran on.
        waiting: set while a read waits at the gate.
        gate: reads pass while it is set.
        failure: raised by the reads instead of reading, when set.
        most_at_once: the most error reads that ran at the same time.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scopes: list[str | None] = []
        self.threads: list[threading.Thread] = []
        self.waiting = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.failure: Exception | None = None
        self.most_at_once = 0
        self._lock = threading.Lock()
        self._running = 0

    def error_counts(self, request_id: str | None = None) -> list[tuple[str, int]]:
        with self._lock:
            self.scopes.append(request_id)
            self.threads.append(threading.current_thread())
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
        try:
            if not self.gate.is_set():
                self.waiting.set()
                # Bounded: on the GUI thread (the old code) this blocks the event loop a while.
                self.gate.wait(timeout=10)
                self.waiting.clear()
            if self.failure is not None:
                raise self.failure
            return super().error_counts(request_id)
        finally:
            with self._lock:
                self._running -= 1


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Data]:
    open_database(tmp_path / "db.sqlite3")
    yield Data(GatedRepository())
    db.close()


@pytest.fixture
def gated(data: Data) -> GatedRepository:
    assert isinstance(data.repo, GatedRepository)
    return data.repo


@pytest.fixture
def dialog(qtbot: QtBot, data: Data) -> DashboardDialog:
    window = DashboardDialog(data.repo)
    qtbot.addWidget(window)
    return window


def select_row(window: DashboardDialog, request_id: str) -> None:
    """Select a request without waiting for anything."""
    view(window, "requests").selectRow(keys(window, "requests").index(request_id))


def test_the_error_tables_fill_from_a_background_read(
    qtbot: QtBot, dialog: DashboardDialog, gated: GatedRepository
) -> None:
    ticks_while_reading = [0]

    def tick() -> None:
        if gated.waiting.is_set():
            ticks_while_reading[0] += 1

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    gated.gate.clear()
    try:
        dialog.refresh()
        # The read is held, the GUI thread runs on, and the other figures are already there.
        qtbot.waitUntil(lambda: ticks_while_reading[0] >= 3, timeout=WAIT_MS)
        assert len(keys(dialog, "requests")) == 2
        assert keys(dialog, "errors") == []
        gated.gate.set()
        qtbot.waitUntil(
            lambda: keys(dialog, "errors") == ["http_404", "not_an_image"], timeout=WAIT_MS
        )
    finally:
        timer.stop()

    errors_read(qtbot, dialog)
    assert label(dialog, "scope") == "Errors of all requests"
    assert table(dialog, "hosts")["cdn.example.com"]["Failed"] == "2"
    assert gated.threads and all(t is not threading.main_thread() for t in gated.threads)


def test_a_selection_changed_mid_read_shows_the_new_scope(
    qtbot: QtBot, dialog: DashboardDialog, gated: GatedRepository, data: Data
) -> None:
    gated.gate.clear()
    dialog.refresh()
    qtbot.waitUntil(gated.waiting.is_set, timeout=WAIT_MS)
    # While the read of every request is held: pick A, then B, and refresh twice.
    select_row(dialog, data.a)
    select_row(dialog, data.b)
    dialog.refresh()
    dialog.refresh()
    gated.gate.set()
    errors_read(qtbot, dialog)

    assert dialog.selected_request_id() == data.b
    assert label(dialog, "scope") == "Errors of summer.csv"
    assert {code: row["Images"] for code, row in table(dialog, "errors").items()} == {
        "http_404": "1"
    }
    assert table(dialog, "hosts")["img.shop.test:8080"]["Failed"] == "0"
    # One read at a time; what was asked meanwhile is folded into one more read.
    assert gated.most_at_once == 1
    assert gated.scopes == [None, data.b]


def test_a_failed_read_keeps_the_last_rows_and_logs_a_warning(
    qtbot: QtBot,
    dialog: DashboardDialog,
    gated: GatedRepository,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dialog.refresh()
    errors_read(qtbot, dialog)
    before = (table(dialog, "errors"), table(dialog, "hosts"), label(dialog, "scope"))
    assert before[0]

    gated.failure = DatabaseError("The PostgreSQL server did not answer (timeout).")
    with caplog.at_level(logging.WARNING, logger="imgdesk.gui.dashboard"):
        dialog.refresh()
        qtbot.waitUntil(lambda: len(gated.scopes) == 2, timeout=WAIT_MS)
        errors_read(qtbot, dialog)

    assert (table(dialog, "errors"), table(dialog, "hosts"), label(dialog, "scope")) == before
    assert any(
        record.levelno == logging.WARNING and "did not answer" in record.getMessage()
        for record in caplog.records
    )
    # The next refresh, with the database back, reads again.
    gated.failure = None
    dialog.refresh()
    qtbot.waitUntil(lambda: len(gated.scopes) == 3, timeout=WAIT_MS)
    errors_read(qtbot, dialog)
    assert table(dialog, "errors") == before[0]
