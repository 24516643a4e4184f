"""Telling a user who is looking elsewhere: a tray message where there is a tray, else an alert."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QStyle, QSystemTrayIcon, QWidget

logger = logging.getLogger(__name__)

NOTIFY_MS = 8000


class Notifier(QObject):
    """Notifies on behalf of a window; clicking the tray message brings the window forward.

    The tray icon is created on the first message only: a user who always watches the
    window never gets one.
    """

    def __init__(self, window: QWidget) -> None:
        """Notify on behalf of ``window`` (its icon, its alert)."""
        super().__init__(window)
        self._window = window
        self._tray: QSystemTrayIcon | None = None

    def in_foreground(self) -> bool:
        """Whether the user is looking at the window now."""
        window = self._window
        return (
            window.isActiveWindow()
            and not window.isMinimized()
            and QGuiApplication.applicationState() == Qt.ApplicationState.ApplicationActive
        )

    def notify_if_away(self, title: str, text: str) -> None:
        """Notify, unless the user is looking at the window (the status bar says it there)."""
        if not self.in_foreground():
            self.notify(title, text)

    def notify(self, title: str, text: str) -> None:
        """A tray message, or at least the taskbar's alert."""
        if QSystemTrayIcon.isSystemTrayAvailable() and QSystemTrayIcon.supportsMessages():
            if self._tray is None:
                icon = self._window.windowIcon()
                if icon.isNull():
                    icon = self._window.style().standardIcon(QStyle.StandardPixmap.SP_ComputerIcon)
                self._tray = QSystemTrayIcon(icon, self)
                self._tray.setToolTip("imgdesk")
                self._tray.messageClicked.connect(self._on_tray_message_clicked)
                self._tray.show()
            self._tray.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information, NOTIFY_MS)
        else:
            QApplication.alert(self._window, 0)

    def hide(self) -> None:
        """Take the tray icon away (the window is closing)."""
        if self._tray is not None:
            self._tray.hide()

    def _on_tray_message_clicked(self) -> None:
        self._window.showNormal()
        self._window.raise_()
        self._window.activateWindow()
