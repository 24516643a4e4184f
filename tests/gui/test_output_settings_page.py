"""Settings → Output: each output setting explained, validated, saved and used by new requests."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QSpinBox,
    QTabWidget,
)
from pytestqt.qtbot import QtBot

from imgdesk.core.output import OutputSettings
from imgdesk.core.repository import Repository
from imgdesk.core.settings import Settings
from imgdesk.engine.engine import Engine
from imgdesk.gui.actions import Action
from imgdesk.gui.main_window import MainWindow
from imgdesk.gui.settings_dialog import MAX_SIDE_PX, MAX_TARGET_KIB, SettingsDialog, SettingsPage
from tests.gui.conftest import write_csv
from tests.httpservers import HttpTestServer, respond
from tests.images import make_jpeg

pytestmark = pytest.mark.timeout(60)

WAIT_MS = 15_000
WEBP_1200 = OutputSettings(
    format="webp",
    quality=60,
    max_width=1200,
    max_height=None,
    target_size_kb=150,
    keep_original=False,
    flatten=True,
)


def make_dialog(qtbot: QtBot, output: OutputSettings = WEBP_1200) -> SettingsDialog:
    dialog = SettingsDialog(Settings(output=output), Path("data"))
    qtbot.addWidget(dialog)
    return dialog


def spin(dialog: QDialog, name: str) -> QSpinBox:
    found = dialog.findChild(QSpinBox, name)
    assert found is not None, name
    return found


def check(dialog: QDialog, name: str) -> QCheckBox:
    found = dialog.findChild(QCheckBox, name)
    assert found is not None, name
    return found


def label(dialog: QDialog, name: str) -> QLabel:
    found = dialog.findChild(QLabel, name)
    assert found is not None, name
    return found


def format_box(dialog: QDialog) -> QComboBox:
    found = dialog.findChild(QComboBox, "format")
    assert found is not None
    return found


def choose_format(dialog: QDialog, name: str) -> None:
    box = format_box(dialog)
    box.setCurrentIndex(box.findData(name))


def press(dialog: QDialog, button: QDialogButtonBox.StandardButton) -> None:
    box = dialog.findChild(QDialogButtonBox)
    assert box is not None
    box.button(button).click()


def test_the_page_shows_the_output_settings(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot)
    assert format_box(dialog).currentData() == "webp"
    assert format_box(dialog).currentText() == "WebP"
    assert spin(dialog, "quality").value() == 60
    assert spin(dialog, "max_width").value() == 1200
    assert spin(dialog, "max_height").text() == "No limit"
    assert spin(dialog, "target_size_kb").text() == "150 KiB"
    assert not check(dialog, "keep_original").isChecked()
    assert check(dialog, "flatten").isChecked()
    summary = label(dialog, "output_summary").text()
    assert summary.startswith("Requests added from now on: WebP q60, fit 1200 wide, \u2264 150 KiB")
    assert "already added keep" in summary


def test_by_default_nothing_is_limited_and_every_input_explains_itself(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot, OutputSettings())
    assert format_box(dialog).currentText() == "JPEG"
    assert spin(dialog, "quality").value() == 50
    assert spin(dialog, "max_width").text() == "No limit"
    assert spin(dialog, "target_size_kb").text() == "Off"  # off by default
    assert check(dialog, "keep_original").isChecked()
    assert label(dialog, "target_size_note").text().startswith("Off:")
    assert "Default: 50." in spin(dialog, "quality").toolTip()
    assert "Default: off." in spin(dialog, "target_size_kb").toolTip()
    assert "Default: no limit." in spin(dialog, "max_height").toolTip()
    assert "hidden data" in check(dialog, "keep_original").toolTip()
    assert "Default: on." in check(dialog, "keep_original").toolTip()


def test_the_notes_follow_the_format_and_what_does_nothing_is_greyed(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot, OutputSettings())
    note = label(dialog, "format_note")
    # JPEG has no transparency: flattening is what it always does.
    assert "no transparency" in note.text()
    assert not check(dialog, "flatten").isEnabled()
    choose_format(dialog, "webp")
    assert check(dialog, "flatten").isEnabled() and check(dialog, "keep_original").isEnabled()
    assert "10 times" in note.text()
    choose_format(dialog, "avif")
    assert "15 times" in note.text() and "quarter of an hour" in note.text()
    assert not check(dialog, "keep_original").isEnabled()  # imgdesk never reads AVIF
    assert check(dialog, "flatten").isEnabled()


def test_the_target_size_is_also_said_in_the_windows_size_unit(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot, OutputSettings())
    spin(dialog, "target_size_kb").setValue(150)
    note = label(dialog, "target_size_note").text()
    assert note.startswith("At most 154 kB a picture")  # 150 KiB, as the tables count sizes
    assert "8 qualities" in note and "over target" in note
    spin(dialog, "target_size_kb").setValue(0)
    assert label(dialog, "target_size_note").text().startswith("Off:")


def test_edits_become_the_output_of_the_settings(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot, OutputSettings())
    choose_format(dialog, "avif")
    spin(dialog, "quality").setValue(40)
    spin(dialog, "max_width").setValue(1600)
    spin(dialog, "max_height").setValue(900)
    spin(dialog, "target_size_kb").setValue(200)
    check(dialog, "keep_original").setChecked(False)
    check(dialog, "flatten").setChecked(True)
    press(dialog, QDialogButtonBox.StandardButton.Ok)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.result_settings().output == OutputSettings(
        format="avif",
        quality=40,
        max_width=1600,
        max_height=900,
        target_size_kb=200,
        keep_original=False,
        flatten=True,
    )


def test_no_limit_and_off_are_stored_as_none(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot)
    spin(dialog, "max_width").setValue(0)
    spin(dialog, "target_size_kb").setValue(0)
    press(dialog, QDialogButtonBox.StandardButton.Ok)
    output = dialog.result_settings().output
    assert (output.max_width, output.max_height, output.target_size_kb) == (None, None, None)


def test_untouched_output_settings_come_back_unchanged(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot)
    press(dialog, QDialogButtonBox.StandardButton.Ok)
    assert dialog.result_settings() == Settings(output=WEBP_1200)


def test_both_ends_of_every_range_are_accepted(qtbot: QtBot) -> None:
    for end in ("minimum", "maximum"):
        dialog = make_dialog(qtbot)
        for name in ("quality", "max_width", "max_height", "target_size_kb"):
            box = spin(dialog, name)
            box.setValue(getattr(box, end)())
        press(dialog, QDialogButtonBox.StandardButton.Ok)
        assert dialog.result() == QDialog.DialogCode.Accepted, label(dialog, "error").text()
    output = dialog.result_settings().output
    assert output.quality == 100
    assert (output.max_width, output.target_size_kb) == (MAX_SIDE_PX, MAX_TARGET_KIB)


def test_restore_defaults_resets_the_output_too(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot)
    press(dialog, QDialogButtonBox.StandardButton.RestoreDefaults)
    press(dialog, QDialogButtonBox.StandardButton.Ok)
    assert dialog.result_settings().output == OutputSettings()


@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_a_format_this_installation_cannot_write_is_said_at_once_and_refused(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Pillow built without AVIF (the wheels have it; some distributions' builds do not).
    from PIL import features

    real_check = features.check
    monkeypatch.setattr(features, "check", lambda name: name != "avif" and real_check(name))
    dialog = make_dialog(qtbot, OutputSettings())
    dialog.open()
    box = format_box(dialog)
    assert box.itemText(box.findData("avif")) == "AVIF (not available)"
    choose_format(dialog, "avif")
    summary = label(dialog, "output_summary")
    assert summary.text().startswith("Format AVIF cannot be written by this installation")
    assert "b91c1c" in summary.styleSheet()  # red

    dialog.show_page(SettingsPage.WEBHOOK)
    press(dialog, QDialogButtonBox.StandardButton.Ok)
    assert dialog.isVisible() and dialog.result() != QDialog.DialogCode.Accepted
    error = label(dialog, "error").text()
    assert error.startswith("Format AVIF cannot be written") and "Choose another format" in error
    tabs = dialog.findChild(QTabWidget)
    assert tabs is not None and tabs.tabText(tabs.currentIndex()) == "Output"

    choose_format(dialog, "webp")
    assert "b91c1c" not in summary.styleSheet()
    press(dialog, QDialogButtonBox.StandardButton.Ok)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.result_settings().output.format == "webp"


# -- the window ---------------------------------------------------------------------------------


@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_a_csv_added_after_saving_is_made_with_the_new_output_settings(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    repository: Repository,
    server: HttpTestServer,
    tmp_path: Path,
) -> None:
    url = server.route(
        "/chair.jpg", respond(make_jpeg(400, 300, "photo", 95), content_type="image/jpeg")
    )
    window.action(Action.SETTINGS).trigger()
    dialogs = [d for d in window.open_dialogs() if isinstance(d, SettingsDialog)]
    assert len(dialogs) == 1
    dialog = dialogs[0]
    dialog.show_page(SettingsPage.OUTPUT)
    choose_format(dialog, "webp")
    spin(dialog, "quality").setValue(70)
    spin(dialog, "max_width").setValue(200)
    qtbot.mouseClick(
        dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok),  # type: ignore[union-attr]
        Qt.MouseButton.LeftButton,
    )
    chosen = OutputSettings(format="webp", quality=70, max_width=200)
    assert repository.load_settings().output == chosen

    with qtbot.waitSignal(engine.request_finished, timeout=WAIT_MS) as finished:
        window.load_files([write_csv(tmp_path / "chairs.csv", [("1", "Chair", [url])])])
    request_id, status = finished.args
    assert status == "completed"
    request = repository.get_request(request_id)
    assert request is not None and request.output == chosen
    (image,) = repository.list_images(request_id)
    assert image.output_format == "webp" and image.output_path is not None
    assert image.output_path.endswith(".webp")
    with Image.open(image.output_path) as stored:
        assert stored.format == "WEBP"
        assert stored.size == (200, 150)  # scaled down to the width, proportions kept


@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_no_note_is_cut_off_when_the_choices_change_in_a_shown_dialog(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot, OutputSettings())
    dialog.show_page(SettingsPage.OUTPUT)
    dialog.show()
    qtbot.waitExposed(dialog)
    for name in ("jpeg", "webp", "avif"):
        for target in (0, 150):
            choose_format(dialog, name)
            spin(dialog, "target_size_kb").setValue(target)
            spin(dialog, "max_width").setValue(1200)
            spin(dialog, "max_height").setValue(900)
            check(dialog, "keep_original").setChecked(False)
            check(dialog, "flatten").setChecked(True)
            qtbot.wait(1)  # the layout follows on the event loop
            for note in ("format_note", "target_size_note", "output_summary"):
                shown = label(dialog, note)
                assert shown.heightForWidth(shown.width()) <= shown.height(), (name, note)
