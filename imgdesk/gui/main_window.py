"""The imgdesk window (SPEC section 7): drop CSVs, watch them being processed, fix, export.

The window is a thin layer over the engine. It never runs a scheduler of its own and never
writes image state: it calls engine methods (``retry``, ``cancel``, ``pause``...) and
refreshes its models from the repository when the engine's coalesced signals say what
changed. Slow work never runs on the GUI thread: CSV parsing and CSV export run in a
thread pool, thumbnails are decoded in one, originals are downloaded on a daemon thread.

:class:`MainWindow` is the composition of its parts, each in its own module and each
keeping its own layout: the actions (:mod:`~imgdesk.gui.actions`), the requests pane, the
images pane with the preview, the log and webhook docks, and the status bar. What is left
here are the flows between them: selection, the user's commands, the engine's news.

When a request finishes, :class:`~imgdesk.engine.finisher.RequestFinisher` writes its output
CSV into the request's folder and only then queues its webhook event; the window shows what
it did. The user's own exports are :class:`~imgdesk.gui.exports.RequestExports`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import (
    QSettings,
    QSize,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QGuiApplication,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QToolBar,
    QWidget,
)

from imgdesk.core.csvio import output_csv_name
from imgdesk.core.errors import BUSY_RETRY_MS, DatabaseBusyError
from imgdesk.core.outbox import Outbox
from imgdesk.core.paths import file_of_url
from imgdesk.core.repository import ImageInfo, Repository, RequestInfo
from imgdesk.core.secrets import load_secret
from imgdesk.core.settings import Settings
from imgdesk.engine.engine import Engine
from imgdesk.engine.finisher import RequestFinisher
from imgdesk.engine.webhooks import WebhookSender
from imgdesk.gui.actions import (
    IMAGE_MENU,
    MENU_BAR,
    PREVIEW_BUTTONS,
    REQUEST_MENU,
    TOOLBAR,
    Action,
    WindowActions,
)
from imgdesk.gui.commands import RequestCommands, finished_message
from imgdesk.gui.dashboard import DashboardDialog
from imgdesk.gui.dialogs import (
    choose_csv_files,
    confirm_quit,
    show_about,
)
from imgdesk.gui.exports import RequestExports
from imgdesk.gui.help import guide_dialog, shortcuts_dialog
from imgdesk.gui.image_loading import ImageCache, OriginalFetcher
from imgdesk.gui.images_model import ImagesTableModel
from imgdesk.gui.images_pane import ImagesPane
from imgdesk.gui.loading import CsvImporter
from imgdesk.gui.log_view import LogDock, LogView, TailLogHandler
from imgdesk.gui.models import RequestsTableModel
from imgdesk.gui.notifier import Notifier
from imgdesk.gui.progress import LauncherProgress, overall_progress, progress_title
from imgdesk.gui.requests_pane import EmptyState, RequestsPane
from imgdesk.gui.settings_dialog import SettingsDialog, SettingsPage, WebhookTester
from imgdesk.gui.status_bar import StatusBar
from imgdesk.gui.webhook_view import WebhookDock, WebhookPanel
from imgdesk.gui.widgets import DialogTracker, FileDropFilter, restore_saved

logger = logging.getLogger(__name__)

# Bump when columns or docks change, so an old saved layout is not applied to a new one.
LAYOUT_VERSION = 3
TOOLBAR_SLACK = 16  # pixels of the window's width beyond the toolbar's own


class MainWindow(QMainWindow):
    """The imgdesk window over one engine and repository.

    Args:
        repository: reads for the models (every write goes through the engine).
        engine: does all processing; the window only calls its methods.
        data_dir: the data folder in use (images, database, logs).
        qsettings: where window geometry, splitters, columns and choices are remembered.
        log_handler: the buffer the log dock shows (None: an empty log dock).
        log_path: the log file, for "Open log folder".
        webhook_tester: sends a webhook test event for the settings dialog (None: no test).
        webhooks: redelivers webhook events by hand (None: no deliveries dock actions).
        finisher: writes each finished request's output CSV and queues its webhook; the
            window shows what it did (None: nothing is written on finish).
        launcher: shows the overall progress on the taskbar or dock icon (None: the session
            bus's, where there is one).

    Signals:
        settings_changed(Settings): the user saved new processing settings.
        export_finished(str, str): request id and the path of an output CSV the user exported.
        finish_exported(str, str): a finished request's id and the file of its output CSV
            ("" when it could not be written); its webhook event is queued.
        closed(): the window closed; the application should quit.
    """

    settings_changed = Signal(object)
    export_finished = Signal(str, str)
    finish_exported = Signal(str, str)
    closed = Signal()

    def __init__(
        self,
        repository: Repository,
        engine: Engine,
        data_dir: Path,
        qsettings: QSettings,
        *,
        log_handler: TailLogHandler | None = None,
        log_path: Path | None = None,
        webhook_tester: WebhookTester | None = None,
        webhooks: WebhookSender | None = None,
        finisher: RequestFinisher | None = None,
        launcher: LauncherProgress | None = None,
        outbox: Outbox | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """Build the window from its parts and load the requests (``outbox``: the database's)."""
        super().__init__(parent)
        self._outbox = outbox or Outbox()
        self._repo = repository
        self._engine = engine
        self._data_dir = data_dir
        self._qsettings = qsettings
        self._log_path = log_path
        self._webhook_tester = webhook_tester
        self._webhooks = webhooks
        self._finisher = finisher
        self._launcher = launcher if launcher is not None else LauncherProgress()
        if finisher is not None:
            finisher.finished.connect(self._on_finisher_finished)
        self._closing = False
        self.setWindowTitle(progress_title(None, paused=False))
        self.setObjectName("main_window")
        self._drops = FileDropFilter(self, self.load_files, self._on_drop_hint)
        self._dialogs = DialogTracker(on_closed=self._update_actions)

        self.requests_model = RequestsTableModel(repository, engine, self)
        self.images_model = ImagesTableModel(
            repository, self, download_progress=engine.download_progress
        )
        self.image_cache = ImageCache(storage_of=engine.storage_of, parent=self)
        self.fetcher = OriginalFetcher(self)
        self._io_pool = QThreadPool(self)
        self._io_pool.setMaxThreadCount(2)
        self.importer = CsvImporter(engine, self, self._io_pool)
        self.notifier = Notifier(self)
        self.commands = RequestCommands(
            repository, engine, self.importer, self.requests_model, self._dialogs, data_dir, self
        )
        self.exports = RequestExports(
            repository, engine, self._io_pool, self._dialogs, qsettings, data_dir, self
        )

        self._actions = WindowActions(self, self._action_slots())
        self._actions[Action.OPEN_LOG_FOLDER].setEnabled(log_path is not None)
        self._create_central_widget()
        self._create_menus_and_toolbar()
        self.resize(self._first_size())  # once the toolbar exists: it follows the width
        self._create_docks(log_handler)
        self.status_bar = StatusBar(engine, self.requests_model, self)
        self.setStatusBar(self.status_bar)
        self._connect_signals()

        self.requests_model.reload()
        self._restore_layout()
        self._update_empty_state()
        if self.requests_model.rowCount():
            self.requests_pane.selectRow(0)
        self._update_actions()
        self.status_bar.refresh()
        self._update_progress()

    # -- construction -----------------------------------------------------------------------

    def _action_slots(self) -> dict[Action, Callable[[], object]]:
        # What each action does to what is selected. Lambdas, because the panes take the
        # actions and so are built after them.
        commands = self.commands
        return {
            Action.OPEN: self._on_open_triggered,
            Action.EXPORT: lambda: self.exports.export(self.current_request()),
            Action.OPEN_FOLDER: lambda: commands.open_folder(self.current_request()),
            Action.SETTINGS: self.open_settings,
            Action.QUIT: self.close,
            Action.RETRY_IMAGE: lambda: commands.retry(self._take_target_images()),
            Action.RETRY_SELECTED: lambda: commands.retry(self.selected_images()),
            Action.RETRY_FAILED: lambda: commands.retry_failed(self.current_request()),
            Action.PAUSE: commands.toggle_pause,
            Action.CANCEL: lambda: commands.cancel(self.current_request()),
            Action.DELETE: lambda: commands.delete(self.current_request()),
            Action.PRIORITY: lambda: commands.set_priority(
                self.current_request(), self._actions.chosen_priority()
            ),
            Action.COPY_URL: lambda: commands.copy_output_urls(self.selected_images()),
            Action.COPY_INPUT_URL: lambda: commands.copy_input_urls(self.selected_images()),
            Action.OPEN_IMAGE: lambda: commands.open_image(self.images_pane.take_target_image()),
            Action.DASHBOARD: self._on_dashboard_triggered,
            Action.FOCUS_SEARCH: lambda: self.images_pane.focus_search(),
            Action.GUIDE: lambda: self._dialogs.open(guide_dialog(self), lambda _result: None),
            Action.SHORTCUTS: self._on_shortcuts_triggered,
            Action.OPEN_LOG_FOLDER: self._on_open_log_folder_triggered,
            Action.ABOUT: lambda: show_about(self, self._data_dir),
        }

    def _create_central_widget(self) -> None:
        actions = self._actions
        self.requests_pane = RequestsPane(
            self.requests_model, self._qsettings, actions.of(REQUEST_MENU)
        )
        self.images_pane = ImagesPane(
            self.images_model,
            self.image_cache,
            self.fetcher,
            lambda: self._engine.settings,
            self._qsettings,
            actions.of(IMAGE_MENU),
            [actions[key] for key in PREVIEW_BUTTONS],
        )
        self.main_splitter = QSplitter(Qt.Orientation.Vertical)
        self.main_splitter.setObjectName("main_splitter")
        self.main_splitter.addWidget(self.requests_pane)
        self.main_splitter.addWidget(self.images_pane)
        self.main_splitter.setStretchFactor(0, 1)
        self.main_splitter.setStretchFactor(1, 3)
        requests_height = self.requests_pane.minimumSizeHint().height()
        self.main_splitter.setSizes([requests_height + 20, 3 * requests_height])
        self.main_splitter.setChildrenCollapsible(False)
        self.empty_state = EmptyState(actions[Action.OPEN])
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_state)
        self.stack.addWidget(self.main_splitter)
        self.setCentralWidget(self.stack)

    def _create_menus_and_toolbar(self) -> None:
        menus = {}
        for title, keys in MENU_BAR:
            menus[title] = self.menuBar().addMenu(title)
            self._actions.add_to(menus[title], keys)
        self.view_menu = menus["&View"]
        self.toolbar = toolbar = QToolBar("Main toolbar")
        toolbar.setObjectName("main_toolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._actions.add_to(toolbar, TOOLBAR)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
        self.view_menu.addAction(toolbar.toggleViewAction())
        # How wide the buttons are with their words: narrower windows show icons only, so
        # no button (Settings, last) hides behind the overflow arrow.
        self._toolbar_text_width = toolbar.sizeHint().width()

    def _create_docks(self, log_handler: TailLogHandler | None) -> None:
        self.log_view = LogView(log_handler)
        self.log_dock = LogDock(self.log_view, self)
        # The outbox is only read here; the sender writes it.
        self.webhook_panel = WebhookPanel(
            self._outbox, self._webhooks, lambda: self._engine.settings
        )
        self.webhook_dock = WebhookDock(self.webhook_panel, self._qsettings, self)
        # Beside the log, full width: deliveries and attempts side by side fit there, where
        # the preview column would cramp them.
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.webhook_dock)
        self.tabifyDockWidget(self.log_dock, self.webhook_dock)
        self.log_dock.raise_()
        # Room for an event's four attempts (the default retries) without scrolling; less
        # on a short screen, where the requests and images need the height more.
        dock_height = 165 if self.height() >= 800 else 110
        self.resizeDocks([self.log_dock], [dock_height], Qt.Orientation.Vertical)
        self.view_menu.addAction(self.log_dock.toggleViewAction())
        self.view_menu.addAction(self.webhook_dock.toggleViewAction())

    def _connect_signals(self) -> None:
        engine = self._engine
        engine.images_changed.connect(self.images_model.refresh_images)
        engine.images_progressed.connect(self.images_model.refresh_progress)
        engine.request_changed.connect(self.requests_model.refresh_request)
        engine.request_finished.connect(self._on_engine_request_finished)
        engine.paused_changed.connect(self._on_engine_paused_changed)
        engine.request_held.connect(self._on_engine_request_held)
        self.requests_model.requests_refreshed.connect(self._on_requests_refreshed)
        for signal in (
            self.requests_model.rowsInserted,
            self.requests_model.rowsRemoved,
            self.requests_model.modelReset,
        ):
            signal.connect(self._update_empty_state)
        self.images_model.images_refreshed.connect(self._update_actions)
        self.requests_pane.selectionModel().selectionChanged.connect(
            self._on_requests_selection_changed
        )
        self.images_pane.selection_changed.connect(self._update_actions)
        self.images_pane.context_image_changed.connect(self._update_actions)
        self.images_pane.image_activated.connect(self.commands.activate_image)
        self.commands.message.connect(self.statusBar().showMessage)
        self.exports.message.connect(self.statusBar().showMessage)
        self.exports.exported.connect(self.export_finished)
        self.webhook_panel.settings_requested.connect(self._on_webhook_settings_requested)
        self.importer.request_created.connect(self._on_importer_request_created)
        self.importer.file_rejected.connect(self._on_importer_file_rejected)
        self.importer.recording_progress.connect(self._on_importer_recording_progress)
        self.importer.request_listed.connect(self._on_importer_request_listed)
        self.importer.request_removed.connect(self.requests_model.refresh_request)

    def _first_size(self) -> QSize:
        """The size of a first start: roomy, but within the screen (a laptop's 1280x720)."""
        size = QSize(1360, 860)
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is not None:
            room = screen.availableGeometry().size()
            size = size.boundedTo(QSize(room.width(), room.height()))
        return size

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        """Keep every toolbar button in sight: icons only when their words do not fit."""
        super().resizeEvent(event)
        fits = self.width() >= self._toolbar_text_width + TOOLBAR_SLACK
        style = (
            Qt.ToolButtonStyle.ToolButtonTextBesideIcon
            if fits
            else Qt.ToolButtonStyle.ToolButtonIconOnly
        )
        if self.toolbar.toolButtonStyle() != style:
            self.toolbar.setToolButtonStyle(style)

    # -- layout persistence -----------------------------------------------------------------

    def _restore_layout(self) -> None:
        settings = self._qsettings
        if settings.value("layout/version", 0, int) != LAYOUT_VERSION:
            return
        restore_saved(settings, "window/geometry", self.restoreGeometry)
        restore_saved(settings, "splitters/main", self.main_splitter.restoreState)
        self.requests_pane.restore_state()
        self.images_pane.restore_state()
        self.webhook_dock.restore_state()
        restore_saved(
            settings, "window/state", lambda state: self.restoreState(state, LAYOUT_VERSION)
        )

    def save_layout(self) -> None:
        """Remember geometry, docks, splitters and columns in QSettings (filters start afresh)."""
        settings = self._qsettings
        settings.setValue("layout/version", LAYOUT_VERSION)
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        settings.setValue("splitters/main", self.main_splitter.saveState())
        self.requests_pane.save_state()
        self.images_pane.save_state()
        self.webhook_dock.save_state()
        settings.sync()

    # -- public API -------------------------------------------------------------------------

    def action(self, key: Action) -> QAction:
        """The window's action of ``key`` (to trigger it, or to see whether it is enabled)."""
        return self._actions[key]

    def load_files(self, paths: list[Path]) -> None:
        """Read CSV files in the background and start a request for each accepted one."""
        if paths:
            names = ", ".join(path.name for path in paths[:3])
            more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
            self.statusBar().showMessage(f"Reading {names}{more}\u2026", 5000)
            self.importer.load(paths)

    def current_request(self) -> RequestInfo | None:
        """The selected request, as last read."""
        return self.requests_pane.current_request()

    def select_request(self, request_id: str) -> None:
        """Select a request in the list (showing its images)."""
        self.requests_pane.select_request(request_id)

    def selected_images(self) -> list[ImageInfo]:
        """The selected images, in the order shown."""
        return self.images_pane.selected_images()

    def current_image(self) -> ImageInfo | None:
        """The image with the keyboard focus, if it is selected."""
        return self.images_pane.current_image()

    def open_dialogs(self) -> list[QWidget]:
        """Dialogs opened by the window that are still on screen (for tests)."""
        return self._dialogs.dialogs()

    # -- a second launch (imgdesk.gui.single_instance) --------------------------------------

    def receive_files(self, paths: list[Path]) -> int:
        """Load CSV files a second ``imgdesk`` handed over, and come forward; returns how many."""
        self.bring_forward()
        self.load_files(paths)
        return len(paths)

    def bring_forward(self) -> None:
        """Show the window in front (un-minimised), or at least flash it in the taskbar."""
        if self.isMinimized():
            self.showNormal()
        self.show()
        self.raise_()
        self.activateWindow()
        QApplication.alert(self, 0)  # where the window manager refuses to hand over focus

    def cancel_by_id(self, text: str) -> dict[str, object]:
        """``imgdesk cancel TEXT`` reached this window: cancel that request, say how it went.

        ``TEXT`` is a request id or its first characters. The answer is the JSON object
        :mod:`imgdesk.core.handover` sends back.
        """
        return self.commands.cancel_by_id(text)

    # -- finished requests ------------------------------------------------------------------

    def _on_finisher_finished(self, request_id: str, location: str, problem: str) -> None:
        """A finished request's output CSV is written (or not) and its webhook queued."""
        if problem:
            request = self._repo.get_request(request_id)
            name = output_csv_name(request.csv_name) if request else "The output CSV"
            self.statusBar().showMessage(f"{name} could not be written: {problem}", 10000)
        shown = self.webhook_panel.request
        if shown is not None and shown.id == request_id:
            self.webhook_panel.refresh()
        path = file_of_url(location)
        self.finish_exported.emit(request_id, str(path) if path else "")

    # -- closing ----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        """Ask before quitting mid-work, remember the layout, stop background helpers."""
        if self._engine.is_busy() and not self._confirm_quit():
            event.ignore()
            return
        self._closing = True
        self.save_layout()
        self.status_bar.stop()
        self.log_view.stop()
        self.fetcher.stop()
        self._io_pool.waitForDone(5000)  # an export being written is finished, not cut
        if self._finisher is not None:
            self._finisher.wait()  # an output CSV being written is recorded, its event queued
        self.importer.shutdown()
        self.image_cache.shutdown()
        self.notifier.hide()
        self._launcher.set_progress(None)  # no bar left on the icon of a closed window
        event.accept()
        self.closed.emit()

    def _confirm_quit(self) -> bool:
        return confirm_quit(self)

    # -- the user's commands ----------------------------------------------------------------

    def _on_open_triggered(self) -> None:
        self.load_files(choose_csv_files(self, self._qsettings))

    def _on_webhook_settings_requested(self) -> None:
        self.open_settings(SettingsPage.WEBHOOK)

    def open_settings(self, page: SettingsPage | None = None) -> None:
        """Open the settings dialog (on ``page``, if given)."""
        dialog = SettingsDialog.with_webhook_tester(
            self._engine.settings, self._data_dir, self, self._webhook_tester
        )
        if page is not None:
            dialog.show_page(page)

        def finished(result: int) -> None:
            if result == SettingsDialog.DialogCode.Accepted:
                self._apply_settings(dialog.result_settings(), dialog.result_data_dir())

        self._dialogs.open(dialog, finished)

    def _apply_settings(self, settings: Settings, data_dir: Path) -> None:
        try:
            self._engine.save_settings(settings)
            if settings.s3_access_key_id != self._engine.storages.access_key:
                access_key = settings.s3_access_key_id
                self._engine.storages.set_credentials(access_key, load_secret(access_key))
        except DatabaseBusyError as busy:
            # The one busy-database policy: keep the settings and store them shortly.
            logger.warning("database busy, saving the settings shortly: %s", busy)
            QTimer.singleShot(BUSY_RETRY_MS, self, lambda: self._apply_settings(settings, data_dir))
            return
        self.settings_changed.emit(settings)
        self.webhook_panel.set_request(self.current_request())  # a URL may be set now
        logger.info("settings saved")
        if data_dir.absolute() != self._data_dir.absolute():
            self._qsettings.setValue("data_dir", str(data_dir))
            overridden = " It is overridden by --data-dir or IMGDESK_DATA_DIR, if given."
            self._dialogs.show_message(
                self,
                QMessageBox.Icon.Information,
                "Data folder changed",
                f"imgdesk will use {data_dir} the next time it starts.",
                "The requests and images of the current folder stay where they are." + overridden,
            )

    def _on_dashboard_triggered(self) -> None:
        dialog = DashboardDialog(self._repo, self, pool=self._io_pool)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def _on_shortcuts_triggered(self) -> None:
        actions = [*self._actions.of(list(Action)), self.log_dock.toggleViewAction()]
        dialog = shortcuts_dialog(self, [action for action in actions if action is not None])
        self._dialogs.open(dialog, lambda _result: None)

    def _on_open_log_folder_triggered(self) -> None:
        if self._log_path is not None:
            self.commands.open_log_folder(self._log_path)

    # -- selection and the importer ---------------------------------------------------------

    def _on_requests_selection_changed(self, *_: object) -> None:
        request = self.current_request()
        if request is None:
            self.images_pane.show_request(None)
        else:
            self.images_pane.show_request(
                request,
                self.requests_model.failed_of(request),
                self.requests_model.cancelled_of(request.id),
            )
        self.webhook_panel.set_request(request)
        self._update_actions()

    def _on_requests_refreshed(self, _request_ids: list[str]) -> None:
        # A removed request may have been the selected one: follow what is selected now.
        self._on_requests_selection_changed()
        self.status_bar.update_counts()
        self._update_progress()

    def _on_importer_request_listed(self, request_id: str) -> None:
        """A dropped file's first rows are in: show its request while the rest is read.

        Unless the user is watching a request at work: that one stays on screen.
        """
        self.requests_model.refresh_request(request_id)
        shown = self.current_request()
        if shown is None or shown.finished:
            self.select_request(request_id)

    def _on_importer_recording_progress(self, request_id: str, name: str, rows: int) -> None:
        self.statusBar().showMessage(f"Reading {name}: {rows:,} rows so far…", 2000)
        self.requests_model.refresh_request(request_id)
        self.images_model.load_more(request_id)

    def _on_importer_request_created(self, request_id: str) -> None:
        self.requests_model.refresh_request(request_id)
        self.images_model.load_more(request_id)
        if self.current_request() is None:
            self.select_request(request_id)
        self.requests_model.flush()
        request = self.requests_model.get(request_id)
        if request is not None:
            self.statusBar().showMessage(
                f"Processing {request.total:,} images from {request.csv_name}.", 5000
            )

    def _on_importer_file_rejected(self, name: str, message: str) -> None:
        self.statusBar().showMessage(f"{name} was not loaded: {message}", 10000)

    # -- the engine's news ------------------------------------------------------------------

    def _on_engine_request_finished(self, request_id: str, status: str) -> None:
        self.requests_model.refresh_request(request_id)
        request = self._repo.get_request(request_id)
        if request is None:
            return
        cancelled = self._repo.cancelled_counts([request_id]).get(request_id, 0)
        text = finished_message(request, status, cancelled)
        self.statusBar().showMessage(text, 10000)
        self.notifier.notify_if_away("imgdesk finished a request", text)

    def _on_engine_request_held(self, request_id: str, message: str) -> None:
        """The disk is full (message) or has room again (""): say so where it is seen.

        The request's row and the status bar read the engine for whether it is held.
        """
        self.requests_model.repaint_states()
        request = self.requests_model.get(request_id)
        name = request.csv_name if request is not None else "A request"
        if message:
            self.statusBar().showMessage(f"{name}: {message}")
            self.notifier.notify_if_away("imgdesk is waiting for disk space", f"{name}: {message}")
        else:
            self.statusBar().showMessage(f"{name}: there is room again, carrying on.", 10000)

    def _on_engine_paused_changed(self, paused: bool) -> None:
        self._actions.show_paused(paused)
        self.requests_model.repaint_states()  # it reads the engine's answer; so does the bar
        self._update_progress()
        self.statusBar().showMessage(
            "Paused: running images finish, no new ones start." if paused else "Resumed.", 5000
        )

    # -- helpers ----------------------------------------------------------------------------

    def _update_progress(self) -> None:
        """The overall progress in the title ("42 % — imgdesk") and on the taskbar icon."""
        fraction = overall_progress(self.requests_model.requests())
        self.setWindowTitle(progress_title(fraction, self._engine.paused))
        self._launcher.set_progress(fraction)

    def _update_empty_state(self, *_: object) -> None:
        self.stack.setCurrentIndex(0 if self.requests_model.rowCount() == 0 else 1)

    def _update_actions(self, *_: object) -> None:
        pane = self.images_pane
        self._actions.enable_for(
            self.current_request(), pane.selected_images(), pane.target_image()
        )

    def _take_target_images(self) -> list[ImageInfo]:
        image = self.images_pane.take_target_image()
        return [image] if image is not None else []

    def _on_drop_hint(self, text: str) -> None:
        if text:
            self.statusBar().showMessage(text)
        else:
            self.statusBar().clearMessage()
