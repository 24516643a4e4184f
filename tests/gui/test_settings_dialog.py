"""The settings dialog shows the settings, validates edits inline and builds the new Settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QWidget,
)
from pytestqt.qtbot import QtBot

from imgdesk.core.output import OutputSettings
from imgdesk.core.settings import KNOWN_INPUT_TYPES, MIB, Settings
from imgdesk.gui.settings_dialog import NUMBERS, SettingsDialog, SettingsPage

# The offscreen platform warns whenever a shown window has size constraints; Qt noise.
OFFSCREEN_NOISE = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

CUSTOM = Settings(
    concurrency=7,
    per_host_concurrency=3,
    max_download_bytes=20 * MIB,
    allowed_types=("image/jpeg", "image/webp"),
    max_retries=2,
    retry_base_delay_s=0.5,
    retry_after_cap_s=30.0,
    connect_timeout_s=5.0,
    read_timeout_s=15.0,
    total_timeout_s=60.0,
    max_redirects=3,
    max_pixels=50_000_000,
    block_private_addresses=True,
    public_base_url="https://cdn.example.com/p",
    webhook_url="https://hooks.example.com/in",
    webhook_secret="whsec_c2VjcmV0",
    webhook_retries=5,
    webhook_first_delay_ms=250,
    neutralise_formulas=False,
    power_safe_writes=True,
    user_agent="custom-agent/1.0",
    output=OutputSettings(quality=65),
)


def make_dialog(
    qtbot: QtBot,
    settings: Settings = CUSTOM,
    data_dir: Path = Path("data"),
    send_test_event: object = None,
) -> SettingsDialog:
    dialog = SettingsDialog(settings, data_dir, send_test_event=send_test_event)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    return dialog


def child(dialog: QWidget, kind: type, name: str) -> QWidget:
    found = dialog.findChild(kind, name)
    assert found is not None, name
    return found


def spin(dialog: QWidget, name: str) -> QSpinBox | QDoubleSpinBox:
    return child(dialog, QAbstractSpinBox, name)  # type: ignore[return-value]


def line(dialog: QWidget, name: str) -> QLineEdit:
    return child(dialog, QLineEdit, name)  # type: ignore[return-value]


def check(dialog: QWidget, name: str) -> QCheckBox:
    return child(dialog, QCheckBox, name)  # type: ignore[return-value]


def press(dialog: QDialog, button: QDialogButtonBox.StandardButton) -> None:
    box = dialog.findChild(QDialogButtonBox)
    assert box is not None
    box.button(button).click()


def error_label(dialog: QWidget) -> QLabel:
    return child(dialog, QLabel, "error")  # type: ignore[return-value]


def test_the_dialog_shows_the_given_values(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = make_dialog(qtbot, data_dir=tmp_path / "store")
    assert spin(dialog, "concurrency").value() == 7
    assert spin(dialog, "per_host_concurrency").value() == 3
    assert spin(dialog, "quality").value() == 65  # on the Output page
    assert spin(dialog, "max_download_bytes").value() == 20.0  # MiB
    assert spin(dialog, "max_pixels").value() == 50.0  # megapixels
    assert spin(dialog, "max_retries").value() == 2
    assert spin(dialog, "retry_base_delay_s").value() == 0.5
    assert spin(dialog, "retry_after_cap_s").value() == 30.0
    assert spin(dialog, "connect_timeout_s").value() == 5.0
    assert spin(dialog, "read_timeout_s").value() == 15.0
    assert spin(dialog, "total_timeout_s").value() == 60.0
    assert spin(dialog, "max_redirects").value() == 3
    assert spin(dialog, "webhook_retries").value() == 5
    assert spin(dialog, "webhook_first_delay_ms").value() == 0.25  # seconds, as every wait
    checked = [mime for mime in KNOWN_INPUT_TYPES if check(dialog, mime).isChecked()]
    assert checked == ["image/jpeg", "image/webp"]
    assert check(dialog, "block_private_addresses").isChecked()
    assert not check(dialog, "neutralise_formulas").isChecked()
    assert check(dialog, "power_safe_writes").isChecked()
    assert line(dialog, "public_base_url").text() == "https://cdn.example.com/p"
    assert line(dialog, "webhook_url").text() == "https://hooks.example.com/in"
    assert line(dialog, "webhook_secret").text() == "whsec_c2VjcmV0"
    assert line(dialog, "webhook_secret").echoMode() == QLineEdit.EchoMode.Password
    assert line(dialog, "data_dir").text() == str(tmp_path / "store")


def test_every_input_has_a_tooltip_with_its_default(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot)
    for number in NUMBERS:
        assert "Default:" in spin(dialog, number.field).toolTip(), number.field
    assert "Default: 10 MiB." in spin(dialog, "max_download_bytes").toolTip()
    assert "Default: JPEG and PNG." in child(dialog, QWidget, "allowed_types").toolTip()


def test_accepting_untouched_values_changes_nothing(qtbot: QtBot, tmp_path: Path) -> None:
    # Values the spin boxes cannot show exactly must not be rounded on the way back.
    odd = CUSTOM.replace(max_download_bytes=1_234_567, max_pixels=89_478_485)
    dialog = make_dialog(qtbot, odd, tmp_path)
    press(dialog, QDialogButtonBox.StandardButton.Ok)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.result_settings() == odd
    assert dialog.result_data_dir() == tmp_path


def test_edits_produce_the_right_settings(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = make_dialog(qtbot, Settings(), tmp_path / "old")
    spin(dialog, "concurrency").setValue(12)
    spin(dialog, "quality").setValue(80)
    spin(dialog, "max_download_bytes").setValue(2.5)
    spin(dialog, "max_pixels").setValue(12)
    spin(dialog, "total_timeout_s").setValue(45.5)
    spin(dialog, "webhook_first_delay_ms").setValue(2)
    check(dialog, "image/png").setChecked(False)
    check(dialog, "image/tiff").setChecked(True)
    check(dialog, "block_private_addresses").setChecked(True)
    check(dialog, "neutralise_formulas").setChecked(False)
    check(dialog, "power_safe_writes").setChecked(True)
    line(dialog, "public_base_url").setText("  https://img.example.org/shop  ")
    line(dialog, "webhook_url").setText("http://127.0.0.1:9000/hook")
    line(dialog, "webhook_secret").setText("s3cret ")
    line(dialog, "data_dir").setText(str(tmp_path / "new"))
    press(dialog, QDialogButtonBox.StandardButton.Ok)

    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.result_settings() == Settings(
        concurrency=12,
        max_download_bytes=int(2.5 * MIB),
        max_pixels=12_000_000,
        total_timeout_s=45.5,
        webhook_first_delay_ms=2000,
        allowed_types=("image/jpeg", "image/tiff"),
        block_private_addresses=True,
        neutralise_formulas=False,
        power_safe_writes=True,
        public_base_url="https://img.example.org/shop",
        webhook_url="http://127.0.0.1:9000/hook",
        webhook_secret="s3cret ",
        output=OutputSettings(quality=80),  # on the Output page
    )
    assert dialog.result_data_dir() == tmp_path / "new"


def test_the_spin_box_ranges_stay_within_what_settings_accept(qtbot: QtBot, tmp_path: Path) -> None:
    for end in ("minimum", "maximum"):
        dialog = make_dialog(qtbot, Settings(), tmp_path)
        for number in NUMBERS:
            box = spin(dialog, number.field)
            box.setValue(box.minimum() + 1)  # an edit, so the shown value is what counts
            box.setValue(getattr(box, end)())
        press(dialog, QDialogButtonBox.StandardButton.Ok)
        assert error_label(dialog).isHidden(), error_label(dialog).text()
        assert dialog.result() == QDialog.DialogCode.Accepted


@OFFSCREEN_NOISE
def test_an_invalid_url_is_explained_and_keeps_the_dialog_open(
    qtbot: QtBot, tmp_path: Path
) -> None:
    dialog = make_dialog(qtbot, Settings(), tmp_path)
    dialog.open()
    line(dialog, "webhook_url").setText("ftp://hooks.example.com/in")
    press(dialog, QDialogButtonBox.StandardButton.Ok)

    assert dialog.isVisible()
    assert dialog.result() != QDialog.DialogCode.Accepted
    message = error_label(dialog)
    assert message.isVisibleTo(dialog)
    assert message.text().startswith("Webhook URL must be an absolute http:// or https:// URL")
    tabs = dialog.findChild(QTabWidget)
    assert tabs is not None
    assert tabs.tabText(tabs.currentIndex()) == "Webhook"
    with pytest.raises(RuntimeError):
        dialog.result_settings()

    line(dialog, "webhook_url").setText("https://hooks.example.com/in")
    press(dialog, QDialogButtonBox.StandardButton.Ok)
    assert not dialog.isVisible()
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.result_settings().webhook_url == "https://hooks.example.com/in"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("public_base_url", "cdn.example.com/images", "Public base URL must be"),
        ("data_dir", "  ", "Data folder must name a folder"),
    ],
)
def test_other_invalid_fields_are_named_in_plain_words(
    qtbot: QtBot, tmp_path: Path, field: str, value: str, expected: str
) -> None:
    dialog = make_dialog(qtbot, Settings(), tmp_path)
    line(dialog, field).setText(value)
    press(dialog, QDialogButtonBox.StandardButton.Ok)
    assert dialog.result() != QDialog.DialogCode.Accepted
    assert error_label(dialog).text().startswith(expected)


def test_at_least_one_picture_type_is_required(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = make_dialog(qtbot, Settings(), tmp_path)
    for mime in KNOWN_INPUT_TYPES:
        check(dialog, mime).setChecked(False)
    press(dialog, QDialogButtonBox.StandardButton.Ok)
    assert dialog.result() != QDialog.DialogCode.Accepted
    assert error_label(dialog).text().startswith("Accepted picture types must be")


def test_a_file_is_not_a_data_folder(qtbot: QtBot, tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    dialog = make_dialog(qtbot, Settings(), a_file)
    press(dialog, QDialogButtonBox.StandardButton.Ok)
    assert dialog.result() != QDialog.DialogCode.Accepted
    assert "is a file" in error_label(dialog).text()


def test_restore_defaults_resets_everything_but_the_data_folder(
    qtbot: QtBot, tmp_path: Path
) -> None:
    dialog = make_dialog(qtbot, CUSTOM, tmp_path)
    press(dialog, QDialogButtonBox.StandardButton.RestoreDefaults)
    assert spin(dialog, "concurrency").value() == 5
    assert line(dialog, "webhook_url").text() == ""
    press(dialog, QDialogButtonBox.StandardButton.Ok)
    # The user agent has no input: it is carried through from the settings given.
    assert dialog.result_settings() == Settings(user_agent=CUSTOM.user_agent)
    assert dialog.result_data_dir() == tmp_path


def test_the_secret_can_be_shown(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot)
    check(dialog, "show_secret").setChecked(True)
    assert line(dialog, "webhook_secret").echoMode() == QLineEdit.EchoMode.Normal
    check(dialog, "show_secret").setChecked(False)
    assert line(dialog, "webhook_secret").echoMode() == QLineEdit.EchoMode.Password


def test_send_test_event_calls_back_with_the_typed_url_and_secret(qtbot: QtBot) -> None:
    calls: list[tuple[str, str]] = []
    dialog = make_dialog(qtbot, Settings(), send_test_event=lambda *args: calls.append(args))
    button: QPushButton = child(dialog, QPushButton, "send_test_event")  # type: ignore[assignment]
    assert not button.isEnabled()  # no URL yet

    line(dialog, "webhook_url").setText("not a url")
    assert not button.isEnabled()
    line(dialog, "webhook_url").setText("https://hooks.example.com/test")
    line(dialog, "webhook_secret").setText("whsec_abc")
    assert button.isEnabled()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert calls == [("https://hooks.example.com/test", "whsec_abc")]

    line(dialog, "webhook_url").setText("mailto:ops@example.com")
    assert not button.isEnabled()


def test_send_test_event_is_disabled_without_a_callback(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot)  # CUSTOM has a valid webhook URL
    assert not child(dialog, QPushButton, "send_test_event").isEnabled()


def test_the_receivers_answer_is_shown_as_plain_text(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot, send_test_event=lambda url, secret: None)
    result: QLabel = child(dialog, QLabel, "test_result")  # type: ignore[assignment]
    assert result.isHidden()
    dialog.show_test_result("HTTP 200: <b>thanks</b>", ok=True)
    assert not result.isHidden()
    assert result.text() == "HTTP 200: <b>thanks</b>"
    assert result.textFormat() == Qt.TextFormat.PlainText
    dialog.show_test_result("HTTP 500: " + "x" * 5000, ok=False)
    assert len(result.text()) < 1000
    assert "b91c1c" in result.styleSheet()  # red for a failure


def test_show_page_brings_that_tab_to_the_front(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot)
    tabs: QTabWidget = dialog.findChild(QTabWidget)  # type: ignore[assignment]
    for page in SettingsPage:
        dialog.show_page(page)
        assert tabs.tabText(tabs.currentIndex()) == page.value


def test_a_webhook_tester_reports_its_answer_into_the_dialog(qtbot: QtBot) -> None:
    sent: list[tuple[str, str]] = []

    def tester(url: str, secret: str, report: Callable[[str, bool], None]) -> None:
        sent.append((url, secret))
        report("HTTP 204", True)

    dialog = SettingsDialog.with_webhook_tester(CUSTOM, Path("data"), None, tester)
    qtbot.addWidget(dialog)
    qtbot.mouseClick(child(dialog, QPushButton, "send_test_event"), Qt.MouseButton.LeftButton)
    assert sent == [(CUSTOM.webhook_url, CUSTOM.webhook_secret)]
    assert child(dialog, QLabel, "test_result").text() == "HTTP 204"  # type: ignore[attr-defined]
    without = SettingsDialog.with_webhook_tester(CUSTOM, Path("data"), None, None)
    qtbot.addWidget(without)
    assert not child(without, QPushButton, "send_test_event").isEnabled()
