"""The imgdesk window (SPEC section 7): drop CSVs, watch them being processed, fix, export.

The window is a thin layer over the engine. It never runs a scheduler of its own and never
writes image state: it calls engine methods (``retry``, ``cancel``, ``pause``...) and
refreshes its models from the repository when the engine's coalesced signals say what
changed. Slow work never runs on the GUI thread: CSV parsing and CSV export run in a
thread pool, thumbnails are decoded in one, originals are downloaded on a daemon thread.

When a request finishes, the window writes its output CSV into the request's folder and
only then queues the request's webhook event, so the event always names the file (see
:meth:`MainWindow.export_on_finish`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from peewee import PeeweeException
from PySide6.QtCore import (
    QByteArray,
    QCoreApplication,
    QEvent,
    QItemSelection,
    QMimeData,
    QModelIndex,
    QPoint,
    QSettings,
    Qt,
    QThreadPool,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QIcon,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyle,
    QSystemTrayIcon,
    QTableView,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from imgdesk import __version__
from imgdesk.core.csvio import Catalogue, write_output_csv
from imgdesk.core.outbox import Outbox
from imgdesk.core.repository import IMPORTING, ImageInfo, Repository, RequestInfo
from imgdesk.core.settings import Settings
from imgdesk.core.storage import request_folder
from imgdesk.engine.engine import Engine, ImageEvent
from imgdesk.engine.webhooks import WebhookSender
from imgdesk.gui.delegates import (
    ElidingDelegate,
    ProgressBarDelegate,
    StateDelegate,
    ThumbnailDelegate,
)
from imgdesk.gui.loading import BackgroundTask, CsvImporter, TaskRelay
from imgdesk.gui.log_view import LogView, TailLogHandler
from imgdesk.gui.models import (
    OBJECT_ROLE,
    ImagesFilterProxyModel,
    ImagesTableModel,
    RequestsTableModel,
    format_bytes,
)
from imgdesk.gui.preview import ImageCache, OriginalFetcher, PreviewPanel
from imgdesk.gui.webhook_view import WebhookPanel

logger = logging.getLogger(__name__)

# Bump when columns or docks change, so an old saved layout is not applied to a new one.
LAYOUT_VERSION = 2
STATUS_INTERVAL_MS = 1000
RATE_WINDOW_S = 10.0
NOTIFY_MS = 8000

# Freedesktop/platform theme icons for the style's standard ones, where a theme has them.
_SP = QStyle.StandardPixmap
_THEME_ICONS = {
    _SP.SP_DialogOpenButton: QIcon.ThemeIcon.DocumentOpen,
    _SP.SP_DialogSaveButton: QIcon.ThemeIcon.DocumentSaveAs,
    _SP.SP_DirOpenIcon: QIcon.ThemeIcon.FolderOpen,
    _SP.SP_FileDialogDetailedView: QIcon.ThemeIcon.DocumentProperties,
    _SP.SP_BrowserReload: QIcon.ThemeIcon.ViewRefresh,
    _SP.SP_MediaPause: QIcon.ThemeIcon.MediaPlaybackPause,
    _SP.SP_MediaPlay: QIcon.ThemeIcon.MediaPlaybackStart,
    _SP.SP_BrowserStop: QIcon.ThemeIcon.ProcessStop,
    _SP.SP_TrashIcon: QIcon.ThemeIcon.EditDelete,
    _SP.SP_FileIcon: QIcon.ThemeIcon.InsertImage,
    _SP.SP_FileDialogInfoView: QIcon.ThemeIcon.DialogInformation,
}

# (url, secret, report(text, ok)): sends a webhook test event and reports the answer.
WebhookTester = Callable[[str, str, Callable[[str, bool], None]], None]

EMPTY_HINT = "Drop CSV files here (or File \u2192 Open)"
# Explicit line breaks: a word-wrapped label centred in a layout gets clipped.
EMPTY_DETAILS = (
    "Each CSV needs the columns <b>S. No.</b>, <b>Product Name</b> and "
    "<b>Input Image Urls</b><br>(one or more image links per product, separated by commas)."
    "<br><br>imgdesk downloads every image, compresses it, and gives you the same CSV back"
    "<br>with an <b>Output Image Urls</b> column."
)


def process_memory_bytes() -> int | None:
    """Memory the process uses (resident set), or None when it cannot be told."""
    try:
        import psutil  # type: ignore[import-not-found]  # optional, used when installed
    except ImportError:
        pass
    else:
        return int(psutil.Process().memory_info().rss)
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/statm", encoding="ascii") as statm:
                return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return None
    if sys.platform == "win32":
        return _windows_working_set()
    try:
        import resource

        # macOS reports bytes (the peak, the best it offers without psutil).
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    except (ImportError, OSError):
        return None


def _windows_working_set() -> int | None:
    import ctypes
    from ctypes import wintypes

    class _Counters(ctypes.Structure):
        _fields_ = [  # noqa: RUF012 - ctypes' own convention
            ("cb", wintypes.DWORD),
            ("PageFaultCount", wintypes.DWORD),
            ("PeakWorkingSetSize", ctypes.c_size_t),
            ("WorkingSetSize", ctypes.c_size_t),
            ("QuotaPeakPagedPoolUsage", ctypes.c_size_t),
            ("QuotaPagedPoolUsage", ctypes.c_size_t),
            ("QuotaPeakNonPagedPoolUsage", ctypes.c_size_t),
            ("QuotaNonPagedPoolUsage", ctypes.c_size_t),
            ("PagefileUsage", ctypes.c_size_t),
            ("PeakPagefileUsage", ctypes.c_size_t),
        ]

    try:
        counters = _Counters()
        counters.cb = ctypes.sizeof(counters)
        windll = ctypes.windll  # type: ignore[attr-defined]
        process = windll.kernel32.GetCurrentProcess()
        if windll.psapi.GetProcessMemoryInfo(process, ctypes.byref(counters), counters.cb):
            return int(counters.WorkingSetSize)
    except (AttributeError, OSError):
        pass
    return None


def write_output_file(
    path: Path, catalogue: Catalogue, outputs: dict[int, list[str | None]], neutralise: bool
) -> None:
    """Write an output CSV, creating its folder (a request with no stored image has none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_output_csv(path, catalogue, outputs, neutralise=neutralise)


def local_files(mime: QMimeData) -> list[Path]:
    """The local files (not folders) a drag carries."""
    if not mime.hasUrls():
        return []
    return [
        Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile() and url.toLocalFile()
    ]


class EmptyState(QWidget):
    """What a first-time user sees: where to drop files and what they must contain."""

    def __init__(self, open_action: QAction, parent: QWidget | None = None) -> None:
        """Build the hint with a button for ``open_action``."""
        super().__init__(parent)
        hint = QLabel(EMPTY_HINT)
        font = hint.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        hint.setFont(font)
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        details = QLabel(EMPTY_DETAILS)
        details.setAlignment(Qt.AlignmentFlag.AlignCenter)
        button = QPushButton(open_action.icon(), "Open CSV files\u2026")
        button.clicked.connect(lambda _checked=False: open_action.trigger())
        icon = QLabel()
        icon.setPixmap(
            self.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogNewFolder).pixmap(64, 64)
        )
        icon.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addWidget(icon)
        layout.addWidget(hint)
        layout.addSpacing(8)
        layout.addWidget(details, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addSpacing(16)
        layout.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(3)


class MainWindow(QMainWindow):
    """The imgdesk window over one engine and repository.

    Args:
        repository: reads for the models; ``create_request`` and settings writes.
        engine: does all processing; the window only calls its methods.
        data_dir: the data folder in use (images, database, logs).
        qsettings: where window geometry, splitters, columns and choices are remembered.
        log_handler: the buffer the log dock shows (None: an empty log dock).
        log_path: the log file, for "Open log folder".
        webhook_tester: sends a webhook test event for the settings dialog (None: no test).
        webhooks: queues the webhook event of each request that finishes, after its output
            CSV is written, and redelivers by hand (None: no event is sent).

    Signals:
        settings_changed(Settings): the user saved new processing settings.
        export_finished(str, str): request id and the path of an output CSV the user exported.
        finish_exported(str, str): a finished request's id and the output CSV written into
            its folder ("" when it could not be written); its webhook event is queued.
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
        parent: QWidget | None = None,
    ) -> None:
        """Build the window and load the requests."""
        super().__init__(parent)
        self._repo = repository
        self._engine = engine
        self._data_dir = data_dir
        self._qsettings = qsettings
        self._log_path = log_path
        self._webhook_tester = webhook_tester
        self._webhooks = webhooks
        self._closing = False
        # Exports being written, by task id: (request id, path, written because it finished).
        self._exports: dict[int, tuple[str, Path, bool]] = {}
        self._next_export_id = 0
        self._export_relay = TaskRelay(self)
        self._export_relay.succeeded.connect(self._on_export_relay_succeeded)
        self._export_relay.failed.connect(self._on_export_relay_failed)
        self._finished_times: deque[float] = deque()
        self._tray: QSystemTrayIcon | None = None
        self._context_image: ImageInfo | None = None
        self._dialogs: set[QWidget] = set()
        self._held: dict[str, str] = {}  # request id -> why it waits for disk space
        self.setWindowTitle("imgdesk")
        self.setObjectName("main_window")
        self.setAcceptDrops(True)
        self.resize(1360, 860)

        self.requests_model = RequestsTableModel(repository, self)
        self.images_model = ImagesTableModel(repository, self)
        self.images_proxy = ImagesFilterProxyModel(self)
        self.images_proxy.setSourceModel(self.images_model)
        self.image_cache = ImageCache(parent=self)
        self.fetcher = OriginalFetcher(self)
        self._io_pool = QThreadPool(self)
        self._io_pool.setMaxThreadCount(2)
        self.importer = CsvImporter(repository, engine, self, self._io_pool)

        self._create_actions()
        self._create_views()
        self._create_menus()
        self._create_toolbar()
        self._create_log_dock(log_handler)
        self._create_webhook_dock()
        self._create_status_bar()
        self._connect_signals()

        self.requests_model.reload()
        self._restore_layout()
        self._update_empty_state()
        if self.requests_model.rowCount():
            self.requests_view.selectRow(0)
        self._update_actions()
        self._on_status_timer_timeout()

    # -- construction -----------------------------------------------------------------------

    def _icon(self, fallback: QStyle.StandardPixmap) -> QIcon:
        """The desktop theme's icon (aware of dark mode where it can be), else the style's."""
        style_icon = self.style().standardIcon(fallback)
        theme = _THEME_ICONS.get(fallback)
        if theme is not None and QIcon.hasThemeIcon(theme):
            return QIcon.fromTheme(theme, style_icon)
        return style_icon

    def _action(
        self,
        text: str,
        slot: Callable[[], None],
        shortcuts: tuple[QKeySequence | QKeySequence.StandardKey | str, ...] = (),
        icon: QStyle.StandardPixmap | None = None,
        tip: str = "",
    ) -> QAction:
        action = QAction(text, self)
        if icon is not None:
            action.setIcon(self._icon(icon))
        if shortcuts:
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)  # shortcuts work wherever the focus is in the window
        return action

    def _create_actions(self) -> None:
        sp = QStyle.StandardPixmap
        self.action_open = self._action(
            "&Open CSV Files\u2026",
            self._on_open_triggered,
            (QKeySequence.StandardKey.Open,),
            sp.SP_DialogOpenButton,
            "Load one or more product CSV files and start processing them",
        )
        self.action_open.setIconText("Open")
        self.action_export = self._action(
            "&Export Output CSV\u2026",
            self._on_export_triggered,
            ("Ctrl+E",),
            sp.SP_DialogSaveButton,
            "Write the CSV with the Output Image Urls column for the selected request",
        )
        self.action_export.setIconText("Export CSV")
        self.action_open_folder = self._action(
            "Open Output &Folder",
            self._on_open_folder_triggered,
            (),
            sp.SP_DirOpenIcon,
            "Show the compressed images of the selected request in your file manager",
        )
        self.action_open_folder.setIconText("Open Folder")
        self.action_settings = self._action(
            "&Settings\u2026",
            self._on_settings_triggered,
            (QKeySequence.StandardKey.Preferences,),
            sp.SP_FileDialogDetailedView,
            "Quality, limits, data folder, public base URL and webhook",
        )
        self.action_settings.setMenuRole(QAction.MenuRole.PreferencesRole)
        self.action_quit = self._action("&Quit", self.close, (QKeySequence.StandardKey.Quit,))
        self.action_quit.setMenuRole(QAction.MenuRole.QuitRole)

        self.action_retry_image = self._action(
            "Retry This Image", self._on_retry_image_triggered, (), sp.SP_BrowserReload
        )
        self.action_retry_selected = self._action(
            "&Retry Selected Images",
            self._on_retry_selected_triggered,
            ("Ctrl+R",),
            sp.SP_BrowserReload,
            "Try the selected failed images again",
        )
        self.action_retry_selected.setIconText("Retry Selected")
        self.action_retry_failures = self._action(
            "Retry All &Failures",
            self._on_retry_failures_triggered,
            ("Ctrl+Shift+R",),
            sp.SP_BrowserReload,
            "Try every failed image of the selected request again",
        )
        self.action_retry_failures.setIconText("Retry Failures")
        self.action_pause = self._action(
            "&Pause All",
            self._on_pause_triggered,
            ("Space", "Ctrl+P"),
            sp.SP_MediaPause,
            "Stop starting new images (running ones finish); press again to resume",
        )
        self.action_pause.setIconText("Pause")
        self.action_cancel = self._action(
            "&Cancel Request",
            self._on_cancel_triggered,
            (),
            sp.SP_BrowserStop,
            "Stop the selected request; its unfinished images fail as cancelled and can be "
            "retried later",
        )
        self.action_cancel.setIconText("Cancel")
        self.action_delete = self._action(
            "&Delete Request\u2026",
            self._on_delete_triggered,
            (QKeySequence.StandardKey.Delete,),
            sp.SP_TrashIcon,
            "Forget the selected request (and, if you choose, delete its images)",
        )
        self.action_delete.setIconText("Delete")
        self.action_copy_url = self._action(
            "&Copy Output URL",
            self._on_copy_url_triggered,
            (QKeySequence.StandardKey.Copy,),
            None,
            "Copy the output URLs of the selected images",
        )
        self.action_copy_input_url = self._action(
            "Copy &Input URL", self._on_copy_input_url_triggered
        )
        self.action_open_image = self._action(
            "Open &Image",
            self._on_open_image_triggered,
            (),
            sp.SP_FileIcon,
            "Open the compressed image in your image viewer",
        )
        self.action_dashboard = self._action(
            "&Dashboard\u2026",
            self._on_dashboard_triggered,
            ("Ctrl+D",),
            sp.SP_FileDialogInfoView,
            "Statistics per request: duration, images/s, bytes saved, error causes",
        )
        self.action_dashboard.setEnabled(_module_available("imgdesk.gui.dashboard"))
        self.action_settings.setEnabled(_module_available("imgdesk.gui.settings_dialog"))
        self.action_focus_search = self._action(
            "Find\u2026", self._on_focus_search_triggered, (QKeySequence.StandardKey.Find,)
        )
        self.action_open_log_folder = self._action(
            "Open &Log Folder", self._on_open_log_folder_triggered
        )
        self.action_open_log_folder.setEnabled(self._log_path is not None)
        self.action_about = self._action("&About imgdesk", self._on_about_triggered)
        self.action_about.setMenuRole(QAction.MenuRole.AboutRole)

    def _create_views(self) -> None:
        # Requests, newest first.
        self.requests_view = QTableView()
        self.requests_view.setObjectName("requests_view")
        self.requests_view.setModel(self.requests_model)
        self._setup_table(self.requests_view)
        self.requests_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.requests_view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.requests_view.setItemDelegateForColumn(
            RequestsTableModel.COL_PROGRESS, ProgressBarDelegate(self.requests_view)
        )
        self.requests_view.setItemDelegateForColumn(
            RequestsTableModel.COL_STATE, StateDelegate(self.requests_view)
        )
        widths = {
            RequestsTableModel.COL_NAME: 280,
            RequestsTableModel.COL_STATE: 120,
            RequestsTableModel.COL_PROGRESS: 220,
            RequestsTableModel.COL_COUNTS: 160,
            RequestsTableModel.COL_SAVED: 90,
            RequestsTableModel.COL_DURATION: 100,
        }
        for column, width in widths.items():
            self.requests_view.horizontalHeader().resizeSection(column, width)
        self.requests_view.customContextMenuRequested.connect(
            self._on_requests_view_context_menu_requested
        )

        # Images of the selected request, sortable and filterable.
        self.images_view = QTableView()
        self.images_view.setObjectName("images_view")
        self.images_view.setModel(self.images_proxy)
        self._setup_table(self.images_view)
        self.images_view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.images_view.setTextElideMode(Qt.TextElideMode.ElideRight)
        for column in (ImagesTableModel.COL_URL, ImagesTableModel.COL_OUTPUT):
            self.images_view.setItemDelegateForColumn(
                column, ElidingDelegate(Qt.TextElideMode.ElideMiddle, self.images_view)
            )
        header = self.images_view.horizontalHeader()
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # input order until asked
        header.setSortIndicatorShown(True)
        self.images_view.setSortingEnabled(True)
        self.images_view.setItemDelegateForColumn(
            ImagesTableModel.COL_STATE, StateDelegate(self.images_view)
        )
        self.images_view.setItemDelegateForColumn(
            ImagesTableModel.COL_THUMBNAIL, ThumbnailDelegate(self.image_cache, self.images_view)
        )
        row_height = self.images_view.fontMetrics().height() + 12
        self.images_view.verticalHeader().setDefaultSectionSize(row_height)
        self.requests_view.verticalHeader().setDefaultSectionSize(row_height)
        widths = {
            ImagesTableModel.COL_SERIAL: 60,
            ImagesTableModel.COL_PRODUCT: 200,
            ImagesTableModel.COL_POSITION: 32,
            ImagesTableModel.COL_THUMBNAIL: row_height + 10,
            ImagesTableModel.COL_STATE: 130,
            ImagesTableModel.COL_SIZE: 150,
            ImagesTableModel.COL_SAVINGS: 60,
            ImagesTableModel.COL_ERROR_CODE: 120,
            ImagesTableModel.COL_ERROR: 320,
            ImagesTableModel.COL_OUTPUT: 220,
        }
        for column, width in widths.items():
            header.resizeSection(column, width)
        self.images_view.customContextMenuRequested.connect(
            self._on_images_view_context_menu_requested
        )
        self.images_view.doubleClicked.connect(self._on_images_view_double_clicked)

        self.state_filter_combo = QComboBox()
        self.state_filter_combo.setObjectName("state_filter")
        for key, (label, _states) in ImagesFilterProxyModel.FILTERS.items():
            self.state_filter_combo.addItem(label, key)
        self.state_filter_combo.currentIndexChanged.connect(self._on_state_filter_changed)
        self.search_edit = QLineEdit()
        self.search_edit.setObjectName("search")
        self.search_edit.setPlaceholderText("Search product, URL or error")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setAcceptDrops(False)
        self.search_edit.textChanged.connect(self.images_proxy.set_text_filter)
        self.images_title = QLabel()
        font = self.images_title.font()
        font.setBold(True)
        self.images_title.setFont(font)
        self.images_count_label = QLabel()
        filters = QHBoxLayout()
        filters.addWidget(self.images_title)
        filters.addWidget(self.images_count_label)
        filters.addStretch(1)
        filters.addWidget(QLabel("Show:"))
        filters.addWidget(self.state_filter_combo)
        filters.addWidget(self.search_edit, 1)
        images_pane = QWidget()
        images_layout = QVBoxLayout(images_pane)
        images_layout.setContentsMargins(0, 0, 0, 0)
        images_layout.addLayout(filters)
        images_layout.addWidget(self.images_view, 1)

        self.preview = PreviewPanel(self.image_cache, self.fetcher, lambda: self._engine.settings)
        self.preview.setObjectName("preview")
        for action in (
            self.action_retry_image,
            self.action_copy_url,
            self.action_open_image,
        ):
            self.preview.add_action_button(action)

        self.lower_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.lower_splitter.setObjectName("lower_splitter")
        self.lower_splitter.addWidget(images_pane)
        self.lower_splitter.addWidget(self.preview)
        self.lower_splitter.setStretchFactor(0, 3)
        self.lower_splitter.setStretchFactor(1, 1)
        self.lower_splitter.setSizes([920, 420])
        self.main_splitter = QSplitter(Qt.Orientation.Vertical)
        self.main_splitter.setObjectName("main_splitter")
        self.main_splitter.addWidget(self.requests_view)
        self.main_splitter.addWidget(self.lower_splitter)
        self.main_splitter.setStretchFactor(0, 1)
        self.main_splitter.setStretchFactor(1, 3)
        self.main_splitter.setSizes([130, 560])
        self.main_splitter.setChildrenCollapsible(False)

        self.empty_state = EmptyState(self.action_open)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_state)
        self.stack.addWidget(self.main_splitter)
        self.setCentralWidget(self.stack)

    @staticmethod
    def _setup_table(view: QTableView) -> None:
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.setAlternatingRowColors(True)
        view.setWordWrap(False)
        view.setCornerButtonEnabled(False)
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        view.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        view.verticalHeader().setVisible(False)
        # Fixed row heights: the view never measures 10,000 rows to lay them out.
        view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = view.horizontalHeader()
        header.setSectionsMovable(True)
        header.setHighlightSections(False)
        header.setStretchLastSection(True)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)

    def _create_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.action_open)
        file_menu.addAction(self.action_export)
        file_menu.addAction(self.action_open_folder)
        file_menu.addSeparator()
        file_menu.addAction(self.action_settings)
        file_menu.addSeparator()
        file_menu.addAction(self.action_quit)
        edit_menu = bar.addMenu("&Edit")
        edit_menu.addAction(self.action_copy_url)
        edit_menu.addAction(self.action_copy_input_url)
        edit_menu.addSeparator()
        edit_menu.addAction(self.action_focus_search)
        request_menu = bar.addMenu("&Request")
        request_menu.addAction(self.action_retry_selected)
        request_menu.addAction(self.action_retry_failures)
        request_menu.addSeparator()
        request_menu.addAction(self.action_pause)
        request_menu.addAction(self.action_cancel)
        request_menu.addAction(self.action_delete)
        self.view_menu = bar.addMenu("&View")
        self.view_menu.addAction(self.action_dashboard)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.action_open_log_folder)
        help_menu.addAction(self.action_about)

    def _create_toolbar(self) -> None:
        toolbar = QToolBar("Main toolbar")
        toolbar.setObjectName("main_toolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.addAction(self.action_open)
        toolbar.addAction(self.action_export)
        toolbar.addAction(self.action_open_folder)
        toolbar.addSeparator()
        toolbar.addAction(self.action_retry_selected)
        toolbar.addAction(self.action_retry_failures)
        toolbar.addSeparator()
        toolbar.addAction(self.action_pause)
        toolbar.addAction(self.action_cancel)
        toolbar.addAction(self.action_delete)
        toolbar.addSeparator()
        toolbar.addAction(self.action_dashboard)
        toolbar.addAction(self.action_settings)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
        self.view_menu.addAction(toolbar.toggleViewAction())

    def _create_log_dock(self, handler: TailLogHandler | None) -> None:
        self.log_view = LogView(handler)
        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("log_dock")
        self.log_dock.setWidget(self.log_view)
        self.log_dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.resizeDocks([self.log_dock], [130], Qt.Orientation.Vertical)
        toggle = self.log_dock.toggleViewAction()
        toggle.setText("&Log")
        toggle.setShortcut(QKeySequence("Ctrl+L"))
        self.view_menu.addAction(toggle)

    def _create_webhook_dock(self) -> None:
        # Beside the log, full width: deliveries and attempts side by side fit there, where
        # the preview column would cramp them. The outbox is only read here.
        self.webhook_panel = WebhookPanel(Outbox(), self._webhooks, lambda: self._engine.settings)
        self.webhook_panel.setObjectName("webhook_panel")
        self.webhook_panel.settings_requested.connect(self._on_webhook_settings_requested)
        self.webhook_dock = QDockWidget("Webhook deliveries", self)
        self.webhook_dock.setObjectName("webhook_dock")
        self.webhook_dock.setWidget(self.webhook_panel)
        self.webhook_dock.setFeatures(self.log_dock.features())
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.webhook_dock)
        self.tabifyDockWidget(self.log_dock, self.webhook_dock)
        self.log_dock.raise_()
        # Room for an event's four attempts (the default retries) without scrolling.
        self.resizeDocks([self.log_dock], [165], Qt.Orientation.Vertical)
        toggle = self.webhook_dock.toggleViewAction()
        toggle.setText("&Webhook Deliveries")
        toggle.setStatusTip("Webhook events sent for the selected request, and every attempt")
        toggle.triggered.connect(self._on_webhook_toggle_triggered)
        self.view_menu.addAction(toggle)

    def _create_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_alert = QLabel()
        self.status_paused = QLabel()
        self.status_rate = QLabel()
        self.status_workers = QLabel()
        self.status_counts = QLabel()
        self.status_memory = QLabel()
        self.status_rate.setToolTip(
            f"Images finished per second over the last {RATE_WINDOW_S:.0f} s"
        )
        self.status_workers.setToolTip("Images being downloaded or compressed right now")
        self.status_counts.setToolTip("Images done and failed, over every request")
        self.status_memory.setToolTip("Memory imgdesk uses")
        for label in (
            self.status_alert,
            self.status_paused,
            self.status_rate,
            self.status_workers,
            self.status_counts,
            self.status_memory,
        ):
            label.setContentsMargins(6, 0, 6, 0)
            bar.addPermanentWidget(label)
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(STATUS_INTERVAL_MS)
        self._status_timer.timeout.connect(self._on_status_timer_timeout)
        self._status_timer.start()

    def _connect_signals(self) -> None:
        engine = self._engine
        engine.images_changed.connect(self.images_model.refresh_images)
        engine.request_changed.connect(self.requests_model.refresh_request)
        engine.request_finished.connect(self._on_engine_request_finished)
        engine.image_finished.connect(self._on_engine_image_finished)
        engine.paused_changed.connect(self._on_engine_paused_changed)
        engine.request_held.connect(self._on_engine_request_held)
        self.requests_model.requests_refreshed.connect(self._on_requests_refreshed)
        self.requests_model.rowsInserted.connect(self._update_empty_state)
        self.requests_model.rowsRemoved.connect(self._update_empty_state)
        self.requests_model.modelReset.connect(self._update_empty_state)
        self.images_model.images_refreshed.connect(self._on_images_refreshed)
        self.images_model.modelReset.connect(self._update_images_counts)
        self.images_proxy.rowsInserted.connect(self._update_images_counts)
        self.images_proxy.rowsRemoved.connect(self._update_images_counts)
        self.images_proxy.modelReset.connect(self._update_images_counts)
        self.images_model.loading_finished.connect(self._update_images_counts)
        self.requests_view.selectionModel().selectionChanged.connect(
            self._on_requests_selection_changed
        )
        self.images_view.selectionModel().selectionChanged.connect(
            self._on_images_selection_changed
        )
        self.images_view.selectionModel().currentRowChanged.connect(
            self._on_images_current_row_changed
        )
        self.importer.request_created.connect(self._on_importer_request_created)
        self.importer.file_rejected.connect(self._on_importer_file_rejected)
        self.importer.recording_progress.connect(self._on_importer_recording_progress)
        self.importer.request_listed.connect(self._on_importer_request_listed)
        self.importer.request_removed.connect(self.requests_model.refresh_request)
        self.preview.compare_original_changed.connect(self._on_preview_compare_changed)

    # -- layout persistence -----------------------------------------------------------------

    def _restore_layout(self) -> None:
        settings = self._qsettings
        if settings.value("layout/version", 0, int) != LAYOUT_VERSION:
            return
        for key, restore in (
            ("window/geometry", self.restoreGeometry),
            ("splitters/main", self.main_splitter.restoreState),
            ("splitters/lower", self.lower_splitter.restoreState),
            ("columns/requests", self.requests_view.horizontalHeader().restoreState),
            ("columns/images", self.images_view.horizontalHeader().restoreState),
            ("splitters/webhook", self.webhook_panel.splitter.restoreState),
            (
                "columns/webhook_deliveries",
                self.webhook_panel.deliveries_view.horizontalHeader().restoreState,
            ),
            (
                "columns/webhook_attempts",
                self.webhook_panel.attempts_view.horizontalHeader().restoreState,
            ),
        ):
            value = settings.value(key)
            if isinstance(value, QByteArray | bytes):
                restore(QByteArray(value))
        state = settings.value("window/state")
        if isinstance(state, QByteArray | bytes):
            self.restoreState(QByteArray(state), LAYOUT_VERSION)
        compare = settings.value("preview/compare_original", True, bool)
        self.preview.set_compare_original(bool(compare))

    def save_layout(self) -> None:
        """Remember geometry, docks, splitters and columns in QSettings (filters start afresh)."""
        settings = self._qsettings
        settings.setValue("layout/version", LAYOUT_VERSION)
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        settings.setValue("splitters/main", self.main_splitter.saveState())
        settings.setValue("splitters/lower", self.lower_splitter.saveState())
        settings.setValue("columns/requests", self.requests_view.horizontalHeader().saveState())
        settings.setValue("columns/images", self.images_view.horizontalHeader().saveState())
        panel = self.webhook_panel
        settings.setValue("splitters/webhook", panel.splitter.saveState())
        settings.setValue(
            "columns/webhook_deliveries", panel.deliveries_view.horizontalHeader().saveState()
        )
        settings.setValue(
            "columns/webhook_attempts", panel.attempts_view.horizontalHeader().saveState()
        )
        settings.setValue("preview/compare_original", self.preview.compare_original())
        settings.sync()

    # -- public API -------------------------------------------------------------------------

    def load_files(self, paths: list[Path]) -> None:
        """Read CSV files in the background and start a request for each accepted one."""
        if paths:
            names = ", ".join(path.name for path in paths[:3])
            more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
            self.statusBar().showMessage(f"Reading {names}{more}\u2026", 5000)
            self.importer.load(paths)

    def current_request(self) -> RequestInfo | None:
        """The selected request, as last read."""
        rows = self.requests_view.selectionModel().selectedRows()
        if not rows:
            return None
        return self.requests_model.request_at(rows[0].row())

    def select_request(self, request_id: str) -> None:
        """Select a request in the list (showing its images)."""
        self.requests_model.flush()
        row = self.requests_model.row_of(request_id)
        if row is not None:
            self.requests_view.selectRow(row)
            self.requests_view.scrollTo(self.requests_model.index(row, 0))

    def selected_images(self) -> list[ImageInfo]:
        """The selected images, in the order shown."""
        rows = self.images_view.selectionModel().selectedRows()
        images = [index.data(OBJECT_ROLE) for index in sorted(rows, key=QModelIndex.row)]
        return [image for image in images if isinstance(image, ImageInfo)]

    def current_image(self) -> ImageInfo | None:
        """The image with the keyboard focus, if it is selected."""
        index = self.images_view.currentIndex()
        if not index.isValid() or not self.images_view.selectionModel().isRowSelected(
            index.row(), QModelIndex()
        ):
            selected = self.selected_images()
            return selected[0] if selected else None
        image = index.data(OBJECT_ROLE)
        return image if isinstance(image, ImageInfo) else None

    def export_to(self, request_id: str, path: Path, *, on_finish: bool = False) -> None:
        """Write a request's output CSV to ``path`` in the background.

        ``on_finish``: the export policy's own export (:meth:`export_on_finish`); its outcome
        queues the webhook instead of talking to the user.
        """
        catalogue, outputs = self._repo.export_data(request_id)
        neutralise = self._engine.settings.neutralise_formulas
        self._next_export_id += 1
        task_id = self._next_export_id
        self._exports[task_id] = (request_id, path, on_finish)
        task = BackgroundTask(
            self._export_relay, task_id, write_output_file, path, catalogue, outputs, neutralise
        )
        if self._closing:
            # The window is going: no event loop will deliver a result, and nobody is
            # looking. Write now, so the finished request's webhook is still queued.
            task.run()
        else:
            self._io_pool.start(task)

    def export_on_finish(self, request_id: str) -> None:
        """The export policy of a finished request: its output CSV first, then its webhook.

        The CSV goes to ``<request folder>/<CSV name>-output.csv``, written off the GUI
        thread and recorded as the request's output; only then is the webhook event queued,
        so its ``output_csv`` names that file. If the file cannot be written, the event is
        queued all the same (with whatever output was recorded before) and a warning logged.
        """
        request = self._repo.get_request(request_id)
        if request is None:
            return
        stem = Path(request.csv_name).stem or "products"
        try:
            path = request_folder(self._data_dir, request_id) / f"{stem}-output.csv"
            self.export_to(request_id, path, on_finish=True)
        except (PeeweeException, ValueError) as error:
            self._on_finish_export_done(request_id, None, error)

    def _on_export_relay_succeeded(self, task_id: int, _result: object) -> None:
        found = self._exports.pop(task_id, None)
        if found is None:
            return
        request_id, path, on_finish = found
        if on_finish:
            self._on_finish_export_done(request_id, path, None)
            return
        if self._repo.get_request(request_id) is not None:
            self._repo.set_output_csv(request_id, path.absolute().as_uri())
        logger.info("exported request %s to %s", request_id, path)
        self.statusBar().showMessage(f"Exported {path.name} to {path.parent}", 10000)
        self.export_finished.emit(request_id, str(path))

    def _on_export_relay_failed(self, task_id: int, error: object) -> None:
        found = self._exports.pop(task_id, None)
        if found is None:
            return
        request_id, path, on_finish = found
        if on_finish:
            self._on_finish_export_done(request_id, path, error)
            return
        logger.error("export of %s to %s failed: %s", request_id, path, error)
        reason = getattr(error, "strerror", None) or str(error)
        self._show_message(
            QMessageBox.Icon.Warning,
            "Export failed",
            f"{path.name} could not be written.",
            f"{reason}\n\nChoose another folder or file name and try again.",
        )

    def _on_finish_export_done(
        self, request_id: str, path: Path | None, error: object | None
    ) -> None:
        """Record the output CSV written on finish (if it was), then queue the webhook."""
        if error is None and path is not None and self._repo.get_request(request_id) is not None:
            try:
                self._repo.set_output_csv(request_id, path.absolute().as_uri())
            except PeeweeException as db_error:
                error = db_error
        if error is None and path is not None:
            logger.info("output CSV of request %s written to %s", request_id, path)
        else:
            reason = getattr(error, "strerror", None) or str(error)
            name = path.name if path is not None else "The output CSV"
            logger.warning(
                "the output CSV of request %s could not be written to %s: %s; its webhook is "
                "queued with the output recorded before",
                request_id,
                path,
                reason,
            )
            self.statusBar().showMessage(f"{name} could not be written: {reason}", 10000)
        self._queue_webhook(request_id)
        self.finish_exported.emit(request_id, str(path) if error is None and path else "")

    def _queue_webhook(self, request_id: str) -> None:
        if self._webhooks is None:
            return
        request = self._repo.get_request(request_id)
        if request is None or not request.finished:
            # Deleted, or retried meanwhile: its next finish queues an event of its own.
            logger.info("request %s is no longer finished; no webhook event", request_id)
            return
        try:
            queued = self._webhooks.request_finished(request)
        except PeeweeException as error:
            logger.error("webhook event of request %s could not be queued: %s", request_id, error)
            return
        shown = self.webhook_panel.request
        if queued is not None and shown is not None and shown.id == request_id:
            self.webhook_panel.refresh()

    def _flush_finish_exports(self) -> None:
        """At close: hand over finished exports' results, so no webhook event is left out."""
        if not any(on_finish for _id, _path, on_finish in self._exports.values()):
            return
        # The pool is done; its results wait as queued calls on this thread.
        QCoreApplication.sendPostedEvents(None, QEvent.Type.MetaCall)
        for task_id, (request_id, path, on_finish) in list(self._exports.items()):
            if on_finish:
                # Still being written after the wait: queue the event without it.
                del self._exports[task_id]
                self._on_finish_export_done(
                    request_id, path, TimeoutError("still being written at exit")
                )

    # -- drag and drop ----------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        """Accept local files dropped anywhere on the window."""
        paths = local_files(event.mimeData())
        if paths:
            event.acceptProposedAction()
            count = f"{len(paths)} files" if len(paths) > 1 else paths[0].name
            self.statusBar().showMessage(f"Drop to load {count}")
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802
        """Keep accepting while the files move over the window."""
        if local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:  # noqa: N802
        """Forget the drop hint."""
        self.statusBar().clearMessage()
        super().dragLeaveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        """Load the dropped files."""
        paths = local_files(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.load_files(paths)

    # -- closing ----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        """Ask before quitting mid-work, remember the layout, stop background helpers."""
        if self._engine.is_busy() and not self._confirm_quit():
            event.ignore()
            return
        self._closing = True
        self.save_layout()
        self._status_timer.stop()
        self.log_view.stop()
        self.fetcher.stop()
        self._io_pool.waitForDone(5000)  # an export being written is finished, not cut
        self._flush_finish_exports()
        self.importer.shutdown()
        self.image_cache.shutdown()
        if self._tray is not None:
            self._tray.hide()
        event.accept()
        self.closed.emit()

    def _confirm_quit(self) -> bool:
        answer = QMessageBox.question(
            self,
            "Quit imgdesk?",
            "imgdesk is still processing images. Quit now?\n\n"
            "Nothing is lost: unfinished images are picked up again the next time you open "
            "imgdesk.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    # -- actions ----------------------------------------------------------------------------

    def _on_open_triggered(self) -> None:
        start = str(self._qsettings.value("paths/open", str(Path.home())))
        names, _filter = QFileDialog.getOpenFileNames(
            self, "Open product CSV files", start, "CSV files (*.csv *.tsv *.txt);;All files (*)"
        )
        if names:
            paths = [Path(name) for name in names]
            self._qsettings.setValue("paths/open", str(paths[0].parent))
            self.load_files(paths)

    def _on_export_triggered(self) -> None:
        request = self.current_request()
        if request is None:
            return
        previous = Path(QUrl(request.output_csv).toLocalFile()) if request.output_csv else None
        finish_folder = request_folder(self._data_dir, request.id).absolute()
        if previous is not None and previous.parent != finish_folder:
            suggested = previous
        else:
            # Not the copy written on finish deep in the data folder: next to the input.
            stem = Path(request.csv_name).stem or "products"
            folder = Path(request.csv_path).parent if request.csv_path else None
            folder = folder or Path(str(self._qsettings.value("paths/export", str(Path.home()))))
            suggested = folder / f"{stem}-output.csv"
        name, _filter = QFileDialog.getSaveFileName(
            self, "Export the output CSV", str(suggested), "CSV files (*.csv);;All files (*)"
        )
        if not name:
            return
        path = Path(name)
        self._qsettings.setValue("paths/export", str(path.parent))
        if request.pending or request.in_flight:
            self.statusBar().showMessage(
                f"{request.csv_name} is still processing: the export has what is done so far.",
                8000,
            )
        self.export_to(request.id, path)

    def _on_open_folder_triggered(self) -> None:
        request = self.current_request()
        if request is None:
            return
        folder = request_folder(self._data_dir, request.id)
        if not folder.is_dir():
            self.statusBar().showMessage("No image of this request has been stored yet.", 5000)
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def _on_retry_image_triggered(self) -> None:
        image = self._context_image or self.current_image()
        self._context_image = None
        if image is not None:
            self._retry(image.request_id, [image])

    def _on_retry_selected_triggered(self) -> None:
        images = self.selected_images()
        if images:
            self._retry(images[0].request_id, images)

    def _retry(self, request_id: str, images: list[ImageInfo]) -> None:
        failed = [image.id for image in images if image.status == "failed"]
        if not failed:
            self.statusBar().showMessage("Only failed images can be retried.", 5000)
            return
        count = self._engine.retry(request_id, failed)
        self.statusBar().showMessage(f"Retrying {count} image{'s' if count != 1 else ''}.", 5000)

    def _on_retry_failures_triggered(self) -> None:
        request = self.current_request()
        if request is None:
            return
        count = self._engine.retry(request.id)
        self.statusBar().showMessage(
            f"Retrying {count} failed image{'s' if count != 1 else ''} of {request.csv_name}.",
            5000,
        )

    def _on_pause_triggered(self) -> None:
        if self._engine.paused:
            self._engine.resume()
        else:
            self._engine.pause()

    def _on_cancel_triggered(self) -> None:
        request = self.current_request()
        if request is None or request.finished:
            return
        if self.importer.stop_reading(request.id):  # its row goes by request_removed
            self.statusBar().showMessage(f"Stopped reading {request.csv_name}.", 8000)
            return
        self._engine.cancel(request.id)
        self.statusBar().showMessage(
            f"Cancelled {request.csv_name}. Use Retry All Failures to carry on later.", 8000
        )

    def _on_delete_triggered(self) -> None:
        request = self.current_request()
        if request is None:
            return
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Delete request?",
            f"Delete the request for {request.csv_name} ({request.total:,} images) from imgdesk?",
            QMessageBox.StandardButton.Cancel,
            self,
        )
        delete_button = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setInformativeText("Its history disappears from the list. This cannot be undone.")
        remove_files = QCheckBox("Also delete its compressed images from disk")
        box.setCheckBox(remove_files)
        request_id = request.id

        def finished(_result: int) -> None:
            if box.clickedButton() is delete_button:
                self.importer.stop_reading(request_id)  # if its file is still being read
                self._engine.delete(request_id, remove_files=remove_files.isChecked())
                self.requests_model.refresh_request(request_id)
                self.requests_model.flush()
                self.statusBar().showMessage(f"Deleted {request.csv_name}.", 5000)

        self._open_dialog(box, finished)

    def _on_copy_url_triggered(self) -> None:
        urls = [image.output_url for image in self.selected_images() if image.output_url]
        if urls:
            QGuiApplication.clipboard().setText("\n".join(urls))
            self.statusBar().showMessage(
                f"Copied {len(urls)} output URL{'s' if len(urls) != 1 else ''}.", 4000
            )

    def _on_copy_input_url_triggered(self) -> None:
        urls = [image.url for image in self.selected_images()]
        if urls:
            QGuiApplication.clipboard().setText("\n".join(urls))

    def _on_open_image_triggered(self) -> None:
        image = self._context_image or self.current_image()
        self._context_image = None
        if image is not None and image.output_path and Path(image.output_path).is_file():
            QDesktopServices.openUrl(QUrl.fromLocalFile(image.output_path))

    def _on_focus_search_triggered(self) -> None:
        self.search_edit.setFocus()
        self.search_edit.selectAll()

    def _on_settings_triggered(self) -> None:
        self.open_settings()

    def _on_webhook_settings_requested(self) -> None:
        if self.action_settings.isEnabled():
            self.open_settings("Webhook")

    def _on_webhook_toggle_triggered(self, checked: bool) -> None:
        if checked:
            self.webhook_dock.raise_()  # in front of the log it shares a place with

    def open_settings(self, page: str = "") -> None:
        """Open the settings dialog (on the tab titled ``page``, if given)."""
        from imgdesk.gui.settings_dialog import SettingsDialog

        dialog_box: list[SettingsDialog] = []

        def send_test_event(url: str, secret: str) -> None:
            if self._webhook_tester is None:
                return

            def report(text: str, ok: bool) -> None:
                # RuntimeError: the dialog was closed meanwhile.
                with contextlib.suppress(RuntimeError):
                    dialog_box[0].show_test_result(text, ok)

            self._webhook_tester(url, secret, report)

        dialog = SettingsDialog(
            self._engine.settings,
            self._data_dir,
            self,
            send_test_event if self._webhook_tester is not None else None,
        )
        dialog_box.append(dialog)
        tabs = dialog.findChild(QTabWidget)
        if page and tabs is not None:
            for index in range(tabs.count()):
                if tabs.tabText(index).replace("&", "") == page:
                    tabs.setCurrentIndex(index)

        def finished(result: int) -> None:
            if result == SettingsDialog.DialogCode.Accepted:
                self._apply_settings(dialog.result_settings(), dialog.result_data_dir())

        self._open_dialog(dialog, finished)

    def _apply_settings(self, settings: Settings, data_dir: Path) -> None:
        self._repo.save_settings(settings)
        self._engine.set_settings(settings)
        self.settings_changed.emit(settings)
        self.webhook_panel.set_request(self.current_request())  # a URL may be set now
        logger.info("settings saved")
        if data_dir.absolute() != self._data_dir.absolute():
            self._qsettings.setValue("data_dir", str(data_dir))
            overridden = " It is overridden by --data-dir or IMGDESK_DATA_DIR, if given."
            self._show_message(
                QMessageBox.Icon.Information,
                "Data folder changed",
                f"imgdesk will use {data_dir} the next time it starts.",
                "The requests and images of the current folder stay where they are." + overridden,
            )

    def _on_dashboard_triggered(self) -> None:
        from imgdesk.gui.dashboard import DashboardDialog

        dialog = DashboardDialog(self._repo, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def _on_open_log_folder_triggered(self) -> None:
        if self._log_path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._log_path.parent)))

    def _on_about_triggered(self) -> None:
        QMessageBox.about(
            self,
            "About imgdesk",
            f"<b>imgdesk {__version__}</b><p>Downloads, compresses and catalogues product "
            f"images from CSV files.</p><p>Data folder: {self._data_dir}</p>",
        )

    # -- context menus ----------------------------------------------------------------------

    def _on_requests_view_context_menu_requested(self, pos: QPoint) -> None:
        index = self.requests_view.indexAt(pos)
        if not index.isValid():
            return
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        for action in (
            self.action_export,
            self.action_open_folder,
            None,
            self.action_retry_failures,
            self.action_cancel,
            self.action_delete,
        ):
            if action is None:
                menu.addSeparator()
            else:
                menu.addAction(action)
        menu.popup(self.requests_view.viewport().mapToGlobal(pos))

    def _on_images_view_context_menu_requested(self, pos: QPoint) -> None:
        index = self.images_view.indexAt(pos)
        image = index.data(OBJECT_ROLE) if index.isValid() else None
        self._context_image = image if isinstance(image, ImageInfo) else None
        self.action_retry_image.setEnabled(
            self._context_image is not None and self._context_image.status == "failed"
        )
        self.action_open_image.setEnabled(
            self._context_image is not None and bool(self._context_image.output_path)
        )
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addAction(self.action_retry_image)
        menu.addAction(self.action_retry_selected)
        menu.addAction(self.action_retry_failures)
        menu.addSeparator()
        menu.addAction(self.action_copy_url)
        menu.addAction(self.action_copy_input_url)
        menu.addAction(self.action_open_image)
        menu.addAction(self.action_open_folder)
        # The menu hides before its chosen action runs: forget the row only afterwards.
        menu.aboutToHide.connect(lambda: QTimer.singleShot(0, self._on_context_menu_closed))
        menu.popup(self.images_view.viewport().mapToGlobal(pos))

    def _on_context_menu_closed(self) -> None:
        self._context_image = None
        self._update_actions()

    def _on_images_view_double_clicked(self, index: QModelIndex) -> None:
        image = index.data(OBJECT_ROLE)
        if isinstance(image, ImageInfo) and image.status == "failed":
            self._retry(image.request_id, [image])
        elif isinstance(image, ImageInfo) and image.output_path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(image.output_path))

    # -- model and selection slots ----------------------------------------------------------

    def _on_requests_selection_changed(self, *_: QItemSelection) -> None:
        request = self.current_request()
        request_id = request.id if request is not None else None
        if request_id != self.images_model.request_id:
            self.images_model.set_request(request_id)
            self.preview.show_image(None)
        self.images_title.setText(request.csv_name if request is not None else "")
        self.webhook_panel.set_request(request)
        self._update_images_counts()
        self._update_actions()

    def _on_images_selection_changed(self, *_: QItemSelection) -> None:
        self.preview.show_image(self.current_image())
        self._update_actions()

    def _on_images_current_row_changed(self, *_: QModelIndex) -> None:
        self.preview.show_image(self.current_image())

    def _on_images_refreshed(self, image_ids: list[int]) -> None:
        shown = self.preview.image
        if shown is not None and shown.id in set(image_ids):
            row = self.images_model.row_of(shown.id)
            if row is not None:
                self.preview.show_image(self.images_model.image_at(row))
        self._update_images_counts()
        self._update_actions()

    def _on_requests_refreshed(self, _request_ids: list[str]) -> None:
        # A removed request may have been the selected one: follow what is selected now.
        self._on_requests_selection_changed()
        self._update_status_counts()

    def _on_state_filter_changed(self, _index: int) -> None:
        key = self.state_filter_combo.currentData()
        if isinstance(key, str):
            self.images_proxy.set_state_filter(key)

    def _on_preview_compare_changed(self, enabled: bool) -> None:
        self._qsettings.setValue("preview/compare_original", enabled)

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

    # -- engine slots -----------------------------------------------------------------------

    def _on_engine_request_finished(self, request_id: str, status: str) -> None:
        self.requests_model.refresh_request(request_id)
        request = self._repo.get_request(request_id)
        if request is None:
            return
        if status == "completed":
            text = f"{request.csv_name}: all {request.total:,} images are done."
        else:
            text = (
                f"{request.csv_name}: {request.done:,} done, {request.failed:,} of "
                f"{request.total:,} failed."
            )
        self.statusBar().showMessage(text, 10000)
        if not self._in_foreground():
            self._notify("imgdesk finished a request", text)
        self.export_on_finish(request_id)

    def _on_engine_image_finished(self, _event: ImageEvent) -> None:
        self._finished_times.append(time.monotonic())

    def _on_engine_request_held(self, request_id: str, message: str) -> None:
        """The disk is full (message) or has room again (""): say so where it is seen."""
        self.requests_model.set_held(request_id, bool(message))
        self.requests_model.refresh_request(request_id)
        if message:
            self._held[request_id] = message
        else:
            self._held.pop(request_id, None)
        if self._held:
            self.status_alert.setText("<b>Waiting for disk space</b>")
            self.status_alert.setToolTip("\n".join(self._held.values()))
        else:
            self.status_alert.setText("")
            self.status_alert.setToolTip("")
        request = self.requests_model.get(request_id)
        name = request.csv_name if request is not None else "A request"
        if message:
            self.statusBar().showMessage(f"{name}: {message}")
            if not self._in_foreground():
                self._notify("imgdesk is waiting for disk space", f"{name}: {message}")
        else:
            self.statusBar().showMessage(f"{name}: there is room again, carrying on.", 10000)

    def _on_engine_paused_changed(self, paused: bool) -> None:
        sp = QStyle.StandardPixmap
        self.action_pause.setText("&Resume All" if paused else "&Pause All")
        self.action_pause.setIconText("Resume" if paused else "Pause")
        self.action_pause.setIcon(self._icon(sp.SP_MediaPlay if paused else sp.SP_MediaPause))
        self.requests_model.set_paused(paused)
        self.status_paused.setText("<b>Paused</b>" if paused else "")
        self.statusBar().showMessage(
            "Paused: running images finish, no new ones start." if paused else "Resumed.", 5000
        )

    # -- helpers ----------------------------------------------------------------------------

    def _update_empty_state(self, *_: object) -> None:
        self.stack.setCurrentIndex(0 if self.requests_model.rowCount() == 0 else 1)

    def _update_images_counts(self, *_: object) -> None:
        # From the request's stored counters: counting loaded rows would walk up to 300,000
        # of them for every page the images table appends.
        request = self.current_request()
        if self.images_model.request_id is None or request is None:
            self.images_count_label.setText("Select a request to see its images")
            return
        text = f"{request.total:,} images"
        if request.failed:
            text += f", {request.failed:,} failed"
        if self.images_model.is_loading:
            text += f" \u2014 loading, {self.images_model.rowCount():,} so far"
        elif self.images_proxy.rowCount() != request.total:
            text += f" \u2014 {self.images_proxy.rowCount():,} shown"
        self.images_count_label.setText(text)

    def _update_actions(self) -> None:
        request = self.current_request()
        has_request = request is not None
        recorded = request is not None and request.status != IMPORTING
        self.action_export.setEnabled(recorded)
        self.action_open_folder.setEnabled(recorded)
        self.action_delete.setEnabled(has_request)
        self.action_retry_failures.setEnabled(request is not None and request.failed > 0)
        self.action_cancel.setEnabled(request is not None and not request.finished)
        selected = self.selected_images()
        self.action_retry_selected.setEnabled(any(i.status == "failed" for i in selected))
        self.action_copy_url.setEnabled(any(i.output_url for i in selected))
        self.action_copy_input_url.setEnabled(bool(selected))
        current = self.current_image()
        self.action_retry_image.setEnabled(current is not None and current.status == "failed")
        self.action_open_image.setEnabled(current is not None and bool(current.output_path))

    def _on_status_timer_timeout(self) -> None:
        now = time.monotonic()
        times = self._finished_times
        while times and now - times[0] > RATE_WINDOW_S:
            times.popleft()
        if times and self._engine.is_busy():
            span = max(1.0, min(RATE_WINDOW_S, now - times[0]))
            self.status_rate.setText(f"{len(times) / span:.1f} images/s")
        elif self._engine.is_busy():
            self.status_rate.setText("0 images/s")
        else:
            self.status_rate.setText("Idle")
        settings = self._engine.settings
        self.status_workers.setText(f"Workers: {self._engine.active_count}/{settings.concurrency}")
        self._update_status_counts()
        memory = process_memory_bytes()
        self.status_memory.setText(f"Memory: {format_bytes(memory)}" if memory else "")

    def _update_status_counts(self) -> None:
        requests = self.requests_model.requests()
        done = sum(request.done for request in requests)
        failed = sum(request.failed for request in requests)
        self.status_counts.setText(f"{done:,} done \u00b7 {failed:,} failed")

    def _in_foreground(self) -> bool:
        return (
            self.isActiveWindow()
            and not self.isMinimized()
            and QGuiApplication.applicationState() == Qt.ApplicationState.ApplicationActive
        )

    def _notify(self, title: str, text: str) -> None:
        """Tell a user who is looking elsewhere: a tray message, or at least an alert."""
        if QSystemTrayIcon.isSystemTrayAvailable() and QSystemTrayIcon.supportsMessages():
            if self._tray is None:
                icon = self.windowIcon()
                if icon.isNull():
                    icon = self.style().standardIcon(QStyle.StandardPixmap.SP_ComputerIcon)
                self._tray = QSystemTrayIcon(icon, self)
                self._tray.setToolTip("imgdesk")
                self._tray.messageClicked.connect(self._on_tray_message_clicked)
                self._tray.show()
            self._tray.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information, NOTIFY_MS)
        else:
            QApplication.alert(self, 0)

    def _on_tray_message_clicked(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def _open_dialog(self, dialog: QWidget, on_finished: Callable[[int], None]) -> None:
        """Open a dialog window-modal without a nested event loop; call back when it closes."""
        self._dialogs.add(dialog)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def finished(result: int) -> None:
            self._dialogs.discard(dialog)
            on_finished(result)
            self._update_actions()

        dialog.finished.connect(finished)  # type: ignore[attr-defined]
        dialog.open()  # type: ignore[attr-defined]

    def open_dialogs(self) -> list[QWidget]:
        """Dialogs opened by the window that are still on screen (for tests)."""
        return list(self._dialogs)

    def _show_message(
        self, icon: QMessageBox.Icon, title: str, text: str, informative: str = ""
    ) -> None:
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self)
        if informative:
            box.setInformativeText(informative)
        self._open_dialog(box, lambda _result: None)


def _module_available(name: str) -> bool:
    """True when a module written alongside this one is there (it may be added later)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
