"""Settings → Storage: a folder or a bucket, the secret in the keyring, a real connection test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyrings.alt.file import PlaintextKeyring
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton, QRadioButton, QTabWidget
from pytestqt.qtbot import QtBot

from imgdesk.core.errors import SettingsError
from imgdesk.core.secrets import load_secret
from imgdesk.core.settings import Settings
from imgdesk.core.storage_choice import StorageChoice
from imgdesk.gui.storage_page import StoragePage
from tests.s3server import S3Bucket


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A real keyring backend (a file) where this machine has no system keyring."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "keyring"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    before = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    yield
    keyring.set_keyring(before)


def child(page: StoragePage, kind: type, name: str):  # type: ignore[no-untyped-def]
    found = page.findChild(kind, name)
    assert found is not None, name
    return found


def fill_bucket(page: StoragePage, bucket: S3Bucket, name: str = "") -> None:
    child(page, QRadioButton, "storage_s3").setChecked(True)
    child(page, QLineEdit, "storage_address").setText(f"s3://{name or bucket.name}/shop")
    child(page, QLineEdit, "storage_endpoint").setText(bucket.endpoint)
    child(page, QLineEdit, "storage_region").setText(bucket.region)
    child(page, QLineEdit, "storage_access_key").setText(bucket.writer.access_key)
    child(page, QLineEdit, "storage_secret").setText(bucket.writer.secret_key)


def test_a_bucket_is_stored_as_a_choice_and_its_secret_only_in_the_keyring(
    qtbot: QtBot, tmp_path: Path, s3_bucket: S3Bucket, file_keyring: None
) -> None:
    page = StoragePage(tmp_path)
    qtbot.addWidget(page)
    page.show_settings(Settings())
    assert child(page, QRadioButton, "storage_data_folder").isChecked()
    fill_bucket(page, s3_bucket)

    settings = page.collect(Settings())
    page.keep_secret()

    assert settings.storage == StorageChoice(
        kind="s3",
        bucket=s3_bucket.name,
        prefix="shop",
        endpoint=s3_bucket.endpoint,
        region=s3_bucket.region,
    )
    assert settings.s3_access_key_id == s3_bucket.writer.access_key
    assert s3_bucket.writer.secret_key not in json.dumps(settings.to_dict())
    assert load_secret(s3_bucket.writer.access_key) == s3_bucket.writer.secret_key
    # Shown again: the secret is not typed in, and need not be.
    page.show_settings(settings)
    assert child(page, QLineEdit, "storage_secret").text() == ""
    assert page.collect(Settings()) == settings


def test_a_folder_or_a_bad_bucket(qtbot: QtBot, tmp_path: Path) -> None:
    page = StoragePage(tmp_path)
    qtbot.addWidget(page)
    page.show_settings(Settings())
    child(page, QRadioButton, "storage_folder").setChecked(True)
    with pytest.raises(SettingsError, match="needs a folder"):
        page.collect(Settings())
    child(page, QLineEdit, "storage_folder").setText(str(tmp_path / "out"))
    assert page.collect(Settings()).storage == StorageChoice(folder=str(tmp_path / "out"))
    child(page, QRadioButton, "storage_s3").setChecked(True)
    child(page, QLineEdit, "storage_address").setText("s3://Not_A_Bucket")
    with pytest.raises(SettingsError, match="storage cannot be used: .*lowercase"):
        page.collect(Settings())
    child(page, QLineEdit, "storage_address").setText("s3://shop-images")
    child(page, QLineEdit, "storage_access_key").setText("AKIAEXAMPLE")
    with pytest.raises(SettingsError, match="needs the secret key"):
        page.collect(Settings())


def test_test_connection_proves_the_bucket_or_names_what_is_wrong(
    qtbot: QtBot, tmp_path: Path, s3_bucket: S3Bucket
) -> None:
    page = StoragePage(tmp_path)
    qtbot.addWidget(page)
    page.show_settings(Settings())
    result = child(page, QLabel, "storage_test_result")
    fill_bucket(page, s3_bucket)
    child(page, QPushButton, "storage_test").click()
    qtbot.waitUntil(lambda: result.text().startswith("It works"), timeout=20_000)
    assert s3_bucket.name in result.text()

    fill_bucket(page, s3_bucket, name="no-such-bucket-here")
    child(page, QPushButton, "storage_test").click()
    qtbot.waitUntil(lambda: "no-such-bucket-here" in result.text(), timeout=20_000)
    assert not result.text().startswith("It works")
    assert s3_bucket.writer.secret_key not in result.text()


def test_the_settings_dialog_saves_the_storage_and_brings_a_bad_one_forward(
    qtbot: QtBot, tmp_path: Path
) -> None:
    from imgdesk.gui.settings_dialog import SettingsDialog, SettingsPage

    dialog = SettingsDialog(Settings(retention_days=30), tmp_path)
    qtbot.addWidget(dialog)
    dialog.show_page(SettingsPage.STORAGE)
    page = dialog.findChild(StoragePage)
    assert page is not None
    child(page, QRadioButton, "storage_s3").setChecked(True)
    child(page, QLineEdit, "storage_address").setText("s3://x")
    dialog.show_page(SettingsPage.PROCESSING)
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted
    error = dialog.findChild(QLabel, "error")
    assert error is not None and error.text().startswith("Storage cannot be used")
    tabs = dialog.findChild(QTabWidget)
    assert tabs is not None and tabs.currentWidget() is page

    child(page, QRadioButton, "storage_folder").setChecked(True)
    child(page, QLineEdit, "storage_folder").setText(str(tmp_path / "published"))
    dialog.accept()
    chosen = dialog.result_settings()
    assert chosen.storage == StorageChoice(folder=str(tmp_path / "published"))
    assert chosen.retention_days == 30
