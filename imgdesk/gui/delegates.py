"""Item delegates: progress bars, coloured states and thumbnails, painted, never cell widgets.

Colours are derived from the palette the view paints with at that moment, so a switch
between light and dark themes repaints correctly without anything to reset.
"""

from __future__ import annotations

import time

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    QTimer,
)
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QWidget,
)

from imgdesk.core.repository import ImageInfo
from imgdesk.core.states import ImageStatus, ShownState
from imgdesk.gui.image_loading import ImageCache
from imgdesk.gui.models import IN_FLIGHT_STATES, OBJECT_ROLE, PROGRESS_ROLE, STATE_ROLE

# What Qt hands a delegate: a plain index, or a persistent one.
AnyIndex = QModelIndex | QPersistentModelIndex

# A PROGRESS_ROLE for a bar whose end is unknown (a download without a Content-Length, or
# before its first bytes): drawn as a block sweeping to and fro, a "busy" bar.
BUSY_PROGRESS = -1.0
BUSY_SWEEP_S = 2.0  # a busy block goes from one end to the other in this many seconds
BUSY_BLOCK = 0.3  # and is this share of the bar wide
BAR_MARGIN = 3  # between a cell's edges and its bar
TEXT_MARGIN = 4  # between a bar's ends and its text

_GOOD = frozenset({ShownState.DONE, ShownState.COMPLETED})
_BAD = frozenset({ShownState.FAILED})
_WORKING = frozenset({ShownState.DOWNLOADING, ShownState.COMPRESSING, ShownState.PROCESSING})
_WARN = frozenset({ShownState.HELD, ShownState.FINISHED_WITH_FAILURES})
_QUIET = frozenset(
    {
        ShownState.PENDING,
        ShownState.QUEUED,
        ShownState.PAUSED,
        ShownState.RETRYING,
        ShownState.CANCELLED,
    }
)
_HUES = {"good": 120, "bad": 0, "warn": 30, "working": 210}

_STATE_ICONS: dict[str, QStyle.StandardPixmap] = {
    ShownState.DONE: QStyle.StandardPixmap.SP_DialogApplyButton,
    ShownState.COMPLETED: QStyle.StandardPixmap.SP_DialogApplyButton,
    ShownState.FAILED: QStyle.StandardPixmap.SP_MessageBoxCritical,
    ShownState.CANCELLED: QStyle.StandardPixmap.SP_DialogCancelButton,
    ShownState.RETRYING: QStyle.StandardPixmap.SP_BrowserReload,
    ShownState.PAUSED: QStyle.StandardPixmap.SP_MediaPause,
    ShownState.HELD: QStyle.StandardPixmap.SP_MessageBoxWarning,
    ShownState.FINISHED_WITH_FAILURES: QStyle.StandardPixmap.SP_MessageBoxWarning,
    ShownState.PROCESSING: QStyle.StandardPixmap.SP_MediaPlay,
}


def state_color(state: str, palette: QPalette) -> QColor | None:
    """The text colour of a state, readable on the palette's base colour (light or dark)."""
    if state in _QUIET:
        return palette.color(QPalette.ColorRole.PlaceholderText)
    kind = "good" if state in _GOOD else "bad" if state in _BAD else None
    if kind is None and state in _WARN:
        kind = "warn"
    if kind is None and state in _WORKING:
        kind = "working"
    if kind is None:
        return None
    # Light text on a dark base means a dark theme: use a light tint, else a dark shade.
    dark_theme = palette.color(QPalette.ColorRole.Base).lightness() < 128
    return QColor.fromHsl(_HUES[kind], 160, 175 if dark_theme else 85)


def state_icon(state: str, widget: QWidget | None) -> QIcon | None:
    """The style's standard icon for a state, if it has one."""
    pixmap = _STATE_ICONS.get(state)
    if pixmap is None:
        return None
    style = widget.style() if widget is not None else QApplication.style()
    return style.standardIcon(pixmap, None, widget)


def _style(option: QStyleOptionViewItem) -> QStyle:
    widget = option.widget
    return widget.style() if widget is not None else QApplication.style()


def _text_width(option: QStyleOptionViewItem) -> int:
    """The room for a text on the bar drawn in this cell."""
    return option.rect.width() - 2 * (BAR_MARGIN + TEXT_MARGIN)


def _bar_option(option: QStyleOptionViewItem, text: str) -> QStyleOptionProgressBar:
    """A progress bar's style option filling a cell, with the cell's text on it.

    A text too long for the bar is elided: the style would wrap it onto a second line, cut
    in half by the bar's edges.
    """
    bar = QStyleOptionProgressBar()
    margin = BAR_MARGIN
    bar.rect = option.rect.adjusted(margin, margin, -margin, -margin)
    bar.state = option.state | QStyle.StateFlag.State_Horizontal
    bar.direction = option.direction
    bar.palette = option.palette
    bar.fontMetrics = option.fontMetrics
    bar.text = option.fontMetrics.elidedText(text, Qt.TextElideMode.ElideRight, _text_width(option))
    bar.textVisible = True
    bar.textAlignment = Qt.AlignmentFlag.AlignCenter
    return bar


def draw_progress_bar(
    painter: QPainter,
    option: QStyleOptionViewItem,
    fraction: float,
    text: str,
) -> None:
    """Draw the style's own progress bar in a cell, over the usual item background."""
    style = _style(option)
    widget = option.widget
    style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, widget)
    bar = _bar_option(option, text)
    bar.minimum = 0
    bar.maximum = 1000
    bar.progress = max(0, min(1000, round(fraction * 1000)))
    style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, widget)


def draw_busy_bar(painter: QPainter, option: QStyleOptionViewItem, text: str, phase: float) -> None:
    """Draw a busy bar: the style's own bar, filled only in a block at ``phase`` (0 to 1).

    Qt's own busy bar moves only inside a ``QProgressBar`` widget; painted in a cell it is a
    still, full bar, which reads as done. The view repaints the cell with every progress tick,
    so the block moves while bytes arrive and stops when they stop.
    """
    style = _style(option)
    widget = option.widget
    style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, widget)
    bar = _bar_option(option, text)
    bar.minimum, bar.maximum, bar.progress = 0, 1, 1
    style.drawControl(QStyle.ControlElement.CE_ProgressBarGroove, bar, painter, widget)
    rect = bar.rect
    width = max(4, round(rect.width() * BUSY_BLOCK))
    painter.save()
    painter.setClipRect(
        QRect(rect.left() + round(phase * (rect.width() - width)), rect.top(), width, rect.height())
    )
    style.drawControl(QStyle.ControlElement.CE_ProgressBarContents, bar, painter, widget)
    painter.restore()
    bar.progress = 0  # the text in the colour of the empty bar, over the block as beside it
    style.drawControl(QStyle.ControlElement.CE_ProgressBarLabel, bar, painter, widget)


def busy_phase(now: float) -> float:
    """Where a busy bar's block is at ``now`` (seconds): to and fro, 0 to 1 and back."""
    position = (now / BUSY_SWEEP_S) % 2.0
    return position if position <= 1.0 else 2.0 - position


def draw_stage_bar(painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> bool:
    """Draw an image's stage (:data:`PROGRESS_ROLE`) as a bar; False when there is none.

    The text is the cell's own ("Downloading 340 kB of 1.2 MB", "Compressing…"); in a narrow
    column the figures are kept and the state's word goes, since the bar says it.
    """
    fraction = index.data(PROGRESS_ROLE)
    if fraction is None:
        return False
    text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
    figures = text.partition(" ")[2]
    if figures and option.fontMetrics.horizontalAdvance(text) > _text_width(option):
        text = figures
    if fraction < 0:
        draw_busy_bar(painter, option, text, busy_phase(time.monotonic()))
    else:
        draw_progress_bar(painter, option, float(fraction), text)
    return True


class ElidingDelegate(QStyledItemDelegate):
    """Elides its column's text its own way (URLs and paths keep both ends readable)."""

    def __init__(
        self, mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle, parent: QObject | None = None
    ) -> None:
        """Elide with ``mode`` instead of the view's mode."""
        super().__init__(parent)
        self._mode = mode

    def initStyleOption(  # noqa: N802
        self, option: QStyleOptionViewItem, index: AnyIndex
    ) -> None:
        """Use this delegate's elide mode."""
        super().initStyleOption(option, index)
        option.textElideMode = self._mode


class ProgressBarDelegate(QStyledItemDelegate):
    """Paints :data:`PROGRESS_ROLE` as a progress bar with the cell's text on it."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        """Draw the bar (or the plain cell when there is no progress)."""
        fraction = index.data(PROGRESS_ROLE)
        if fraction is None:
            super().paint(painter, option, index)
            return
        text = index.data(Qt.ItemDataRole.DisplayRole) or ""
        draw_progress_bar(painter, option, float(fraction), str(text))

    def sizeHint(  # noqa: N802
        self, option: QStyleOptionViewItem, index: AnyIndex
    ) -> QSize:
        """Wide enough for a bar to read as one."""
        hint = super().sizeHint(option, index)
        return QSize(max(hint.width(), 120), hint.height())


class StateDelegate(QStyledItemDelegate):
    """A state in colour with its standard icon; a stage progress bar while an image works."""

    def initStyleOption(  # noqa: N802
        self, option: QStyleOptionViewItem, index: AnyIndex
    ) -> None:
        """Colour the text and add the icon of the cell's :data:`STATE_ROLE`."""
        super().initStyleOption(option, index)
        state = index.data(STATE_ROLE)
        if not state:
            return
        palette = option.palette
        color = state_color(state, palette)
        if color is not None:
            palette.setColor(QPalette.ColorRole.Text, color)
            option.palette = palette
        icon = state_icon(state, option.widget)
        if icon is not None:
            option.icon = icon
            option.features |= QStyleOptionViewItem.ViewItemFeature.HasDecoration

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        """Draw a stage bar for images being worked on, else the coloured state."""
        if index.data(STATE_ROLE) in IN_FLIGHT_STATES and draw_stage_bar(painter, option, index):
            return
        super().paint(painter, option, index)


class StageBarDelegate(QStyledItemDelegate):
    """A stage progress bar while an image is worked on, else the cell as the model gives it.

    The model supplies the state's colour and icon itself (``ForegroundRole`` and
    ``DecorationRole``), so a cell that is not working is painted by Qt alone, with no
    Python style override to call for every row painted.
    """

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        """Draw the bar of an image being downloaded or compressed, else the plain cell."""
        if not draw_stage_bar(painter, option, index):
            super().paint(painter, option, index)


class ThumbnailDelegate(QStyledItemDelegate):
    """Paints a small thumbnail of a done image, loaded in the background by :class:`ImageCache`.

    A thumbnail that is not cached yet is requested and the cell stays empty; when the cache
    says it is ready, the view repaints (at most every ``REPAINT_MS``).
    """

    REPAINT_MS = 120

    def __init__(
        self, cache: ImageCache, view: QAbstractItemView, parent: QObject | None = None
    ) -> None:
        """Paint thumbnails from ``cache`` into ``view``."""
        super().__init__(parent or view)
        self._cache = cache
        self._view = view
        self._repaint_timer = QTimer(self)
        self._repaint_timer.setSingleShot(True)
        self._repaint_timer.setInterval(self.REPAINT_MS)
        self._repaint_timer.timeout.connect(self._on_repaint_timer_timeout)
        cache.image_ready.connect(self._on_cache_image_ready)

    def thumbnail_side(self, option: QStyleOptionViewItem) -> int:
        """Thumbnails fill the row height; decoded at twice that for high-DPI screens."""
        return max(16, option.rect.height() - 2)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        """Draw the selection background, then the thumbnail centred."""
        style = _style(option)
        widget = option.widget
        cell = QStyleOptionViewItem(option)
        self.initStyleOption(cell, index)
        cell.text = ""
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, cell, painter, widget)
        image = index.data(OBJECT_ROLE)
        if (
            not isinstance(image, ImageInfo)
            or image.status != ImageStatus.DONE
            or not image.output_path
        ):
            return
        side = self.thumbnail_side(option)
        found = self._cache.request(image.output_path, image.output_bytes, 2 * side)
        if found is None:
            return
        pixmap = found[0]
        size = pixmap.size().scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio)
        target = QRect(0, 0, size.width(), size.height())
        target.moveCenter(option.rect.center())
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawPixmap(target, pixmap)
        painter.restore()

    def sizeHint(  # noqa: N802
        self, option: QStyleOptionViewItem, index: AnyIndex
    ) -> QSize:
        """A square cell."""
        hint = super().sizeHint(option, index)
        return QSize(hint.height() + 8, hint.height())

    def _on_cache_image_ready(self, key: str) -> None:
        if not self._repaint_timer.isActive():
            self._repaint_timer.start()

    def _on_repaint_timer_timeout(self) -> None:
        self._view.viewport().update()
