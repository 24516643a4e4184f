"""Loading CSV files: parsed off the GUI thread, checked with the user, then queued.

The flow for each file, in the order the files were given:

1. :func:`~imgdesk.core.csvio.read_catalogue` and
   :func:`~imgdesk.core.repository.prepare_catalogue` run in a ``QThreadPool`` worker (a big
   CSV takes a while to parse, validate and encode); the result comes back by a queued signal.
2. A file rejected as a whole gets a message naming the problem and the line. Rows with
   problems are listed in :class:`RowProblemsDialog`; the user decides whether to go on with
   the valid rows.
3. On the GUI thread, which owns the database, a :class:`~imgdesk.core.repository.RequestImport`
   records the request in short transactions, one per event-loop turn, so the window keeps
   painting; then ``Engine.start_request`` queues it.

Dialogs are opened window-modal with ``open()``, never ``exec()``, so the window keeps
painting and processing while a question is on screen.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peewee import OperationalError
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

from imgdesk.core.csvio import Catalogue, read_catalogue
from imgdesk.core.errors import CsvFileError
from imgdesk.core.repository import (
    PreparedCatalogue,
    Repository,
    RequestImport,
    prepare_catalogue,
)
from imgdesk.engine.engine import Engine

logger = logging.getLogger(__name__)

MAX_LISTED_PROBLEMS = 1000
# A recording step that found the database busy (another program writing) tries again then.
BUSY_RETRY_MS = 500


def read_and_prepare(path: Path) -> PreparedCatalogue:
    """The slow part of loading a file, for a worker thread: parse, validate, encode."""
    return prepare_catalogue(read_catalogue(path))


# -- a background task, like Picard's util/thread.py -------------------------------------------


class TaskRelay(QObject):
    """Lives on the GUI thread as long as its owner; background tasks report through it.

    One relay per owner, created once: no short-lived signal object has to outlive its
    worker, and the task id says which task a result belongs to.

    Signals:
        succeeded(int, object): a task id and its function's return value.
        failed(int, object): a task id and the exception its function raised.
    """

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

    def __init__(self, catalogue: Catalogue, parent: QWidget | None = None) -> None:
        """Build the dialog for ``catalogue`` (which has invalid rows or warnings)."""
        super().__init__(parent)
        self._catalogue = catalogue
        invalid = catalogue.invalid_rows
        valid = catalogue.valid_rows
        images = sum(len(row.urls) for row in valid)
        self.setWindowTitle(f"Problems in {catalogue.name}")
        layout = QVBoxLayout(self)

        if invalid and valid:
            headline = (
                f"{len(invalid):,} of {len(catalogue.rows):,} rows of <b>{_html(catalogue.name)}"
                f"</b> have problems and will be skipped. The other {len(valid):,} rows "
                f"({images:,} images) can be processed now."
            )
        elif invalid:
            headline = (
                f"None of the {len(catalogue.rows):,} rows of <b>{_html(catalogue.name)}</b> "
                "can be processed. Fix the rows below and load the file again."
            )
        else:
            headline = f"<b>{_html(catalogue.name)}</b> was read with warnings."
        message = QLabel(headline)
        message.setWordWrap(True)
        layout.addWidget(message)
        for warning in catalogue.warnings:
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
                f"Process {len(valid):,} valid rows", QDialogButtonBox.ButtonRole.AcceptRole
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
    def catalogue(self) -> Catalogue:
        """The catalogue the dialog is about."""
        return self._catalogue

    def problems_text(self) -> str:
        """The problems as plain text lines (what "Copy problems" copies)."""
        return "\n".join(
            f"line {row.line}: {' '.join(row.problems)}" for row in self._catalogue.invalid_rows
        )

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.problems_text())


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- the importer ---------------------------------------------------------------------------------


@dataclass
class _Load:
    """One file on its way: parsed (catalogue), rejected (message) or still being read."""

    path: Path
    task_id: int
    prepared: PreparedCatalogue | None = None
    message: str | None = None
    done: bool = False


class CsvImporter(QObject):
    """Turns CSV files into started requests, asking the user about problems on the way.

    Signals:
        request_created(str): a request was recorded and handed to the engine.
        file_rejected(str, str): a file (name) was refused, with the message shown.
        recording_progress(str, float): a file (name) is being recorded, this fraction so far.
        idle_changed(bool): True once no file is being read, recorded or waiting for an answer.
    """

    request_created = Signal(str)
    file_rejected = Signal(str, str)
    recording_progress = Signal(str, float)
    idle_changed = Signal(bool)

    def __init__(
        self,
        repository: Repository,
        engine: Engine,
        parent_widget: QWidget,
        pool: QThreadPool | None = None,
    ) -> None:
        """Create an importer whose dialogs are window-modal on ``parent_widget``."""
        super().__init__(parent_widget)
        self._repo = repository
        self._engine = engine
        self._parent_widget = parent_widget
        self._pool = pool or QThreadPool(self)
        self._loads: list[_Load] = []  # in the order the files were given
        self._dialog: QDialog | None = None
        self._recording: RequestImport | None = None
        self._recording_timer = QTimer(self)
        self._recording_timer.setInterval(0)  # one step per event-loop turn
        self._recording_timer.timeout.connect(self._on_recording_step)
        self._idle = True
        self._next_task_id = 0
        self._relay = TaskRelay(self)
        self._relay.succeeded.connect(self._on_relay_succeeded)
        self._relay.failed.connect(self._on_relay_failed)

    @property
    def active_dialog(self) -> QDialog | None:
        """The question or message on screen, if any."""
        return self._dialog

    def is_idle(self) -> bool:
        """True when no file is being read, recorded or waiting for the user."""
        return not self._loads and self._dialog is None and self._recording is None

    def load(self, paths: list[Path]) -> None:
        """Read these files in the background, then ask and queue them one by one."""
        was_idle = self.is_idle()
        for path in paths:
            self._next_task_id += 1
            task = BackgroundTask(self._relay, self._next_task_id, read_and_prepare, path)
            load = _Load(path=path, task_id=self._next_task_id)
            self._loads.append(load)
            logger.info("reading %s", path)
            self._pool.start(task)
        if paths and was_idle:
            self._idle = False
            self.idle_changed.emit(False)

    def shutdown(self) -> None:
        """Forget files not asked about yet, drop a half-recorded one, wait for running reads."""
        self._pool.clear()
        self._pool.waitForDone(2000)
        self._loads.clear()
        self._recording_timer.stop()
        if self._recording is not None:
            logger.info("%s was not recorded: the window closed", self._recording.name)
            self._recording.abandon()
            self._recording = None

    # -- slots ------------------------------------------------------------------------------

    def _find(self, task_id: int) -> _Load | None:
        return next((load for load in self._loads if load.task_id == task_id), None)

    def _on_relay_succeeded(self, task_id: int, prepared: object) -> None:
        load = self._find(task_id)
        if load is None:
            return
        assert isinstance(prepared, PreparedCatalogue)
        load.prepared = prepared
        load.done = True
        self._next()

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
        self._next()

    def _next(self) -> None:
        """Deal with the first file in order once it is read, unless a dialog is open."""
        while (
            self._dialog is None and self._recording is None and self._loads and self._loads[0].done
        ):
            load = self._loads.pop(0)
            if load.prepared is None:
                self._reject(load.path, load.message or "The file cannot be read.")
            elif load.prepared.catalogue.invalid_rows or load.prepared.catalogue.warnings:
                self._ask(load.path, load.prepared)
            else:
                self._create(load.path, load.prepared)
        if self.is_idle() and not self._idle:
            self._idle = True
            self.idle_changed.emit(True)

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

    def _ask(self, path: Path, prepared: PreparedCatalogue) -> None:
        dialog = RowProblemsDialog(prepared.catalogue, self._parent_widget)

        def on_finished(result: int) -> None:
            if result == QDialog.DialogCode.Accepted and prepared.catalogue.valid_rows:
                self._create(path, prepared)
            else:
                logger.info("%s not loaded: the user declined its problem rows", path.name)

        self._show(dialog, on_finished)

    def _show(self, dialog: QDialog, on_finished: Callable[[int], None]) -> None:
        self._dialog = dialog
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def finished(result: int) -> None:
            self._dialog = None
            on_finished(result)
            self._next()

        dialog.finished.connect(finished)
        dialog.open()

    def _create(self, path: Path, prepared: PreparedCatalogue) -> None:
        """Start recording the file; :meth:`_on_recording_step` carries on turn by turn."""
        self._recording = self._repo.start_import(prepared, path.absolute())
        self.recording_progress.emit(self._recording.name, 0.0)
        self._recording_timer.start()

    def _on_recording_step(self) -> None:
        recording = self._recording
        if recording is None:
            self._recording_timer.stop()
            return
        try:
            finished = recording.step()
        except OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                # Another program holds the database; the step changed nothing, so redo it.
                logger.warning("database busy while recording %s: %s", recording.name, error)
                self._recording_timer.stop()
                QTimer.singleShot(BUSY_RETRY_MS, self, self._recording_timer.start)
                return
            self._give_up_recording(recording, f"The database refused it: {error}")
            return
        except Exception as error:  # noqa: BLE001 - one bad file must not take the window down
            logger.exception("recording %s failed", recording.name)
            self._give_up_recording(recording, f"imgdesk could not record it: {error!r}")
            return
        self.recording_progress.emit(recording.name, recording.fraction)
        if not finished:
            return
        self._recording_timer.stop()
        self._recording = None
        self._engine.start_request(recording.request_id)
        self.request_created.emit(recording.request_id)
        self._next()

    def _give_up_recording(self, recording: RequestImport, message: str) -> None:
        self._recording_timer.stop()
        self._recording = None
        with contextlib.suppress(OperationalError):
            recording.abandon()  # else the next start removes it
        self._reject(Path(recording.name), message)
        self._next()
