"""The crash dialog: an unexpected exception (a bug) is logged and shown, not swallowed.

Like Picard's ``crash_handler``: :class:`CrashHandler` installs ``sys.excepthook`` (and
``threading.excepthook``), logs the traceback, and shows a :class:`CrashDialog` with the
traceback and where the log file is. Expected failures never get here: they are typed
errors that become row states or messages, and neither does Ctrl-C, which the window turns
into a normal close (``imgdesk.gui.app.StopSignals``) rather than a ``KeyboardInterrupt``.
Tests leave the hook uninstalled (pytest-qt reports exceptions itself).
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QStyle,
    QVBoxLayout,
    QWidget,
)

logger = logging.getLogger(__name__)


class CrashDialog(QDialog):
    """Shows a bug's traceback, the log file's path, and ways to copy or report them."""

    def __init__(self, details: str, log_path: Path | None, parent: QWidget | None = None) -> None:
        """Build the dialog for one traceback (more can be added with :meth:`add_details`)."""
        super().__init__(parent)
        self._log_path = log_path
        self.setWindowTitle("imgdesk hit a bug")
        layout = QVBoxLayout(self)
        icon = QLabel()
        icon.setPixmap(
            self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical).pixmap(32, 32)
        )
        headline = QLabel(
            "<b>Something went wrong inside imgdesk.</b><br>"
            "Your requests are safe: images that were being processed are picked up again "
            "the next time imgdesk starts. Please send the details below and the log file "
            "to the people who support imgdesk."
        )
        headline.setWordWrap(True)
        layout.addWidget(icon)
        layout.addWidget(headline)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.details.setPlainText(details)
        layout.addWidget(self.details, 1)
        where = f"Log file: {log_path}" if log_path else "No log file is being written."
        self.log_label = QLabel(where)
        self.log_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.log_label.setWordWrap(True)
        layout.addWidget(self.log_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy details", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(self._on_copy_clicked)
        if log_path is not None:
            folder = buttons.addButton("Open log folder", QDialogButtonBox.ButtonRole.ActionRole)
            folder.clicked.connect(self._on_open_folder_clicked)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(760, 460)

    def add_details(self, details: str) -> None:
        """Append another traceback (a bug that followed while the dialog was open)."""
        self.details.appendPlainText("\n" + details)

    def text(self) -> str:
        """Everything a bug report needs: the tracebacks and the log path."""
        return f"{self.details.toPlainText()}\nLog file: {self._log_path}"

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.text())

    def _on_open_folder_clicked(self) -> None:
        if self._log_path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._log_path.parent)))


class CrashHandler(QObject):
    """Routes uncaught exceptions (any thread) to the log and to one :class:`CrashDialog`.

    Signals:
        crashed(str): a formatted traceback; delivered on the GUI thread.
    """

    crashed = Signal(str)

    def __init__(
        self,
        log_path: Path | None,
        parent_provider: Callable[[], QWidget | None] = lambda: None,
        parent: QObject | None = None,
    ) -> None:
        """Prepare the handler; nothing changes until :meth:`install`."""
        super().__init__(parent)
        self._log_path = log_path
        self._parent_provider = parent_provider
        self._dialog: CrashDialog | None = None
        self._previous_hook: Callable[..., object] | None = None
        self._previous_thread_hook: Callable[..., object] | None = None
        # Queued when emitted from another thread: the dialog is always built on the GUI one.
        self.crashed.connect(self._on_crashed)

    @property
    def dialog(self) -> CrashDialog | None:
        """The crash dialog on screen, if any."""
        return self._dialog

    def install(self) -> None:
        """Become ``sys.excepthook`` and ``threading.excepthook``."""
        self._previous_hook = sys.excepthook
        self._previous_thread_hook = threading.excepthook
        sys.excepthook = self.handle
        threading.excepthook = self._handle_thread

    def uninstall(self) -> None:
        """Put the previous hooks back."""
        if self._previous_hook is not None:
            sys.excepthook = self._previous_hook
            self._previous_hook = None
        if self._previous_thread_hook is not None:
            threading.excepthook = self._previous_thread_hook
            self._previous_thread_hook = None

    def handle(
        self,
        exc_type: type[BaseException],
        exc: BaseException,
        tb: TracebackType | None,
    ) -> None:
        """Log the exception and show it (the ``sys.excepthook`` signature)."""
        logger.critical("unexpected error", exc_info=(exc_type, exc, tb))
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        try:
            self.crashed.emit(details)
        except Exception:  # noqa: BLE001 - the hook itself must not fail
            sys.__excepthook__(exc_type, exc, tb)

    def _handle_thread(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        self.handle(args.exc_type, args.exc_value, args.exc_traceback)

    def _on_crashed(self, details: str) -> None:
        if self._dialog is not None:
            self._dialog.add_details(details)
            return
        dialog = CrashDialog(details, self._log_path, self._parent_provider())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(self._on_dialog_finished)
        self._dialog = dialog
        dialog.show()
        dialog.activateWindow()

    def _on_dialog_finished(self, _result: int) -> None:
        self._dialog = None
