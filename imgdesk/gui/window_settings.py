"""Where the window keeps what it remembers (QSettings): the data folder, layout, choices.

Qt names the file after the application, so it must be named before the first QSettings
is made. Earlier versions made it first, and Qt kept everything in a file of an "Unknown
Organization" (``~/.config/Unknown Organization.conf`` on Linux), which any other unnamed
Qt program shares; what imgdesk wrote there is taken over once.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QSettings

ORGANIZATION = "imgdesk"
APPLICATION = "imgdesk"
_UNNAMED = "Unknown Organization"  # Qt's name for an organization nobody named
# The top-level keys the window writes (data_dir, window/geometry, columns/images, ...).
_OWN_GROUPS = frozenset(
    {"data_dir", "layout", "window", "splitters", "columns", "preview", "paths", "processing"}
)


def name_application() -> None:
    """Name the application for QSettings (with or without a QApplication yet)."""
    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)


def window_settings() -> QSettings:
    """The window's settings, with what an earlier version kept under no name taken over."""
    name_application()
    settings = QSettings()
    if not settings.allKeys():
        old = QSettings(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, _UNNAMED)
        for key in old.allKeys():
            if key.split("/", 1)[0] in _OWN_GROUPS:
                settings.setValue(key, old.value(key))
        settings.sync()
    return settings
