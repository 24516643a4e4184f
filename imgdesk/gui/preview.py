"""The before/after preview of one image (:class:`PreviewPanel`).

It shows both side by side with dimensions and bytes saved, and opens the comparison at
100 % (:mod:`imgdesk.gui.compare`). The pictures come decoded from
:mod:`imgdesk.gui.image_loading`, off the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import (
    QObject,
    QSize,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
)
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from imgdesk.core.repository import ImageInfo
from imgdesk.core.settings import Settings
from imgdesk.core.states import ImageStatus, ShownState
from imgdesk.gui.compare import CompareDialog, ImageBox, Side
from imgdesk.gui.formatting import describe_known_original, describe_output, describe_picture
from imgdesk.gui.image_loading import (
    ORIGINAL_DEBOUNCE_MS,
    PREVIEW_SIDE,
    ImageCache,
    ImageFacts,
    OriginalFetcher,
    OutputRelay,
)
from imgdesk.gui.models import STATE_LABELS, image_state
from imgdesk.gui.widgets import ElidedLabel

logger = logging.getLogger(__name__)


class PreviewPanel(QWidget):
    """Before/after view of the selected image, with dimensions, bytes saved and details.

    "Compare at 100 %" (or a double-click on either picture) opens a :class:`CompareDialog`
    with both pictures at full size: the original from the fetcher, the output decoded on a
    thread of the panel's own.

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
        self._fetcher.full_size_loaded.connect(self._on_fetcher_full_size_loaded)
        self._fetcher.full_size_failed.connect(self._on_fetcher_full_size_failed)
        self._comparison: tuple[CompareDialog, ImageInfo] | None = None
        # Full-size outputs for the comparison: one at a time, off the GUI thread.
        self._full_size_pool = QThreadPool(self)
        self._full_size_pool.setMaxThreadCount(1)
        self._full_size_relay = OutputRelay(self)
        self._full_size_relay.done.connect(
            self._on_full_size_output_done, Qt.ConnectionType.QueuedConnection
        )
        self._fetch_timer = QTimer(self)
        self._fetch_timer.setSingleShot(True)
        self._fetch_timer.setInterval(ORIGINAL_DEBOUNCE_MS)
        self._fetch_timer.timeout.connect(self._on_fetch_timer_timeout)

        self._title = ElidedLabel(bold=True)  # a long product name ends in "…", not clipped
        # Short: with the button beside it, the panel still leaves the table its columns.
        self._compare = QCheckBox("Show the original (downloads it again)")
        self._compare.setChecked(True)
        self._compare.toggled.connect(self._on_compare_toggled)
        self._compare_button = QPushButton("Compare at 100 %")
        self._compare_button.setObjectName("compare_at_100")
        self._compare_button.setToolTip(
            "The original and the compressed image at full size, side by side or with a "
            "slider, to see every artefact (downloads the original again). Double-clicking "
            "either picture does the same."
        )
        self._compare_button.clicked.connect(self.open_comparison)

        self._original_box, self._original_facts, before = self._picture_column("Before")
        self._output_box, self._output_facts, after = self._picture_column("After")

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
        pictures.addLayout(before, 1)
        pictures.addLayout(after, 1)

        layout = QVBoxLayout(self)
        layout.addWidget(self._title)
        layout.addLayout(pictures, 1)
        compare_row = QHBoxLayout()
        compare_row.addWidget(self._compare, 1)
        compare_row.addWidget(self._compare_button)
        layout.addLayout(compare_row)
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

    def open_comparison(self) -> CompareDialog | None:
        """Compare the image shown at 100 % in a window of its own (if it has an output)."""
        image = self._image
        path = _output_of(image)
        if image is None or path is None:
            return None
        if self._comparison is not None:
            self._comparison[0].close()  # one comparison at a time
        size = QSize(image.width, image.height) if image.width and image.height else None
        dialog = CompareDialog(_title(image), size, self.window())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _result: self._on_comparison_finished(dialog))
        self._comparison = (dialog, image)
        loading = "Loading the compressed image\u2026"
        dialog.set_side(Side.AFTER, None, describe_output(image), loading)
        waiting = "Downloading the original\u2026"
        dialog.set_side(Side.BEFORE, None, describe_known_original(image), waiting)
        self._fetcher.fetch_full_size(image.url, self._settings_provider())
        self._cache.start_load(
            _full_size_key(image),
            path,
            image.output_bytes,
            None,
            self._full_size_relay,
            self._full_size_pool,
        )
        dialog.show()
        return dialog

    def show_image(self, image: ImageInfo | None) -> None:
        """Show an image (or nothing); call again with fresh data when it changed."""
        previous = self._image
        self._image = image
        self._compare_button.setEnabled(_output_of(image) is not None)
        if image is None:
            self._title.setText("No image selected")
            self._original_box.set_message("Select an image to see it before and after.")
            self._output_box.set_message("")
            for field in (self._original_facts, self._output_facts, self._state, self._error):
                field.setText("")
            self._url.clear()
            self._output_path.clear()
            return
        self._title.setText(_title(image))
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

    def _picture_column(self, caption: str) -> tuple[ImageBox, QLabel, QVBoxLayout]:
        """A caption over a picture over its facts; double-clicking opens the comparison."""
        box = ImageBox()
        box.double_clicked.connect(self.open_comparison)
        facts = _wrapping_label()
        # Two lines, so both pictures get the same height whatever the facts say.
        facts.setMinimumHeight(2 * facts.fontMetrics().lineSpacing())
        facts.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        column = QVBoxLayout()
        column.addWidget(QLabel(f"<b>{caption}</b>"))
        column.addWidget(box, 1)
        column.addWidget(facts)
        return box, facts, column

    def _show_output(self, image: ImageInfo) -> None:
        path = _output_of(image)
        if path is None:
            messages = {
                ShownState.PENDING: "Not processed yet.",
                ShownState.RETRYING: "Waiting to try again.",
                ShownState.DOWNLOADING: "Downloading\u2026",
                ShownState.COMPRESSING: "Compressing\u2026",
                ShownState.FAILED: "No compressed image: this image failed.",
                ShownState.CANCELLED: "No compressed image: cancelled.",
            }
            self._output_box.set_message(messages.get(image_state(image), ""))
            self._output_facts.setText("")
            return
        self._output_facts.setText(describe_output(image))
        found = self._cache.request(path, image.output_bytes, PREVIEW_SIDE)
        if found is not None:
            self._output_box.set_pixmap(found[0])
        else:
            error = self._cache.error(path, image.output_bytes, PREVIEW_SIDE)
            self._output_box.set_message(error or "Loading\u2026")

    def _show_original(self, image: ImageInfo) -> None:
        self._original_facts.setText(describe_known_original(image))
        if not self._compare.isChecked():
            self._original_box.set_message(
                "Tick \u201cShow the original\u201d to download it again."
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
        self._original_facts.setText(_describe(facts))

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

    # -- the comparison's pictures, as they arrive ---------------------------------------------

    def _on_fetcher_full_size_loaded(self, url: str, image: QImage, facts: ImageFacts) -> None:
        if self._comparison is not None and self._comparison[1].url == url:
            self._comparison[0].set_side(Side.BEFORE, image, _describe(facts))

    def _on_fetcher_full_size_failed(self, url: str, message: str) -> None:
        if self._comparison is not None and self._comparison[1].url == url:
            dialog, shown = self._comparison
            message = f"The original cannot be shown: {message}"
            dialog.set_side(Side.BEFORE, None, describe_known_original(shown), message)

    def _on_full_size_output_done(
        self,
        key: str,
        image: QImage | None,
        _facts: ImageFacts | None,
        message: str,
        _passing: bool,
    ) -> None:
        if self._comparison is not None and _full_size_key(self._comparison[1]) == key:
            dialog, shown = self._comparison
            dialog.set_side(Side.AFTER, image, describe_output(shown), message)

    def _on_comparison_finished(self, dialog: CompareDialog) -> None:
        if self._comparison is not None and self._comparison[0] is dialog:
            self._comparison = None


def _output_of(image: ImageInfo | None) -> str | None:
    """An image's output (a file, or a key in its bucket), if it is done and has one."""
    if image is None or image.status != ImageStatus.DONE or not image.output_path:
        return None
    return image.output_path


def _title(image: ImageInfo) -> str:
    return f"{image.product_name} \u00b7 image {image.position}"


def _full_size_key(image: ImageInfo) -> str:
    return ImageCache.key(image.output_path or "", image.output_bytes, 0)


def _describe(facts: ImageFacts) -> str:
    return describe_picture(facts.width, facts.height, facts.byte_count, facts.image_format)


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
