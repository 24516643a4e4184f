"""How long each request has really been worked on: the time it had images in flight.

Wall-clock time since a request started counts pauses, waits for a retry and the idle days
between a run and its "Retry failures"; speeds divided by it mislead. This counts the union
of the intervals in which at least one of the request's images was downloading or
compressing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable


class DownloadProgress:
    """The bytes each image in flight has received so far, and the size announced."""

    def __init__(self) -> None:
        self._bytes: dict[int, tuple[int, int | None]] = {}

    def update(self, image_ids: list[int], received: int, announced: int | None) -> None:
        """A download of these images (twins share one) got this far."""
        for image_id in image_ids:
            self._bytes[image_id] = (received, announced)

    def forget(self, image_ids: list[int]) -> None:
        """The download ended."""
        for image_id in image_ids:
            self._bytes.pop(image_id, None)

    def of(self, image_id: int) -> tuple[int, int | None] | None:
        """(bytes received, bytes announced or None) while the image downloads."""
        return self._bytes.get(image_id)


class ActiveTime:
    """Per request: images in flight, since when, and the active seconds not stored yet."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._in_flight: Counter[str] = Counter()
        self._since: dict[str, float] = {}  # requests with images in flight: counted from
        self._unstored: dict[str, float] = {}

    @property
    def running(self) -> bool:
        """True while some request has an image in flight."""
        return bool(self._since)

    def started(self, request_id: str) -> None:
        """One of the request's images went in flight."""
        if self._in_flight[request_id] == 0:
            self._since[request_id] = self._clock()
        self._in_flight[request_id] += 1

    def ended(self, request_id: str) -> None:
        """One of the request's images came back (done, failed, cancelled or stale)."""
        if self._in_flight[request_id] <= 0:
            return
        self._in_flight[request_id] -= 1
        if self._in_flight[request_id] == 0:
            del self._in_flight[request_id]
            self._add(request_id, self._clock() - self._since.pop(request_id))

    def collect(self) -> dict[str, float]:
        """The active seconds to store now, running intervals included up to this moment."""
        now = self._clock()
        for request_id, since in self._since.items():
            self._add(request_id, now - since)
            self._since[request_id] = now
        collected, self._unstored = self._unstored, {}
        return collected

    def _add(self, request_id: str, seconds: float) -> None:
        self._unstored[request_id] = self._unstored.get(request_id, 0.0) + max(0.0, seconds)
