"""Small helpers every imgdesk widget shares: tables, names, menus, dialogs, drops, saved state."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from PySide6.QtCore import QByteArray, QEvent, QMimeData, QObject, QPoint, QSettings, QSize, Qt
from PySide6.QtGui import QAction, QDragEnterEvent, QDragMoveEvent, QDropEvent, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDockWidget,
    QHeaderView,
    QLabel,
    QMenu,
    QMessageBox,
    QTableView,
    QWidget,
)

W = TypeVar("W", bound=QWidget)

# The window's docks can be closed, moved and floated, never pinned in place.
DOCK_FEATURES = (
    QDockWidget.DockWidgetFeature.DockWidgetClosable
    | QDockWidget.DockWidgetFeature.DockWidgetMovable
    | QDockWidget.DockWidgetFeature.DockWidgetFloatable
)


def named(widget: W, name: str) -> W:
    """``widget`` with an object name, by which tests and callers can find it."""
    widget.setObjectName(name)
    return widget


class ElidedLabel(QLabel):
    """A one-line label that ends in "…" where it is too narrow, instead of being cut off.

    It asks for its whole text's width but makes do with a few characters, so a long product
    or file name never widens the panel it heads. :meth:`text` is the whole text.
    """

    MIN_CHARACTERS = 8

    def __init__(
        self, text: str = "", parent: QWidget | None = None, *, bold: bool = False
    ) -> None:
        """A label showing ``text`` (in bold, if asked)."""
        super().__init__(parent)
        self._full = ""
        if bold:
            font = self.font()
            font.setBold(True)
            self.setFont(font)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802
        """Show ``text``, elided to the label's width."""
        self._full = text
        self.updateGeometry()
        self._elide()

    def text(self) -> str:
        """The whole text, however much of it is shown."""
        return self._full

    def sizeHint(self) -> QSize:  # noqa: N802
        """The whole text's size."""
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self._full) + margins.left() + margins.right()
        return QSize(width + 2, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        """A few characters and the ellipsis."""
        hint = self.sizeHint()
        narrow = self.fontMetrics().averageCharWidth() * self.MIN_CHARACTERS
        return QSize(min(hint.width(), narrow), hint.height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        """Elide again for the new width."""
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, self.width())
        super().setText(shown)


def setup_table(
    view: QTableView, selection_mode: QAbstractItemView.SelectionMode, row_padding: int
) -> None:
    """The look of every imgdesk table: whole rows, read-only, fixed row heights, no row numbers.

    Args:
        view: the table to set up.
        selection_mode: single or extended selection.
        row_padding: pixels added to the font height for each row.
    """
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(selection_mode)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.setCornerButtonEnabled(False)
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    view.setTextElideMode(Qt.TextElideMode.ElideRight)
    view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    view.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    rows = view.verticalHeader()
    rows.setVisible(False)
    # Fixed row heights: the view never measures 10,000 rows to lay them out.
    rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    rows.setDefaultSectionSize(view.fontMetrics().height() + row_padding)
    header = view.horizontalHeader()
    header.setHighlightSections(False)
    header.setStretchLastSection(True)
    header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)


def resize_columns(view: QTableView, widths: dict[int, int]) -> None:
    """Give columns their starting widths (a saved header state replaces them)."""
    header = view.horizontalHeader()
    for column, width in widths.items():
        header.resizeSection(column, width)


def popup_menu(parent: QWidget, actions: Sequence[QAction | None], position: QPoint) -> QMenu:
    """Show a context menu of ``actions`` (None: a separator) at a global ``position``."""
    menu = QMenu(parent)
    menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    for action in actions:
        if action is None:
            menu.addSeparator()
        else:
            menu.addAction(action)
    menu.popup(position)
    return menu


def open_dialog(dialog: QDialog, on_finished: Callable[[int], None]) -> None:
    """Open ``dialog`` window-modal without a nested event loop; call back when it closes.

    ``exec()`` would run a second event loop inside a slot; ``open()`` lets the window keep
    painting and processing while the question is on screen.
    """
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.finished.connect(on_finished)
    dialog.open()


class DialogTracker:
    """Opens a window's dialogs with :func:`open_dialog` and knows which are on screen.

    Args:
        on_closed: called after a dialog's own callback, once it closed.
    """

    def __init__(self, on_closed: Callable[[], None]) -> None:
        """Track no dialog yet."""
        self._on_closed = on_closed
        self._dialogs: set[QDialog] = set()

    def open(self, dialog: QDialog, on_finished: Callable[[int], None]) -> None:
        """Open ``dialog``; ``on_finished`` gets its result code when it closes."""
        self._dialogs.add(dialog)

        def finished(result: int) -> None:
            self._dialogs.discard(dialog)
            on_finished(result)
            self._on_closed()

        open_dialog(dialog, finished)

    def dialogs(self) -> list[QWidget]:
        """The dialogs opened here that are still on screen."""
        return list(self._dialogs)

    def show_message(
        self,
        parent: QWidget,
        icon: QMessageBox.Icon,
        title: str,
        text: str,
        informative: str = "",
    ) -> None:
        """Open a :func:`message_box` over ``parent``; nothing waits for its answer."""
        self.open(message_box(parent, icon, title, text, informative), lambda _result: None)


def message_box(
    parent: QWidget, icon: QMessageBox.Icon, title: str, text: str, informative: str = ""
) -> QMessageBox:
    """A message with an OK button, to open with :func:`open_dialog`."""
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, parent)
    if informative:
        box.setInformativeText(informative)
    return box


def local_files(mime: QMimeData) -> list[Path]:
    """The local files (not folders) a drag carries."""
    if not mime.hasUrls():
        return []
    return [
        Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile() and url.toLocalFile()
    ]


class FileDropFilter(QObject):
    """Lets local files be dropped anywhere on a widget; installed as its event filter.

    Drags reach the widget from every child that does not take drops itself.

    Args:
        widget: where files may be dropped (it is made to accept drops).
        on_dropped: called with the paths of the dropped files.
        on_hint: called with a hint while files hover ("" when they leave).
    """

    def __init__(
        self,
        widget: QWidget,
        on_dropped: Callable[[list[Path]], None],
        on_hint: Callable[[str], None],
    ) -> None:
        """Start taking drops on ``widget``."""
        super().__init__(widget)
        self._on_dropped = on_dropped
        self._on_hint = on_hint
        widget.setAcceptDrops(True)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        """Accept drags that carry files, load them on drop; let every other event through."""
        kind = event.type()
        if kind == QEvent.Type.DragLeave:
            self._on_hint("")
        elif isinstance(event, QDragEnterEvent | QDragMoveEvent | QDropEvent):
            paths = local_files(event.mimeData())
            if not paths:
                event.ignore()
                return True
            event.acceptProposedAction()
            if kind == QEvent.Type.DragEnter:
                count = f"{len(paths)} files" if len(paths) > 1 else paths[0].name
                self._on_hint(f"Drop to load {count}")
            elif kind == QEvent.Type.Drop:
                self._on_dropped(paths)
            return True
        return False


def restore_saved(settings: QSettings, key: str, restore: Callable[[QByteArray], object]) -> None:
    """Hand the bytes saved under ``key`` to ``restore`` (a ``restoreState``), if there are any."""
    value = settings.value(key)
    if isinstance(value, QByteArray | bytes):
        restore(QByteArray(value))
