"""Picture views: the preview's fitted box, and the comparison at 100 % (SPEC 7).

The comparison shows the original and the output side by side, or one picture split by a line.

At quality 50 a user has to see the artefacts to trust the output, so pixels are shown one
to one by default (one picture pixel on one screen pixel, whatever the display's scaling),
and both sides always show the same part of the picture: one :class:`ViewState` holds the
zoom and the position, and every view paints from it.

The geometry is the output's (its pixel size is the one recorded for the image). An original
of another size (the output was scaled down) is drawn over the same area, so both sides
still show the same part of the product.

This module only shows pictures; :mod:`imgdesk.gui.image_loading` downloads and decodes them off
the GUI thread and hands them over (:meth:`ImageBox.set_pixmap`, :meth:`CompareDialog.set_side`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import Enum

from PySide6.QtCore import QObject, QPointF, QRect, QRectF, QSize, QSizeF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
    QShortcut,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from imgdesk.gui.widgets import named

MIN_ZOOM = 0.02
MAX_ZOOM = 32.0
# Where + and - go from any zoom: the usual steps of image viewers.
ZOOM_STEPS: tuple[float, ...] = (
    *(0.02, 0.05, 0.1, 0.125, 0.25, 1 / 3, 0.5, 2 / 3),
    *(1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0),
)
WHEEL_ZOOM_FACTOR = 1.25  # per notch of a mouse wheel (120 eighths of a degree)
KEY_PAN_SHARE = 0.125  # an arrow key moves the picture by this share of the view
KEY_SPLIT_STEP = 0.05  # Shift + arrow moves the split line by this share of the view
SPLIT_GRAB_PX = 8  # how near the split line a press grabs it
BACKGROUND = QColor("#2b2b2b")  # neutral dark grey: judges colours better than a bright one
MESSAGE_COLOR = QColor("#d4d4d4")
HINT = (
    "Drag to move \u00b7 wheel or Ctrl+wheel to zoom \u00b7 + and \u2212 zoom \u00b7 "
    "0 shows 100 % \u00b7 F fits \u00b7 arrow keys move"
)
SLIDER_HINT = " \u00b7 drag the line, or Shift+\u2190/\u2192, to move it"


class Side(Enum):
    """The two pictures compared."""

    BEFORE = "Before"
    AFTER = "After"


class CompareMode(Enum):
    """How the two pictures are shown; the value is the button's text."""

    SIDE_BY_SIDE = "&Side by side"
    SLIDER = "S&lider"


class ImageBox(QFrame):
    """The preview's picture: a pixmap scaled to fit, or a message when there is none.

    Signals:
        double_clicked(): the user double-clicked the box (the preview opens the comparison).
    """

    double_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        """Create an empty box."""
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFrameShadow(QFrame.Shadow.Sunken)
        # Small enough for the preview to fit a 1280 x 720 window, with its buttons.
        self.setMinimumSize(160, 100)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._pixmap: QPixmap | None = None
        self._message = ""

    @property
    def message(self) -> str:
        """The message shown instead of an image ("" when an image is shown)."""
        return self._message

    def has_image(self) -> bool:
        """True when an image is shown."""
        return self._pixmap is not None

    def set_pixmap(self, pixmap: QPixmap) -> None:
        """Show an image."""
        self._pixmap = pixmap
        self._message = ""
        self.update()

    def set_message(self, message: str) -> None:
        """Show a message instead of an image."""
        self._pixmap = None
        self._message = message
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        """A comfortable preview size."""
        return QSize(320, 240)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """Announce the double-click (left button only)."""
        if event.button() == Qt.MouseButton.LeftButton:
            self.double_clicked.emit()
            event.accept()
        else:
            super().mouseDoubleClickEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        """Draw the frame, then the image fitted in it (never cropped) or the message."""
        super().paintEvent(event)
        painter = QPainter(self)
        area = self.contentsRect().adjusted(6, 6, -6, -6)
        if self._pixmap is not None and not self._pixmap.isNull():
            size = self._pixmap.size().scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
            # Small images are not blown up beyond twice their size: they would only blur.
            if size.width() > 2 * self._pixmap.width():
                size = self._pixmap.size() * 2
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(area.center())
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawPixmap(target, self._pixmap)
        elif self._message:
            painter.setPen(self.palette().color(self.palette().ColorRole.PlaceholderText))
            painter.drawText(
                area, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), self._message
            )
        painter.end()


class ViewState(QObject):
    """The zoom and position every view of one comparison shares.

    ``zoom`` is picture pixels to screen (device) pixels: 1.0 is 100 %. ``center`` is the
    picture point (in output pixels) shown in the middle of the views. A picture smaller
    than the view stays centred; a larger one can be moved until its edge meets the view's.

    Signals:
        changed(): the zoom or the position changed; views repaint.
    """

    changed = Signal()

    def __init__(self, content: QSize, parent: QObject | None = None) -> None:
        """Show ``content`` (the output's pixel size) at 100 %, centred."""
        super().__init__(parent)
        self._content = QSizeF(max(1, content.width()), max(1, content.height()))
        self._zoom = 1.0
        self._center = QPointF(self._content.width() / 2, self._content.height() / 2)
        self._view = QSizeF(1, 1)
        self._ratio = 1.0  # device pixels per logical pixel

    @property
    def zoom(self) -> float:
        """Picture pixels to device pixels (1.0: 100 %)."""
        return self._zoom

    @property
    def center(self) -> QPointF:
        """The picture point in the middle of the views."""
        return QPointF(self._center)

    @property
    def content(self) -> QSizeF:
        """The pixel size the views lay out (the output's)."""
        return QSizeF(self._content)

    def scale(self) -> float:
        """Logical (widget) pixels per picture pixel."""
        return self._zoom / self._ratio

    def set_content(self, content: QSize) -> None:
        """Lay out another pixel size (once the picture's size is known), centred."""
        self._content = QSizeF(max(1, content.width()), max(1, content.height()))
        self._center = QPointF(self._content.width() / 2, self._content.height() / 2)
        self._settle()

    def set_view(self, size: QSize, device_pixel_ratio: float) -> None:
        """The size of one view and its screen's scaling (each view is this size)."""
        self._view = QSizeF(max(1, size.width()), max(1, size.height()))
        self._ratio = device_pixel_ratio or 1.0
        self._settle()

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``zoom``, keeping the picture point under ``anchor`` (view pixels) there."""
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        if anchor is not None:
            offset = anchor - self._view_center()
            under = self._center + offset / self.scale()
            self._zoom = zoom
            self._center = under - offset / self.scale()
        else:
            self._zoom = zoom
        self._settle()

    def zoom_in(self) -> None:
        """The next larger zoom step."""
        self.set_zoom(next((s for s in ZOOM_STEPS if s > self._zoom * 1.001), MAX_ZOOM))

    def zoom_out(self) -> None:
        """The next smaller zoom step."""
        smaller = [s for s in ZOOM_STEPS if s < self._zoom / 1.001]
        self.set_zoom(smaller[-1] if smaller else MIN_ZOOM)

    def fit_zoom(self) -> float:
        """The zoom at which the whole picture fits in a view."""
        width = self._view.width() * self._ratio / self._content.width()
        height = self._view.height() * self._ratio / self._content.height()
        return min(MAX_ZOOM, max(MIN_ZOOM, min(width, height)))

    def fit(self) -> None:
        """Show the whole picture, centred."""
        self._zoom = self.fit_zoom()
        self._center = QPointF(self._content.width() / 2, self._content.height() / 2)
        self._settle()

    def pan_by(self, delta: QPointF) -> None:
        """Move the picture by ``delta`` view pixels (as the mouse dragged it)."""
        self._center -= delta / self.scale()
        self._settle()

    def origin(self) -> QPointF:
        """Where the picture's top-left corner is in a view, on a whole device pixel.

        On a whole pixel, so that at 100 % each picture pixel lands on one screen pixel
        instead of being smeared over two.
        """
        corner = self._view_center() - self._center * self.scale()
        return QPointF(
            round(corner.x() * self._ratio) / self._ratio,
            round(corner.y() * self._ratio) / self._ratio,
        )

    def visible_part(self, view: QSizeF) -> QRectF:
        """The picture's pixels a view of ``view`` size shows, whole pixels, inside the picture."""
        origin, scale = self.origin(), self.scale()
        left = max(0.0, math.floor(-origin.x() / scale))
        top = max(0.0, math.floor(-origin.y() / scale))
        right = min(self._content.width(), math.ceil((view.width() - origin.x()) / scale))
        bottom = min(self._content.height(), math.ceil((view.height() - origin.y()) / scale))
        return QRectF(left, top, max(0.0, right - left), max(0.0, bottom - top))

    def to_view(self, part: QRectF) -> QRectF:
        """Where a rectangle of picture pixels is drawn in a view."""
        origin, scale = self.origin(), self.scale()
        return QRectF(
            origin.x() + part.x() * scale,
            origin.y() + part.y() * scale,
            part.width() * scale,
            part.height() * scale,
        )

    def _view_center(self) -> QPointF:
        return QPointF(self._view.width() / 2, self._view.height() / 2)

    def _settle(self) -> None:
        """Keep the picture in view (centred where it is smaller), then tell the views."""
        scale = self.scale()
        x = _settled(self._center.x(), self._content.width(), self._view.width() / 2 / scale)
        y = _settled(self._center.y(), self._content.height(), self._view.height() / 2 / scale)
        self._center = QPointF(x, y)
        self.changed.emit()


def _settled(center: float, length: float, half_view: float) -> float:
    if length <= 2 * half_view:
        return length / 2
    return min(length - half_view, max(half_view, center))


class ZoomView(QWidget):
    """One view of a comparison: one picture, or two split by a line the user can drag.

    Painted from the shared :class:`ViewState`. A side without a picture shows its message
    (loading, or why it cannot be shown). Focusable: arrow keys move the picture, Shift+arrows
    move the split line.
    """

    def __init__(
        self, state: ViewState, sides: tuple[Side, ...], parent: QWidget | None = None
    ) -> None:
        """A view of ``state`` showing one side, or both: before left, after right of a line."""
        super().__init__(parent)
        self._state = state
        self._state.changed.connect(self.update)
        self._sides = sides
        self._images: dict[Side, QImage | None] = dict.fromkeys(sides)
        self._messages: dict[Side, str] = dict.fromkeys(sides, "")
        self._split: float | None = 0.5 if len(sides) > 1 else None
        self._drag_from: QPointF | None = None
        self._dragging_split = False
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(200, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.OpenHandCursor)

    @property
    def split(self) -> float | None:
        """Where the split line is, as a share of the width (None: no line)."""
        return self._split

    def set_split(self, share: float) -> None:
        """Put the split line at ``share`` (0-1) of the width."""
        if self._split is not None:
            self._split = min(1.0, max(0.0, share))
            self.update()

    def message(self, side: Side) -> str:
        """The sentence shown instead of a side's picture ("" when there is a picture)."""
        return "" if self._images.get(side) is not None else self._messages.get(side, "")

    def set_side(self, side: Side, image: QImage | None, message: str) -> None:
        """Show a picture on one side (or, without one, the message); other sides are ignored."""
        if side not in self._sides:
            return
        self._images[side] = image
        self._messages[side] = message
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        """Room for a good part of a product photo."""
        return QSize(560, 420)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        """The picture(s) at the shared zoom and position, the split line, the focus frame."""
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if self._split is None:
            self._paint_side(painter, self.rect(), self._sides[0])
        else:
            x = round(self._split * self.width())
            self._paint_side(painter, QRect(0, 0, x, self.height()), Side.BEFORE)
            self._paint_side(painter, QRect(x, 0, self.width() - x, self.height()), Side.AFTER)
            self._paint_split_line(painter, x)
        if self.hasFocus():
            painter.setPen(QPen(self.palette().highlight().color(), 2))
            painter.drawRect(self.rect().adjusted(1, 1, -1, -1))
        painter.end()

    def _paint_side(self, painter: QPainter, area: QRect, side: Side) -> None:
        image = self._images[side]
        painter.save()
        painter.setClipRect(area)
        if image is not None and not image.isNull():
            part = self._state.visible_part(QSizeF(self.size()))
            content = self._state.content
            across = image.width() / content.width()
            down = image.height() / content.height()
            source = QRectF(
                part.x() * across, part.y() * down, part.width() * across, part.height() * down
            )
            # Zoomed in, each pixel is a crisp square, so artefacts show as they are.
            shrinking = self._state.scale() * self.devicePixelRatioF() / across < 1
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, shrinking)
            painter.drawImage(self._state.to_view(part), image, source)
        elif self._messages[side]:
            painter.setPen(MESSAGE_COLOR)
            painter.drawText(
                area.adjusted(12, 12, -12, -12),
                int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                self._messages[side],
            )
        painter.restore()

    def _paint_split_line(self, painter: QPainter, x: int) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(0, 0, 0, 160), 4))
        painter.drawLine(x, 0, x, self.height())
        painter.setPen(QPen(QColor("white"), 2))
        painter.drawLine(x, 0, x, self.height())
        middle = QPointF(x, self.height() / 2)
        painter.setBrush(QColor("white"))
        painter.setPen(QPen(QColor(0, 0, 0, 160), 1))
        painter.drawEllipse(middle, 11, 11)
        painter.setPen(QColor("#333333"))
        painter.drawText(
            QRectF(x - 11, middle.y() - 11, 22, 22),
            int(Qt.AlignmentFlag.AlignCenter),
            "\u25c2\u25b8",
        )
        painter.restore()

    # -- input ----------------------------------------------------------------------------

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        """The shared state lays out for the views of the mode shown (or about to be)."""
        super().resizeEvent(event)
        if self.isVisibleTo(self.window()):  # the other mode's page is hidden
            self._state.set_view(self.size(), self.devicePixelRatioF())

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        """Zoom about the point under the mouse (with or without Ctrl)."""
        delta = event.angleDelta().y() or event.angleDelta().x()
        if not delta:
            event.ignore()
            return
        factor = WHEEL_ZOOM_FACTOR ** (delta / 120)
        self._state.set_zoom(self._state.zoom * factor, event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """Grab the split line, or the picture to move it."""
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        if self._near_split(event.position().x()):
            self._dragging_split = True
        else:
            self._drag_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """Move the split line or the picture; show which one a press would grab."""
        position = event.position()
        if self._dragging_split:
            self.set_split(position.x() / max(1, self.width()))
        elif self._drag_from is not None:
            self._state.pan_by(position - self._drag_from)
            self._drag_from = position
        elif self._near_split(position.x()):
            self.setCursor(Qt.CursorShape.SplitHCursor)
        else:
            self.setCursor(Qt.CursorShape.OpenHandCursor)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """Let go of what was dragged."""
        self._dragging_split = False
        self._drag_from = None
        self.setCursor(Qt.CursorShape.OpenHandCursor)
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        """100 % at the point clicked, or back to the whole picture from 100 %."""
        if math.isclose(self._state.zoom, 1.0):
            self._state.fit()
        else:
            self._state.set_zoom(1.0, event.position())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        """Arrow keys move the picture; Shift + left/right moves the split line."""
        key = Qt.Key(event.key())
        steps = {
            Qt.Key.Key_Left: QPointF(1, 0),
            Qt.Key.Key_Right: QPointF(-1, 0),
            Qt.Key.Key_Up: QPointF(0, 1),
            Qt.Key.Key_Down: QPointF(0, -1),
        }
        if key not in steps:
            super().keyPressEvent(event)
            return
        step = steps[key]
        shift = event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        if shift and self._split is not None and step.y() == 0:
            self.set_split(self._split - step.x() * KEY_SPLIT_STEP)
        else:
            share = KEY_PAN_SHARE
            self._state.pan_by(QPointF(step.x() * self.width(), step.y() * self.height()) * share)
        event.accept()

    def _near_split(self, x: float) -> bool:
        return self._split is not None and abs(x - self._split * self.width()) <= SPLIT_GRAB_PX


class CompareDialog(QDialog):
    """The original and the output at 100 %, side by side or split by a line; non-modal.

    Opens at 100 % on the middle of the picture. Both modes share the zoom and the position,
    so switching keeps the place the user was looking at. Keys (anywhere in the dialog): +
    and - zoom, 0 shows 100 %, F fits the whole picture; in a view the arrow keys move.

    Args:
        title: what is compared, for the window title (the product and position).
        content: the output's pixel size, if known (else the first picture's).
        parent: the owning window.
    """

    def __init__(self, title: str, content: QSize | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Compare at 100 % \u2014 {title}")
        self.setModal(False)
        self._content_known = content is not None and not content.isEmpty()
        self._state = ViewState(content or QSize(1, 1), self)
        self._state.changed.connect(self._on_state_changed)
        self._images: dict[Side, QImage | None] = {Side.BEFORE: None, Side.AFTER: None}

        self._side_views = {
            side: named(ZoomView(self._state, (side,)), f"{side.name.lower()}_view")
            for side in Side
        }
        self._slider_view = named(ZoomView(self._state, tuple(Side)), "slider_view")
        side_by_side = QWidget()
        row = QHBoxLayout(side_by_side)
        row.setContentsMargins(0, 0, 0, 0)
        for view in self._side_views.values():
            row.addWidget(view, 1)
        self._pages = QStackedWidget()
        self._pages.addWidget(side_by_side)
        self._pages.addWidget(self._slider_view)

        self._captions = {side: named(QLabel(), f"{side.name.lower()}_facts") for side in Side}
        captions = QHBoxLayout()
        for side, caption in self._captions.items():
            caption.setWordWrap(True)
            caption.setTextFormat(Qt.TextFormat.RichText)
            caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            captions.addWidget(caption, 1)
            self._set_caption(side, "")
        self._note = named(QLabel(), "size_note")
        self._note.setWordWrap(True)
        self._note.hide()
        self._hint = named(QLabel(HINT), "hint")
        self._hint.setWordWrap(True)
        self._hint.setEnabled(False)  # greyed: a remark, not an input

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(self._toolbar())
        layout.addLayout(captions)
        layout.addWidget(self._pages, 1)
        layout.addWidget(self._note)
        layout.addWidget(self._hint)
        layout.addWidget(buttons)
        self._add_shortcuts()
        self._fit_to_screen()
        self._on_state_changed()

    # -- public API -------------------------------------------------------------------------

    def set_side(self, side: Side, image: QImage | None, facts: str, message: str = "") -> None:
        """Show one side's picture and facts (format, size, pixels); without one, ``message``.

        Call again when the picture arrives, or with the sentence that says why it cannot.
        """
        self._images[side] = image
        if image is not None and not self._content_known:
            self._content_known = True
            self._state.set_content(image.size())
        for view in (self._side_views[side], self._slider_view):
            view.set_side(side, image, message)
        self._set_caption(side, facts)
        self._update_note()

    def image(self, side: Side) -> QImage | None:
        """The picture shown on one side, if it arrived."""
        return self._images[side]

    def mode(self) -> CompareMode:
        """How the pictures are shown now."""
        return CompareMode.SLIDER if self._pages.currentIndex() == 1 else CompareMode.SIDE_BY_SIDE

    def set_mode(self, mode: CompareMode) -> None:
        """Show the pictures side by side or split by a line."""
        self._mode_buttons[mode].setChecked(True)

    @property
    def state(self) -> ViewState:
        """The zoom and position the views share."""
        return self._state

    def view(self, name: str) -> ZoomView:
        """A view by name: "before_view", "after_view" or "slider_view" (tests, screenshots)."""
        found = self.findChild(ZoomView, name)
        assert found is not None, name
        return found

    # -- building ---------------------------------------------------------------------------

    def _toolbar(self) -> QHBoxLayout:
        bar = QHBoxLayout()
        group = QButtonGroup(self)
        group.setExclusive(True)
        self._mode_buttons: dict[CompareMode, QToolButton] = {}
        tips = {
            CompareMode.SIDE_BY_SIDE: "The original left, the output right, moving together.",
            CompareMode.SLIDER: "One picture: the original left of the line, the output right.",
        }
        for mode in CompareMode:
            button = named(QToolButton(), mode.name.lower())
            button.setText(mode.value)
            button.setCheckable(True)
            button.setToolTip(tips[mode])
            group.addButton(button)
            bar.addWidget(button)
            self._mode_buttons[mode] = button
        self._mode_buttons[CompareMode.SIDE_BY_SIDE].setChecked(True)
        group.buttonToggled.connect(self._on_mode_toggled)
        bar.addStretch(1)
        actions = (
            ("zoom_out", "\u2212", "Zoom out (\u2212)", self._state.zoom_out),
            ("zoom_in", "+", "Zoom in (+)", self._state.zoom_in),
            (
                "actual_size",
                "1:1",
                "100 %: one picture pixel on one screen pixel (0)",
                self._actual,
            ),
            ("fit", "Fit", "The whole picture (F)", self._state.fit),
        )
        self._zoom_label = named(QLabel(), "zoom")
        self._zoom_label.setMinimumWidth(self.fontMetrics().horizontalAdvance("3200 %") + 8)
        self._zoom_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for name, text, tip, slot in actions:
            button = named(QToolButton(), name)
            button.setText(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            bar.addWidget(button)
            if name == "zoom_out":
                bar.addWidget(self._zoom_label)
        return bar

    def _add_shortcuts(self) -> None:
        keys: list[tuple[Callable[[], None], QKeySequence]] = [
            (self._state.zoom_in, QKeySequence("+")),
            (self._state.zoom_in, QKeySequence("=")),  # the + key without Shift
            (self._state.zoom_in, QKeySequence(QKeySequence.StandardKey.ZoomIn)),
            (self._state.zoom_out, QKeySequence("-")),
            (self._state.zoom_out, QKeySequence(QKeySequence.StandardKey.ZoomOut)),
            (self._actual, QKeySequence("0")),
            (self._actual, QKeySequence("Ctrl+0")),
            (self._state.fit, QKeySequence("F")),
        ]
        for slot, sequence in keys:
            QShortcut(sequence, self).activated.connect(slot)

    def _fit_to_screen(self) -> None:
        """Most of the screen, since a comparison at 100 % wants room; at most 1400 x 900."""
        screen = self.screen().availableGeometry()
        self.resize(
            max(640, min(1400, int(screen.width() * 0.9))),
            max(420, min(900, int(screen.height() * 0.9))),
        )

    # -- helpers ----------------------------------------------------------------------------

    def _actual(self) -> None:
        self._state.set_zoom(1.0)

    def _set_caption(self, side: Side, facts: str) -> None:
        words = {Side.BEFORE: "Before \u2014 the original", Side.AFTER: "After \u2014 the output"}
        text = f"<b>{words[side]}</b>"
        if facts:
            text += f": {_escaped(facts)}"
        self._captions[side].setText(text)

    def _update_note(self) -> None:
        before, after = self._images[Side.BEFORE], self._images[Side.AFTER]
        if before is None or after is None or before.size() == after.size():
            self._note.hide()
            return
        self._note.setText(
            f"The original ({before.width()} \u00d7 {before.height()} px) is shown at the "
            f"output's size ({after.width()} \u00d7 {after.height()} px), so both sides show "
            "the same part of the picture."
        )
        self._note.show()

    def _on_state_changed(self) -> None:
        self._zoom_label.setText(f"{self._state.zoom * 100:.0f} %")

    def _on_mode_toggled(self, _button: QToolButton, checked: bool) -> None:
        if not checked:
            return
        slider = self._mode_buttons[CompareMode.SLIDER].isChecked()
        self._pages.setCurrentIndex(1 if slider else 0)
        self._hint.setText(HINT + (SLIDER_HINT if slider else ""))
        # The views of the other mode have another size: lay out for the ones now shown.
        shown = self._slider_view if slider else self._side_views[Side.BEFORE]
        self._state.set_view(shown.size(), shown.devicePixelRatioF())


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
