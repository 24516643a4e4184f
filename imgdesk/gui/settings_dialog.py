"""The settings dialog: image rules (SPEC 3), data folder, output URLs and the webhook.

Validation is the :class:`~imgdesk.core.settings.Settings` constructor itself, so the window,
the command line and stored values obey one set of rules; the dialog only translates field
names into the labels the user sees. Spin boxes are limited to the same ranges, which a
test checks against ``Settings``, so most mistakes cannot even be typed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
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
from imgdesk.core.settings import KNOWN_INPUT_TYPES, MIB, Settings, check_http_url
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
    WEBHOOK = "Webhook"


@dataclass(frozen=True)
class _Number:
    """A numeric setting: its label, help text, range and the unit it is shown in.

    The stored value is the shown value times ``scale`` (MiB, megapixels and seconds are
    friendlier than bytes, pixels and milliseconds). ``minimum`` and ``maximum`` are in
    shown units; ``default_note`` says more about the default in its tooltip.
    """

    field: str
    label: str
    help: str
    minimum: float
    maximum: float
    unit: str = ""
    scale: float = 1
    decimals: int = 0
    default_note: str = ""


PROCESSING = (
    _Number(
        "concurrency",
        "Images at a time",
        "How many images are fetched and compressed at once.",
        1,
        64,
    ),
    _Number(
        "per_host_concurrency",
        "Images at a time per server",
        "How many of those may come from the same server, so one shop's server is not flooded.",
        1,
        64,
    ),
    _Number(
        "jpeg_quality",
        "JPEG quality",
        "Quality of the compressed pictures: lower gives smaller files, higher looks better.",
        1,
        95,
    ),
    _Number(
        "max_download_bytes",
        "Largest download",
        "Bigger downloads are stopped and the image fails as too large.",
        0.01,
        1024,
        "MiB",
        MIB,
        2,
    ),
    _Number(
        "max_pixels",
        "Largest picture",
        "Pictures with more pixels fail, which protects against decompression bombs.",
        1,
        89,  # whole megapixels under Pillow's own limit, the default (89.48 million pixels)
        "megapixels",
        1_000_000,
        default_note="about 9,460 \u00d7 9,460 pixels, the limit of the imaging library",
    ),
)

NETWORK = (
    _Number(
        "max_retries",
        "Automatic retries",
        "Extra attempts after a temporary failure: timeouts, lost connections, HTTP 408, 425, "
        "429 and 5xx.",
        0,
        20,
    ),
    _Number(
        "retry_base_delay_s",
        "First retry after",
        "The wait doubles with each further attempt, with some randomness.",
        0,
        600,
        "s",
        decimals=2,
    ),
    _Number(
        "retry_after_cap_s",
        "Longest Retry-After to honour",
        "A server may ask to be retried later; a longer wait than this fails the attempt.",
        0,
        3600,
        "s",
        decimals=2,
    ),
    _Number(
        "connect_timeout_s",
        "Connect timeout",
        "How long to wait for a server to accept the connection.",
        0.1,
        600,
        "s",
        decimals=2,
    ),
    _Number(
        "read_timeout_s",
        "Read timeout",
        "How long a server may stay silent during a download.",
        0.1,
        600,
        "s",
        decimals=2,
    ),
    _Number(
        "total_timeout_s",
        "Download deadline",
        "The longest one download may take in all, so a server that trickles bytes cannot "
        "hold a worker forever.",
        0.1,
        3600,
        "s",
        decimals=2,
    ),
    _Number(
        "max_redirects",
        "Redirects to follow",
        "More redirects than this fail the image.",
        0,
        30,
    ),
)

WEBHOOK = (
    _Number(
        "webhook_retries",
        "Retries",
        "Extra attempts when the receiver does not answer with 2xx (410 stops at once).",
        0,
        20,
    ),
    _Number(
        "webhook_first_delay_ms",
        "First retry after",
        "The wait doubles with each further attempt, with some randomness.",
        0,
        3600,
        "s",  # seconds, as every other wait of the dialog; stored in milliseconds
        1000,
        2,
    ),
)

NUMBERS = (*PROCESSING, *NETWORK, *WEBHOOK)

LABELS = {
    **{number.field: number.label for number in NUMBERS},
    "allowed_types": "Accepted picture types",
    "block_private_addresses": "Block local network addresses",
    "public_base_url": "Public base URL",
    "neutralise_formulas": "Neutralise formulas",
    "power_safe_writes": "Power-safe database",
    "webhook_url": "Webhook URL",
    "webhook_secret": "Signing secret",
    "data_dir": "Data folder",
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
        # Which tab holds each input, to bring an invalid one into view.
        self._pages: dict[str, QWidget] = {}

        self._tabs = QTabWidget()
        self._page_widgets = {
            SettingsPage.PROCESSING: self._processing_page(),
            SettingsPage.NETWORK: self._network_page(),
            SettingsPage.OUTPUT: self._output_page(),
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
        """A dialog whose test button sends through ``tester`` and shows the answer reported.

        Without a tester the test button stays disabled.
        """
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
        except SettingsError as error:
            self._show_error(str(error))
            return
        self._error.hide()
        super().accept()

    # -- pages -------------------------------------------------------------------------------

    def _processing_page(self) -> QWidget:
        page = QWidget()
        form = _form(page)
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
        self._block_private = self._add_check(
            form,
            page,
            "block_private_addresses",
            "Refuse image URLs on this computer or the local network",
            "Loopback and private addresses are allowed by default, for pictures on your own "
            "network. Turn this on when the CSV comes from someone you do not trust.",
        )
        return page

    def _output_page(self) -> QWidget:
        page = QWidget()
        form = _form(page)

        self._data_dir = named(QLineEdit(), "data_dir")
        self._data_dir.setToolTip(
            "Where the database, the compressed images and the logs are kept.\n\n"
            "Default: the platform's user data folder, or $IMGDESK_DATA_DIR."
        )
        browse = named(QPushButton("Browse…"), "browse_data_dir")
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self._data_dir)
        row.addWidget(browse)
        note = QLabel(
            "Takes effect the next time imgdesk starts. Requests and images already stored "
            "stay in the current folder."
        )
        note.setWordWrap(True)
        note.setEnabled(False)  # greyed: a remark, not an input
        column = QVBoxLayout()
        column.addLayout(row)
        column.addWidget(note)
        form.addRow(LABELS["data_dir"], column)
        self._pages["data_dir"] = page

        self._public_base_url = self._add_line(
            form,
            page,
            "public_base_url",
            "https://cdn.example.com/products",
            "Where you publish the data folder's images. When set, output URLs are "
            "<base>/<request id>/<file name>.\n\nDefault: empty, output URLs are file:// "
            "links to this computer.",
        )
        base_note = named(
            QLabel(
                "Leave it empty and the output CSV links to the files on this computer. If you "
                "copy the images folder to your web server or CDN, enter its web address: the "
                "CSV then links there, as https://\u2026/<request id>/<file name>."
            ),
            "public_base_url_note",
        )
        base_note.setWordWrap(True)
        base_note.setEnabled(False)  # greyed: a remark, not an input
        form.addRow("", base_note)
        self._neutralise = self._add_check(
            form,
            page,
            "neutralise_formulas",
            "Stop spreadsheets from running cells of the output CSV as formulas",
            "Cells starting with = + - @ get a leading ' (the OWASP CSV injection rule), so a "
            "hostile cell cannot run when the file is opened in a spreadsheet.",
        )
        self._power_safe = self._add_check(
            form,
            page,
            "power_safe_writes",
            "Make every stored result survive a power cut (slower)",
            "SQLite synchronous=FULL. Off, a power cut (not a crash) can lose the last second "
            "of stored results; those images are simply fetched again. The database is never "
            "corrupted either way.\n\nDefault: off.",
        )
        return page

    def _webhook_page(self) -> QWidget:
        page = QWidget()
        form = _form(page)
        self._webhook_url = self._add_line(
            form,
            page,
            "webhook_url",
            "https://example.com/hooks/imgdesk",
            "Receives a JSON POST when a request completes or fails. A request can override "
            "it.\n\nDefault: empty, no webhook.",
        )
        self._webhook_url.textChanged.connect(self._update_test_button)

        self._secret = named(QLineEdit(), "webhook_secret")
        self._secret.setEchoMode(QLineEdit.EchoMode.Password)
        self._secret.setToolTip(
            "Signs each event (webhook-signature header, HMAC-SHA256), so the receiver can "
            "check it came from imgdesk. A whsec_… secret is base64-decoded first."
            "\n\nDefault: empty, events are not signed."
        )
        show = named(QCheckBox("Show"), "show_secret")
        show.toggled.connect(self._on_show_secret_toggled)
        row = QHBoxLayout()
        row.addWidget(self._secret)
        row.addWidget(show)
        form.addRow(LABELS["webhook_secret"], row)
        self._pages["webhook_secret"] = page

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
        box.setToolTip(f"{number.help}\n\nDefault: {shown_default}.")
        form.addRow(number.label, box)
        self._numbers[number.field] = box
        self._pages[number.field] = page

    def _add_line(
        self, form: QFormLayout, page: QWidget, field: str, placeholder: str, help: str
    ) -> QLineEdit:
        line = named(QLineEdit(), field)
        line.setPlaceholderText(placeholder)
        line.setToolTip(help)
        form.addRow(LABELS[field], line)
        self._pages[field] = page
        return line

    def _add_check(
        self, form: QFormLayout, page: QWidget, field: str, text: str, help: str
    ) -> QCheckBox:
        box = named(QCheckBox(text), field)
        default = "on" if getattr(Settings(), field) else "off"
        box.setToolTip(f"{help}\n\nDefault: {default}.")
        form.addRow(LABELS[field], box)
        self._pages[field] = page
        return box

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
        self._block_private.setChecked(settings.block_private_addresses)
        self._public_base_url.setText(settings.public_base_url)
        self._neutralise.setChecked(settings.neutralise_formulas)
        self._power_safe.setChecked(settings.power_safe_writes)
        self._webhook_url.setText(settings.webhook_url)
        self._secret.setText(settings.webhook_secret)

    def _collect(self) -> Settings:
        """The settings as typed; raises :class:`SettingsError` naming a bad field."""
        numbers = {
            field: box.stored() if isinstance(box, _UnitSpinBox) else box.value()
            for field, box in self._numbers.items()
        }
        return self._original.replace(
            **numbers,
            allowed_types=tuple(mime for mime, check in self._types.items() if check.isChecked()),
            block_private_addresses=self._block_private.isChecked(),
            public_base_url=self._public_base_url.text().strip(),
            neutralise_formulas=self._neutralise.isChecked(),
            power_safe_writes=self._power_safe.isChecked(),
            webhook_url=self._webhook_url.text().strip(),
            webhook_secret=self._secret.text(),
        )

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
        for field, label in LABELS.items():
            if message.startswith(f"{field} "):
                message = label + message[len(field) :]
                self._tabs.setCurrentWidget(self._pages[field])
                target = self.findChild(QWidget, field)
                if target is not None:
                    target.setFocus()
                break
        self._error.setText(message)
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


def _form(page: QWidget) -> QFormLayout:
    form = QFormLayout(page)
    # Line edits grow with the dialog; spin boxes keep the width their numbers need.
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
    return form


def _is_http_url(value: str) -> bool:
    try:
        check_http_url(value, "url")
    except SettingsError:
        return False
    return True


def _type_names(types: tuple[str, ...]) -> str:
    return " and ".join(TYPE_NAMES.get(mime, mime) for mime in types)
