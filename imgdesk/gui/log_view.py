"""The in-app log: a bounded buffer fed by logging, drained into a text view on a timer.

Like Picard's ``TailLogger``: :class:`TailLogHandler` appends formatted lines to a bounded
``deque`` (any thread, never blocks, drops the oldest when flooded) and :class:`LogView`
moves them into a ``QPlainTextEdit`` with a block limit every ``FLUSH_INTERVAL_MS``, in one
append, so a burst of thousands of lines costs one repaint.
"""

from __future__ import annotations

import logging
from collections import deque

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFontDatabase, QKeySequence, QTextCursor
from PySide6.QtWidgets import QDockWidget, QPlainTextEdit, QWidget

from imgdesk.gui.widgets import DOCK_FEATURES

FLUSH_INTERVAL_MS = 250
MAX_BUFFERED_LINES = 5000
MAX_SHOWN_LINES = 5000
VIEW_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class TailLogHandler(logging.Handler):
    """Keeps the latest formatted log lines in a bounded deque until a view takes them."""

    def __init__(self, max_lines: int = MAX_BUFFERED_LINES, level: int = logging.INFO) -> None:
        """Create a handler keeping at most ``max_lines`` lines not yet shown."""
        super().__init__(level)
        self.setFormatter(logging.Formatter(VIEW_FORMAT, datefmt="%H:%M:%S"))
        # deque.append and popleft are atomic: no lock is held beyond logging's own.
        self._lines: deque[str] = deque(maxlen=max_lines)

    def emit(self, record: logging.LogRecord) -> None:
        """Format and keep the record (called by logging, on any thread)."""
        try:
            self._lines.append(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)

    def take(self) -> list[str]:
        """Remove and return every line kept so far, oldest first."""
        lines: list[str] = []
        while True:
            try:
                lines.append(self._lines.popleft())
            except IndexError:
                return lines


class LogView(QPlainTextEdit):
    """A read-only, bounded, monospace view of a :class:`TailLogHandler`'s lines."""

    def __init__(self, handler: TailLogHandler | None, parent: QWidget | None = None) -> None:
        """Show the lines of ``handler`` (None: an empty view)."""
        super().__init__(parent)
        self._handler = handler
        self.setReadOnly(True)
        self.setAcceptDrops(False)  # files dropped here go to the window
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setMaximumBlockCount(MAX_SHOWN_LINES)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setPlaceholderText("Processing events, errors and timings appear here.")
        self._timer = QTimer(self)
        self._timer.setInterval(FLUSH_INTERVAL_MS)
        self._timer.timeout.connect(self.flush)
        if handler is not None:
            self._timer.start()

    def flush(self) -> None:
        """Append the handler's new lines now, keeping the view at the bottom if it was."""
        if self._handler is None:
            return
        lines = self._handler.take()
        if not lines:
            return
        bar = self.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        # appendPlainText would move the user's cursor/selection; insert at the end instead.
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        prefix = "\n" if not self.document().isEmpty() else ""
        cursor.insertText(prefix + "\n".join(lines))
        if at_bottom:
            bar.setValue(bar.maximum())

    def stop(self) -> None:
        """Stop polling the handler."""
        self._timer.stop()


class LogDock(QDockWidget):
    """The "Log" dock around a :class:`LogView`; Ctrl+L shows and hides it."""

    def __init__(self, log_view: LogView, parent: QWidget | None = None) -> None:
        """Dock ``log_view``."""
        super().__init__("Log", parent)
        self.log_view = log_view
        self.setObjectName("log_dock")
        self.setWidget(log_view)
        self.setFeatures(DOCK_FEATURES)
        toggle = self.toggleViewAction()
        toggle.setText("&Log")
        toggle.setShortcut(QKeySequence("Ctrl+L"))
