"""An export reads its request off the GUI thread: a slow or stuck database never freezes it.

A real SQLite file, a real engine and a real thread pool; the repository only adds a gate
to ``export_data`` so the test can hold the read while it watches the GUI thread run.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QThreadPool, QTimer
from PySide6.QtWidgets import QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from imgdesk.core.csvio import Catalogue, parse_catalogue
from imgdesk.core.errors import DatabaseError
from imgdesk.core.repository import Repository
from imgdesk.engine.engine import Engine
from imgdesk.gui.exports import RequestExports
from imgdesk.gui.widgets import DialogTracker

WAIT_MS = 30_000

CSV = b"""S. No.,Product Name,Input Image Urls
1,Shirt,http://127.0.0.1:9/a.jpg
2,Mug,"http://127.0.0.1:9/b.jpg,http://127.0.0.1:9/c.jpg"
"""


class GatedRepository(Repository):
    """The real repository, whose export read waits for the test to let it go.

    Attributes:
        threads: the thread each export read ran on.
        reading: set while a read waits at the gate.
        release: the test sets it to let the read go on.
        failure: raised by the read instead of reading, when set.
    """

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[threading.Thread] = []
        self.reading = threading.Event()
        self.release = threading.Event()
        self.failure: Exception | None = None

    def export_data(self, request_id: str) -> tuple[Catalogue, dict[int, list[str | None]]]:
        self.threads.append(threading.current_thread())
        self.reading.set()
        try:
            # Bounded: on the GUI thread (the old code) this blocks the event loop a while.
            self.release.wait(timeout=10)
            if self.failure is not None:
                raise self.failure
            return super().export_data(request_id)
        finally:
            self.reading.clear()


@pytest.fixture
def gated(repository: Repository) -> GatedRepository:
    """The gated repository, on the fixture's database file."""
    return GatedRepository()


@pytest.fixture
def parent(qtbot: QtBot) -> QWidget:
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


@pytest.fixture
def pool() -> Iterator[QThreadPool]:
    pool = QThreadPool()
    yield pool
    pool.waitForDone(WAIT_MS)


@pytest.fixture
def dialogs() -> DialogTracker:
    return DialogTracker(on_closed=lambda: None)


@pytest.fixture
def exports(
    gated: GatedRepository,
    engine: Engine,
    pool: QThreadPool,
    dialogs: DialogTracker,
    qsettings: QSettings,
    data_dir: Path,
    parent: QWidget,
) -> RequestExports:
    return RequestExports(gated, engine, pool, dialogs, qsettings, data_dir, parent)


def test_an_export_reads_its_request_off_the_gui_thread(
    qtbot: QtBot, exports: RequestExports, gated: GatedRepository, tmp_path: Path
) -> None:
    request_id = gated.create_request(parse_catalogue(CSV, "catalogue.csv"))
    target = tmp_path / "catalogue-output.csv"
    ticks_while_reading = [0]

    def tick() -> None:
        if gated.reading.is_set():
            ticks_while_reading[0] += 1

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    try:
        exports.export_to(request_id, target)
        # The read is held at the gate, and the GUI thread's timer keeps ticking meanwhile.
        qtbot.waitUntil(lambda: ticks_while_reading[0] >= 3, timeout=WAIT_MS)
        assert not target.exists()
        with qtbot.waitSignal(exports.exported, timeout=WAIT_MS) as blocker:
            gated.release.set()
    finally:
        timer.stop()

    assert blocker.args == [request_id, str(target)]
    assert len(gated.threads) == 1 and gated.threads[0] is not threading.main_thread()
    with target.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["S. No.", "Product Name", "Input Image Urls", "Output Image Urls"]
    assert [row[3] for row in rows[1:]] == ["", ","]  # nothing done yet: empty slots
    request = gated.get_request(request_id)
    assert request is not None and request.output_csv == target.absolute().as_uri()


def test_a_failed_read_says_export_failed_in_one_sentence(
    qtbot: QtBot,
    exports: RequestExports,
    gated: GatedRepository,
    dialogs: DialogTracker,
    tmp_path: Path,
) -> None:
    request_id = gated.create_request(parse_catalogue(CSV, "catalogue.csv"))
    target = tmp_path / "catalogue-output.csv"
    gated.failure = DatabaseError(
        "The PostgreSQL server did not answer (server closed the connection unexpectedly). "
        "Check that it runs and can be reached, then try again."
    )
    gated.release.set()
    exported: list[object] = []
    exports.exported.connect(lambda *args: exported.append(args))

    exports.export_to(request_id, target)

    qtbot.waitUntil(lambda: len(dialogs.dialogs()) == 1, timeout=WAIT_MS)
    box = dialogs.dialogs()[0]
    assert isinstance(box, QMessageBox)
    assert box.windowTitle() == "Export failed"
    assert box.text() == "catalogue-output.csv could not be written."
    assert "The PostgreSQL server did not answer" in box.informativeText()
    assert "Traceback" not in box.informativeText()
    assert gated.threads[0] is not threading.main_thread()
    assert not target.exists() and exported == []
    request = gated.get_request(request_id)
    assert request is not None and request.output_csv is None


def test_exporting_a_request_deleted_meanwhile_says_so(
    qtbot: QtBot,
    exports: RequestExports,
    gated: GatedRepository,
    dialogs: DialogTracker,
    tmp_path: Path,
) -> None:
    request_id = gated.create_request(parse_catalogue(CSV, "catalogue.csv"))
    gated.delete_request(request_id)  # from another window, say, while this one lists it
    gated.release.set()

    exports.export_to(request_id, tmp_path / "catalogue-output.csv")

    qtbot.waitUntil(lambda: len(dialogs.dialogs()) == 1, timeout=WAIT_MS)
    box = dialogs.dialogs()[0]
    assert isinstance(box, QMessageBox)
    assert box.windowTitle() == "Export failed"
    assert box.informativeText() == (
        f"Request {request_id} is no longer there: it was deleted, so there is nothing to export."
    )
    assert not (tmp_path / "catalogue-output.csv").exists()
