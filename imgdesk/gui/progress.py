"""Overall progress where a user looks while working in another window: the title and taskbar.

Download managers show it there (SPEC 7): "42 % — imgdesk" in the window title while
requests run, plain "imgdesk" once idle, and a bar on the taskbar or dock icon where the
platform has one. Qt 6 has no taskbar API of its own (``QWinTaskbarProgress`` went with Qt
5); on Linux the docks of KDE, GNOME (Dash to Dock) and Unity read the Unity
``LauncherEntry`` D-Bus signal, which :class:`LauncherProgress` sends when Qt's D-Bus module
and a session bus are there, and silently does nothing otherwise.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

from PySide6.QtGui import QGuiApplication

from imgdesk.core.repository import IMPORTING, RequestInfo

logger = logging.getLogger(__name__)

APP_NAME = "imgdesk"
LAUNCHER_INTERFACE = "com.canonical.Unity.LauncherEntry"
LAUNCHER_PATH = "/com/canonical/unity/launcherentry/imgdesk"


def overall_progress(requests: Sequence[RequestInfo]) -> float | None:
    """The share of the images of every unfinished request that is processed; None if none runs.

    A request still being read is left out: its total is not known yet.
    """
    running = [r for r in requests if not r.finished and r.status != IMPORTING and r.total]
    if not running:
        return None
    total = sum(request.total for request in running)
    return sum(request.done + request.failed for request in running) / total


def progress_title(fraction: float | None, paused: bool) -> str:
    """``42 % — imgdesk`` while requests run (``paused`` said so), else ``imgdesk``."""
    if fraction is None:
        return APP_NAME
    state = " (paused)" if paused else ""
    return f"{int(fraction * 100)} %{state} \u2014 {APP_NAME}"


def _dbus() -> Any:
    """Qt's D-Bus module, or None where it does not ship or mean anything (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        from PySide6 import QtDBus
    except ImportError:
        return None
    return QtDBus


class LauncherProgress:
    """A progress bar on imgdesk's dock or taskbar icon, through the Unity LauncherEntry API.

    Args:
        connection: the D-Bus connection to signal on (tests pass a private bus); the
            session bus by default. Without one, every call does nothing.
    """

    def __init__(self, connection: Any = None) -> None:
        """Find the bus; nothing is sent until :meth:`set_progress`."""
        self._connection = None
        self._shown: tuple[bool, int] | None = None  # (visible, per mille) last sent
        dbus = _dbus()
        if dbus is None:
            return
        connection = connection if connection is not None else dbus.QDBusConnection.sessionBus()
        if connection.isConnected():
            self._connection = connection
            self._message_type = dbus.QDBusMessage

    @property
    def available(self) -> bool:
        """Whether there is a bus to signal on."""
        return self._connection is not None

    def set_progress(self, fraction: float | None) -> None:
        """Show ``fraction`` (0-1) on the icon, or hide the bar (None); repeats are not sent."""
        if self._connection is None:
            return
        shown = (fraction is not None, round((fraction or 0.0) * 1000))
        if shown == self._shown:
            return
        self._shown = shown
        message = self._message_type.createSignal(LAUNCHER_PATH, LAUNCHER_INTERFACE, "Update")
        desktop = QGuiApplication.desktopFileName() or APP_NAME
        message.setArguments(
            [
                f"application://{desktop}.desktop",
                {"progress": shown[1] / 1000, "progress-visible": shown[0]},
            ]
        )
        if not self._connection.send(message):
            logger.debug("the launcher progress could not be sent on D-Bus")
