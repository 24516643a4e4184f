"""What changed on the cluster since the last look: the window's poll of the shared database.

The window shows requests other machines submit, images other machines' workers store and
the webhook deliveries the cluster makes,
so it reads the shared database once a second on a thread of its own. :class:`ClusterWatcher`
keeps what it saw last and returns only the news: the requests that changed (compared
whole), and the images of the requests being looked at that changed since (by their
``updated_at``, with a full read again whenever the stored counts disagree with the images
seen, so an image written by a machine whose clock lags is never missed for good).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from imgdesk.core.cluster_store import ClusterStore
from imgdesk.core.db import ImageRow, translate_errors
from imgdesk.core.outbox import DeliveryInfo, Outbox
from imgdesk.core.records import ImageInfo, RequestInfo
from imgdesk.core.repository import Repository
from imgdesk.core.states import ImageStatus

logger = logging.getLogger(__name__)

# Images are found by the time a worker stored them; workers' clocks may differ this much.
CLOCK_SLACK_S = 10.0


@dataclass(frozen=True)
class ClusterNews:
    """One poll's news.

    Attributes:
        requests: every request, newest first (as :meth:`Repository.list_requests`).
        changed: ids of the requests added, changed or removed since the last poll.
        cancelled: cancelled images per request, for the changed requests that have some.
        finished: (id, status) of the requests seen unfinished before and finished now.
        paused: whether the cluster is paused.
        images: for each request looked at, its images that changed (all of them when
            ``reloaded`` names it).
        reloaded: requests whose images were read in full this time.
        deliveries: for each request looked at whose webhook deliveries changed, all of them
            (newest first, as :meth:`Outbox.list_deliveries`).
    """

    requests: list[RequestInfo]
    changed: list[str]
    cancelled: dict[str, int]
    finished: list[tuple[str, str]]
    paused: bool
    images: dict[str, list[ImageInfo]] = field(default_factory=dict)
    reloaded: list[str] = field(default_factory=list)
    deliveries: dict[str, list[DeliveryInfo]] = field(default_factory=dict)


@dataclass
class _Watched:
    """What was seen of one request's images."""

    images: dict[int, ImageInfo]
    newest_update: float


@translate_errors
class ClusterWatcher:
    """Polls the shared database; each :meth:`poll` returns what changed since the one before.

    Not thread-safe: one thread polls (the window's background thread).
    """

    def __init__(self) -> None:
        """Nothing seen yet: the first poll reports every request as changed."""
        self._repo = Repository()
        self._store = ClusterStore()
        self._requests: dict[str, RequestInfo] = {}
        self._watched: dict[str, _Watched] = {}
        self._deliveries: dict[str, list[DeliveryInfo]] = {}

    def poll(self, looked_at: set[str]) -> ClusterNews:
        """Read the requests, the pause flag and the images of ``looked_at``; return the news.

        Raises:
            DatabaseError: the database cannot be reached (nothing seen is forgotten).
        """
        requests = self._repo.list_requests()
        paused = self._store.is_paused()
        now = {request.id: request for request in requests}
        changed = [rid for rid, info in now.items() if self._requests.get(rid) != info]
        changed += [rid for rid in self._requests if rid not in now]
        finished = [
            (rid, now[rid].status)
            for rid in changed
            if rid in now and now[rid].finished and rid in self._requests
            if not self._requests[rid].finished
        ]
        present = [rid for rid in changed if rid in now]
        cancelled = self._repo.cancelled_counts(present) if present else {}
        images: dict[str, list[ImageInfo]] = {}
        reloaded: list[str] = []
        for request_id in set(self._watched) - looked_at:
            del self._watched[request_id]
        for request_id in set(self._deliveries) - looked_at:
            del self._deliveries[request_id]
        deliveries: dict[str, list[DeliveryInfo]] = {}
        for request_id in looked_at:
            request = now.get(request_id)
            if request is None:
                self._watched.pop(request_id, None)
                continue
            news, full = self._images_news(request)
            if news or full:
                images[request_id] = news
            if full:
                reloaded.append(request_id)
            sent = Outbox().list_deliveries(request_id)
            if self._deliveries.get(request_id) != sent:
                self._deliveries[request_id] = deliveries[request_id] = sent
        self._requests = now
        return ClusterNews(
            requests, changed, cancelled, finished, paused, images, reloaded, deliveries
        )

    def _images_news(self, request: RequestInfo) -> tuple[list[ImageInfo], bool]:
        """The request's changed images, and True when they were all read again."""
        watched = self._watched.get(request.id)
        if watched is None or not self._counts_agree(watched, request):
            images = self._repo.list_images(request.id)
            newest = self._newest_update(request.id)
            self._watched[request.id] = _Watched({image.id: image for image in images}, newest)
            return images, True
        since = watched.newest_update - CLOCK_SLACK_S
        rows = list(
            ImageRow.select(ImageRow.id, ImageRow.updated_at).where(
                (ImageRow.request == request.id) & (ImageRow.updated_at >= since)
            )
        )
        if not rows:
            return [], False
        updates = [float(row.updated_at or 0.0) for row in rows]
        watched.newest_update = max(watched.newest_update, *updates)
        fresh = self._repo.get_images(int(row.id) for row in rows)
        news = [image for image in fresh if watched.images.get(image.id) != image]
        watched.images.update((image.id, image) for image in news)
        return news, False

    @staticmethod
    def _counts_agree(watched: _Watched, request: RequestInfo) -> bool:
        """True when the images seen add up to the request's stored counts."""
        done = failed = 0
        for image in watched.images.values():
            if image.status == ImageStatus.DONE:
                done += 1
            elif image.status == ImageStatus.FAILED:
                failed += 1
        return (
            len(watched.images) == request.total
            and done == request.done
            and failed == request.failed
        )

    @staticmethod
    def _newest_update(request_id: str) -> float:
        """The latest ``updated_at`` of the request's images (0 when none was ever written)."""
        row = (
            ImageRow.select(ImageRow.updated_at)
            .where((ImageRow.request == request_id) & ImageRow.updated_at.is_null(False))
            .order_by(ImageRow.updated_at.desc())
            .first()
        )
        return 0.0 if row is None else float(row.updated_at)
