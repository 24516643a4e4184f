"""GUI fixtures: a real database, engine and window on temp folders, and a local image server.

Nothing touches the user's real data folder or configuration: the data folder is a
``tmp_path`` and the window's QSettings is an INI file in it.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QSettings
from pytestqt.qtbot import QtBot

from imgdesk.core.db import db, open_database
from imgdesk.core.paths import database_path
from imgdesk.core.repository import Repository
from imgdesk.core.settings import Settings
from imgdesk.engine.engine import Engine
from imgdesk.engine.finisher import RequestFinisher
from imgdesk.engine.webhooks import WebhookSender
from imgdesk.gui.log_view import TailLogHandler
from imgdesk.gui.main_window import MainWindow
from tests.httpservers import HttpTestServer, respond, running_server
from tests.images import make_jpeg, make_png

Row = tuple[str, str, Sequence[str]]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty data folder."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def repository(data_dir: Path) -> Iterator[Repository]:
    """A repository on a fresh database file in the data folder."""
    open_database(database_path(data_dir))
    yield Repository()
    db.close()


@pytest.fixture
def settings() -> Settings:
    """Defaults, with retries quick enough for tests."""
    return Settings(max_retries=1, retry_base_delay_s=0.05, connect_timeout_s=5.0)


@pytest.fixture
def engine(
    qapp: object, repository: Repository, settings: Settings, data_dir: Path
) -> Iterator[Engine]:
    """The real engine on the test database."""
    engine = Engine(repository, settings, data_dir)
    yield engine
    engine.shutdown(timeout_ms=5000)
    _delete_on_this_thread(engine)


@pytest.fixture
def qsettings(tmp_path: Path) -> QSettings:
    """Window settings in an INI file of the test's own."""
    return QSettings(str(tmp_path / "imgdesk-window.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def log_handler() -> Iterator[TailLogHandler]:
    """The log dock's buffer, attached to the root logger for the test."""
    handler = TailLogHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.fixture
def make_window(
    qtbot: QtBot,
    repository: Repository,
    engine: Engine,
    data_dir: Path,
    qsettings: QSettings,
    log_handler: TailLogHandler,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[object]:
    """A factory of shown windows (a second one sees what the first remembered)."""
    windows: list[MainWindow] = []
    finishers: list[RequestFinisher] = []

    def make(compare_original: bool = False, webhooks: WebhookSender | None = None) -> MainWindow:
        for earlier in finishers:  # one finisher per engine, as in the application
            earlier.detach()
        finisher = RequestFinisher(repository, engine, webhooks)
        finishers.append(finisher)
        window = MainWindow(
            repository,
            engine,
            data_dir,
            qsettings,
            log_handler=log_handler,
            webhooks=webhooks,
            finisher=finisher,
        )
        # The real question would block the test; quitting mid-work is fine here.
        monkeypatch.setattr(window, "_confirm_quit", lambda: True)
        window.images_pane.preview.set_compare_original(compare_original)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
    _delete_on_this_thread(*windows)


def _delete_on_this_thread(*objects: QObject) -> None:
    """Delete Qt objects now, on the GUI thread.

    Left to the garbage collector, a window caught in a reference cycle would be destroyed
    by whichever thread happens to trigger a collection, a worker thread included.
    """
    for obj in objects:
        with contextlib.suppress(RuntimeError):  # already deleted
            obj.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


@pytest.fixture
def window(make_window: object) -> MainWindow:
    """One shown window; originals are not downloaded again unless a test asks."""
    return make_window()  # type: ignore[operator, no-any-return]


@pytest.fixture
def server() -> Iterator[HttpTestServer]:
    """A local HTTP server for images."""
    with running_server() as server:
        yield server


def serve_jpeg(server: HttpTestServer, name: str, width: int = 120, height: int = 90) -> str:
    """Serve a photo-like JPEG at ``/name``; returns its URL."""
    return server.route(
        f"/{name}", respond(make_jpeg(width, height, "photo", 95), content_type="image/jpeg")
    )


def serve_png(server: HttpTestServer, name: str, width: int = 80, height: int = 60) -> str:
    """Serve a PNG at ``/name``; returns its URL."""
    return server.route(
        f"/{name}", respond(make_png(width, height, "RGB", "photo"), content_type="image/png")
    )


def write_csv(path: Path, rows: Sequence[Row], header: Sequence[str] | None = None) -> Path:
    """A product CSV with one row per (serial, name, urls)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header or ("S. No.", "Product Name", "Input Image Urls"))
        for serial, name, urls in rows:
            writer.writerow((serial, name, ",".join(urls)))
    return path


def speed_shown(window: MainWindow, request_id: str) -> bool:
    """True once the status bar shows a speed for the running request, as stored now."""
    window.requests_model.refresh_request(request_id)
    window.requests_model.flush()
    window.status_bar.refresh()
    return window.status_bar.rate_label.text().endswith("images/s")
