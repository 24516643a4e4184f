"""The window's composition root: every object is built here and handed what it needs.

``run_window`` opens the data folder, the log, the database, the engine and the webhook
sender, resumes whatever a quit or crash interrupted, shows the window, and runs Qt's loop
with asyncio on it (qasync) until the window closes. Nothing else looks objects up
globally; see STYLE.md section 1.

The demo runs in a temporary data folder of its own (unless one is named explicitly), so its
requests, whose URLs point at a loopback server that ends with the demo, never land in the
user's history.

SIGTERM and SIGINT (Ctrl-C in the terminal that started it) close the window as its close
button does, without asking; the exit code is then 128 + the signal's number (143, 130). A
window that cannot start says why in one line on stderr (the traceback goes to the log).

A second launch on a data folder whose window is open hands its CSV files to that window,
which comes forward, and exits 0 with one line (:mod:`imgdesk.gui.single_instance`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import cast

import qasync
from PySide6.QtCore import QEvent, QObject, QSettings, QSocketNotifier, Qt, QTimer, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QDialog, QLabel, QMessageBox

from imgdesk import __version__
from imgdesk.core import handover
from imgdesk.core.db import close_database, open_database
from imgdesk.core.errors import ImdeskError, SettingsError
from imgdesk.core.instance import DataDirLock
from imgdesk.core.logs import setup_logging, stop_logging
from imgdesk.core.outbox import Outbox
from imgdesk.core.paths import (
    DATA_DIR_ENV,
    database_path,
    log_dir,
    resolve_data_dir,
    resource_path,
)
from imgdesk.core.redact import redact_url
from imgdesk.core.repository import Repository
from imgdesk.core.retention import remove_expired_files
from imgdesk.core.secrets import load_secret
from imgdesk.core.settings import Settings
from imgdesk.core.storage_choice import StorageShelf
from imgdesk.core.webhook import DELIVERED
from imgdesk.engine.engine import Engine
from imgdesk.engine.finisher import RequestFinisher
from imgdesk.engine.webhooks import WebhookSender
from imgdesk.gui.crash import CrashHandler
from imgdesk.gui.log_view import TailLogHandler
from imgdesk.gui.main_window import MainWindow
from imgdesk.gui.processing_page import (
    BROKER_ENV,
    DATABASE_ENV,
    ProcessingChoice,
    ProcessingPlace,
)
from imgdesk.gui.single_instance import HandoverServer, ask_window
from imgdesk.gui.window_settings import name_application, window_settings

logger = logging.getLogger(__name__)

DATA_DIR_KEY = "data_dir"
EXIT_FAILED = 1  # an unexpected error, or a demo that did not end as designed
EXIT_REJECTED = 2  # an expected failure (an unusable data folder), as the command line says
EXIT_ALREADY_RUNNING = 2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GUI_SWITCH_INTERVAL_S = 0.0003
RESTART = -1  # _run_window's answer when Settings → Processing switched: open it again


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
    stop_logging()  # an open file cannot be deleted on Windows
    shutil.rmtree(folder, ignore_errors=True)


class StopSignals(QObject):
    """SIGINT and SIGTERM as a Qt signal on the GUI thread, noticed at once while Qt's loop runs.

    Python runs a signal handler only once the interpreter gets control, which an idle Qt
    loop may not give it for a long time. So the C-level handler also writes the signal's
    number to a socket (``signal.set_wakeup_fd``) whose notifier wakes the loop. The Python
    handler does nothing: it only replaces the default (die at once, or ``KeyboardInterrupt``
    raised in whatever Qt slot runs).

    Signals:
        received(int): SIGINT or SIGTERM arrived (its number).
    """

    received = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        """Prepare the wake-up socket; nothing changes until :meth:`install`."""
        super().__init__(parent)
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._on_wakeup_readable)
        self._previous_handlers: dict[int, object] = {}
        self._previous_wakeup_fd = -1
        self._installed = False

    def install(self) -> None:
        """Handle the stop signals from now on (only the main thread can)."""
        if threading.current_thread() is not threading.main_thread():
            logger.debug("not on the main thread: stop signals keep their handlers")
            return
        self._previous_wakeup_fd = signal.set_wakeup_fd(
            self._writer.fileno(), warn_on_full_buffer=False
        )
        self._installed = True
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) is signal.SIG_IGN:
                continue  # e.g. a script's background job: its shell meant Ctrl-C to pass by
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def uninstall(self) -> None:
        """Put the previous handlers back and close the socket."""
        if self._installed:
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
            signal.set_wakeup_fd(self._previous_wakeup_fd)
            self._previous_handlers.clear()
            self._installed = False
        self._notifier.setEnabled(False)
        self._reader.close()
        self._writer.close()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """The wake-up byte carries the signal to :meth:`_on_wakeup_readable`."""

    def _on_wakeup_readable(self) -> None:
        try:
            numbers = self._reader.recv(64)
        except OSError:  # nothing to read after all
            return
        for number in numbers:
            if number in STOP_SIGNALS:
                self.received.emit(number)


@dataclass
class _Ending:
    """How the run ends: a stop signal or the demo's ``--quit-when-done`` set the exit code."""

    exit_code: int = 0
    decided: bool = False

    def decide(self, exit_code: int) -> bool:
        """Keep the first reason to end; False if one was already decided."""
        if self.decided:
            return False
        self.exit_code, self.decided = exit_code, True
        return True


def _close_without_asking(app: QApplication, window: MainWindow) -> None:
    """Close open dialogs and the window, as its close button does, but with no question."""
    for widget in app.topLevelWidgets():
        if isinstance(widget, QDialog) and widget.isVisible():
            widget.reject()
    # Nobody is there to answer "Quit now?": a signal or the finished demo decided.
    window._confirm_quit = lambda: True  # type: ignore[method-assign]
    window.close()


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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
    name_application()
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


def undelivered_text(status_code: int | None, error: str | None, outcome: str) -> str:
    """One sentence for a test event that was not delivered, naming the HTTP status once.

    The sender's error often names the status already ("HTTP 500 Internal Server Error"):
    prefixing it again read "HTTP 500: HTTP 500 Internal Server Error".
    """
    reason = (error or outcome).strip().rstrip(".")
    if status_code and str(status_code) not in reason:
        reason = f"HTTP {status_code}: {reason}"
    return f"Not delivered: {reason}."


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
                text = undelivered_text(outcome.status_code, outcome.error, outcome.outcome)
                report(text, False)

        asyncio.ensure_future(run())

    return test


def run_window(
    data_dir: str | None,
    files: list[Path],
    demo: bool = False,
    *,
    qsettings: QSettings | None = None,
    install_crash_handler: bool = True,
    quit_when_done: bool = False,
    database_url: str | None = None,
    broker_url: str | None = None,
) -> int:
    """Open the window (with ``files`` loaded) and run until it closes; returns the exit code.

    Args:
        data_dir: ``--data-dir`` from the command line, or None.
        files: CSV files to load at start, as if dropped on the window.
        demo: serve the bundled sample catalogue from a loopback server and load it; without
            ``data_dir`` or ``$IMGDESK_DATA_DIR``, in a temporary data folder removed at exit.
        qsettings: where the window remembers its layout (tests pass a temp file).
        install_crash_handler: show a crash dialog for bugs (tests turn it off).
        quit_when_done: with ``demo``, close the window once the sample request finished:
            exit 0 if it ended as designed (see :func:`imgdesk.demo.unplanned_outcomes`),
            else 1, with one line on stderr either way.
        database_url: ``--database``: work on this cluster, whatever Settings → Processing
            says (so does ``$IMGDESK_DATABASE_URL``).
        broker_url: ``--broker``, as ``database_url``.

    Returns:
        0 once closed; 128 + the signal's number when closed by SIGTERM (143) or SIGINT (130);
        1 after an unexpected error, 2 when the data folder cannot be used or is in use.
    """
    qsettings = qsettings if qsettings is not None else window_settings()
    demo_folder = choose_demo_data_dir(data_dir) if demo else None
    folder = demo_folder or choose_data_dir(data_dir, qsettings)
    keep_demo_folder = False
    place = ProcessingChoice(qsettings).in_use(None, database_url, broker_url)
    # Named on the command line or in the environment: no other place will do.
    explicit = bool(database_url or broker_url or os.environ.get(DATABASE_ENV))
    explicit = explicit or bool(os.environ.get(BROKER_ENV))
    try:
        while True:
            exit_code = _run_window(
                folder,
                files,
                demo,
                demo_folder is not None,
                qsettings,
                install_crash_handler,
                quit_when_done,
                ProcessingPlace() if demo else place,
                fall_back=not explicit,
            )
            if exit_code != RESTART:
                return exit_code
            # Settings → Processing changed: the same window again, on the new choice.
            place = ProcessingChoice(qsettings).in_use(None, database_url, broker_url)
            files = []
            logger.info("restarting the window to process on %s", place.mode)
    except ImdeskError as error:
        # Expected (an unusable data folder or database): its message says what to do.
        if logging.getLogger().hasHandlers():
            logger.error("the window cannot open: %s", error)
        _say(f"imgdesk: {error}")
        return EXIT_REJECTED
    except Exception as error:
        # A bug or a broken installation: the traceback goes to the log, one line to stderr.
        # Without a log yet, logging would print the traceback to stderr: not for users.
        if logging.getLogger().hasHandlers():
            logger.exception("the window stopped on an unexpected error")
        keep_demo_folder = True  # its log is the only record of what happened
        details = (
            f"; the log in {log_dir(folder)} has the details" if log_dir(folder).is_dir() else ""
        )
        _say(f"imgdesk: unexpected error: {error or type(error).__name__}{details}.")
        return EXIT_FAILED
    finally:
        if demo_folder is not None and not keep_demo_folder:
            _remove_demo_data_dir(demo_folder)


def _run_window(
    folder: Path,
    files: list[Path],
    demo: bool,
    temporary_folder: bool,
    qsettings: QSettings,
    install_crash_handler: bool,
    quit_when_done: bool,
    place: ProcessingPlace,
    fall_back: bool = True,
) -> int:
    """Set up, run and tear down one window on ``place``; the exit code, or RESTART.

    ``fall_back``: a saved cluster that cannot be reached opens the window on this computer
    (saying so), where Settings → Processing can change the choice.
    """
    # Whatever was set up is undone in reverse order, also when a step fails.
    undo = contextlib.ExitStack()
    try:
        log_path = setup_logging(folder)
        app = application()
        stop_signals = StopSignals()
        stop_signals.install()  # before any work starts, so a signal never cuts it off midway
        undo.callback(stop_signals.uninstall)
        tail = TailLogHandler()
        root_logger = logging.getLogger()
        root_logger.addHandler(tail)
        undo.callback(root_logger.removeHandler, tail)
        logger.info("imgdesk %s starting; data folder %s", __version__, folder)
        if temporary_folder:
            logger.info("demo: using the temporary data folder %s, removed at exit", folder)

        windows: list[MainWindow] = []  # the window, once built
        crash = CrashHandler(log_path, lambda: windows[0] if windows else None)
        if install_crash_handler:
            crash.install()
            undo.callback(crash.uninstall)

        # One processing instance per data folder: two engines would fetch every image twice.
        lock = DataDirLock(folder)
        if not lock.acquire("window"):
            if _hand_over(folder, files):
                return 0
            _refuse_folder_in_use(lock, folder)
            return EXIT_ALREADY_RUNNING
        undo.callback(lock.release)
        undo.callback(close_database)
        undo.callback(logger.info, "imgdesk stopped")
        # After the engine stopped (below), so its last signals still reach a live window.
        undo.callback(_delete_windows, app, windows)
        # Stopped after the engine too: its downloads in flight go back to pending, not fail.
        demo_csv = _start_demo(folder, undo) if demo else None

        ending = _Ending()
        window, engine, webhooks = _open_window_on(
            place, fall_back, folder, qsettings, tail, log_path, undo
        )
        windows.append(window)
        _follow_choice(app, window, qsettings, ending)
        # While the lock is held: a second launch hands its files over instead of failing.
        handover_server = HandoverServer(folder, window.receive_files, window.cancel_by_id)
        handover_server.start()
        undo.callback(handover_server.close)

        stop_signals.received.connect(lambda signum: _on_stop_signal(signum, ending, app, window))
        if demo and engine is not None:
            files = _load_demo(
                app, window, engine, Repository(), demo_csv, files, quit_when_done, ending
            )
        _run_loop(app, window, webhooks, files, undo)
        return ending.exit_code
    finally:
        undo.close()


def _open_window_on(
    place: ProcessingPlace,
    fall_back: bool,
    folder: Path,
    qsettings: QSettings,
    tail: TailLogHandler,
    log_path: Path,
    undo: contextlib.ExitStack,
) -> tuple[MainWindow, Engine | None, WebhookSender | None]:
    """The window on the cluster or on this computer, with its engine (None on a cluster)."""
    unreachable = None
    if place.is_cluster:
        try:
            window, webhooks = _build_cluster_window(place, folder, qsettings, tail, log_path, undo)
            return window, None, webhooks
        except ImdeskError as error:
            if not fall_back:
                raise  # --database or IMGDESK_DATABASE_URL named it: nothing else will do
            logger.warning("the cluster cannot be reached (%s): working here", error)
            unreachable = error
    open_database(database_path(folder))
    repository = Repository()
    engine, local_webhooks, finisher = _start_engine(repository, folder, undo)
    window = _build_window(
        repository, engine, local_webhooks, finisher, folder, qsettings, tail, log_path
    )
    if unreachable is not None:
        _say_cluster_unreachable(window, unreachable)
    return window, engine, local_webhooks


def _follow_choice(
    app: QApplication, window: MainWindow, qsettings: QSettings, ending: _Ending
) -> None:
    """A different Settings → Processing choice, once saved, restarts the window on it.

    The choice is the window's child: the settings dialog over the window keeps it there.
    """
    choice = ProcessingChoice(qsettings, window)

    def restart() -> None:
        if ending.decide(RESTART):
            _say("imgdesk: the processing place changed; the window opens again on it.")
            # Once the settings dialog has closed.
            QTimer.singleShot(0, lambda: _close_without_asking(app, window))

    choice.changed.connect(restart)


def _say_cluster_unreachable(window: MainWindow, error: ImdeskError) -> None:
    """Say, without blocking the start, that this run works here instead of on the cluster."""
    _say(f"imgdesk: {error} The window works on this computer this time.")
    box = QMessageBox(
        QMessageBox.Icon.Warning,
        "The cluster cannot be reached",
        f"{error}\n\nThe window works on this computer this time; Settings → Processing "
        "changes where requests are processed.",
        QMessageBox.StandardButton.Ok,
        window,
    )
    box.setObjectName("cluster_unreachable")
    box.setModal(False)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    QTimer.singleShot(0, box.show)


def _build_cluster_window(
    place: ProcessingPlace,
    folder: Path,
    qsettings: QSettings,
    tail: TailLogHandler,
    log_path: Path,
    undo: contextlib.ExitStack,
) -> tuple[MainWindow, None]:
    """The window on a cluster: the shared database, a :class:`ClusterFront` for an engine.

    No webhook sender and no finisher here: the cluster's workers finish the requests and
    deliver their webhooks (SPEC 11).
    """
    from imgdesk.core.cluster_store import open_shared_database
    from imgdesk.gui.cluster_front import ClusterFront

    open_shared_database(place.database_url)
    settings = _load_settings(Repository())
    access_key = settings.s3_access_key_id
    storages = StorageShelf(folder, access_key, load_secret(access_key))
    front = ClusterFront(place.broker_url, settings, storages)
    undo.callback(front.shutdown)
    engine = cast(Engine, front)  # the same surface, see imgdesk.gui.cluster_front
    window = MainWindow(
        front.repository,
        engine,
        folder,
        qsettings,
        log_handler=tail,
        log_path=log_path,
        outbox=front.outbox,  # the deliveries as last polled, like the requests
    )
    label = QLabel()
    label.setObjectName("cluster_status")
    label.setWordWrap(False)
    window.statusBar().addPermanentWidget(label)

    def show_connection(problem: str) -> None:
        label.setText(problem or "Cluster")
        label.setStyleSheet("color: #b91c1c;" if problem else "")
        label.setToolTip(problem or f"Processing on the cluster ({redact_url(place.database_url)})")

    show_connection("")
    front.connection_changed.connect(show_connection)
    front.images_listed.connect(window.images_model.load_more)
    front.deliveries_changed.connect(lambda _request_id: window.webhook_panel.schedule_refresh())
    front.start()
    logger.info("the window works on the cluster (%s)", redact_url(place.database_url))
    return window, None


def _start_engine(
    repository: Repository, folder: Path, undo: contextlib.ExitStack
) -> tuple[Engine, WebhookSender, RequestFinisher]:
    """The engine, the webhook sender and the finisher, stopped by ``undo`` in that order."""
    settings = _load_settings(repository)
    # The window's S3 keys: the access key from the settings, its secret from the keyring;
    # without an access key, the standard AWS sources (environment, profile).
    access_key = settings.s3_access_key_id
    storages = StorageShelf(folder, access_key, load_secret(access_key))
    engine = Engine(repository, settings, folder, storages=storages)
    webhooks = WebhookSender(Outbox(), settings)
    # Each finished request gets its output CSV and webhook event, even one that finishes
    # while resuming, before the window exists; the last CSVs are waited for at exit.
    finisher = RequestFinisher(repository, engine, webhooks, engine)
    undo.callback(finisher.wait)
    undo.callback(engine.shutdown)
    return engine, webhooks, finisher


def _load_demo(
    app: QApplication,
    window: MainWindow,
    engine: Engine,
    repository: Repository,
    demo_csv: Path | None,
    files: list[Path],
    quit_when_done: bool,
    ending: _Ending,
) -> list[Path]:
    """The files to load with the sample CSV; with ``quit_when_done``, close once it finished."""
    if demo_csv is None:
        QMessageBox.warning(window, "Demo", "The demo catalogue is not part of this build.")
    else:
        files = [*files, demo_csv]
    if quit_when_done:

        def on_demo_done(exit_code: int) -> None:
            if ending.decide(exit_code):
                # Once the window's own slots for the finished request have run.
                QTimer.singleShot(0, lambda: _close_without_asking(app, window))

        _quit_when_demo_done(engine, repository, demo_csv, on_demo_done)
    return files


def _hand_over(folder: Path, files: list[Path]) -> bool:
    """Give ``files`` to the window already open on ``folder`` and bring it forward.

    True once that window took them (one line on stderr says so); False when the folder
    is held by something else (``imgdesk process``) or the window did not answer.
    """
    answer = ask_window(folder, {handover.OPEN: [str(path.absolute()) for path in files]})
    if answer is None or answer["ok"] is not True:
        return False
    logger.info("handed %s files to the window already open on %s", len(files), folder)
    if files:
        names = ", ".join(path.name for path in files[:3]) + (" \u2026" if len(files) > 3 else "")
        _say(f"imgdesk: opened {names} in the imgdesk window already open on {folder}.")
    else:
        _say(f"imgdesk: the imgdesk window is already open on {folder}; it was brought forward.")
    return True


def _refuse_folder_in_use(lock: DataDirLock, folder: Path) -> None:
    """Say, on stderr and in a message box, that another run processes in ``folder``."""
    logger.warning("%s already processes in %s; not opening a window", lock.holder(), folder)
    text = (
        f"imgdesk is busy in the data folder {folder}: {lock.holder()} is processing there, "
        "and a window cannot open beside it."
    )
    advice = (
        "Open the window again once it has finished (imgdesk status shows its progress), "
        "or use another data folder with --data-dir."
    )
    _say(f"imgdesk: {text} {advice}")
    QMessageBox.information(None, "imgdesk is busy in this data folder", f"{text}\n\n{advice}")


def _on_stop_signal(signum: int, ending: _Ending, app: QApplication, window: MainWindow) -> None:
    """SIGTERM or SIGINT: close the window as its close button does, without asking."""
    name = signal.Signals(signum).name
    logger.info("%s received: closing the window", name)
    if ending.decide(128 + signum):
        _say(f"imgdesk: {name} received, closing the window.")
        _close_without_asking(app, window)


def _start_retention(repository: Repository, folder: Path) -> None:
    """With Settings > Remove files after N days on, clean up in the background.

    Deleting from a bucket can take a while, so it runs on a thread of its own (with its own
    database connection); it only touches requests that finished long ago, which the engine
    never runs, and a failure is a log line.
    """
    days = _load_settings(repository).retention_days
    if not days:
        return

    def clean_up() -> None:
        try:
            report = remove_expired_files(repository, StorageShelf(folder), days, time.time())
        except Exception:  # noqa: BLE001 - a maintenance task must never take the window down
            logger.exception("removing old outputs failed")
            return
        logger.info("retention: removed the files of %s requests", len(report.removed))

    threading.Thread(target=clean_up, name="imgdesk-retention", daemon=True).start()


def _build_window(
    repository: Repository,
    engine: Engine,
    webhooks: WebhookSender,
    finisher: RequestFinisher,
    folder: Path,
    qsettings: QSettings,
    tail: TailLogHandler,
    log_path: Path,
) -> MainWindow:
    """Resume interrupted work, then build the window on it."""
    _start_retention(repository, folder)
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
        finisher=finisher,
    )
    window.settings_changed.connect(webhooks.set_settings)
    return window


def _start_demo(folder: Path, undo: contextlib.ExitStack) -> Path | None:
    """Serve the sample pictures on loopback; returns the sample CSV (None if not built in)."""
    if importlib.util.find_spec("imgdesk.demo") is None:
        return None
    from imgdesk.demo import DemoServer, write_demo_csv

    demo_server = DemoServer()
    demo_server.start()
    undo.callback(demo_server.stop)
    return write_demo_csv(folder / "demo", demo_server.base_url)


def _quit_when_demo_done(
    engine: Engine,
    repository: Repository,
    demo_csv: Path | None,
    done: Callable[[int], None],
) -> None:
    """Call ``done(exit code)`` once the sample request finished, saying how on stderr."""
    if demo_csv is None:
        _say("imgdesk demo: the sample catalogue is not part of this build.")
        done(EXIT_FAILED)
        return
    from imgdesk.demo import PLANNED_FAILURES, unplanned_outcomes

    def on_request_finished(request_id: str, _status: str) -> None:
        request = repository.get_request(request_id)
        if request is None or Path(request.csv_path) != demo_csv:
            return
        problems = unplanned_outcomes(repository.list_images(request_id))
        if problems:
            logger.warning("demo: the sample request did not end as designed: %s", problems)
            _say(
                f"imgdesk demo: the sample request did not end as designed: {problems[0]}"
                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                + "."
            )
            done(EXIT_FAILED)
            return
        _say(
            f"imgdesk demo: the sample request finished as designed: {request.done} images "
            f"done, {request.failed} failed on purpose ({', '.join(PLANNED_FAILURES.values())})."
        )
        done(0)

    engine.request_finished.connect(on_request_finished)


def _run_loop(
    app: QApplication,
    window: MainWindow,
    webhooks: WebhookSender | None,
    files: list[Path],
    undo: contextlib.ExitStack,
) -> None:
    """Show the window and run Qt's loop with asyncio on it until the window closes."""
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    undo.callback(asyncio.set_event_loop, None)
    closed = asyncio.Event()
    window.closed.connect(closed.set)
    # The window decides when the app ends (it may ask first); dialogs never do.
    undo.callback(app.setQuitOnLastWindowClosed, app.quitOnLastWindowClosed())
    app.setQuitOnLastWindowClosed(False)

    async def main() -> None:
        if webhooks is not None:
            webhooks.start()
        await closed.wait()

    window.show()
    # What start-up built lives as long as the window: keep it out of the collector's
    # full passes, which otherwise stall the GUI thread for ~20 ms now and then.
    gc.freeze()
    window.load_files(list(files))
    with loop:
        loop.run_until_complete(main())
        if webhooks is not None:
            loop.run_until_complete(webhooks.stop())


def _delete_windows(app: QApplication, windows: list[MainWindow]) -> None:
    """Delete the window now, on the GUI thread, while the database is still open."""
    for window in windows:
        window.deleteLater()
    app.sendPostedEvents(None, QEvent.Type.DeferredDelete)
