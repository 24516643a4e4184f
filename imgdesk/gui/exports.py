"""The user's exports: a request's output CSV written where the user chooses, in the background.

The window hands over the selected request; :class:`RequestExports` asks first when only
part of it is done, asks where to write, then reads the request's data and writes the file
on a pool thread (a big request, or a database on another machine, would freeze the window)
and says how it went (a status line, or a message box when the file could not be written).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QThreadPool, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from imgdesk.core.csvio import write_output_csv
from imgdesk.core.errors import DatabaseBusyError, DatabaseError, ImdeskError, RequestGoneError
from imgdesk.core.repository import Repository, RequestInfo
from imgdesk.core.retention import removed_notice
from imgdesk.engine.engine import Engine
from imgdesk.gui.dialogs import PartialExportQuestion, choose_export_path
from imgdesk.gui.loading import BackgroundTask, TaskRelay
from imgdesk.gui.widgets import DialogTracker

logger = logging.getLogger(__name__)


def export_request(repository: Repository, request_id: str, path: Path, neutralise: bool) -> None:
    """Read a request's catalogue and outputs, and write its output CSV to ``path``.

    Runs on a pool thread: both steps take a while on a big request, and the read waits on
    a database server that does not answer. The repository's connection is per thread.

    Raises:
        DatabaseError: the request could not be read.
        RequestGoneError: the request was deleted meanwhile.
        ImageError: ``storage``, the file could not be written.
    """
    catalogue, outputs = repository.export_data(request_id)
    write_output_csv(path, catalogue, outputs, neutralise=neutralise)


class RequestExports(QObject):
    """Exports a request's output CSV to a file the user chooses (the Export action).

    Args:
        repository: reads the request as stored now, and, on a pool thread, its CSV data.
        engine: its settings (formula neutralising) and the note of the CSV written.
        pool: the thread pool the data is read and the file written on (the window waits
            for it at exit).
        dialogs: opens the questions and the failure message.
        qsettings: remembers the folder last exported to.
        data_dir: the data folder, where a first export is suggested.
        parent: the window, parent of the dialogs.

    Signals:
        message(str, int): a status line and how many milliseconds to show it.
        exported(str, str): request id and the path of the output CSV written.
    """

    message = Signal(str, int)
    exported = Signal(str, str)

    def __init__(
        self,
        repository: Repository,
        engine: Engine,
        pool: QThreadPool,
        dialogs: DialogTracker,
        qsettings: QSettings,
        data_dir: Path,
        parent: QWidget,
    ) -> None:
        """Export nothing yet; files are written on ``pool``."""
        super().__init__(parent)
        self._repo = repository
        self._engine = engine
        self._pool = pool
        self._dialogs = dialogs
        self._qsettings = qsettings
        self._data_dir = data_dir
        self._parent = parent
        self._exports: dict[int, tuple[str, Path]] = {}  # by task id: (request id, path)
        self._next_export_id = 0
        self._relay = TaskRelay(self)
        self._relay.succeeded.connect(self._on_relay_succeeded)
        self._relay.failed.connect(self._on_relay_failed)

    def export(self, shown: RequestInfo | None) -> None:
        """Ask where to, then export a request (first saying when only part of it is done)."""
        # As stored now: the list's copy may be a moment behind a request that just finished.
        request = self._repo.get_request(shown.id) if shown is not None else None
        if request is None:
            return
        if not (request.pending or request.in_flight):
            self._choose_and_export(request)
            return
        # Still processing: say that only what is done goes out, before asking where to.
        question = PartialExportQuestion(request, self._parent)

        def answered(_result: int) -> None:
            if question.confirmed():
                self._choose_and_export(request)

        self._dialogs.open(question, answered)

    def export_to(self, request_id: str, path: Path) -> None:
        """Read a request and write its output CSV to ``path``, both in the background."""
        neutralise = self._engine.settings.neutralise_formulas
        self._next_export_id += 1
        task_id = self._next_export_id
        self._exports[task_id] = (request_id, path)
        task = BackgroundTask(
            self._relay, task_id, export_request, self._repo, request_id, path, neutralise
        )
        self._pool.start(task)

    def _choose_and_export(self, request: RequestInfo) -> None:
        path = choose_export_path(self._parent, self._qsettings, request, self._data_dir)
        if path is not None:
            self.export_to(request.id, path)

    def _on_relay_succeeded(self, task_id: int, _result: object) -> None:
        found = self._exports.pop(task_id, None)
        if found is None:
            return
        request_id, path = found
        with contextlib.suppress(DatabaseBusyError):  # the file is written; only the note waits
            self._engine.record_output_csv(request_id, path.absolute().as_uri())
        logger.info("exported request %s to %s", request_id, path)
        text = f"Exported {path.name} to {path.parent}"
        request = self._repo.get_request(request_id)
        if request is not None and request.files_removed_at is not None:
            text += ". " + removed_notice(request.files_removed_at)
        self.message.emit(text, 10000)
        self.exported.emit(request_id, str(path))

    def _on_relay_failed(self, task_id: int, error: object) -> None:
        found = self._exports.pop(task_id, None)
        if found is None:
            return
        request_id, path = found
        if isinstance(error, ImdeskError):
            logger.error("export of %s to %s failed: %s", request_id, path, error)
        else:  # a bug: its traceback goes to the log, the user still gets one sentence
            logger.error("export of %s to %s failed", request_id, path, exc_info=error)  # type: ignore[arg-type]
        reason = getattr(error, "message", None) or str(error)
        if not isinstance(error, ImdeskError):
            detail = "imgdesk could not export it; the log says why."
        elif isinstance(error, DatabaseError):
            detail = f"The request could not be read: {reason}\n\nTry again in a moment."
        elif isinstance(error, RequestGoneError):
            detail = reason
        else:
            detail = f"{reason}\n\nChoose another folder or file name and try again."
        self._dialogs.show_message(
            self._parent,
            QMessageBox.Icon.Warning,
            "Export failed",
            f"{path.name} could not be written.",
            detail,
        )
