"""The window's composition root: every object is built here and handed what it needs.

``run_window`` opens the data folder, the log, the database, the engine and the webhook
sender, resumes whatever a quit or crash interrupted, shows the window, and runs Qt's loop
with asyncio on it (qasync) until the window closes. Nothing else looks objects up
globally; see STYLE.md section 1.

The demo runs in a temporary data folder of its own (unless one is named explicitly), so its
requests, whose URLs point at a loopback server that ends with the demo, never land in the
user's history.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import qasync
from PySide6.QtCore import QEvent, QSettings, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from imgdesk import __version__
from imgdesk.core.db import close_database, open_database
from imgdesk.core.errors import SettingsError
from imgdesk.core.instance import DataDirLock
from imgdesk.core.logs import setup_logging
from imgdesk.core.outbox import Outbox
from imgdesk.core.paths import DATA_DIR_ENV, database_path, resolve_data_dir, resource_path
from imgdesk.core.repository import Repository
from imgdesk.core.settings import Settings
from imgdesk.core.webhook import DELIVERED
from imgdesk.engine.engine import Engine
from imgdesk.engine.webhooks import WebhookSender
from imgdesk.gui.crash import CrashHandler
from imgdesk.gui.log_view import TailLogHandler
from imgdesk.gui.main_window import MainWindow

logger = logging.getLogger(__name__)

ORGANIZATION = "imgdesk"
APPLICATION = "imgdesk"
DATA_DIR_KEY = "data_dir"
EXIT_ALREADY_RUNNING = 2
GUI_SWITCH_INTERVAL_S = 0.0003


def choose_data_dir(explicit: str | None, qsettings: QSettings) -> Path:
    """``--data-dir`` > ``$IMGDESK_DATA_DIR`` > the folder chosen in settings > platform default."""
    if explicit or os.environ.get(DATA_DIR_ENV):
        return resolve_data_dir(explicit)
    stored = qsettings.value(DATA_DIR_KEY)
    if isinstance(stored, str) and stored.strip():
        return resolve_data_dir(stored.strip())
    return resolve_data_dir(None)


def choose_demo_data_dir(explicit: str | None) -> Path | None:
    """A fresh temporary folder for the demo, or None when the user named a data folder.

    Only ``--data-dir`` and ``$IMGDESK_DATA_DIR`` count: the folder chosen in the settings
    (QSettings) is the user's real history, which the demo must not touch.
    """
    if explicit or os.environ.get(DATA_DIR_ENV):
        return None
    return Path(tempfile.mkdtemp(prefix="imgdesk-demo-"))


def _remove_demo_data_dir(folder: Path) -> None:
    """Delete the demo's temporary folder, closing the log file it holds open first."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        filename = getattr(handler, "baseFilename", None)
        if filename and Path(filename).is_relative_to(folder):
            # An open file cannot be deleted on Windows.
            root.removeHandler(handler)
            handler.close()
    shutil.rmtree(folder, ignore_errors=True)


def application() -> QApplication:
    """The QApplication, created (and named, for QSettings) if there is none yet."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    # The GUI thread gives up the GIL on every SQLite step and Qt call; with busy workers,
    # getting it back took up to a whole switch interval (5 ms by default) each time.
    # Measured at full speed: 1 ms took the heartbeat's p99 from 28 to 14 ms; 0.3 ms its
    # worst from ~85 to ~57 ms (medians of four runs); throughput did not change.
    sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("imgdesk")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("imgdesk")
    icon_path = resource_path("imgdesk.png")
    if icon_path.is_file():
        app.setWindowIcon(QIcon(str(icon_path)))
    style = app.style()
    if (
        style is not None
        and style.name().lower() == "windowsvista"
        and app.styleHints().colorScheme() == Qt.ColorScheme.Dark
    ):
        # The classic Windows style ignores dark mode; Fusion follows the system palette.
        app.setStyle("Fusion")
    return app


def _load_settings(repository: Repository) -> Settings:
    try:
        return repository.load_settings()
    except (SettingsError, ValueError, TypeError) as error:
        # A hand-edited or newer database: work with defaults rather than not at all.
        logger.warning("stored settings cannot be used (%s); using the defaults", error)
        return Settings()


def _webhook_tester(
    sender: WebhookSender,
) -> Callable[[str, str, Callable[[str, bool], None]], None]:
    """A callback for the settings dialog that POSTs a test event on the asyncio loop."""

    def test(url: str, secret: str, report: Callable[[str, bool], None]) -> None:
        async def run() -> None:
            try:
                outcome = await sender.send_test_event(url, secret or None)
            except Exception as error:  # noqa: BLE001 - reported to the user, not raised
                logger.warning("webhook test failed: %s", error)
                report(f"The test event could not be sent: {error}", False)
                return
            if outcome.outcome == DELIVERED:
                report(
                    f"Delivered: the receiver answered HTTP {outcome.status_code} "
                    f"in {outcome.duration_ms} ms.",
                    True,
                )
            else:
                status = f"HTTP {outcome.status_code}: " if outcome.status_code else ""
                report(f"Not delivered. {status}{outcome.error or outcome.outcome}", False)

        asyncio.ensure_future(run())

    return test


def run_window(
    data_dir: str | None,
    files: list[Path],
    demo: bool = False,
    *,
    qsettings: QSettings | None = None,
    install_crash_handler: bool = True,
) -> int:
    """Open the window (with ``files`` loaded) and run until it closes; returns the exit code.

    Args:
        data_dir: ``--data-dir`` from the command line, or None.
        files: CSV files to load at start, as if dropped on the window.
        demo: serve the bundled sample catalogue from a loopback server and load it; without
            ``data_dir`` or ``$IMGDESK_DATA_DIR``, in a temporary data folder removed at exit.
        qsettings: where the window remembers its layout (tests pass a temp file).
        install_crash_handler: show a crash dialog for bugs (tests turn it off).
    """
    qsettings = qsettings if qsettings is not None else QSettings()
    demo_folder = choose_demo_data_dir(data_dir) if demo else None
    try:
        return _run_window(data_dir, files, demo, demo_folder, qsettings, install_crash_handler)
    finally:
        if demo_folder is not None:
            _remove_demo_data_dir(demo_folder)


def _run_window(
    data_dir: str | None,
    files: list[Path],
    demo: bool,
    demo_folder: Path | None,
    qsettings: QSettings,
    install_crash_handler: bool,
) -> int:
    app = application()
    folder = demo_folder or choose_data_dir(data_dir, qsettings)
    log_path = setup_logging(folder)
    tail = TailLogHandler()
    root_logger = logging.getLogger()
    root_logger.addHandler(tail)
    logger.info("imgdesk %s starting; data folder %s", __version__, folder)
    if demo_folder is not None:
        logger.info("demo: using the temporary data folder %s, removed at exit", demo_folder)

    window: MainWindow | None = None
    crash = CrashHandler(log_path, lambda: window)
    if install_crash_handler:
        crash.install()

    # One processing instance per data folder: two engines would fetch every image twice.
    lock = DataDirLock(folder)
    if not lock.acquire("window"):
        logger.warning("%s already processes in %s; not opening a window", lock.holder(), folder)
        QMessageBox.critical(
            None,
            "imgdesk is already running",
            f"{lock.holder()} is already processing in the data folder\n{folder}\n\n"
            "Switch to that window, or wait for that run to finish (imgdesk status shows "
            "its progress).",
        )
        crash.uninstall()
        root_logger.removeHandler(tail)
        return EXIT_ALREADY_RUNNING

    open_database(database_path(folder))
    repository = Repository()
    settings = _load_settings(repository)
    engine = Engine(repository, settings, folder)
    webhooks = WebhookSender(Outbox(), settings)

    # The window exports each finished request and then queues its webhook. A request that
    # finishes while resuming, before the window exists, is handed to it once it does.
    finished_early: list[str] = []

    def on_request_finished_early(request_id: str, _status: str) -> None:
        finished_early.append(request_id)

    engine.request_finished.connect(on_request_finished_early)
    # Before the window reads anything: in-flight images go back to pending and restart.
    resumed = engine.resume_interrupted()
    if resumed:
        logger.info("resuming %s interrupted requests", len(resumed))

    window = MainWindow(
        repository,
        engine,
        folder,
        qsettings,
        log_handler=tail,
        log_path=log_path,
        webhook_tester=_webhook_tester(webhooks),
        webhooks=webhooks,
    )
    engine.request_finished.disconnect(on_request_finished_early)
    for request_id in finished_early:
        window.export_on_finish(request_id)
    window.settings_changed.connect(webhooks.set_settings)

    demo_server = None
    if demo:
        if importlib.util.find_spec("imgdesk.demo") is None:
            QMessageBox.warning(window, "Demo", "The demo catalogue is not part of this build.")
        else:
            from imgdesk.demo import DemoServer, write_demo_csv

            demo_server = DemoServer()
            demo_server.start()
            files = [*files, write_demo_csv(folder / "demo", demo_server.base_url)]

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    closed = asyncio.Event()
    window.closed.connect(closed.set)
    # The window decides when the app ends (it may ask first); dialogs never do.
    quit_on_last_window = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)

    async def main() -> None:
        webhooks.start()
        await closed.wait()

    try:
        window.show()
        # What start-up built lives as long as the window: keep it out of the collector's
        # full passes, which otherwise stall the GUI thread for ~20 ms now and then.
        gc.freeze()
        window.load_files(list(files))
        with loop:
            loop.run_until_complete(main())
            loop.run_until_complete(webhooks.stop())
    finally:
        engine.shutdown()
        if demo_server is not None:
            demo_server.stop()
        crash.uninstall()
        root_logger.removeHandler(tail)
        asyncio.set_event_loop(None)
        app.setQuitOnLastWindowClosed(quit_on_last_window)
        window.deleteLater()
        app.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        logger.info("imgdesk stopped")
        close_database()
        lock.release()
    return 0
