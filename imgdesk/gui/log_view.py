"""The in-app log: a bounded buffer fed by logging, drained into a text view on a timer.

Like Picard's ``TailLogger``: :class:`TailLogHandler` appends formatted lines to a bounded
``deque`` (any thread, never blocks, drops the oldest when flooded) and :class:`LogView`
moves them into a ``QPlainTextEdit`` with a block limit every ``FLUSH_INTERVAL_MS``, in one
append, so a burst of thousands of lines costs one repaint. The view keeps the lines with
their level, so the dock's "Show" choice (all, info, warnings, errors) can narrow them.
"""

from __future__ import annotations

import logging
from collections import deque

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFontDatabase, QKeySequence, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from imgdesk.gui.widgets import DOCK_FEATURES

FLUSH_INTERVAL_MS = 250
MAX_BUFFERED_LINES = 5000
MAX_SHOWN_LINES = 5000
VIEW_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# The dock's "Show" choices: label -> the lowest level shown.
LEVELS = {
    "All": logging.NOTSET,
    "Info": logging.INFO,
    "Warnings": logging.WARNING,
    "Errors": logging.ERROR,
}

LogLine = tuple[int, str]  # (level number, formatted line)


class TailLogHandler(logging.Handler):
    """Keeps the latest formatted log lines in a bounded deque until a view takes them."""

    def __init__(self, max_lines: int = MAX_BUFFERED_LINES, level: int = logging.INFO) -> None:
        """Create a handler keeping at most ``max_lines`` lines not yet shown."""
        super().__init__(level)
        self.setFormatter(logging.Formatter(VIEW_FORMAT, datefmt="%H:%M:%S"))
        # deque.append and popleft are atomic: no lock is held beyond logging's own.
        self._lines: deque[LogLine] = deque(maxlen=max_lines)

    def emit(self, record: logging.LogRecord) -> None:
        """Format and keep the record (called by logging, on any thread)."""
        try:
            self._lines.append((record.levelno, self.format(record)))
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)

    def take(self) -> list[LogLine]:
        """Remove and return every line kept so far, oldest first, with its level."""
        lines: list[LogLine] = []
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
        self._kept: deque[LogLine] = deque(maxlen=MAX_SHOWN_LINES)  # every level, to filter
        self._min_level = logging.NOTSET
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

    @property
    def min_level(self) -> int:
        """The lowest level shown (``logging.NOTSET``: every line)."""
        return self._min_level

    def set_min_level(self, level: int) -> None:
        """Show only lines of ``level`` or above, the ones kept so far included."""
        if level == self._min_level:
            return
        self._min_level = level
        self.flush()
        self.clear()
        self._append([text for line_level, text in self._kept if line_level >= level])

    def flush(self) -> None:
        """Append the handler's new lines now, keeping the view at the bottom if it was."""
        if self._handler is None:
            return
        lines = self._handler.take()
        if not lines:
            return
        self._kept.extend(lines)
        self._append([text for level, text in lines if level >= self._min_level])

    def stop(self) -> None:
        """Stop polling the handler."""
        self._timer.stop()

    def _append(self, texts: list[str]) -> None:
        if not texts:
            return
        bar = self.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        # appendPlainText would move the user's cursor/selection; insert at the end instead.
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        prefix = "\n" if not self.document().isEmpty() else ""
        cursor.insertText(prefix + "\n".join(texts))
        if at_bottom:
            bar.setValue(bar.maximum())


class LogDock(QDockWidget):
    """The "Log" dock around a :class:`LogView` and its level choice; Ctrl+L shows and hides it."""

    def __init__(self, log_view: LogView, parent: QWidget | None = None) -> None:
        """Dock ``log_view`` below a "Show: All / Info / Warnings / Errors" choice."""
        super().__init__("Log", parent)
        self.log_view = log_view
        self.setObjectName("log_dock")
        self.level_combo = QComboBox()
        self.level_combo.setObjectName("log_level")
        self.level_combo.setToolTip("Which log lines to show")
        for label, level in LEVELS.items():
            self.level_combo.addItem(label, level)
        self.level_combo.currentIndexChanged.connect(self._on_level_changed)
        # Beside the lines, not above them: the dock is short, and wide enough.
        choice = QVBoxLayout()
        choice.setContentsMargins(0, 0, 4, 0)
        choice.addWidget(QLabel("Show:"))
        choice.addWidget(self.level_combo)
        choice.addStretch(1)
        content = QWidget()
        layout = QHBoxLayout(content)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(log_view, 1)
        layout.addLayout(choice)
        self.setWidget(content)
        self.setFeatures(DOCK_FEATURES)
        toggle = self.toggleViewAction()
        toggle.setText("&Log")
        toggle.setShortcut(QKeySequence("Ctrl+L"))

    def _on_level_changed(self, _index: int) -> None:
        level = self.level_combo.currentData()
        if isinstance(level, int):
            self.log_view.set_min_level(level)
