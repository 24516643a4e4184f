"""The window's settings file is named after imgdesk, and an unnamed earlier one is taken over."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QSettings

from imgdesk.gui import window_settings as module

NATIVE, USER = QSettings.Format.NativeFormat, QSettings.Scope.UserScope


@pytest.fixture
def config_home(tmp_path: Path, qapp: object) -> Iterator[Path]:
    """User settings go to ``tmp_path`` (not the real ~/.config) while the test runs."""
    names = QCoreApplication.organizationName(), QCoreApplication.applicationName()
    QSettings.setPath(NATIVE, USER, str(tmp_path))
    QSettings.setPath(QSettings.Format.IniFormat, USER, str(tmp_path))
    yield tmp_path
    QCoreApplication.setOrganizationName(names[0])
    QCoreApplication.setApplicationName(names[1])
    default = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    QSettings.setPath(NATIVE, USER, default)
    QSettings.setPath(QSettings.Format.IniFormat, USER, default)


def test_the_settings_of_an_earlier_unnamed_version_are_taken_over_once(
    config_home: Path,
) -> None:
    old = QSettings(NATIVE, USER, "Unknown Organization")
    old.setValue("data_dir", "/catalogues/imgdesk")
    old.setValue("columns/images", b"\x00\xff")
    old.setValue("processing/mode", "cluster")
    old.setValue("SomeOtherProgram/zoom", 3)  # not ours: stays where it is
    old.sync()

    settings = module.window_settings()
    assert settings.organizationName() == "imgdesk"
    assert Path(settings.fileName()).is_relative_to(config_home / "imgdesk")
    assert settings.value("data_dir") == "/catalogues/imgdesk"
    assert settings.value("columns/images") == b"\x00\xff"
    assert settings.value("processing/mode") == "cluster"
    assert not settings.contains("SomeOtherProgram/zoom")

    old.setValue("data_dir", "/somewhere/else")  # written later by an old version
    old.sync()
    assert module.window_settings().value("data_dir") == "/catalogues/imgdesk"


def test_without_an_earlier_file_the_settings_start_empty(config_home: Path) -> None:
    settings = module.window_settings()
    assert settings.allKeys() == []
    settings.setValue("data_dir", "/d")
    settings.sync()
    assert (config_home / "imgdesk" / "imgdesk.conf").is_file()
