"""The engine's single writer: changes are buffered, stored a transaction at a time, then told.

It also keeps the active-time clock (see :mod:`imgdesk.engine.activity`), stored with every
flush, and notices a database file that was deleted or replaced.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from imgdesk.core.csvio import Catalogue
from imgdesk.core.errors import BUSY_RETRY_MS, DatabaseBusyError, DataFolderError
from imgdesk.core.recording import PreparedRows, RequestImport
from imgdesk.core.repository import Repository
from imgdesk.engine.activity import ActiveTime
from imgdesk.engine.write_buffer import WriteBuffer

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_MS = 100
ACTIVE_TIME_STORE_MS = 1000  # while images run, their requests' active time is stored this often


class DatabaseWriter(QObject):
    """Stores the engine's buffered changes every ``FLUSH_INTERVAL_MS``.

    Signals:
        images_changed(str, list): a request's images whose stored state changed.
        request_changed(str): a request's stored state or counts changed.
        image_finished(ImageEvent): an image's final outcome, once it is stored.
        database_lost(str): the database file was deleted or replaced (message); after it
            nothing is stored any more.
    """

    images_changed = Signal(str, list)
    request_changed = Signal(str)
    image_finished = Signal(object)
    database_lost = Signal(str)

    def __init__(self, repository: Repository, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._repo = repository
        self.buffer = WriteBuffer(repository)
        self.lost: str | None = None  # why the database can no longer be used
        self._flush_timer = QTimer(self)
        self._flush_timer.setInterval(FLUSH_INTERVAL_MS)
        self._flush_timer.timeout.connect(self.flush)
        self._activity = ActiveTime()
        self._clock = QTimer(self)
        self._clock.setInterval(ACTIVE_TIME_STORE_MS)
        self._clock.timeout.connect(self._on_clock)

    def start_import(self, head: Catalogue, csv_path: Path) -> RequestImport:
        """Begin recording a file's request, with the stored output settings and storage."""
        return self._repo.start_import(head, csv_path)

    def record_rows(self, recording: RequestImport, rows: PreparedRows) -> None:
        """Store one chunk of an import's rows (may raise DatabaseBusyError: not stored)."""
        recording.add(rows)

    def finish_import(self, recording: RequestImport) -> str:
        """Mark an import recorded in full (the engine may start it now); returns its id."""
        return recording.finish()

    def write(self, request_id: str, image_id: int, **fields: Any) -> None:
        """Buffer an image change; :meth:`flush` stores the buffer in one transaction."""
        if self.lost is not None:
            return
        self.buffer.write(request_id, image_id, **fields)
        self.schedule_flush()

    def announce(self, request_id: str, image_ids: list[int]) -> None:
        """Images changed in the database outside the buffer; told at the next flush."""
        self.buffer.announce(request_id, image_ids)
        self.schedule_flush()

    def schedule_flush(self) -> None:
        """Store what is buffered within ``FLUSH_INTERVAL_MS``."""
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def image_started(self, request_id: str) -> None:
        """One of the request's images went in flight: its active time runs."""
        self._activity.started(request_id)
        self._clock.start()

    def image_ended(self, request_id: str) -> None:
        """One of the request's images came back."""
        self._activity.ended(request_id)

    @Slot()
    def flush(self) -> None:
        """Store buffered changes in one transaction, then tell listeners what changed."""
        self._flush_timer.stop()
        self._flush_timer.setInterval(FLUSH_INTERVAL_MS)
        if self.lost is not None:
            return
        try:
            self._repo.check_database_file()
        except DataFolderError as error:
            self.lose(error.message)
            return
        active = self._activity.collect()
        self.buffer.add_active_time(active)
        try:
            stored = self.buffer.store()
        except DatabaseBusyError as error:
            # Another program holds the database (busy or locked): the changes are kept and
            # stored shortly; nothing is lost and nothing is announced before it is stored.
            logger.warning("database busy, keeping the updates for later: %s", error)
            self._flush_timer.start(BUSY_RETRY_MS)
            return
        for request_id, image_ids in stored.changed.items():
            self.images_changed.emit(request_id, sorted(image_ids))
            self.request_changed.emit(request_id)
        # A request whose status or active time alone changed is news too (its time runs).
        for request_id in (stored.statuses | active.keys()) - stored.changed.keys():
            self.request_changed.emit(request_id)
        for event in stored.events:
            self.image_finished.emit(event)

    def stop(self) -> None:
        """No more timed flushes (shutdown; :meth:`flush` still stores when called)."""
        self._flush_timer.stop()
        self._clock.stop()

    def lose(self, message: str) -> None:
        """Stop for good: nothing buffered is stored, nothing claims to be stored any more."""
        logger.error("%s", message)
        self.lost = message
        self.buffer.clear()
        self.stop()
        self.database_lost.emit(message)

    def _on_clock(self) -> None:
        if not self._activity.running:
            self._clock.stop()
        self.schedule_flush()
