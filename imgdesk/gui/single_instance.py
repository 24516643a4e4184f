"""The window's end of :mod:`imgdesk.core.handover`: a local socket for a second launch.

A second ``imgdesk more.csv`` on the same data folder hands its files to the window already
open there (which comes forward), and ``imgdesk cancel REQUEST_ID`` asks it to cancel a
request, instead of both being refused because the folder is in use (SPEC 6 and 7).

The server listens only while the window holds the data folder's lock, so a socket left
behind by a crash can be removed safely before listening again. Each connection carries
one JSON line and gets one back; nothing here ever blocks the GUI thread.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from imgdesk.core import handover

logger = logging.getLogger(__name__)

MAX_QUESTION_BYTES = 1024 * 1024  # a few thousand file paths
QT_TIMEOUT_MS = int(handover.TIMEOUT_S * 1000)

# open_files(paths) -> how many were taken; cancel(request id) -> the answer to send back.
OpenFiles = Callable[[list[Path]], int]
CancelRequest = Callable[[str], dict[str, Any]]


def server_name(data_dir: Path) -> str:
    """What the server listens on: a socket path on Linux and macOS, a pipe name on Windows."""
    if sys.platform == "win32":
        return handover.socket_name(data_dir)
    return str(handover.socket_path(data_dir))


class HandoverServer(QObject):
    """Answers the questions of :mod:`imgdesk.core.handover` on behalf of the window.

    Args:
        data_dir: the data folder whose window this is.
        open_files: loads handed-over CSV files and brings the window forward; returns how
            many files it took.
        cancel: cancels a request by id or prefix; returns the answer (``ok`` and more).
        parent: the owner (the window).
    """

    def __init__(
        self,
        data_dir: Path,
        open_files: OpenFiles,
        cancel: CancelRequest,
        parent: QObject | None = None,
    ) -> None:
        """Prepare the server; it listens once :meth:`start` is called."""
        super().__init__(parent)
        self._name = server_name(data_dir)
        self._open_files = open_files
        self._cancel = cancel
        self._server = QLocalServer(self)
        # Only this user may connect (the socket file is made private to them).
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._on_server_new_connection)
        self._buffers: dict[QLocalSocket, bytes] = {}

    @property
    def name(self) -> str:
        """The socket path (or pipe name) listened on."""
        return self._name

    def start(self) -> bool:
        """Listen; False (logged) when the socket cannot be made, which only costs the hand-over.

        Call it only while holding the data folder's lock: a socket of the same name is then
        one a crashed window left behind, and is removed first.
        """
        QLocalServer.removeServer(self._name)
        if self._server.listen(self._name):
            logger.info("listening for a second launch on %s", self._name)
            return True
        logger.warning(
            "a second launch cannot hand files to this window: %s", self._server.errorString()
        )
        return False

    def close(self) -> None:
        """Stop listening and remove the socket (the window is closing)."""
        self._server.close()
        for connection in list(self._buffers):
            connection.abort()
        self._buffers.clear()

    # -- slots ------------------------------------------------------------------------------

    def _on_server_new_connection(self) -> None:
        while self._server.hasPendingConnections():
            connection = self._server.nextPendingConnection()
            self._buffers[connection] = b""
            connection.readyRead.connect(lambda c=connection: self._on_socket_ready_read(c))
            connection.disconnected.connect(lambda c=connection: self._forget(c))
            self._on_socket_ready_read(connection)  # bytes may have come with the connection

    def _on_socket_ready_read(self, connection: QLocalSocket) -> None:
        if connection not in self._buffers:
            return
        received = self._buffers[connection] + connection.readAll().data()
        if b"\n" not in received and len(received) < MAX_QUESTION_BYTES:
            self._buffers[connection] = received
            return
        del self._buffers[connection]
        answer = self._answer(received.partition(b"\n")[0])
        connection.write(json.dumps(answer).encode("utf-8") + b"\n")
        connection.flush()
        connection.disconnectFromServer()

    def _forget(self, connection: QLocalSocket) -> None:
        self._buffers.pop(connection, None)
        connection.deleteLater()

    # -- the questions ----------------------------------------------------------------------

    def _answer(self, line: bytes) -> dict[str, Any]:
        """The answer to one question; a malformed one gets ``ok: false``, never an exception."""
        try:
            question = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            question = None
        if isinstance(question, dict) and isinstance(question.get(handover.OPEN), list):
            paths = [Path(item) for item in question[handover.OPEN] if isinstance(item, str)]
            logger.info("a second launch handed over %s files", len(paths))
            return {"ok": True, "opened": self._open_files(paths)}
        if isinstance(question, dict) and isinstance(question.get(handover.CANCEL), str):
            logger.info("asked to cancel request %s", question[handover.CANCEL])
            return self._cancel(question[handover.CANCEL])
        logger.warning("a question imgdesk does not know came on %s", self._name)
        return {"ok": False, "error": "imgdesk does not know this question."}


def ask_window_qt(data_dir: Path, question: dict[str, Any]) -> dict[str, Any] | None:
    """:func:`imgdesk.core.handover.ask_window` through Qt's local socket (for Windows).

    Blocks up to :data:`imgdesk.core.handover.TIMEOUT_S`; call it before the event loop runs.
    Returns None when no window listens.
    """
    connection = QLocalSocket()
    connection.connectToServer(server_name(data_dir))
    if not connection.waitForConnected(QT_TIMEOUT_MS):
        return None
    connection.write(json.dumps(question).encode("utf-8") + b"\n")
    connection.waitForBytesWritten(QT_TIMEOUT_MS)
    received = b""
    while b"\n" not in received and connection.waitForReadyRead(QT_TIMEOUT_MS):
        received += connection.readAll().data()
    received += connection.readAll().data()  # what came with the window's goodbye
    connection.abort()
    try:
        answer = json.loads(received.partition(b"\n")[0].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        return {"ok": False, "error": "The imgdesk window did not answer."}
    return answer


def ask_window(data_dir: Path, question: dict[str, Any]) -> dict[str, Any] | None:
    """Ask the window open on ``data_dir``: plain sockets where they can, else Qt's."""
    if sys.platform == "win32":
        return ask_window_qt(data_dir, question)
    return handover.ask_window(data_dir, question)
