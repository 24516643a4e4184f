"""The priorities set through the engine (SPEC 11), stored with the one busy-database policy.

A priority the user picks is in force at once: the engine re-ranks the request's queued
images. Storing it may have to wait for another program holding the database; it is then
kept here and stored shortly (``BUSY_RETRY_MS``), and a restart of the request uses it
meanwhile, not the stored one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from imgdesk.core.errors import BUSY_RETRY_MS, DatabaseBusyError
from imgdesk.core.records import PRIORITIES, RequestInfo, priority_rank
from imgdesk.core.repository import Repository

logger = logging.getLogger(__name__)


class RequestPriorities(QObject):
    """Stores the requests' new priorities, keeping them while the database is busy.

    Signals:
        stored(str): a request's new priority is stored (listeners re-read the request).
    """

    stored = Signal(str)

    def __init__(
        self, repository: Repository, can_store: Callable[[], bool], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._repo = repository
        self._can_store = can_store  # False once the database is lost: nothing is stored
        self._unstored: dict[str, str] = {}  # request id -> priority, in the order set

    def rank_of(self, request: RequestInfo) -> int:
        """The rank of the request's priority: of one set but not stored yet, else its own."""
        return priority_rank(self._unstored.get(request.id, request.priority))

    def set(self, request_id: str, priority: str) -> None:
        """Store ``priority`` for the request now, or shortly when the database is busy.

        Raises:
            ValueError: not one of PRIORITIES.
        """
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}")
        logger.info("request %s: priority %s", request_id, priority)
        self._unstored[request_id] = priority
        self._store()

    def _store(self) -> None:
        while self._unstored and self._can_store():
            request_id, priority = next(iter(self._unstored.items()))
            try:
                self._repo.set_priority(request_id, priority)
            except DatabaseBusyError as busy:
                logger.warning("database busy, storing the priority shortly: %s", busy)
                QTimer.singleShot(BUSY_RETRY_MS, self, self._store)
                return
            del self._unstored[request_id]
            self.stored.emit(request_id)
