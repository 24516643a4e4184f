"""Requests held because their outputs could not be written (a full disk), and the probe.

A full disk holds the request instead of failing every image after it: its queued jobs wait
here, and a probe every ``STORAGE_PROBE_INTERVAL_MS`` tries to write; once it can, the jobs
are handed back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Generic, TypeVar

from PySide6.QtCore import QObject, QTimer

from imgdesk.core.errors import ImageError
from imgdesk.core.storage import Storage

logger = logging.getLogger(__name__)

STORAGE_PROBE_INTERVAL_MS = 2000
# A held request carries on once this much can be written: room for a typical output image.
STORAGE_PROBE_BYTES = 512 * 1024

J = TypeVar("J")


class HeldRequests(QObject, Generic[J]):
    """Held requests with their waiting jobs; calls ``on_room(request_id, jobs)`` on release."""

    def __init__(
        self,
        storage_of: Callable[[str], Storage],
        on_room: Callable[[str, list[J]], None],
        parent: QObject,
    ) -> None:
        super().__init__(parent)
        self._storage_of = storage_of
        self._on_room = on_room
        self._messages: dict[str, str] = {}
        self._jobs: dict[str, list[J]] = {}
        self._probe = QTimer(self)
        self._probe.setInterval(STORAGE_PROBE_INTERVAL_MS)
        self._probe.timeout.connect(self._on_probe)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._messages

    def messages(self) -> Mapping[str, str]:
        """Each held request's message, read-only: the window reads it rather than keep a copy."""
        return MappingProxyType(self._messages)

    def hold(self, request_id: str, message: str, jobs: list[J]) -> bool:
        """Hold a request with its queued jobs; False if it was held already."""
        if request_id in self._messages:
            return False
        self._messages[request_id] = message
        self._jobs.setdefault(request_id, []).extend(jobs)
        self._probe.start()
        return True

    def add_job(self, request_id: str, job: J) -> None:
        """One more job of a held request (a retry, a page read) waits with the others."""
        self._jobs.setdefault(request_id, []).append(job)

    def drop(self, request_id: str) -> None:
        """Forget a request (cancelled, deleted)."""
        self._messages.pop(request_id, None)
        self._jobs.pop(request_id, None)

    def clear(self) -> None:
        """Forget every held request and stop probing."""
        self._messages.clear()
        self._jobs.clear()
        self._probe.stop()

    def _on_probe(self) -> None:
        for request_id in list(self._messages):
            try:
                self._storage_of(request_id).check_writable(request_id, STORAGE_PROBE_BYTES)
            except ImageError:
                continue
            logger.info("request %s: room to write again, carrying on", request_id)
            del self._messages[request_id]
            self._on_room(request_id, self._jobs.pop(request_id, []))
        if not self._messages:
            self._probe.stop()
