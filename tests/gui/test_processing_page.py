"""Settings → Processing: this computer or a cluster, kept here, tested for real, switched on OK."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyrings.alt.file import PlaintextKeyring
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QRadioButton, QWidget
from pytestqt.qtbot import QtBot

from imgdesk.core.settings import Settings
from imgdesk.gui import app as gui_app
from imgdesk.gui.main_window import MainWindow
from imgdesk.gui.processing_page import (
    CLUSTER,
    LOCAL,
    ProcessingChoice,
    ProcessingPlace,
    ProcessingPlaceBox,
    split_password,
    with_password,
)
from imgdesk.gui.settings_dialog import SettingsDialog, SettingsPage
from tests.services_pg import PostgresServer
from tests.services_redis import RedisServer

WAIT_MS = 60_000


@pytest.fixture(autouse=True)
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A real keyring backend (a file) where this machine has no system keyring."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "keyring"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.delenv("IMGDESK_DATABASE_URL", raising=False)
    monkeypatch.delenv("IMGDESK_BROKER_URL", raising=False)
    before = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    yield
    keyring.set_keyring(before)


def _choice(tmp_path: Path, parent: QWidget | None = None) -> ProcessingChoice:
    return ProcessingChoice(QSettings(str(tmp_path / "w.ini"), QSettings.Format.IniFormat), parent)


def _box(qtbot: QtBot, choice: ProcessingChoice) -> ProcessingPlaceBox:
    box = ProcessingPlaceBox(choice)
    qtbot.addWidget(box)
    return box


def _type(box: ProcessingPlaceBox, mode: str, database: str, broker: str) -> None:
    box.findChild(QRadioButton, mode).setChecked(True)  # type: ignore[union-attr]
    for name, url in (("database", database), ("broker", broker)):
        bare, password = split_password(url)
        box.findChild(QLineEdit, f"{name}_url").setText(bare)  # type: ignore[union-attr]
        box.findChild(QLineEdit, f"{name}_password").setText(password)  # type: ignore[union-attr]


def _test_result(qtbot: QtBot, box: ProcessingPlaceBox) -> str:
    label = box.findChild(QLabel, "test_result")
    assert label is not None
    box.findChild(QWidget, "test_cluster").click()  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: label.text() not in ("", "Connecting…"), timeout=WAIT_MS)
    return label.text()


def test_the_choice_is_saved_with_its_password_in_the_keyring_and_restored(
    qtbot: QtBot, tmp_path: Path
) -> None:
    ini = tmp_path / "window.ini"
    choice = ProcessingChoice(QSettings(str(ini), QSettings.Format.IniFormat))
    assert choice.saved() == ProcessingPlace(LOCAL, "", "")
    box = _box(qtbot, choice)
    database = "postgresql://imgdesk:s3cret-pw@db.lan:5432/imgdesk"
    broker = "redis://:queue-pw@queue.lan:6379/0"
    _type(box, "cluster", database, broker)

    with qtbot.waitSignal(choice.changed, timeout=WAIT_MS):
        box.keep()

    assert "s3cret-pw" not in ini.read_text() and "queue-pw" not in ini.read_text()
    again = ProcessingChoice(QSettings(str(ini), QSettings.Format.IniFormat))
    assert again.saved() == ProcessingPlace(CLUSTER, database, broker)
    restored = _box(qtbot, again)
    assert restored.place() == ProcessingPlace(CLUSTER, database, broker)
    changes: list[None] = []
    again.changed.connect(lambda: changes.append(None))
    restored.keep()  # the same choice: nothing to switch
    assert changes == []


def test_the_environment_and_the_command_line_win_over_the_saved_choice(tmp_path: Path) -> None:
    choice = _choice(tmp_path)
    choice.save(ProcessingPlace(LOCAL, "", ""))
    env = {"IMGDESK_DATABASE_URL": "postgresql://e/x", "IMGDESK_BROKER_URL": "redis://e"}
    assert choice.in_use(env) == ProcessingPlace(CLUSTER, "postgresql://e/x", "redis://e")
    assert choice.in_use(env, "postgresql://c/y", "redis://c").database_url == "postgresql://c/y"
    assert choice.in_use({}) == ProcessingPlace(LOCAL, "", "")


def test_a_cluster_without_both_urls_is_refused_in_one_sentence(
    qtbot: QtBot, tmp_path: Path
) -> None:
    choice = _choice(tmp_path)
    box = _box(qtbot, choice)
    _type(box, "cluster", "postgresql://db.lan/imgdesk", "")
    with pytest.raises(Exception, match="needs both a database URL and a broker URL"):
        box.keep()
    assert choice.saved().mode == LOCAL


def test_test_connection_says_in_one_sentence_what_is_wrong(
    qtbot: QtBot,
    tmp_path: Path,
    postgres_server: PostgresServer,
    postgres_url: str,
    redis_server: RedisServer,
) -> None:
    box = _box(qtbot, _choice(tmp_path))
    wrong_password = postgres_url.replace(postgres_server.password, "not-the-password")
    cases = {
        ("mysql://db.lan/x", redis_server.url): "must be a PostgreSQL URL",
        (postgres_url, "http://queue.lan"): "must be a Redis URL",
        (wrong_password, redis_server.url): "password authentication failed",
        ("postgresql://u:p@127.0.0.1:9/none", redis_server.url): "cannot use the PostgreSQL",
        (postgres_url, "redis://127.0.0.1:9/0"): "cannot reach Redis",
    }
    for (database, broker), expected in cases.items():
        _type(box, "cluster", database, broker)
        text = _test_result(qtbot, box)
        assert expected in text, text
        assert "\n" not in text and "not-the-password" not in text
    _type(box, "cluster", postgres_url, redis_server.url)
    assert _test_result(qtbot, box).startswith("Both answer")


def test_the_settings_dialog_shows_it_on_the_processing_page(
    qtbot: QtBot, tmp_path: Path, postgres_url: str, redis_server: RedisServer
) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    choice = _choice(tmp_path, window)
    dialog = SettingsDialog(Settings(), tmp_path, window)
    qtbot.addWidget(dialog)
    dialog.show_page(SettingsPage.PROCESSING)
    box = dialog.findChild(ProcessingPlaceBox)
    assert box is not None
    _type(box, "cluster", postgres_url, redis_server.url)
    _test_result(qtbot, box)
    dialog.resize(760, 720)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.grab().save("/tmp/imgdesk-processing-page.png")

    dialog.accept()

    assert choice.saved() == ProcessingPlace(CLUSTER, postgres_url, redis_server.url)


def test_switching_on_ok_opens_the_window_again_on_the_cluster(
    tmp_path: Path, postgres_url: str, redis_server: RedisServer
) -> None:
    qsettings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    seen: list[str] = []

    def step() -> None:
        windows = [
            w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()
        ]
        if not windows:
            return
        window = windows[0]
        on_cluster = window.findChild(QLabel, "cluster_status") is not None
        if not on_cluster and not seen:
            seen.append("local")
            window.open_settings(SettingsPage.PROCESSING)
            dialog = window.findChild(SettingsDialog)
            assert dialog is not None
            _type(dialog.findChild(ProcessingPlaceBox), "cluster", postgres_url, redis_server.url)  # type: ignore[arg-type]
            dialog.accept()
        elif on_cluster and seen == ["local"]:
            seen.append("cluster")
            window.close()

    poll = QTimer()
    poll.setInterval(100)
    poll.timeout.connect(step)
    poll.start()
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(lambda: [w.close() for w in QApplication.topLevelWidgets()])
    guard.start(WAIT_MS)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        code = gui_app.run_window(
            str(tmp_path / "data"), [], qsettings=qsettings, install_crash_handler=False
        )
    finally:
        poll.stop()
        guard.stop()
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
    assert code == 0
    assert seen == ["local", "cluster"]


def test_a_password_is_taken_out_of_a_url_and_put_back() -> None:
    url = "postgresql://imgdesk:pw@db.lan:5432/imgdesk"
    assert split_password(url) == ("postgresql://imgdesk@db.lan:5432/imgdesk", "pw")
    assert with_password(*split_password(url)) == url
    assert with_password(*split_password("redis://:pw@q:6379/0")) == "redis://:pw@q:6379/0"
    assert split_password("redis://q:6379/0") == ("redis://q:6379/0", "")


def test_the_window_command_line_takes_the_cluster_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    from imgdesk import cli

    seen: dict[str, object] = {}

    def fake_run_window(*_args: object, **kwargs: object) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(gui_app, "run_window", fake_run_window)
    monkeypatch.delenv("IMGDESK_DATABASE_URL", raising=False)
    monkeypatch.delenv("IMGDESK_BROKER_URL", raising=False)

    assert cli.main(["--database", "postgresql://db/imgdesk", "--broker", "redis://q:6379/0"]) == 0

    assert seen["database_url"] == "postgresql://db/imgdesk"
    assert seen["broker_url"] == "redis://q:6379/0"
