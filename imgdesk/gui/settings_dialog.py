"""The settings dialog: image rules (SPEC 3), output formats (SPEC 9), files and the webhook.

Validation is the :class:`~imgdesk.core.settings.Settings` (and
:class:`~imgdesk.core.output.OutputSettings`) constructor itself, so the window, the command
line and stored values obey one set of rules; the dialog only translates field names into
the labels the user sees. Spin boxes are limited to the same ranges, which a test checks
against ``Settings``, so most mistakes cannot even be typed; what the ranges cannot rule out
(a format this installation cannot write) is said on the Output page as soon as it is chosen.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import Enum
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from imgdesk.core.errors import SettingsError
from imgdesk.core.output import ENCODERS, OutputSettings, encoder_for
from imgdesk.core.settings import KNOWN_INPUT_TYPES, MIB, Settings, check_http_url
from imgdesk.gui.formatting import format_bytes
from imgdesk.gui.processing_page import add_place_box
from imgdesk.gui.storage_page import StoragePage
from imgdesk.gui.widgets import named

# (url, secret, report(text, ok)): sends a webhook test event and reports the answer.
WebhookTester = Callable[[str, str, Callable[[str, bool], None]], None]

ERROR_STYLE = "color: #b91c1c;"
OK_STYLE = "color: #15803d;"
# A receiver may answer with a whole web page; the dialog shows the start of it.
MAX_TEST_RESULT_CHARS = 600

TYPE_NAMES = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WebP",
    "image/gif": "GIF",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
}


class SettingsPage(Enum):
    """The pages of the dialog; the value is the tab's title."""

    PROCESSING = "Processing"
    NETWORK = "Network"
    OUTPUT = "Output"
    FILES = "Files"
    STORAGE = "Storage"
    WEBHOOK = "Webhook"


@dataclass(frozen=True)
class _Number:
    """A numeric setting: its range and the unit it is shown in (its words: LABELS, HELP).

    The stored value is the shown value times ``scale`` (MiB, megapixels and seconds are
    friendlier than bytes, pixels and milliseconds). ``minimum`` and ``maximum`` are in
    shown units; ``default_note`` says more about the default in its tooltip.
    """

    field: str
    minimum: float
    maximum: float
    unit: str = ""
    scale: float = 1
    decimals: int = 0
    default_note: str = ""


PIXEL_LIMIT_NOTE = "about 9,460 \u00d7 9,460 pixels, the limit of the imaging library"
PROCESSING = (
    _Number("concurrency", 1, 64),
    _Number("per_host_concurrency", 1, 64),
    _Number("max_download_bytes", 0.01, 1024, "MiB", MIB, 2),
    # Whole megapixels under Pillow's own limit, the default (89.48 million pixels).
    _Number("max_pixels", 1, 89, "megapixels", 1_000_000, default_note=PIXEL_LIMIT_NOTE),
)
NETWORK = (
    _Number("max_retries", 0, 20),
    _Number("retry_base_delay_s", 0, 600, "s", decimals=2),
    _Number("retry_after_cap_s", 0, 3600, "s", decimals=2),
    _Number("connect_timeout_s", 0.1, 600, "s", decimals=2),
    _Number("read_timeout_s", 0.1, 600, "s", decimals=2),
    _Number("total_timeout_s", 0.1, 3600, "s", decimals=2),
    _Number("max_redirects", 0, 30),
)
WEBHOOK = (
    _Number("webhook_retries", 0, 20),
    # Seconds, as every other wait of the dialog; stored in milliseconds.
    _Number("webhook_first_delay_ms", 0, 3600, "s", 1000, 2),
)
NUMBERS = (*PROCESSING, *NETWORK, *WEBHOOK)
# The limits of OutputSettings (a test checks both ends are accepted); 0 shows "none".
MAX_SIDE_PX = 65535
MAX_TARGET_KIB = 1024 * 1024

# Every input's label; an error naming a field is shown with it.
LABELS = {
    "storage": "Storage",
    "retention_days": "Remove files after",
    "concurrency": "Images at a time",
    "per_host_concurrency": "Images at a time per server",
    "max_download_bytes": "Largest download",
    "max_pixels": "Largest picture",
    "allowed_types": "Accepted picture types",
    "max_retries": "Automatic retries",
    "retry_base_delay_s": "First retry after",
    "retry_after_cap_s": "Longest Retry-After to honour",
    "connect_timeout_s": "Connect timeout",
    "read_timeout_s": "Read timeout",
    "total_timeout_s": "Download deadline",
    "max_redirects": "Redirects to follow",
    "block_private_addresses": "Block local network addresses",
    "format": "Format",
    "quality": "Quality",
    "max_width": "Largest width",
    "max_height": "Largest height",
    "target_size_kb": "Target file size",
    "keep_original": "Keep originals",
    "flatten": "Transparency",
    "data_dir": "Data folder",
    "public_base_url": "Public base URL",
    "neutralise_formulas": "Neutralise formulas",
    "power_safe_writes": "Power-safe database",
    "webhook_url": "Webhook URL",
    "webhook_secret": "Signing secret",
    "webhook_retries": "Retries",
    "webhook_first_delay_ms": "First retry after",
}
OUTPUT_FIELDS = tuple(field.name for field in fields(OutputSettings))  # the Output page's
_WAIT_DOUBLES = "The wait doubles with each further attempt, with some randomness."
_FIT = "scaled down to fit, keeping their proportions; smaller ones are never enlarged."

# What each input does, in a shop owner's words: its tooltip (the dialog adds the default).
HELP = {
    "retention_days": "Remove the stored pictures of requests that finished more than this many "
    "days ago, each time processing starts (the requests stay listed). 0 keeps them forever.",
    "concurrency": "How many images are fetched and compressed at once.",
    "per_host_concurrency": "How many of those may come from the same server, so one shop's "
    "server is not flooded.",
    "max_download_bytes": "Bigger downloads are stopped and the image fails as too large.",
    "max_pixels": "Pictures with more pixels fail, which protects against decompression bombs.",
    "max_retries": "Extra attempts after a temporary failure: timeouts, lost connections, HTTP "
    "408, 425, 429 and 5xx.",
    "retry_base_delay_s": _WAIT_DOUBLES,
    "retry_after_cap_s": "A server may ask to be retried later; a longer wait than this fails "
    "the attempt.",
    "connect_timeout_s": "How long to wait for a server to accept the connection.",
    "read_timeout_s": "How long a server may stay silent during a download.",
    "total_timeout_s": "The longest one download may take in all, so a server that trickles "
    "bytes cannot hold a worker forever.",
    "max_redirects": "More redirects than this fail the image.",
    "block_private_addresses": "Loopback and private addresses are allowed by default, for "
    "pictures on your own network. Turn this on when the CSV comes from someone you do not "
    "trust.",
    "quality": "Lower gives smaller files, higher looks better. With a target size, the "
    "highest quality tried.",
    "max_width": f"Wider pictures are {_FIT}",
    "max_height": f"Taller pictures are {_FIT}",
    "target_size_kb": "For shops with a file size limit: each picture gets the highest quality "
    "whose file fits (1 KiB = 1,024 bytes).",
    "keep_original": "A JPEG (or, for WebP output, a WebP) that needs no resizing or turning "
    "and would only grow is stored as it is, with its hidden data (camera, location) removed "
    "and its colours untouched.",
    "flatten": "WebP and AVIF keep transparency unless this is ticked; JPEG always puts it on "
    "white.",
    "public_base_url": "Where you publish the data folder's images. When set, output URLs are "
    "<base>/<request id>/<file name>.",
    "neutralise_formulas": "Cells starting with = + - @ get a leading ' (the OWASP CSV "
    "injection rule), so a hostile cell cannot run when the file is opened in a spreadsheet.",
    "power_safe_writes": "SQLite synchronous=FULL. Off, a power cut (not a crash) can lose the "
    "last second of stored results; those images are simply fetched again. The database is "
    "never corrupted either way.",
    "webhook_url": "Receives a JSON POST when a request completes or fails. A request can "
    "override it.",
    "webhook_secret": "Signs each event (webhook-signature header, HMAC-SHA256), so the "
    "receiver can check it came from imgdesk. A whsec_… secret is base64-decoded first.\n\n"
    "Default: empty, events are not signed.",
    "data_dir": "Where the database, the compressed images and the logs are kept.\n\n"
    "Default: the platform's user data folder, or $IMGDESK_DATA_DIR.",
    "webhook_retries": "Extra attempts when the receiver does not answer with 2xx (410 stops "
    "at once).",
    "webhook_first_delay_ms": _WAIT_DOUBLES,
}

# What each format means for a shop owner: who can show it, and what it costs in time (the
# README's figures for a whole catalogue, against JPEG).
FORMAT_NOTES = {
    "jpeg": "Every browser, program and shop platform shows JPEG, and it is the fastest to make. "
    "It has no transparency: transparent parts become white.",
    "webp": "Smaller files than JPEG at the same look, and transparency is kept. Every current "
    "browser shows it; some older programs and shop platforms do not. Takes about 10 times "
    "the computer time of JPEG.",
    "avif": "The smallest files, and transparency is kept, but the slowest: about 15 times the "
    "computer time of JPEG, so a catalogue that takes a minute as JPEG takes about a quarter "
    "of an hour. Current browsers show it; many other programs do not yet. No original is "
    "kept as it is: imgdesk never receives AVIF pictures.",
}


PRIVATE_TEXT = "Refuse image URLs on this computer or the local network"
NEUTRALISE_TEXT = "Stop spreadsheets from running cells of the output CSV as formulas"
POWER_SAFE_TEXT = "Make every stored result survive a power cut (slower)"
WEBHOOK_EXAMPLE = "https://example.com/hooks/imgdesk"
EMPTY_MEANS = {
    "public_base_url": "output URLs are file:// links to this computer",
    "webhook_url": "no webhook",
}


class _UnitSpinBox(QDoubleSpinBox):
    """A spin box showing a stored value in friendlier units (MiB, megapixels, seconds).

    Until the user edits it, the box gives back the exact stored value, so opening the
    dialog and pressing OK never changes a setting by rounding it for display. Numbers are
    written without trailing zeros: "1 s" and "0.5 s", not "1.00 s".
    """

    def __init__(self, number: _Number) -> None:
        super().__init__()
        self._scale = number.scale
        self._integral = number.scale != 1
        self.setDecimals(number.decimals)
        self.setRange(number.minimum, number.maximum)
        self._stored: float = 0
        self._edited = False
        self.valueChanged.connect(self._on_value_changed)

    def set_stored(self, value: float) -> None:
        """Show ``value`` (in stored units)."""
        self.setValue(value / self._scale)
        self._stored = value
        self._edited = False

    def stored(self) -> float:
        """The value in stored units: the original until edited, else the shown one scaled."""
        if not self._edited:
            return self._stored
        value = self.value() * self._scale
        return round(value) if self._integral else value

    def textFromValue(self, value: float) -> str:  # noqa: N802
        """The value with the decimals it needs, in the user's locale."""
        text = self.locale().toString(value, "f", self.decimals())
        point = self.locale().decimalPoint()
        if point in text:
            text = text.rstrip("0").rstrip(point)
        return text

    def _on_value_changed(self) -> None:
        self._edited = True


class _OutputPage(QWidget):
    """Settings → Output: what requests added from now on are written as (SPEC 9).

    Every input's object name is its :class:`OutputSettings` field name. The notes follow the
    choices: what the chosen format costs and who can show it, the target size in the
    window's size unit, and what new requests will get, or, in red, why they cannot.
    """

    def __init__(self) -> None:
        super().__init__()
        form = _form(self)
        self._format = named(QComboBox(), "format")
        for name, encoder in ENCODERS.items():
            self._format.addItem(
                encoder.label + ("" if _can_write(name) else " (not available)"), name
            )
        self._format.setToolTip("The file format of the compressed pictures.\n\nDefault: JPEG.")
        form.addRow(LABELS["format"], self._format)
        self._format_note = _note(form, "format_note", lines=4)
        self._quality = _spin(form, "quality", 1, 100)
        self._max_width = _spin(form, "max_width", 0, MAX_SIDE_PX, " px", "No limit")
        self._max_height = _spin(form, "max_height", 0, MAX_SIDE_PX, " px", "No limit")
        self._target = _spin(form, "target_size_kb", 0, MAX_TARGET_KIB, " KiB", "Off")
        self._target_note = _note(form, "target_size_note", lines=2)
        texts = {
            "keep_original": "Keep a picture as it is when compressing would only make it bigger",
            "flatten": "Put transparent parts on a white background",
        }
        self._checks = {field: _check(form, field, text) for field, text in texts.items()}
        self._summary = _note(form, "output_summary", lines=3)
        self._summary.setEnabled(True)  # not a remark: what new requests get
        self._format.currentIndexChanged.connect(self._update_notes)
        for box in (self._quality, self._max_width, self._max_height, self._target):
            box.valueChanged.connect(self._update_notes)
        for check in self._checks.values():
            check.toggled.connect(self._update_notes)

    def show_output(self, output: OutputSettings) -> None:
        """Show ``output``'s values."""
        self._format.setCurrentIndex(self._format.findData(output.format))
        self._quality.setValue(output.quality)
        self._max_width.setValue(output.max_width or 0)
        self._max_height.setValue(output.max_height or 0)
        self._target.setValue(output.target_size_kb or 0)
        for field, check in self._checks.items():
            check.setChecked(getattr(output, field))
        self._update_notes()

    def collect(self) -> OutputSettings:
        """The output settings as chosen; raises SettingsError naming what is wrong."""
        name = str(self._format.currentData())
        if not _can_write(name):
            label = ENCODERS[name].label
            raise SettingsError(
                f"format {label} cannot be written by this installation: its Pillow was built "
                f"without {label} support. Choose another format, or install Pillow 11.3 or newer."
            )
        return OutputSettings(
            format=name,
            quality=self._quality.value(),
            max_width=self._max_width.value() or None,
            max_height=self._max_height.value() or None,
            target_size_kb=self._target.value() or None,
            **{field: check.isChecked() for field, check in self._checks.items()},
        )

    def _update_notes(self) -> None:
        name = str(self._format.currentData())
        self._format_note.setText(FORMAT_NOTES[name])
        # What does nothing for this format is greyed (and kept, for another format).
        self._checks["flatten"].setEnabled(ENCODERS[name].keeps_alpha)
        self._checks["keep_original"].setEnabled(name != "avif")  # imgdesk never reads AVIF
        target = self._target.value()
        self._target_note.setText(
            f"At most {format_bytes(target * 1024)} a picture, trying up to 8 qualities (up to "
            "8 times the time); one that does not fit even at quality 10 is kept at that "
            "quality and marked \u201cover target\u201d."
            if target
            else "Off: every picture is written at the quality above."
        )
        try:
            summary = f"Requests added from now on: {self.collect().describe()}."
        except SettingsError as error:
            self._summary.setStyleSheet(ERROR_STYLE)
            self._summary.setText(_in_words(str(error)))
            return
        self._summary.setStyleSheet("")
        self._summary.setText(
            f"{summary} Requests already added keep the settings they were made with, and so "
            "do their retries."
        )


class SettingsDialog(QDialog):
    """Edit the processing settings, the data folder and the webhook.

    After ``exec() == QDialog.Accepted``, :meth:`result_settings` and :meth:`result_data_dir`
    hold the validated values. Every input's ``objectName`` is its ``Settings`` field name
    (``data_dir`` for the folder, the MIME type for each picture type check box).

    Args:
        settings: the values to start from; fields without an input (the user agent) are
            carried through unchanged.
        data_dir: the data folder in use.
        parent: the owning window.
        send_test_event: called with the typed webhook URL and secret when the user asks
            for a test event; the caller reports the answer through :meth:`show_test_result`.
            Without it the test button stays disabled.
    """

    def __init__(
        self,
        settings: Settings,
        data_dir: Path,
        parent: QWidget | None = None,
        send_test_event: Callable[[str, str], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("imgdesk settings")
        self._original = settings
        self._send_test_event = send_test_event
        self._result: tuple[Settings, Path] | None = None
        self._numbers: dict[str, QSpinBox | _UnitSpinBox] = {}
        self._checks: dict[str, QCheckBox] = {}
        self._lines: dict[str, QLineEdit] = {}
        # Which tab holds each input, to bring an invalid one into view.
        self._pages: dict[str, QWidget] = {}

        self._tabs = QTabWidget()
        self._output = _OutputPage()
        self._storage = self._pages["storage"] = StoragePage(data_dir)
        self._pages.update(dict.fromkeys(OUTPUT_FIELDS, self._output))
        self._page_widgets = {
            SettingsPage.PROCESSING: self._processing_page(),
            SettingsPage.NETWORK: self._network_page(),
            SettingsPage.OUTPUT: self._output,
            SettingsPage.FILES: self._files_page(),
            SettingsPage.STORAGE: self._storage,
            SettingsPage.WEBHOOK: self._webhook_page(),
        }
        for page, widget in self._page_widgets.items():
            self._tabs.addTab(widget, page.value)

        self._error = named(QLabel(), "error")
        self._error.setStyleSheet(ERROR_STYLE)
        self._error.setWordWrap(True)
        self._error.setTextFormat(Qt.TextFormat.PlainText)
        self._error.hide()

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        restore = buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        restore.setToolTip("Set every setting except the data folder back to its default.")
        restore.clicked.connect(self._on_restore_defaults_clicked)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self._tabs)
        layout.addWidget(self._error)
        layout.addWidget(buttons)

        self._show_settings(settings)
        self._data_dir.setText(str(data_dir))
        self._update_test_button()

    @classmethod
    def with_webhook_tester(
        cls,
        settings: Settings,
        data_dir: Path,
        parent: QWidget | None,
        tester: WebhookTester | None,
    ) -> SettingsDialog:
        """A dialog whose test button sends through ``tester`` (None: disabled); answer shown."""
        if tester is None:
            return cls(settings, data_dir, parent)
        dialog: SettingsDialog | None = None

        def report(text: str, ok: bool) -> None:
            # RuntimeError: the dialog was closed before the answer came.
            with contextlib.suppress(RuntimeError):
                if dialog is not None:
                    dialog.show_test_result(text, ok)

        dialog = cls(settings, data_dir, parent, lambda url, secret: tester(url, secret, report))
        return dialog

    # -- results -----------------------------------------------------------------------------

    def result_settings(self) -> Settings:
        """The accepted settings."""
        if self._result is None:
            raise RuntimeError("the settings dialog was not accepted")
        return self._result[0]

    def result_data_dir(self) -> Path:
        """The accepted data folder (used from the next start)."""
        if self._result is None:
            raise RuntimeError("the settings dialog was not accepted")
        return self._result[1]

    def show_page(self, page: SettingsPage) -> None:
        """Bring one page (tab) of the dialog to the front."""
        self._tabs.setCurrentWidget(self._page_widgets[page])

    def show_test_result(self, text: str, ok: bool) -> None:
        """Show the webhook receiver's answer to a test event, in green or red."""
        if len(text) > MAX_TEST_RESULT_CHARS:
            text = text[:MAX_TEST_RESULT_CHARS] + "…"
        self._test_result.setStyleSheet(OK_STYLE if ok else ERROR_STYLE)
        self._test_result.setText(text)
        self._test_result.show()

    def accept(self) -> None:
        """Close only when every value is valid; otherwise say what is wrong and stay open."""
        try:
            self._result = (self._collect(), self._collect_data_dir())
            self._storage.keep_secret()  # only once everything else is valid
            self._place.keep()
        except SettingsError as error:
            self._show_error(str(error))
            return
        self._error.hide()
        super().accept()

    # -- pages -------------------------------------------------------------------------------

    def _processing_page(self) -> QWidget:
        page = QWidget()
        form = _form(page)
        self._place = add_place_box(form, self.parentWidget())  # this computer, or a cluster
        for number in PROCESSING:
            self._add_number(form, page, number)
        types = named(QGroupBox(LABELS["allowed_types"]), "allowed_types")
        types.setToolTip(
            "Decided from the file's first bytes, whatever the server claims. Other pictures "
            f"fail as an unsupported type.\n\nDefault: {_type_names(Settings().allowed_types)}."
        )
        row = QHBoxLayout(types)
        self._types: dict[str, QCheckBox] = {}
        for mime in KNOWN_INPUT_TYPES:
            box = named(QCheckBox(TYPE_NAMES.get(mime, mime)), mime)
            box.setToolTip(mime)
            row.addWidget(box)
            self._types[mime] = box
        row.addStretch()
        self._pages["allowed_types"] = page
        form.addRow(types)
        return page

    def _network_page(self) -> QWidget:
        page = QWidget()
        form = _form(page)
        for number in NETWORK:
            self._add_number(form, page, number)
        self._add_check(form, page, "block_private_addresses", PRIVATE_TEXT)
        return page

    def _files_page(self) -> QWidget:
        page = QWidget()
        form = _form(page)

        browse = named(QPushButton("Browse…"), "browse_data_dir")
        browse.clicked.connect(self._on_browse_clicked)
        self._data_dir = self._add_line_with(form, page, "data_dir", browse)
        _note(form, "data_dir_note").setText(
            "Takes effect the next time imgdesk starts. Requests and images already stored "
            "stay in the current folder."
        )

        self._add_line(form, page, "public_base_url", "https://cdn.example.com/products")
        _note(form, "public_base_url_note").setText(
            "Leave it empty and the output CSV links to the files on this computer. If you copy "
            "the images folder to your web server or CDN, enter its web address: the CSV then "
            "links there, as https://\u2026/<request id>/<file name>."
        )
        self._add_check(form, page, "neutralise_formulas", NEUTRALISE_TEXT)
        self._add_check(form, page, "power_safe_writes", POWER_SAFE_TEXT)
        self._add_number(form, page, _Number("retention_days", 0, 36500, "days"))
        return page

    def _webhook_page(self) -> QWidget:
        page = QWidget()
        form = _form(page)
        self._webhook_url = self._add_line(form, page, "webhook_url", WEBHOOK_EXAMPLE)
        self._webhook_url.textChanged.connect(self._update_test_button)

        show = named(QCheckBox("Show"), "show_secret")
        show.toggled.connect(self._on_show_secret_toggled)
        self._secret = self._add_line_with(form, page, "webhook_secret", show)
        self._secret.setEchoMode(QLineEdit.EchoMode.Password)

        self._test_button = named(QPushButton("Send test event"), "send_test_event")
        self._test_button.setToolTip("POST a test event to the URL above, signed with the secret.")
        self._test_button.clicked.connect(self._on_test_clicked)
        self._test_result = named(QLabel(), "test_result")
        self._test_result.setWordWrap(True)
        # The receiver's answer is untrusted text: never let Qt read it as rich text.
        self._test_result.setTextFormat(Qt.TextFormat.PlainText)
        self._test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._test_result.hide()
        self._test_result.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        test_row = QVBoxLayout()
        test_row.addWidget(self._test_button, alignment=Qt.AlignmentFlag.AlignLeft)
        test_row.addWidget(self._test_result)
        # Across the whole dialog: in the field column, an answer wrapped into a narrow strip.
        form.addRow(test_row)

        for number in WEBHOOK:
            self._add_number(form, page, number)
        return page

    def _add_number(self, form: QFormLayout, page: QWidget, number: _Number) -> None:
        default = getattr(Settings(), number.field) / number.scale
        shown_default = f"{round(default, number.decimals):g} {number.unit}".rstrip()
        if number.default_note:
            shown_default += f" ({number.default_note})"
        box: QSpinBox | _UnitSpinBox
        if number.decimals or number.scale != 1:
            box = _UnitSpinBox(number)
        else:
            box = QSpinBox()
            box.setRange(int(number.minimum), int(number.maximum))
        if number.unit:
            box.setSuffix(f" {number.unit}")
        box.setObjectName(number.field)
        box.setToolTip(f"{HELP[number.field]}\n\nDefault: {shown_default}.")
        form.addRow(LABELS[number.field], box)
        self._numbers[number.field] = box
        self._pages[number.field] = page

    def _add_line(self, form: QFormLayout, page: QWidget, field: str, example: str) -> QLineEdit:
        line = named(QLineEdit(), field)
        line.setPlaceholderText(example)
        line.setToolTip(f"{HELP[field]}\n\nDefault: empty, {EMPTY_MEANS[field]}.")
        form.addRow(LABELS[field], line)
        self._lines[field] = line
        self._pages[field] = page
        return line

    def _add_line_with(
        self, form: QFormLayout, page: QWidget, field: str, beside: QWidget
    ) -> QLineEdit:
        """A line edit with a button or check box beside it (Browse…, Show)."""
        line = named(QLineEdit(), field)
        line.setToolTip(HELP[field])
        row = QHBoxLayout()
        row.addWidget(line)
        row.addWidget(beside)
        form.addRow(LABELS[field], row)
        self._pages[field] = page
        return line

    def _add_check(self, form: QFormLayout, page: QWidget, field: str, text: str) -> None:
        self._checks[field] = _check(form, field, text, getattr(Settings(), field))
        self._pages[field] = page

    # -- values ------------------------------------------------------------------------------

    def _show_settings(self, settings: Settings) -> None:
        for field, box in self._numbers.items():
            value = getattr(settings, field)
            if isinstance(box, _UnitSpinBox):
                box.set_stored(value)
            else:
                box.setValue(value)
        for mime, check in self._types.items():
            check.setChecked(mime in settings.allowed_types)
        for field, check in self._checks.items():
            check.setChecked(getattr(settings, field))
        for field, line in self._lines.items():
            line.setText(getattr(settings, field))
        self._secret.setText(settings.webhook_secret)
        self._output.show_output(settings.output)
        self._storage.show_settings(settings)

    def _collect(self) -> Settings:
        """The settings as typed; raises :class:`SettingsError` naming a bad field."""
        numbers = {
            field: box.stored() if isinstance(box, _UnitSpinBox) else box.value()
            for field, box in self._numbers.items()
        }
        chosen = self._original.replace(
            **numbers,
            **{field: check.isChecked() for field, check in self._checks.items()},
            **{field: line.text().strip() for field, line in self._lines.items()},
            allowed_types=tuple(mime for mime, check in self._types.items() if check.isChecked()),
            webhook_secret=self._secret.text(),  # spaces may be part of a secret
            output=self._output.collect(),
        )
        return self._storage.collect(chosen)

    def _collect_data_dir(self) -> Path:
        text = self._data_dir.text().strip()
        if not text:
            raise SettingsError("data_dir must name a folder.")
        path = Path(text).expanduser().absolute()
        if path.exists() and not path.is_dir():
            raise SettingsError(f"data_dir must be a folder, but {path} is a file.")
        return path

    def _show_error(self, message: str) -> None:
        """Show a ``SettingsError`` in the user's words and bring the field into view."""
        field = _field_of(message)
        if field is not None:
            self._tabs.setCurrentWidget(self._pages[field])
            target = self.findChild(QWidget, field)
            if target is not None:
                target.setFocus()
        self._error.setText(_in_words(message))
        self._error.show()

    # -- slots -------------------------------------------------------------------------------

    def _on_restore_defaults_clicked(self) -> None:
        self._show_settings(Settings())
        self._error.hide()

    def _on_browse_clicked(self) -> None:
        chosen = QFileDialog.getExistingDirectory(
            self, "Choose the data folder", self._data_dir.text()
        )
        if chosen:
            self._data_dir.setText(chosen)

    def _on_show_secret_toggled(self, shown: bool) -> None:
        mode = QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        self._secret.setEchoMode(mode)

    def _on_test_clicked(self) -> None:
        assert self._send_test_event is not None  # the button is disabled without it
        self._test_result.setStyleSheet("")
        self._test_result.setText("Sending a test event…")
        self._test_result.show()
        self._send_test_event(self._webhook_url.text().strip(), self._secret.text())

    def _update_test_button(self) -> None:
        url = self._webhook_url.text().strip()
        enabled = self._send_test_event is not None and _is_http_url(url)
        self._test_button.setEnabled(enabled)


def _spin(
    form: QFormLayout, field: str, low: int, high: int, suffix: str = "", none: str = ""
) -> QSpinBox:
    """A whole-number input of the Output page; ``none`` is what its 0 (the default) means."""
    box = named(QSpinBox(), field)
    box.setRange(low, high)
    box.setSuffix(suffix)
    box.setSpecialValueText(none)  # shown instead of the minimum
    default = none.lower() if none else getattr(OutputSettings(), field)
    box.setToolTip(f"{HELP[field]}\n\nDefault: {default}.")
    form.addRow(LABELS[field], box)
    return box


def _check(form: QFormLayout, field: str, text: str, default: bool | None = None) -> QCheckBox:
    """A check box with its label; the default comes from Settings, or else OutputSettings."""
    box = named(QCheckBox(text), field)
    if default is None:
        default = getattr(OutputSettings(), field)
    box.setToolTip(f"{HELP[field]}\n\nDefault: {'on' if default else 'off'}.")
    form.addRow(LABELS[field], box)
    return box


def _note(form: QFormLayout, name: str, lines: int = 1) -> QLabel:
    """A greyed remark across the page, under its input, with room for ``lines`` kept.

    Across: in the field column, a wrapped label gets the height of a narrower one. The
    room: a shown dialog does not grow with a longer note; it would cut it off.
    """
    note = named(QLabel(), name)
    note.setWordWrap(True)
    note.setEnabled(False)  # greyed: a remark, not an input
    note.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    note.setMinimumHeight(lines * note.fontMetrics().lineSpacing())
    form.addRow(note)
    return note


def _form(page: QWidget) -> QFormLayout:
    form = QFormLayout(page)
    # Line edits grow with the dialog; spin boxes keep the width their numbers need.
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
    return form


def _field_of(message: str) -> str | None:
    """The field a ``SettingsError`` names first ("quality must be ..."), if any."""
    return next((field for field in LABELS if message.startswith(f"{field} ")), None)


def _in_words(message: str) -> str:
    """A ``SettingsError`` with its field written as the label the user sees."""
    field = _field_of(message)
    return message if field is None else LABELS[field] + message[len(field) :]


def _can_write(name: str) -> bool:
    """True if this installation's Pillow can write the output format called ``name``."""
    try:
        encoder_for(name)
    except SettingsError:
        return False
    return True


def _is_http_url(value: str) -> bool:
    try:
        check_http_url(value, "url")
    except SettingsError:
        return False
    return True


def _type_names(types: tuple[str, ...]) -> str:
    return " and ".join(TYPE_NAMES.get(mime, mime) for mime in types)
