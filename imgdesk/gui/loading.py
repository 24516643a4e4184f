"""Loading CSV files: parsed off the GUI thread, recorded as they are read, then queued.

The flow for each file, in the order the files were given:

1. :func:`~imgdesk.core.reader.read_in_chunks` parses and validates the file, a big one in
   a child process (pure Python work that would otherwise hold the GIL the window paints
   with), from a ``QThreadPool`` worker. Every ``IMPORT_CHUNK_ROWS`` rows the child hands
   over, encoded by :func:`~imgdesk.core.repository.prepare_rows`, come back by a queued
   signal.
2. On the GUI thread, which owns the database, the engine (the one writer) records them
   one chunk per event-loop turn while the worker reads on: reading and recording overlap,
   and the window keeps painting. The request is listed from its first chunk on, as
   "Reading file", so its rows can be looked at while the rest comes in; the engine does
   not start it yet.
3. Once the file is read: a file rejected as a whole gets a message naming the problem and
   the line, and its recorded rows are removed. Rows with problems are listed in
   :class:`RowProblemsDialog`; the user decides whether to go on with the valid rows.
   Otherwise the request is shown and ``Engine.start_request`` queues it.

Dialogs are opened window-modal with ``open()``, never ``exec()``, so the window keeps
painting and processing while a question is on screen.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from imgdesk.core import reader
from imgdesk.core import repository as repository_module
from imgdesk.core.csvio import Catalogue, CatalogueSummary
from imgdesk.core.errors import BUSY_RETRY_MS, CsvFileError, DatabaseBusyError, DatabaseError
from imgdesk.core.repository import PreparedRows, RequestImport
from imgdesk.engine.engine import Engine
from imgdesk.engine.priority import lower_this_thread
from imgdesk.gui.widgets import open_dialog

logger = logging.getLogger(__name__)

MAX_LISTED_PROBLEMS = 1000
# A recording step that found the database busy (another program writing) tries again then.


# -- a background task, like Picard's util/thread.py -------------------------------------------


class TaskRelay(QObject):
    """Lives on the GUI thread as long as its owner; background tasks report through it.

    One relay per owner, created once: no short-lived signal object has to outlive its
    worker, and the task id says which task a result belongs to.

    Signals:
        partial(int, object): a task id and a piece of its result, while it runs.
        succeeded(int, object): a task id and its function's return value.
        failed(int, object): a task id and the exception its function raised.
    """

    partial = Signal(int, object)
    succeeded = Signal(int, object)
    failed = Signal(int, object)


class BackgroundTask(QRunnable):
    """Runs ``function(*args)`` on a pool thread and reports to a :class:`TaskRelay`.

    Nothing escapes ``run()``: the result or the exception goes back by a queued signal.
    """

    def __init__(
        self, relay: TaskRelay, task_id: int, function: Callable[..., Any], *args: Any
    ) -> None:
        """Prepare ``function(*args)``, reported as ``task_id`` through ``relay``."""
        super().__init__()
        self._relay = relay
        self._task_id = task_id
        self._function = function
        self._args = args

    def run(self) -> None:
        """Call the function and report its result or its exception."""
        lower_this_thread()
        try:
            result = self._function(*self._args)
        except BaseException as error:  # noqa: BLE001 - a worker must always report back
            if not isinstance(error, Exception):
                logger.exception("background task %s interrupted", self._function)
            self._report(self._relay.failed, error)
        else:
            self._report(self._relay.succeeded, result)

    def _report(self, signal: Any, value: object) -> None:
        # RuntimeError: the owner is gone (window closed), there is nobody to tell.
        with contextlib.suppress(RuntimeError):
            signal.emit(self._task_id, value)


# -- the row problems dialog ----------------------------------------------------------------------


class RowProblemsDialog(QDialog):
    """Lists the rows of a catalogue that have problems; accept means "process the valid rows"."""

    def __init__(self, summary: CatalogueSummary, parent: QWidget | None = None) -> None:
        """Build the dialog for a file read with invalid rows or warnings."""
        super().__init__(parent)
        self._summary = summary
        invalid = summary.invalid_rows
        valid = summary.valid_count
        images = summary.valid_image_count
        self.setWindowTitle(f"Problems in {summary.name}")
        layout = QVBoxLayout(self)

        if invalid and valid:
            headline = (
                f"{len(invalid):,} of {summary.row_count:,} rows of <b>{_html(summary.name)}"
                f"</b> have problems and will be skipped. The other {valid:,} rows "
                f"({images:,} images) can be processed now."
            )
        elif invalid:
            headline = (
                f"None of the {summary.row_count:,} rows of <b>{_html(summary.name)}</b> "
                "can be processed. Fix the rows below and load the file again."
            )
        else:
            headline = f"<b>{_html(summary.name)}</b> was read with warnings."
        message = QLabel(headline)
        message.setWordWrap(True)
        layout.addWidget(message)
        for warning in summary.warnings:
            label = QLabel(f"\u26a0 {_html(warning)}")
            label.setWordWrap(True)
            layout.addWidget(label)

        self.table = QTableWidget(0, 4, self)
        self.table.setHorizontalHeaderLabels(["Line", "S. No.", "Product", "Problem"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        shown = invalid[:MAX_LISTED_PROBLEMS]
        self.table.setRowCount(len(shown))
        for row_number, row in enumerate(shown):
            cells = (str(row.line), row.serial, row.product_name, " ".join(row.problems))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(row_number, column, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.resizeSection(2, 160)
        header.setStretchLastSection(True)
        self.table.setVisible(bool(invalid))
        layout.addWidget(self.table, 1)
        if len(invalid) > len(shown):
            layout.addWidget(QLabel(f"\u2026 and {len(invalid) - len(shown):,} more rows."))

        self.buttons = QDialogButtonBox(self)
        self.proceed_button: QPushButton | None = None
        if valid:
            self.proceed_button = self.buttons.addButton(
                f"Process {valid:,} valid rows", QDialogButtonBox.ButtonRole.AcceptRole
            )
            self.proceed_button.setDefault(True)
            self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        else:
            self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        copy = self.buttons.addButton("Copy problems", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(self._on_copy_clicked)
        copy.setEnabled(bool(invalid))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.resize(720, 420 if invalid else 160)

    @property
    def summary(self) -> CatalogueSummary:
        """The file the dialog is about."""
        return self._summary

    def problems_text(self) -> str:
        """The problems as plain text lines (what "Copy problems" copies)."""
        return "\n".join(
            f"line {row.line}: {' '.join(row.problems)}" for row in self._summary.invalid_rows
        )

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.problems_text())


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- the importer ---------------------------------------------------------------------------------


def read_in_chunks(
    path: Path, report: Callable[[object], None], cancel: threading.Event
) -> CatalogueSummary:
    """For a worker thread: have the file read, reporting ``(head, PreparedRows)`` chunks.

    The GUI thread records the first rows while the rest of the file is still being read.
    """
    return reader.read_in_chunks(
        path, lambda head, rows: report((head, rows)), repository_module.IMPORT_CHUNK_ROWS, cancel
    )


@dataclass
class _Load:
    """One file on its way: rows to record, then read in full (summary) or refused (message)."""

    path: Path
    task_id: int
    cancel: threading.Event = field(default_factory=threading.Event)
    pending_rows: deque[tuple[Catalogue, PreparedRows]] = field(default_factory=deque)
    recording: RequestImport | None = None
    summary: CatalogueSummary | None = None
    message: str | None = None
    done: bool = False


class CsvImporter(QObject):
    """Turns CSV files into started requests, asking the user about problems on the way.

    Files are dealt with in the order they were given. While a file is read on a worker
    thread, its rows are recorded a chunk per event-loop turn; once it is read the request
    is started, or, for a file with problem rows, the user is asked first, or a refused
    file's rows are removed again.

    Signals:
        request_listed(str): a file's first rows are recorded: its request can be shown.
        recording_progress(str, str, int): a request (id, file name) has this many rows so far.
        request_created(str): a request was recorded in full and handed to the engine.
        request_removed(str): a listed request went again (file refused, declined, stopped).
        file_rejected(str, str): a file (name) was refused, with the message shown.
        idle_changed(bool): True once no file is being read, recorded or waiting for an answer.
    """

    request_listed = Signal(str)
    recording_progress = Signal(str, str, int)
    request_created = Signal(str)
    request_removed = Signal(str)
    file_rejected = Signal(str, str)
    idle_changed = Signal(bool)

    def __init__(
        self,
        engine: Engine,
        parent_widget: QWidget,
        pool: QThreadPool | None = None,
    ) -> None:
        """Create an importer whose dialogs are window-modal on ``parent_widget``."""
        super().__init__(parent_widget)
        self._engine = engine
        self._parent_widget = parent_widget
        self._pool = pool or QThreadPool(self)
        self._loads: list[_Load] = []  # in the order the files were given
        self._dialog: QDialog | None = None
        self._idle = True
        self._next_task_id = 0
        self._relay = TaskRelay(self)
        self._relay.partial.connect(self._on_relay_partial)
        self._relay.succeeded.connect(self._on_relay_succeeded)
        self._relay.failed.connect(self._on_relay_failed)
        # One piece of work per event-loop turn: record a chunk, or conclude a file.
        self._work_timer = QTimer(self)
        self._work_timer.setInterval(0)
        self._work_timer.timeout.connect(self._advance)

    @property
    def active_dialog(self) -> QDialog | None:
        """The question or message on screen, if any."""
        return self._dialog

    def is_idle(self) -> bool:
        """True when no file is being read, recorded or waiting for the user."""
        return not self._loads and self._dialog is None

    def load(self, paths: list[Path]) -> None:
        """Read these files in the background, then record, ask and queue them one by one."""
        was_idle = self.is_idle()
        for path in paths:
            self._next_task_id += 1
            task_id = self._next_task_id
            load = _Load(path=path, task_id=task_id)
            task = BackgroundTask(
                self._relay, task_id, read_in_chunks, path, self._reporter(task_id), load.cancel
            )
            self._loads.append(load)
            logger.info("reading %s", path)
            self._pool.start(task)
        if paths and was_idle:
            self._idle = False
            self.idle_changed.emit(False)

    def stop_reading(self, request_id: str) -> bool:
        """Drop a file still being read (the user cancelled or deleted its request)."""
        for load in self._loads:
            if load.recording is not None and load.recording.request_id == request_id:
                logger.info("%s: reading stopped by the user", load.path.name)
                load.cancel.set()  # the reading process stops
                self._loads.remove(load)  # what the worker still reports is dropped
                self._discard(load)
                self._work_timer.start()
                return True
        return False

    def shutdown(self) -> None:
        """Forget files not finished yet (removing their recorded rows); stop their reading."""
        for load in self._loads:
            load.cancel.set()
        self._pool.clear()
        self._pool.waitForDone(2000)
        self._work_timer.stop()
        for load in self._loads:
            if load.recording is not None:
                logger.info("%s was not recorded: the window closed", load.path.name)
                load.recording.abandon()
        self._loads.clear()

    # -- slots ------------------------------------------------------------------------------

    def _reporter(self, task_id: int) -> Callable[[object], None]:
        """What a worker calls with a piece of its file (it arrives here by a queued signal)."""

        def report(value: object) -> None:
            with contextlib.suppress(RuntimeError):  # the importer is gone: nobody to tell
                self._relay.partial.emit(task_id, value)

        return report

    def _find(self, task_id: int) -> _Load | None:
        return next((load for load in self._loads if load.task_id == task_id), None)

    def _on_relay_partial(self, task_id: int, value: object) -> None:
        load = self._find(task_id)
        if load is None:
            return
        head, rows = cast(tuple[Catalogue, PreparedRows], value)
        load.pending_rows.append((head, rows))
        self._work_timer.start()

    def _on_relay_succeeded(self, task_id: int, summary: object) -> None:
        load = self._find(task_id)
        if load is None:
            return
        assert isinstance(summary, CatalogueSummary)
        load.summary = summary
        load.done = True
        self._work_timer.start()

    def _on_relay_failed(self, task_id: int, error: object) -> None:
        load = self._find(task_id)
        if load is None:
            return
        if isinstance(error, CsvFileError):
            load.message = error.message
            if error.line:
                load.message = f"Line {error.line}: {error.message}"
        else:
            logger.error("reading %s failed unexpectedly", load.path, exc_info=error)  # type: ignore[arg-type]
            load.message = f"imgdesk could not read this file: {error!r}"
        load.done = True
        self._work_timer.start()

    def _advance(self) -> None:
        """Record the first file's next chunk, or conclude it once it is read and recorded."""
        while self._dialog is None and self._loads:
            load = self._loads[0]
            if load.pending_rows and load.message is None:
                self._record_next(load)
                return  # one chunk per turn: the timer calls again
            if not load.done:
                break  # wait for the worker
            self._loads.pop(0)
            self._conclude(load)
        self._work_timer.stop()
        if self.is_idle() and not self._idle:
            self._idle = True
            self.idle_changed.emit(True)

    def _record_next(self, load: _Load) -> None:
        head, rows = load.pending_rows[0]
        try:
            if load.recording is None:
                load.recording = self._engine.writer.start_import(head, load.path.absolute())
            self._engine.writer.record_rows(load.recording, rows)
        except DatabaseBusyError as error:
            # Another program holds the database; the chunk is still here: redo it.
            logger.warning("database busy while recording %s: %s", load.path.name, error)
            self._work_timer.stop()
            QTimer.singleShot(BUSY_RETRY_MS, self, self._work_timer.start)
            return
        except DatabaseError as error:
            self._stop_recording(load, f"The database refused it: {error}")
            return
        except Exception as error:  # noqa: BLE001 - one bad file must not take the window down
            logger.exception("recording %s failed", load.path.name)
            self._stop_recording(load, f"imgdesk could not record it: {error!r}")
            return
        load.pending_rows.popleft()
        recording = load.recording
        if recording.rows_recorded == rows.row_count:  # its first rows are in
            self.request_listed.emit(recording.request_id)
        self.recording_progress.emit(recording.request_id, load.path.name, recording.rows_recorded)

    def _stop_recording(self, load: _Load, message: str) -> None:
        """Give up on a file: its rows go, the rest of it is ignored, the user is told."""
        load.message = message
        load.pending_rows.clear()
        load.cancel.set()
        if not load.done:
            load.done = True  # what the worker still reports finds no load and is dropped
            self._loads.remove(load)
            self._conclude(load)

    def _conclude(self, load: _Load) -> None:
        """A file is read and its rows recorded: show it, ask about it, or refuse it."""
        summary = load.summary
        if load.message is not None or summary is None:
            self._discard(load)
            self._reject(load.path, load.message or "The file cannot be read.")
        elif summary.invalid_rows or summary.warnings:
            self._ask(load, summary)
        else:
            self._start(load)

    def _start(self, load: _Load) -> None:
        assert load.recording is not None  # a file with no product row is refused
        request_id = self._engine.writer.finish_import(load.recording)
        self._engine.start_request(request_id)
        self.request_created.emit(request_id)

    def _discard(self, load: _Load) -> None:
        if load.recording is not None:
            with contextlib.suppress(
                DatabaseBusyError, DatabaseError
            ):  # else the next start removes it
                load.recording.abandon()
            self.request_removed.emit(load.recording.request_id)

    def _reject(self, path: Path, message: str) -> None:
        logger.warning("%s was refused: %s", path.name, message)
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "File not loaded",
            f"{path.name} cannot be processed.",
            QMessageBox.StandardButton.Ok,
            self._parent_widget,
        )
        box.setInformativeText(message)
        box.setTextFormat(Qt.TextFormat.PlainText)
        self.file_rejected.emit(path.name, message)
        self._show(box, lambda _result: None)

    def _ask(self, load: _Load, summary: CatalogueSummary) -> None:
        dialog = RowProblemsDialog(summary, self._parent_widget)

        def on_finished(result: int) -> None:
            if result == QDialog.DialogCode.Accepted and summary.valid_count:
                self._start(load)
            else:
                self._discard(load)
                logger.info("%s not loaded: the user declined its problem rows", load.path.name)

        self._show(dialog, on_finished)

    def _show(self, dialog: QDialog, on_finished: Callable[[int], None]) -> None:
        self._dialog = dialog

        def finished(result: int) -> None:
            self._dialog = None
            on_finished(result)
            self._work_timer.start()

        open_dialog(dialog, finished)
