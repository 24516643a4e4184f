"""The requests list at the top of the window, and what a first-time user sees instead."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from PySide6.QtCore import QPoint, QSettings, QSize, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QPushButton,
    QStyle,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from imgdesk.core.repository import RequestInfo
from imgdesk.gui.delegates import ProgressBarDelegate, StateDelegate
from imgdesk.gui.models import RequestsTableModel
from imgdesk.gui.widgets import popup_menu, resize_columns, restore_saved, setup_table

logger = logging.getLogger(__name__)

ROW_PADDING = 12
# The list never gets shorter than this many rows: on a 1280x720 screen it showed one.
MIN_VISIBLE_ROWS = 4
# Per set of columns: Qt restores a layout saved with fewer columns but leaves the new ones
# unpainted, so a layout saved before columns were added is not restored.
COLUMNS_KEY = f"columns/requests/{RequestsTableModel.COLUMN_COUNT}"
EMPTY_HINT = "Drop CSV files here (or File \u2192 Open)"
# Explicit line breaks: a word-wrapped label centred in a layout gets clipped.
EMPTY_DETAILS = (
    "Each CSV needs the columns <b>S. No.</b>, <b>Product Name</b> and "
    "<b>Input Image Urls</b><br>(one or more image links per product, separated by commas)."
    "<br><br>imgdesk downloads every image, compresses it, and gives you the same CSV back"
    "<br>with an <b>Output Image Urls</b> column."
)


class RequestsPane(QTableView):
    """The requests, newest first, one selectable at a time; remembers its columns.

    Args:
        model: the requests to show.
        qsettings: where the column widths and order are kept.
        context_actions: the right-click menu (None: a separator).
        parent: the owning widget.
    """

    def __init__(
        self,
        model: RequestsTableModel,
        qsettings: QSettings,
        context_actions: Sequence[QAction | None],
        parent: QWidget | None = None,
    ) -> None:
        """Show ``model`` with progress bars and coloured states."""
        super().__init__(parent)
        self._model = model
        self._qsettings = qsettings
        self._context_actions = tuple(context_actions)
        self.setObjectName("requests_view")
        self.setModel(model)
        setup_table(self, QAbstractItemView.SelectionMode.SingleSelection, ROW_PADDING)
        self.horizontalHeader().setSectionsMovable(True)
        self.setItemDelegateForColumn(RequestsTableModel.COL_PROGRESS, ProgressBarDelegate(self))
        self.setItemDelegateForColumn(RequestsTableModel.COL_STATE, StateDelegate(self))
        resize_columns(
            self,
            {
                # Every column fits a 1280-pixel-wide window (the name takes what is left).
                RequestsTableModel.COL_NAME: 220,
                RequestsTableModel.COL_STATE: 175,  # "Finished — 1,234 failed"
                RequestsTableModel.COL_PROGRESS: 120,
                RequestsTableModel.COL_COUNTS: 120,
                RequestsTableModel.COL_SAVED: 80,
                RequestsTableModel.COL_SAVED_SHARE: 65,
                RequestsTableModel.COL_OUTPUT: 80,
                RequestsTableModel.COL_DURATION: 70,
                RequestsTableModel.COL_CREATED: 70,
                RequestsTableModel.COL_SPEED: 95,
                RequestsTableModel.COL_TIME_LEFT: 110,
            },
        )
        # The savings' share and the format come last in the model; they are shown after the
        # bytes saved.
        header = self.horizontalHeader()
        for offset, column in enumerate(
            (RequestsTableModel.COL_SAVED_SHARE, RequestsTableModel.COL_OUTPUT), start=1
        ):
            target = header.visualIndex(RequestsTableModel.COL_SAVED) + offset
            header.moveSection(header.visualIndex(column), target)
        self.customContextMenuRequested.connect(self._on_context_menu_requested)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        """Tall enough for ``MIN_VISIBLE_ROWS`` rows, a horizontal scroll bar included."""
        hint = super().minimumSizeHint()
        rows = MIN_VISIBLE_ROWS * self.verticalHeader().defaultSectionSize()
        height = (
            self.horizontalHeader().sizeHint().height()
            + rows
            + self.horizontalScrollBar().sizeHint().height()
            + 2 * self.frameWidth()
        )
        return QSize(hint.width(), height)

    def current_request(self) -> RequestInfo | None:
        """The selected request, as last read."""
        rows = self.selectionModel().selectedRows()
        if not rows:
            return None
        return self._model.request_at(rows[0].row())

    def select_request(self, request_id: str) -> None:
        """Select a request and scroll to it (its pending changes are read first)."""
        self._model.flush()
        row = self._model.row_of(request_id)
        if row is not None:
            self.selectRow(row)
            self.scrollTo(self._model.index(row, 0))

    def restore_state(self) -> None:
        """Put back the columns saved by :meth:`save_state`."""
        restore_saved(self._qsettings, COLUMNS_KEY, self.horizontalHeader().restoreState)

    def save_state(self) -> None:
        """Remember the columns' widths and order."""
        self._qsettings.setValue(COLUMNS_KEY, self.horizontalHeader().saveState())

    def _on_context_menu_requested(self, pos: QPoint) -> None:
        if self.indexAt(pos).isValid():
            popup_menu(self, self._context_actions, self.viewport().mapToGlobal(pos))


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
