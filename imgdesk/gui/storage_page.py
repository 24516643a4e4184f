"""Settings → Storage: where requests added from now on store their outputs (SPEC 10).

The data folder's images, another folder, or an S3-compatible bucket. The bucket's access
key is a setting; its secret goes to the system keyring when the dialog is accepted, never
into the settings. "Test connection" proves the place works, off the GUI thread.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from imgdesk.core.errors import ImageError, SettingsError
from imgdesk.core.secrets import keyring_problem, load_secret, save_secret
from imgdesk.core.settings import Settings
from imgdesk.core.storage_choice import (
    DEFAULT_CACHE_CONTROL,
    MAX_PRESIGN_EXPIRY_S,
    StorageChoice,
    check_storage,
    parse_destination,
)
from imgdesk.gui.loading import BackgroundTask, TaskRelay
from imgdesk.gui.widgets import named

logger = logging.getLogger(__name__)

DAY_S = 24 * 3600
KINDS = ("data_folder", "folder", "s3")
ERROR_STYLE = "color: #b91c1c;"
OK_STYLE = "color: #15803d;"
EXPLANATION = (
    "Requests added from now on store their compressed pictures (and a copy of the output "
    "CSV) here; a request keeps its place, and so do its retries. In a bucket the output "
    "CSV gets links anyone can open for the time below, or plain links under the Public "
    "base URL (Files page) when your bucket or CDN publishes the pictures."
)


class StoragePage(QScrollArea):
    """The Storage tab of the settings dialog; every input's object name is its field.

    It scrolls: with a bucket's fields and a long test result it is the tallest page, and
    the dialog must still fit a small screen.
    """

    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        content = QWidget()
        self.setWidget(content)
        self._data_dir = data_dir
        self._pool = QThreadPool(self)
        self._relay = TaskRelay(self)
        self._relay.succeeded.connect(self._on_test_succeeded)
        self._relay.failed.connect(self._on_test_failed)
        self._test_id = 0
        self._stored_secret_for = ""  # the access key whose secret the keyring holds
        layout = QVBoxLayout(content)
        intro = QLabel(EXPLANATION)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self._kinds = QButtonGroup(self)
        texts = ("The data folder's images", "Another folder", "An S3-compatible bucket")
        folder_row = QHBoxLayout()
        self._folder = named(QLineEdit(), "storage_folder")
        self._folder.setPlaceholderText("A folder for the pictures")
        browse = named(QPushButton("Browse…"), "storage_browse")
        browse.clicked.connect(self._on_browse_clicked)
        folder_row.addWidget(self._folder, 1)
        folder_row.addWidget(browse)
        for index, (kind, text) in enumerate(zip(KINDS, texts, strict=True)):
            button = named(QRadioButton(text), f"storage_{kind}")
            self._kinds.addButton(button, index)
            layout.addWidget(button)
            if kind == "folder":  # its folder right under it
                layout.addLayout(folder_row)
        self._bucket_form = QWidget()
        layout.addWidget(self._bucket_form)
        self._build_bucket_form(QFormLayout(self._bucket_form))
        test_row = QHBoxLayout()
        self._test = named(QPushButton("Test connection"), "storage_test")
        self._test.clicked.connect(self._on_test_clicked)
        test_row.addWidget(self._test)
        test_row.addStretch(1)
        layout.addLayout(test_row)
        self._result = named(QLabel(), "storage_test_result")
        self._result.setWordWrap(True)
        layout.addWidget(self._result)
        layout.addStretch(1)
        self._kinds.idToggled.connect(lambda _id, _on: self._update_enabled())

    def _build_bucket_form(self, form: QFormLayout) -> None:
        self._address = named(QLineEdit(), "storage_address")
        self._address.setPlaceholderText("s3://my-shop-images/catalogue")
        form.addRow("Bucket:", self._address)
        self._endpoint = named(QLineEdit(), "storage_endpoint")
        self._endpoint.setPlaceholderText(
            "Empty for AWS; e.g. https://ACCOUNT.r2.cloudflarestorage.com"
        )
        form.addRow("Endpoint URL:", self._endpoint)
        self._region = named(QLineEdit(), "storage_region")
        self._region.setPlaceholderText("e.g. eu-central-1, or auto for Cloudflare R2")
        form.addRow("Region:", self._region)
        self._access_key = named(QLineEdit(), "storage_access_key")
        self._access_key.setPlaceholderText("Empty: the AWS_* environment variables or profile")
        form.addRow("Access key ID:", self._access_key)
        self._secret = named(QLineEdit(), "storage_secret")
        self._secret.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("Secret key:", self._secret)
        note = QLabel("Kept in the system keyring, never in imgdesk's settings or its log.")
        note.setWordWrap(True)
        note.setEnabled(False)
        form.addRow("", note)
        self._expiry = named(QSpinBox(), "storage_expiry_days")
        self._expiry.setRange(1, MAX_PRESIGN_EXPIRY_S // DAY_S)
        self._expiry.setSuffix(" days")
        form.addRow("Links valid for:", self._expiry)
        self._cache_control = named(QLineEdit(), "storage_cache_control")
        self._cache_control.setPlaceholderText(DEFAULT_CACHE_CONTROL)
        form.addRow("Cache-Control:", self._cache_control)

    def show_settings(self, settings: Settings) -> None:
        """Show the storage ``settings`` name (and whether a secret is kept for its key)."""
        choice = settings.storage
        kind = "s3" if choice.kind == "s3" else ("folder" if choice.folder else "data_folder")
        self._kinds.button(KINDS.index(kind)).setChecked(True)
        self._folder.setText(choice.folder)
        self._address.setText(choice.s3_address("") if choice.kind == "s3" else "")
        self._endpoint.setText(choice.endpoint)
        self._region.setText(choice.region)
        self._access_key.setText(settings.s3_access_key_id)
        kept = bool(settings.s3_access_key_id) and load_secret(settings.s3_access_key_id)
        self._stored_secret_for = settings.s3_access_key_id if kept else ""
        self._secret.clear()
        self._secret.setPlaceholderText("(kept in the keyring)" if kept else "")
        self._expiry.setValue(max(1, choice.presign_expiry_s // DAY_S))
        self._cache_control.setText(choice.cache_control)
        self._result.clear()
        problem = keyring_problem() if choice.kind == "s3" else None
        if problem:
            self._show_result(problem, ok=False)
        self._update_enabled()

    def collect(self, settings: Settings) -> Settings:
        """``settings`` with the storage as chosen; raises SettingsError naming what is wrong."""
        access_key = self._access_key.text().strip()
        if (
            self._kind() == "s3"
            and access_key
            and not (self._secret_typed() or self._kept_for(access_key))
        ):
            raise SettingsError("storage needs the secret key of that access key ID.")
        return settings.replace(storage=self._choice(), s3_access_key_id=access_key)

    def keep_secret(self) -> None:
        """Put a newly typed secret in the keyring (the dialog was accepted).

        Raises:
            SettingsError: there is no safe keyring; the sentence says what to do instead.
        """
        access_key = self._access_key.text().strip()
        secret = self._secret_typed()
        if self._kind() == "s3" and access_key and secret:
            save_secret(access_key, secret)
            self._stored_secret_for = access_key

    def _choice(self) -> StorageChoice:
        kind = self._kind()
        if kind == "data_folder":
            return StorageChoice()
        if kind == "folder":
            if not self._folder.text().strip():
                raise SettingsError("storage needs a folder for the pictures.")
            return parse_destination(self._folder.text())
        try:
            choice = parse_destination(
                self._address.text() or "s3://",
                self._endpoint.text().strip(),
                self._region.text().strip(),
                self._expiry.value() * DAY_S,
            )
        except SettingsError as error:
            raise SettingsError(f"storage cannot be used: {error}") from None
        cache_control = self._cache_control.text().strip() or DEFAULT_CACHE_CONTROL
        return choice.replace(cache_control=cache_control)

    def _kind(self) -> str:
        return KINDS[max(0, self._kinds.checkedId())]

    def _secret_typed(self) -> str:
        return self._secret.text().strip()

    def _kept_for(self, access_key: str) -> bool:
        return access_key == self._stored_secret_for

    def _update_enabled(self) -> None:
        kind = self._kind()
        self._folder.setEnabled(kind == "folder")
        self._bucket_form.setEnabled(kind == "s3")

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Folder for the pictures", self._folder.text()
        )
        if folder:
            self._folder.setText(folder)

    def _on_test_clicked(self) -> None:
        try:
            choice = self._choice()
        except SettingsError as error:
            self._show_result(str(error), ok=False)
            return
        access_key = self._access_key.text().strip()
        secret = self._secret_typed() or (load_secret(access_key) if access_key else None)
        self._test_id += 1
        self._test.setEnabled(False)
        self._show_result("Testing…", ok=True)
        self._pool.start(
            BackgroundTask(
                self._relay,
                self._test_id,
                _test_storage,
                choice,
                self._data_dir,
                access_key,
                secret,
            )
        )

    def _on_test_succeeded(self, task_id: int, where: object) -> None:
        if task_id == self._test_id:
            self._test.setEnabled(True)
            self._show_result(f"It works: imgdesk can store pictures in {where}.", ok=True)

    def _on_test_failed(self, task_id: int, error: object) -> None:
        if task_id != self._test_id:
            return
        self._test.setEnabled(True)
        if isinstance(error, ImageError):
            self._show_result(error.message, ok=False)
        elif isinstance(error, SettingsError):
            self._show_result(str(error), ok=False)
        else:
            logger.error("testing the storage failed unexpectedly: %r", error)
            self._show_result(f"The test failed unexpectedly: {error!r}", ok=False)

    def _show_result(self, text: str, ok: bool) -> None:
        self._result.setStyleSheet(OK_STYLE if ok else ERROR_STYLE)
        self._result.setText(text)


def _test_storage(
    choice: StorageChoice, data_dir: Path, access_key: str, secret: str | None
) -> str:
    """Run on a pool thread: the probe, then where it went (for the sentence shown)."""
    check_storage(choice, data_dir, access_key, secret)
    if choice.kind == "s3":
        return choice.describe()
    return choice.folder or str(data_dir / "images")
