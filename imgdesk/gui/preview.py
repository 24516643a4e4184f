"""Thumbnails and the before/after preview of one image, all decoded off the GUI thread.

* :class:`ImageCache` decodes stored (compressed) images scaled down in a small
  ``QThreadPool`` and keeps the last ones in an LRU cache bounded in bytes. Requests are
  served most recent first and the backlog is bounded, so scrolling quickly through 10,000
  rows only decodes what is (or was just) on screen.
* :class:`OriginalFetcher` downloads the *original* again for the "before" pane, with the
  core's own :func:`~imgdesk.core.fetch.download` (same limits and checks as the engine), on
  one daemon thread; only the latest wish is kept, so arrowing through rows does not queue
  downloads. A daemon thread, because a download may take seconds and must never hold up
  quitting the way a ``QThreadPool`` would (its destructor waits).
* :class:`PreviewPanel` shows both side by side with dimensions and bytes saved.

Worker threads only build ``QImage`` objects (safe off the GUI thread); pixmaps are made on
the GUI thread when a result arrives.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import requests
from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QIODevice,
    QObject,
    QRect,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
)
from PySide6.QtGui import QImage, QImageReader, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from imgdesk.core.errors import ImageError
from imgdesk.core.fetch import download, new_session
from imgdesk.core.repository import ImageInfo
from imgdesk.core.settings import Settings
from imgdesk.gui.formatting import format_bytes, format_savings, savings_fraction
from imgdesk.gui.models import STATE_LABELS, image_state
from imgdesk.gui.widgets import ElidedLabel

logger = logging.getLogger(__name__)

PREVIEW_SIDE = 900  # decoded preview images are at most this many pixels on a side
ORIGINAL_DEBOUNCE_MS = 350
# Qt decoders imgdesk trusts with downloaded bytes; anything else is described, not shown.
PREVIEW_FORMATS = frozenset({"jpeg", "jpg", "png", "gif", "bmp", "webp"})
# The preview fetch gives up sooner than the engine would: someone is looking at it.
PREVIEW_TIMEOUT_S = 30.0
ERROR_MEMORY_S = 30.0  # a failed original is not asked for again before this


class PreviewError(Exception):
    """An image could not be shown; the message says why, in words."""


@dataclass(frozen=True)
class ImageFacts:
    """What a decoded image is: its full pixel size, byte count and format."""

    width: int
    height: int
    byte_count: int | None
    image_format: str


def decode_scaled(
    reader: QImageReader, max_side: int, byte_count: int | None
) -> tuple[QImage, ImageFacts]:
    """Decode with ``reader`` at most ``max_side`` pixels on a side (JPEG scales while decoding).

    Raises:
        PreviewError: not a format imgdesk previews, or not decodable.
    """
    reader.setAutoTransform(True)
    image_format = bytes(reader.format().data()).decode("ascii", "replace").lower()
    if image_format not in PREVIEW_FORMATS:
        raise PreviewError("This is not an image imgdesk can show.")
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > max_side:
        reader.setScaledSize(size.scaled(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        raise PreviewError(f"The image cannot be decoded ({reader.errorString()}).")
    facts = ImageFacts(
        width=size.width() if size.isValid() else image.width(),
        height=size.height() if size.isValid() else image.height(),
        byte_count=byte_count,
        image_format=image_format.upper().replace("JPG", "JPEG"),
    )
    return image, facts


# -- stored images: thumbnails and the compressed preview ----------------------------------------


class _LoadRelay(QObject):
    """Lives on the GUI thread; workers emit through it, so delivery is queued."""

    loaded = Signal(str, QImage, object)  # key, image, ImageFacts
    failed = Signal(str, str)  # key, message


class _ScaledFileLoad(QRunnable):
    """Decodes one stored file scaled down; nothing escapes ``run()``."""

    def __init__(self, key: str, path: str, max_side: int, relay: _LoadRelay) -> None:
        super().__init__()
        self._key = key
        self._path = path
        self._max_side = max_side
        self._relay = relay

    def run(self) -> None:
        try:
            reader = QImageReader(self._path)
            reader.setDecideFormatFromContent(True)
            if not reader.canRead():
                raise PreviewError("The stored image is missing or unreadable.")
            size = reader.device().size() if reader.device() is not None else None
            image, facts = decode_scaled(reader, self._max_side, size)
        except PreviewError as error:
            self._emit_failed(str(error))
        except BaseException as error:  # noqa: BLE001 - a worker must always report back
            logger.exception("thumbnail of %s failed", self._path)
            self._emit_failed(f"imgdesk could not show this image: {error!r}")
        else:
            with contextlib.suppress(RuntimeError):  # RuntimeError: the window is gone
                self._relay.loaded.emit(self._key, image, facts)

    def _emit_failed(self, message: str) -> None:
        with contextlib.suppress(RuntimeError):  # RuntimeError: the window is gone
            self._relay.failed.emit(self._key, message)


class ImageCache(QObject):
    """Decodes stored images scaled down in a thread pool and keeps the latest (LRU by bytes).

    Signals:
        image_ready(str): the image of this key is now in the cache (or failed for good).
    """

    image_ready = Signal(str)

    def __init__(
        self,
        max_bytes: int = 64 * 1024 * 1024,
        max_backlog: int = 200,
        threads: int = 2,
        parent: QObject | None = None,
    ) -> None:
        """Create an empty cache decoding on ``threads`` threads."""
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._threads = threads
        self._max_bytes = max_bytes
        self._max_backlog = max_backlog
        self._relay = _LoadRelay(self)
        self._relay.loaded.connect(self._on_relay_loaded)
        self._relay.failed.connect(self._on_relay_failed)
        self._pixmaps: OrderedDict[str, tuple[QPixmap, ImageFacts]] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._bytes = 0
        self._errors: OrderedDict[str, str] = OrderedDict()
        self._backlog: OrderedDict[str, tuple[str, int]] = OrderedDict()  # newest last
        self._running: set[str] = set()

    @staticmethod
    def key(path: str, stamp: object, max_side: int) -> str:
        """The cache key of a file at a size; ``stamp`` changes when the file is rewritten."""
        return f"{max_side}|{stamp}|{path}"

    def get(self, path: str, stamp: object, max_side: int) -> tuple[QPixmap, ImageFacts] | None:
        """The cached image and its facts, without loading anything."""
        key = self.key(path, stamp, max_side)
        found = self._pixmaps.get(key)
        if found is not None:
            self._pixmaps.move_to_end(key)
        return found

    def error(self, path: str, stamp: object, max_side: int) -> str | None:
        """Why the image could not be loaded, if it failed."""
        return self._errors.get(self.key(path, stamp, max_side))

    def request(self, path: str, stamp: object, max_side: int) -> tuple[QPixmap, ImageFacts] | None:
        """The cached image, or None while it is (now) being loaded in the background."""
        found = self.get(path, stamp, max_side)
        if found is not None:
            return found
        key = self.key(path, stamp, max_side)
        if key in self._errors or key in self._running:
            return None
        # Most recent wish last; the oldest wishes fall off when the backlog is full.
        self._backlog[key] = (path, max_side)
        self._backlog.move_to_end(key)
        while len(self._backlog) > self._max_backlog:
            self._backlog.popitem(last=False)
        self._pump()
        return None

    def clear(self) -> None:
        """Forget every cached image and wish."""
        self._pixmaps.clear()
        self._sizes.clear()
        self._errors.clear()
        self._backlog.clear()
        self._bytes = 0

    def shutdown(self) -> None:
        """Drop the backlog and wait briefly for running decodes (local files: fast)."""
        self._backlog.clear()
        self._pool.clear()
        self._pool.waitForDone(2000)

    def _pump(self) -> None:
        while self._backlog and len(self._running) < self._threads:
            key, (path, max_side) = self._backlog.popitem(last=True)
            self._running.add(key)
            self._pool.start(_ScaledFileLoad(key, path, max_side, self._relay))

    def _on_relay_loaded(self, key: str, image: QImage, facts: ImageFacts) -> None:
        self._running.discard(key)
        pixmap = QPixmap.fromImage(image)
        self._pixmaps[key] = (pixmap, facts)
        self._sizes[key] = image.sizeInBytes()
        self._bytes += self._sizes[key]
        while self._bytes > self._max_bytes and len(self._pixmaps) > 1:
            old_key, _ = self._pixmaps.popitem(last=False)
            self._bytes -= self._sizes.pop(old_key, 0)
        self._pump()
        self.image_ready.emit(key)

    def _on_relay_failed(self, key: str, message: str) -> None:
        self._running.discard(key)
        self._errors[key] = message
        while len(self._errors) > 1000:
            self._errors.popitem(last=False)
        self._pump()
        self.image_ready.emit(key)


# -- originals: downloaded again for the "before" pane --------------------------------------------


class _FetchRelay(QObject):
    """Lives on the GUI thread; the fetch thread emits through it."""

    loaded = Signal(str, QImage, object)  # url, image, ImageFacts
    failed = Signal(str, str)  # url, message


class OriginalFetcher(QObject):
    """Downloads original images again, one at a time, newest wish only, on a daemon thread.

    Signals:
        original_loaded(str, QPixmap, ImageFacts): the original of that URL, scaled down.
        original_failed(str, str): the URL and why it could not be shown.
    """

    original_loaded = Signal(str, QPixmap, object)
    original_failed = Signal(str, str)

    def __init__(self, parent: QObject | None = None, cache_size: int = 8) -> None:
        """Create an idle fetcher; the thread starts with the first wish."""
        super().__init__(parent)
        self._relay = _FetchRelay(self)
        self._relay.loaded.connect(self._on_relay_loaded)
        self._relay.failed.connect(self._on_relay_failed)
        self._wishes: queue.Queue[tuple[str, Settings, int] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._cache: OrderedDict[str, tuple[QPixmap, ImageFacts]] = OrderedDict()
        self._cache_size = cache_size
        self._errors: dict[str, tuple[str, float]] = {}  # url -> (message, when)
        self._pending: str | None = None

    def cached(self, url: str) -> tuple[QPixmap, ImageFacts] | None:
        """The original of ``url`` if it was fetched recently."""
        found = self._cache.get(url)
        if found is not None:
            self._cache.move_to_end(url)
        return found

    def error(self, url: str) -> str | None:
        """Why the original of ``url`` could not be shown, if it failed recently."""
        found = self._errors.get(url)
        if found is None:
            return None
        message, when = found
        if time.monotonic() - when > ERROR_MEMORY_S:
            del self._errors[url]  # the server may answer differently now: try again
            return None
        return message

    def fetch(self, url: str, settings: Settings, max_side: int = PREVIEW_SIDE) -> None:
        """Download ``url`` soon; a wish not started yet is replaced by this one."""
        if url == self._pending or url in self._cache:
            return
        self._pending = url
        self._errors.pop(url, None)
        while True:  # only the newest wish matters
            try:
                self._wishes.get_nowait()
            except queue.Empty:
                break
        settings = settings.replace(
            total_timeout_s=min(settings.total_timeout_s, PREVIEW_TIMEOUT_S),
            read_timeout_s=min(settings.read_timeout_s, PREVIEW_TIMEOUT_S),
            max_retries=0,
        )
        self._wishes.put((url, settings, max_side))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="imgdesk-preview", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Let the thread end after the download it may be doing."""
        self._wishes.put(None)

    def _run(self) -> None:
        session: requests.Session | None = None
        while True:
            wish = self._wishes.get()
            if wish is None:
                return
            url, settings, max_side = wish
            try:
                if session is None:
                    session = new_session(settings)
                fetched = download(url, settings, session)
                buffer = QBuffer()
                buffer.setData(QByteArray(fetched.data))
                buffer.open(QIODevice.OpenModeFlag.ReadOnly)
                reader = QImageReader(buffer)
                reader.setDecideFormatFromContent(True)
                image, facts = decode_scaled(reader, max_side, len(fetched.data))
                buffer.close()
            except ImageError as error:
                outcome: tuple[str, object] = ("failed", error.message)
            except PreviewError as error:
                outcome = ("failed", str(error))
            except BaseException as error:  # noqa: BLE001 - the thread must carry on
                logger.exception("preview download of %s failed", url)
                outcome = ("failed", f"imgdesk could not show this image: {error!r}")
            else:
                outcome = ("loaded", (image, facts))
            try:
                if outcome[0] == "loaded":
                    image, facts = outcome[1]  # type: ignore[misc]
                    self._relay.loaded.emit(url, image, facts)
                else:
                    self._relay.failed.emit(url, str(outcome[1]))
            except RuntimeError:  # the window is gone
                return

    def _on_relay_loaded(self, url: str, image: QImage, facts: ImageFacts) -> None:
        if self._pending == url:
            self._pending = None
        pixmap = QPixmap.fromImage(image)
        self._cache[url] = (pixmap, facts)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        self.original_loaded.emit(url, pixmap, facts)

    def _on_relay_failed(self, url: str, message: str) -> None:
        if self._pending == url:
            self._pending = None
        self._errors[url] = (message, time.monotonic())
        self.original_failed.emit(url, message)


# -- the panel -----------------------------------------------------------------------------------


class ImageBox(QFrame):
    """Paints a pixmap scaled to fit, or a message when there is none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        """Create an empty box."""
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFrameShadow(QFrame.Shadow.Sunken)
        self.setMinimumSize(160, 110)
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


class PreviewPanel(QWidget):
    """Before/after view of the selected image, with dimensions, bytes saved and details.

    Signals:
        compare_original_changed(bool): the user switched downloading originals on or off.
    """

    compare_original_changed = Signal(bool)

    def __init__(
        self,
        cache: ImageCache,
        fetcher: OriginalFetcher,
        settings_provider: Callable[[], Settings],
        parent: QWidget | None = None,
    ) -> None:
        """Build the panel; it shows nothing until :meth:`show_image`."""
        super().__init__(parent)
        self._cache = cache
        self._fetcher = fetcher
        self._settings_provider = settings_provider
        self._image: ImageInfo | None = None
        self._cache.image_ready.connect(self._on_cache_image_ready)
        self._fetcher.original_loaded.connect(self._on_fetcher_original_loaded)
        self._fetcher.original_failed.connect(self._on_fetcher_original_failed)
        self._fetch_timer = QTimer(self)
        self._fetch_timer.setSingleShot(True)
        self._fetch_timer.setInterval(ORIGINAL_DEBOUNCE_MS)
        self._fetch_timer.timeout.connect(self._on_fetch_timer_timeout)

        self._title = ElidedLabel(bold=True)  # a long product name ends in "…", not clipped
        self._compare = QCheckBox("Compare with the original (downloads it again)")
        self._compare.setChecked(True)
        self._compare.toggled.connect(self._on_compare_toggled)

        self._original_caption = QLabel("<b>Before</b>")
        self._original_box = ImageBox()
        self._original_facts = _wrapping_label()
        self._output_caption = QLabel("<b>After</b>")
        self._output_box = ImageBox()
        self._output_facts = _wrapping_label()
        # Two lines each, so both pictures get the same height whatever the facts say.
        for facts in (self._original_facts, self._output_facts):
            facts.setMinimumHeight(2 * facts.fontMetrics().lineSpacing())
            facts.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)

        self._state = QLabel()
        self._url = _read_only_field()
        self._output_path = _read_only_field()
        self._error = _wrapping_label()
        self._error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        details = QFormLayout()
        details.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        details.addRow("State:", self._state)
        details.addRow("Input URL:", self._url)
        details.addRow("Output:", self._output_path)
        details.addRow("Error:", self._error)
        self._buttons = QHBoxLayout()
        self._buttons.addStretch(1)

        pictures = QHBoxLayout()
        before = QVBoxLayout()
        before.addWidget(self._original_caption)
        before.addWidget(self._original_box, 1)
        before.addWidget(self._original_facts)
        after = QVBoxLayout()
        after.addWidget(self._output_caption)
        after.addWidget(self._output_box, 1)
        after.addWidget(self._output_facts)
        pictures.addLayout(before, 1)
        pictures.addLayout(after, 1)

        layout = QVBoxLayout(self)
        layout.addWidget(self._title)
        layout.addLayout(pictures, 1)
        layout.addWidget(self._compare)
        layout.addLayout(details)
        layout.addLayout(self._buttons)
        self.show_image(None)

    # -- public API -------------------------------------------------------------------------

    @property
    def image(self) -> ImageInfo | None:
        """The image shown."""
        return self._image

    def compare_original(self) -> bool:
        """True when originals are downloaded again for the "before" pane."""
        return self._compare.isChecked()

    def set_compare_original(self, enabled: bool) -> None:
        """Download originals for the "before" pane, or not."""
        self._compare.setChecked(enabled)

    def add_action_button(self, action: QObject) -> QToolButton:
        """Add a button for one of the window's actions under the details."""
        button = QToolButton(self)
        button.setDefaultAction(action)  # type: ignore[arg-type]
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._buttons.addWidget(button)
        return button

    def original_box(self) -> ImageBox:
        """The "before" pane (for tests and screenshots)."""
        return self._original_box

    def output_box(self) -> ImageBox:
        """The "after" pane (for tests and screenshots)."""
        return self._output_box

    def show_image(self, image: ImageInfo | None) -> None:
        """Show an image (or nothing); call again with fresh data when it changed."""
        previous = self._image
        self._image = image
        if image is None:
            self._title.setText("No image selected")
            self._original_box.set_message("Select an image to see it before and after.")
            self._output_box.set_message("")
            for field in (self._original_facts, self._output_facts, self._state, self._error):
                field.setText("")
            self._url.clear()
            self._output_path.clear()
            return
        self._title.setText(f"{image.product_name} \u00b7 image {image.position}")
        self._title.setToolTip(f"S. No. {image.serial}: {image.product_name}")
        state = image_state(image)
        label = STATE_LABELS.get(state, image.status)
        if image.attempts > 1:
            label += f" (after {image.attempts} attempts)"
        self._state.setText(label)
        _set_field(self._url, image.url)
        _set_field(self._output_path, image.output_path or "")
        if image.error:
            # Zero-width spaces after slashes let a long URL in a message wrap.
            message = f"{image.error} ({image.error_code})" if image.error_code else image.error
            self._error.setText(message.replace("/", "/\u200b"))
        else:
            self._error.setText("")
        self._show_output(image)
        if previous is None or previous.url != image.url or not self._original_box.has_image():
            self._show_original(image)

    # -- the two panes ------------------------------------------------------------------------

    def _show_output(self, image: ImageInfo) -> None:
        if image.status != "done" or not image.output_path:
            messages = {
                "pending": "Not processed yet.",
                "retrying": "Waiting to try again.",
                "downloading": "Downloading\u2026",
                "compressing": "Compressing\u2026",
                "failed": "No compressed image: this image failed.",
                "cancelled": "No compressed image: cancelled.",
            }
            self._output_box.set_message(messages.get(image_state(image), ""))
            self._output_facts.setText("")
            return
        facts = []
        if image.width and image.height:
            facts.append(f"{image.width} \u00d7 {image.height} px")
        facts.append(f"{format_bytes(image.output_bytes)} JPEG")
        fraction = savings_fraction(image.input_bytes, image.output_bytes)
        if fraction is not None and image.input_bytes is not None:
            saved = image.input_bytes - (image.output_bytes or 0)
            facts.append(f"{format_savings(fraction)} ({format_bytes(saved)} saved)")
        self._output_facts.setText(" \u00b7 ".join(facts))
        found = self._cache.request(image.output_path, image.output_bytes, PREVIEW_SIDE)
        if found is not None:
            self._output_box.set_pixmap(found[0])
        else:
            error = self._cache.error(image.output_path, image.output_bytes, PREVIEW_SIDE)
            self._output_box.set_message(error or "Loading\u2026")

    def _show_original(self, image: ImageInfo) -> None:
        known = []
        if image.input_bytes:
            known.append(f"{format_bytes(image.input_bytes)} {image.input_type or ''}".strip())
        self._original_facts.setText(" \u00b7 ".join(known))
        if not self._compare.isChecked():
            self._original_box.set_message(
                "Tick \u201cCompare with the original\u201d to download it again."
            )
            return
        found = self._fetcher.cached(image.url)
        if found is not None:
            self._set_original(found[0], found[1])
            return
        error = self._fetcher.error(image.url)
        if error is not None:
            self._original_box.set_message(f"The original cannot be shown: {error}")
            return
        self._original_box.set_message("Downloading the original\u2026")
        self._fetch_timer.start()  # debounced: arrowing through rows fetches only the last

    def _set_original(self, pixmap: QPixmap, facts: ImageFacts) -> None:
        self._original_box.set_pixmap(pixmap)
        parts = [f"{facts.width} \u00d7 {facts.height} px"]
        if facts.byte_count is not None:
            parts.append(f"{format_bytes(facts.byte_count)} {facts.image_format}")
        self._original_facts.setText(" \u00b7 ".join(parts))

    # -- slots --------------------------------------------------------------------------------

    def _on_fetch_timer_timeout(self) -> None:
        if self._image is not None and self._compare.isChecked():
            self._fetcher.fetch(self._image.url, self._settings_provider())

    def _on_compare_toggled(self, checked: bool) -> None:
        if self._image is not None:
            self._show_original(self._image)
        self.compare_original_changed.emit(checked)

    def _on_cache_image_ready(self, key: str) -> None:
        image = self._image
        if image is None or not image.output_path:
            return
        if key == ImageCache.key(image.output_path, image.output_bytes, PREVIEW_SIDE):
            self._show_output(image)

    def _on_fetcher_original_loaded(self, url: str, pixmap: QPixmap, facts: ImageFacts) -> None:
        if self._image is not None and self._image.url == url and self._compare.isChecked():
            self._set_original(pixmap, facts)

    def _on_fetcher_original_failed(self, url: str, message: str) -> None:
        if self._image is not None and self._image.url == url and self._compare.isChecked():
            self._original_box.set_message(f"The original cannot be shown: {message}")


def _wrapping_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    # Ignored: a long unbreakable word must not widen the whole panel.
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label


def _read_only_field() -> QLineEdit:
    field = QLineEdit()
    field.setReadOnly(True)
    field.setAcceptDrops(False)
    return field


def _set_field(field: QLineEdit, text: str) -> None:
    field.setText(text)
    field.setToolTip(text)
    field.setCursorPosition(0)
