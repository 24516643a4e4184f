"""The engine's changes that are not stored yet, stored in one transaction at a time.

Workers never write to the database; the engine collects what their results change here and
stores it every ``FLUSH_INTERVAL_MS`` (peewee's advice: batch inside one transaction).
Listeners hear of a change only once it is stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imgdesk.core.errors import DatabaseBusyError
from imgdesk.core.repository import (
    OUTCOME_COLUMNS,
    ImageInfo,
    Repository,
    cache_columns,
    result_columns,
)
from imgdesk.core.states import ImageStatus
from imgdesk.core.storage import Storage
from imgdesk.core.types import ImageResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageEvent:
    """An image reached ``done`` or ``failed`` (after its retries); sent once it is stored."""

    request_id: str
    image_id: int
    serial: str
    position: int
    url: str
    status: str
    error_code: str | None
    error: str | None
    output_url: str | None
    output_format: str | None = None
    note: str | None = None


@dataclass
class Stored:
    """What one :meth:`WriteBuffer.store` stored: for the engine to announce."""

    changed: dict[str, set[int]] = field(default_factory=dict)  # request id -> image ids
    statuses: set[str] = field(default_factory=set)  # requests whose status was stored
    events: list[ImageEvent] = field(default_factory=list)


class WriteBuffer:
    """Image changes, request statuses and cache rows waiting for the next transaction."""

    def __init__(self, repository: Repository) -> None:
        self._repo = repository
        self._writes: dict[int, dict[str, Any]] = {}
        self._statuses: dict[str, str] = {}
        self._cache_rows: list[dict[str, Any]] = []
        self._active_time: dict[str, float] = {}
        self._changed: dict[str, set[int]] = {}
        self._events: list[ImageEvent] = []
        # (request id, URL) -> the columns of its "done", while that is still buffered: a page
        # of the request read meanwhile sees the twins of that URL as pending.
        self.done_unstored: dict[tuple[str, str], dict[str, Any]] = {}

    @property
    def has_unstored(self) -> bool:
        """True when changes wait to be stored."""
        return bool(self._writes or self._statuses or self._cache_rows or self._active_time)

    def write(self, request_id: str, image_id: int, **columns: Any) -> None:
        """Buffer a change of one image's columns (later changes win)."""
        self._writes.setdefault(image_id, {}).update(columns)
        self._changed.setdefault(request_id, set()).add(image_id)

    def announce(self, request_id: str, image_ids: list[int]) -> None:
        """Images changed in the database outside the buffer: tell listeners at the next store."""
        self._changed.setdefault(request_id, set()).update(image_ids)

    def set_status(self, request_id: str, status: str) -> None:
        """Buffer a request's status."""
        self._statuses[request_id] = status

    def add_active_time(self, seconds: dict[str, float]) -> None:
        """Buffer seconds requests had images in flight (see ActiveTime)."""
        for request_id, value in seconds.items():
            self._active_time[request_id] = self._active_time.get(request_id, 0.0) + value

    def add_cache_row(self, row: dict[str, Any]) -> None:
        """Buffer an output a later run of the same URL may reuse."""
        self._cache_rows.append(row)

    def add_event(self, event: ImageEvent) -> None:
        """Buffer an image's final outcome, sent once its row is stored."""
        self._events.append(event)

    def record_result(
        self,
        request_id: str,
        images: Sequence[ImageInfo],
        result: ImageResult,
        *,
        attempts: int,
        storage: Storage,
        public_base_url: str,
        cache_key: str,
    ) -> None:
        """Buffer a URL's final result for its images, and what a later run may reuse."""
        key = result.output_key
        path = storage.local_path(key) if key else None
        columns = result_columns(
            result,
            attempts=attempts,
            # The file on this computer, or else (a bucket) the object's storage key: its
            # name is what matches a done row with its stored output.
            output_path=str(path) if path is not None else key,
            output_url=storage.url(key, public_base_url) if key else None,
        )
        if result.ok:
            logger.info(
                "%s %s (%s -> %s bytes, %s+%s ms)",
                "reused" if result.reused else "done",
                result.url,
                result.input_bytes,
                result.output_bytes,
                result.download_ms,
                result.compress_ms,
            )
            if result.content_sha256 and key and result.input_type:
                self.add_cache_row(cache_columns(result, cache_key))
        else:
            logger.warning("failed %s: %s %s", result.url, result.error_code, result.error)
        self.record_final(request_id, result.url, images, columns)

    def record_final(
        self, request_id: str, url: str, images: Sequence[ImageInfo], columns: dict[str, Any]
    ) -> None:
        """Buffer the final outcome of one URL for each of its images, with their events.

        A done URL is also remembered until stored, so a twin read meanwhile copies it.
        """
        if columns["status"] == ImageStatus.DONE:
            self.done_unstored[(request_id, url)] = columns
        for image in images:
            self.write(request_id, image.id, **columns)
            self.add_event(
                ImageEvent(
                    request_id=request_id,
                    image_id=image.id,
                    serial=image.serial,
                    position=image.position,
                    url=image.url,
                    status=columns["status"],
                    error_code=columns["error_code"],
                    error=columns["error"],
                    output_url=columns["output_url"],
                    output_format=columns["output_format"],
                    note=columns["note"],
                )
            )

    def record_twin(self, image: ImageInfo, twin: Mapping[str, Any]) -> None:
        """Buffer ``image`` as done with the output of ``twin``, a done image of its URL."""
        columns: dict[str, Any] = {"status": ImageStatus.DONE, "attempts": 0, "error_code": None}
        columns["error"] = None
        columns.update((name, twin[name]) for name in OUTCOME_COLUMNS)
        self.record_final(image.request_id, image.url, [image], columns)

    def forget_request(self, request_id: str) -> None:
        """Drop what would still be announced about a deleted request."""
        self._changed.pop(request_id, None)

    def clear(self) -> None:
        """Forget everything (the database is gone)."""
        self._writes.clear()
        self._statuses.clear()
        self._cache_rows.clear()
        self._changed.clear()
        self._events.clear()
        self.done_unstored.clear()

    def store(self) -> Stored:
        """Store the buffer in one transaction; returns what to announce.

        Raises:
            DatabaseBusyError: another program holds the database; the buffer is kept, with
                anything buffered meanwhile, for the next try.
        """
        stored = Stored()
        if self.has_unstored:
            started = time.perf_counter()
            writes, self._writes = self._writes, {}
            statuses, self._statuses = self._statuses, {}
            cache_rows, self._cache_rows = self._cache_rows, []
            active_time, self._active_time = self._active_time, {}
            try:
                self._repo.store(writes, statuses, cache_rows, active_time)
            except DatabaseBusyError:
                for image_id, columns in writes.items():
                    self._writes[image_id] = {**columns, **self._writes.get(image_id, {})}
                self._statuses = {**statuses, **self._statuses}
                self._cache_rows = cache_rows + self._cache_rows
                self.add_active_time(active_time)
                raise
            self.done_unstored.clear()
            stored.statuses = set(statuses)
            logger.debug(
                "stored %s image updates in %.1f ms",
                len(writes),
                (time.perf_counter() - started) * 1000,
            )
        stored.changed, self._changed = self._changed, {}
        stored.events, self._events = self._events, []
        return stored
