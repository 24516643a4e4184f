"""What a finished request gets, in order: its output CSV, the CSV recorded, its webhook.

One policy for the window, the command line and any other front: each connects a
:class:`RequestFinisher` to its engine and shows (or awaits) its ``finished`` signal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QRunnable, QThreadPool, Signal

from imgdesk.core.csvio import Catalogue, output_csv_name, write_output_csv, write_output_rows
from imgdesk.core.errors import DatabaseBusyError, DatabaseError, ImageError
from imgdesk.core.repository import Repository, RequestInfo
from imgdesk.core.storage import Storage, storage_key
from imgdesk.engine.engine import Engine
from imgdesk.engine.priority import lower_this_thread
from imgdesk.engine.webhooks import WebhookSender

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Written:
    """The outcome of writing one request's output CSV (handed back to the finisher)."""

    request_id: str
    location: str  # the URL recorded as the request's output CSV; "" when none was written
    problem: str  # one sentence; "" when every copy was written


class _Relay(QObject):
    written = Signal(object)  # _Written


class _WriteOutput(QRunnable):
    """Writes the output CSV into the storage (and to the user's destination, if any)."""

    def __init__(
        self,
        request: RequestInfo,
        catalogue: Catalogue,
        outputs: dict[int, list[str | None]],
        neutralise: bool,
        storage: Storage,
        destination: Path | None,
        relay: _Relay,
    ) -> None:
        super().__init__()
        self._request = request
        self._catalogue = catalogue
        self._outputs = outputs
        self._neutralise = neutralise
        self._storage = storage
        self._destination = destination
        self._relay = relay

    def run(self) -> None:
        """Write both copies; nothing escapes, every outcome is reported.

        The destination a front asked for is the one recorded and reported; without one,
        the storage's copy is.
        """
        lower_this_thread()
        request_id = self._request.id
        key = storage_key(request_id, output_csv_name(self._request.csv_name))
        stored, stored_problem = self._write(lambda: self._store(key))
        if self._destination is None:
            written = _Written(request_id, stored, stored_problem)
        else:
            if stored_problem:
                logger.warning("no copy of the output CSV in storage: %s", stored_problem)
            destination = self._destination
            location, problem = self._write(lambda: self._write_file(destination))
            written = _Written(request_id, location, problem)
        self._relay.written.emit(written)

    def _store(self, key: str) -> str:
        with self._storage.open_output(key) as handle:
            write_output_rows(handle, self._catalogue, self._outputs, neutralise=self._neutralise)
        return self._storage.url(key)

    def _write_file(self, path: Path) -> str:
        write_output_csv(path, self._catalogue, self._outputs, neutralise=self._neutralise)
        return path.absolute().as_uri()

    def _write(self, write: Callable[[], str]) -> tuple[str, str]:
        """(location, "") once written, or ("", what went wrong)."""
        try:
            return write(), ""
        except ImageError as error:
            return "", error.message
        except Exception as error:  # noqa: BLE001 - a bug: say so, the webhook still goes
            logger.exception("writing the output CSV of %s failed", self._request.id)
            return "", f"imgdesk hit an unexpected problem writing the output CSV: {error!r}"


class RequestFinisher(QObject):
    """Writes, records and announces each request the engine finishes.

    The CSV is written off the engine's thread into the storage, next to the images
    (``<request_id>/<csv stem>-output.csv``), and to a destination a front asked for
    (``imgdesk process -o``). Only then is the webhook event queued, so its ``output_csv``
    names the file; if the CSV cannot be written, the event is queued all the same.

    Signals:
        finished(str, str, str): a request's id, where its output CSV went (a URL; "" when
            it could not be written), and what went wrong in one sentence ("" when nothing).
    """

    finished = Signal(str, str, str)

    def __init__(
        self,
        repository: Repository,
        engine: Engine,
        webhooks: WebhookSender | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._repo = repository
        self._engine = engine
        self._webhooks = webhooks
        self._destinations: dict[str, Path] = {}
        self._writing: set[str] = set()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._relay = _Relay(self)
        self._relay.written.connect(self._on_written)
        engine.request_finished.connect(self._on_request_finished)

    def detach(self) -> None:
        """Stop finishing the engine's requests (another finisher takes over)."""
        self._engine.request_finished.disconnect(self._on_request_finished)

    def set_destination(self, request_id: str, path: Path) -> None:
        """Also write this request's output CSV to ``path`` (and record that one)."""
        self._destinations[request_id] = path

    def is_writing(self, request_id: str | None = None) -> bool:
        """True while an output CSV (of this request, or any) is being written."""
        return bool(self._writing) if request_id is None else request_id in self._writing

    def wait(self, timeout_ms: int = 5000) -> None:
        """Let the CSVs being written end and take their outcomes now (at exit)."""
        self._pool.waitForDone(timeout_ms)
        QCoreApplication.sendPostedEvents(self, QEvent.Type.MetaCall)

    def finish(self, request_id: str) -> None:
        """Write, record and announce a finished request (the engine's signal calls this)."""
        request = self._repo.get_request(request_id)
        if request is None or not request.finished:
            return
        catalogue, outputs = self._repo.export_data(request_id)
        self._writing.add(request_id)
        self._pool.start(
            _WriteOutput(
                request,
                catalogue,
                outputs,
                self._engine.settings.neutralise_formulas,
                self._engine.storage_of(request_id),
                self._destinations.get(request_id),
                self._relay,
            )
        )

    def _on_request_finished(self, request_id: str, _status: str) -> None:
        self.finish(request_id)

    def _on_written(self, written: _Written) -> None:
        request_id = written.request_id
        self._writing.discard(request_id)
        problem = written.problem
        if written.location:
            try:
                self._engine.record_output_csv(request_id, written.location)
            except (DatabaseBusyError, DatabaseError) as error:
                problem = f"The output CSV was written but could not be recorded: {error}"
        if problem:
            logger.warning(
                "the output CSV of request %s: %s; its webhook is queued all the same",
                request_id,
                problem,
            )
        else:
            logger.info("output CSV of request %s written to %s", request_id, written.location)
        self._queue_webhook(request_id)
        self.finished.emit(request_id, written.location, problem)

    def _queue_webhook(self, request_id: str) -> None:
        if self._webhooks is None:
            return
        request = self._repo.get_request(request_id)
        if request is None or not request.finished:
            # Deleted, or retried meanwhile: its next finish queues an event of its own.
            logger.info("request %s is no longer finished; no webhook event", request_id)
            return
        try:
            self._webhooks.request_finished(request)
        except (DatabaseBusyError, DatabaseError) as error:
            logger.error("webhook event of request %s could not be queued: %s", request_id, error)
