"""The window's front on a cluster: the engine's surface, the work done by workers elsewhere.

In cluster mode (Settings → Processing → Cluster, SPEC 11) the window has no engine of its
own: requests live in the shared database and their images are the workers' messages.
:class:`ClusterFront` offers what the window uses of :class:`~imgdesk.engine.engine.Engine`
(the same signals and methods), so the models and panes need no change:

- One background thread does every database and broker call, in order: it records a dropped
  CSV (chunk by chunk, as the local writer does), sends its images, cancels, retries,
  pauses, and between those polls the shared database once a second
  (:class:`~imgdesk.core.cluster_watch.ClusterWatcher`). A call that fails because
  PostgreSQL or Redis cannot be reached is tried again at the next poll: nothing is lost,
  and the status bar says what is wrong in one sentence until it works again.
- The GUI thread never waits on PostgreSQL or Redis: the window's reads go to
  :class:`ClusterRepository`, which answers from the last poll's snapshot. Images not read
  yet answer "busy", which the models already handle by asking again shortly.
- What cannot exist here (the download bytes of another machine's image, disk-full holds)
  is empty, not invented.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal

from imgdesk.core.cluster_store import ClusterStore
from imgdesk.core.cluster_watch import ClusterNews, ClusterWatcher
from imgdesk.core.csvio import Catalogue
from imgdesk.core.errors import DatabaseBusyError, ErrorCode, ImageError, ImdeskError
from imgdesk.core.outbox import DeliveryInfo, Outbox
from imgdesk.core.recording import PreparedRows, RequestImport
from imgdesk.core.records import ImageInfo, RequestInfo
from imgdesk.core.repository import Repository
from imgdesk.core.settings import Settings
from imgdesk.core.storage import Storage
from imgdesk.core.storage_choice import StorageShelf

if TYPE_CHECKING:
    from imgdesk.cluster.actors import ClusterActors

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 1.0
NOT_READ_YET = "not read from the cluster yet"
_Job = Callable[[], None]


def _no_job() -> None:
    """The background thread's "no job came": time to poll."""


_NO_JOB: _Job = _no_job


class ClusterFront(QObject):
    """The window's engine on a cluster (see the module's docstring).

    Args:
        broker_url: the Redis broker the images are sent to.
        settings: the cluster's settings, as stored in the shared database.
        storages: opens a request's storage (for thumbnails and previews).

    Signals:
        request_changed(str), images_changed(str, list), images_progressed(str, list),
        request_finished(str, str), request_held(str, str), paused_changed(bool): as the
            engine's.
        connection_changed(str): what is wrong with the database or broker, in one
            sentence ("" once both answer again).
        images_listed(str): the request looked at has new images (another machine is
            still recording it): the images model should load more.
        deliveries_changed(str): the webhook deliveries of the request looked at changed.
    """

    request_changed = Signal(str)
    images_changed = Signal(str, list)
    images_progressed = Signal(str, list)
    request_finished = Signal(str, str)
    request_held = Signal(str, str)
    paused_changed = Signal(bool)
    connection_changed = Signal(str)
    images_listed = Signal(str)
    deliveries_changed = Signal(str)
    # From the background thread to the GUI thread (queued).
    _polled = Signal(object)
    _problem = Signal(str)

    def __init__(
        self,
        broker_url: str,
        settings: Settings,
        storages: StorageShelf,
        parent: QObject | None = None,
        poll_interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        """Prepare the front; nothing is read until :meth:`start`."""
        super().__init__(parent)
        self._broker_url = broker_url
        self._settings = settings
        self._storages = storages
        self._poll_interval_s = poll_interval_s
        self.writer = ClusterWriter(self)
        self.repository = ClusterRepository(self)
        self.outbox = ClusterOutbox(self)
        self._deliveries: dict[str, list[DeliveryInfo]] = {}
        self._requests: dict[str, RequestInfo] = {}
        self._order: list[RequestInfo] = []
        self._cancelled: dict[str, int] = {}
        self._images: dict[str, dict[int, ImageInfo]] = {}
        self._paused = False
        self.problem = ""
        # Shared with the background thread.
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._pending_jobs = 0
        self._looked_at: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._actors: ClusterActors | None = None
        self._ping: Callable[[], object] = lambda: None
        self._thread_problem = ""  # the last problem the background thread told
        self._thread = threading.Thread(target=self._run, name="imgdesk-cluster", daemon=True)
        self._polled.connect(self._on_polled, Qt.ConnectionType.QueuedConnection)
        self._problem.connect(self._on_problem, Qt.ConnectionType.QueuedConnection)

    # -- life -------------------------------------------------------------------------------

    def start(self, first: ClusterNews | None = None) -> None:
        """Show ``first`` (a poll made before the window was built), then poll in the background."""
        if first is not None:
            self._on_polled(first)
        self._thread.start()

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        """Send what is still queued (up to ``timeout_ms``), then stop the background thread.

        The work itself goes on in the cluster: closing the window stops nothing there.
        """
        self._jobs.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout_ms / 1000)
        self._stop.set()
        if self._thread.is_alive():
            logger.warning("the cluster did not answer at exit; %s jobs unsent", self._pending_jobs)

    def resume_interrupted(self) -> list[str]:
        """Nothing to resume here: the workers go on with whatever was interrupted."""
        return []

    # -- what the window reads --------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The cluster's settings (new requests' output settings, webhook URL...)."""
        return self._settings

    @property
    def storages(self) -> StorageShelf:
        """The storages the requests' outputs are read from."""
        return self._storages

    @property
    def paused(self) -> bool:
        """True while the cluster is paused."""
        return self._paused

    @property
    def active_count(self) -> int:
        """Images in flight on the cluster's workers, as last seen."""
        return sum(request.in_flight for request in self._order)

    def held_requests(self) -> Mapping[str, str]:
        """No request waits for this computer's disk on a cluster."""
        return {}

    def is_busy(self, request_id: str | None = None) -> bool:
        """True while something the user did is not sent to the cluster yet."""
        return self._pending_jobs > 0

    def download_progress(self, image_id: int) -> tuple[int, int | None] | None:
        """Another machine's download bytes are not known here."""
        return None

    def storage_of(self, request_id: str) -> Storage:
        """Where a request's outputs are (ImageError: the workers' own default storage)."""
        request = self._requests.get(request_id)
        if request is None or request.storage.is_default:
            raise ImageError(
                ErrorCode.STORAGE,
                "This picture is in the storage of the cluster's workers (their --storage).",
            )
        return self._storages.open(request.storage)

    # -- what the window does ---------------------------------------------------------------

    def save_settings(self, settings: Settings) -> None:
        """Store the cluster's settings in the shared database (every worker uses them)."""
        self._settings = settings
        self._queue(lambda: Repository().save_settings(settings))

    def set_settings(self, settings: Settings) -> None:
        """Use these settings for what the window shows."""
        self._settings = settings

    def start_request(self, request_id: str) -> int:
        """Send the images of a request just recorded (or any unfinished one) to the broker."""
        resolve = self.writer.real_id_of(request_id)

        def send() -> None:
            from imgdesk.cluster.actors import send_images

            store = ClusterStore()
            real_id = resolve()
            send_images(
                self._broker(), store.images_to_send(real_id), store.request_priority(real_id)
            )

        self._queue(send)
        return 0

    def retry(self, request_id: str, image_ids: list[int] | None = None, **_: Any) -> int:
        """Put failed images (all, or some) back to pending and send them; how many (as seen)."""
        from imgdesk.cluster import control

        def retry() -> None:
            control.retry_request(ClusterStore(), self._broker(), request_id, image_ids)

        self._queue(retry)
        request = self._requests.get(request_id)
        if image_ids is not None:
            return len(image_ids)
        return 0 if request is None else request.failed

    def cancel(self, request_id: str) -> None:
        """Fail the request's unfinished images with ``cancelled``; the workers skip them."""
        from imgdesk.cluster import control

        def cancel() -> None:
            try:
                actors = self._broker()
            except ImdeskError as error:  # cancelled all the same; a worker finishes it later
                logger.warning("cancel without the broker's nudge: %s", error)
                actors = None
            control.cancel_request(ClusterStore(), actors, request_id)

        self._queue(cancel)

    def set_priority(self, request_id: str, priority: str) -> None:
        """Keep the request's new priority; the cluster sends its images from then on by it.

        Messages already on the broker stay in the queue they were sent to (SPEC 11's
        priorities are per queue), so the change reaches what is sent later: retries.
        """

        def store() -> None:
            Repository().set_priority(request_id, priority)

        self._queue(store)

    def delete(self, request_id: str, remove_files: bool = False) -> None:
        """Forget a request in the shared database; ``remove_files`` deletes its outputs too."""
        storage = None
        if remove_files:
            try:
                storage = self.storage_of(request_id)
            except ImageError as error:
                logger.warning("the files of %s stay: %s", request_id, error)

        def delete() -> None:
            Repository().delete_request(request_id)
            if storage is not None:
                storage.delete_request(request_id)

        self._queue(delete)

    def record_output_csv(self, request_id: str, location: str) -> None:
        """Remember where the user exported a request's output CSV."""
        self._queue(lambda: Repository().set_output_csv(request_id, location))

    def pause(self) -> None:
        """Pause the whole cluster: no worker starts a new image."""
        self._set_paused(True)

    def resume(self) -> None:
        """Resume the cluster."""
        self._set_paused(False)

    def _set_paused(self, paused: bool) -> None:
        from imgdesk.cluster import control

        if paused == self._paused:
            return
        self._paused = paused
        self._queue(lambda: control.set_paused(ClusterStore(), paused))
        self.paused_changed.emit(paused)

    # -- the snapshot, read on the GUI thread ------------------------------------------------

    def cached_requests(self) -> list[RequestInfo]:
        """Every request as last seen, newest first."""
        return list(self._order)

    def cached_request(self, request_id: str) -> RequestInfo | None:
        """A request as last seen (None: unknown)."""
        return self._requests.get(request_id)

    def cached_cancelled(self, request_ids: Iterable[str] | None) -> dict[str, int]:
        """Cancelled images per request, as last seen."""
        if request_ids is None:
            return dict(self._cancelled)
        return {rid: self._cancelled[rid] for rid in request_ids if rid in self._cancelled}

    def cached_deliveries(self, request_id: str) -> list[DeliveryInfo]:
        """The request's webhook deliveries as last seen (DatabaseBusyError: not read yet)."""
        with self._lock:
            self._looked_at = {request_id}
        deliveries = self._deliveries.get(request_id)
        if deliveries is None:
            raise DatabaseBusyError(NOT_READ_YET)
        return deliveries

    def cached_images_by_id(self, image_ids: Iterable[int]) -> list[ImageInfo]:
        """These images as last seen (of the request looked at; others are left out)."""
        found: list[ImageInfo] = []
        for images in self._images.values():
            found.extend(images[image_id] for image_id in image_ids if image_id in images)
        return found

    def cached_images(self, request_id: str) -> dict[int, ImageInfo]:
        """The request's images as last seen; DatabaseBusyError until they were read once."""
        with self._lock:
            self._looked_at = {request_id}
        images = self._images.get(request_id)
        if images is None:
            raise DatabaseBusyError(NOT_READ_YET)
        return images

    def _on_polled(self, news: ClusterNews) -> None:
        self._order = news.requests
        self._requests = {request.id: request for request in news.requests}
        for request_id in news.changed:
            self._cancelled.pop(request_id, None)
        self._cancelled.update(news.cancelled)
        for request_id in list(self._images):
            if request_id not in self._looked_at:
                del self._images[request_id]
        grown = ""  # the request looked at, when it has images the window has not listed
        for request_id, images in news.images.items():
            known = self._images.get(request_id)
            if known is not None and any(image.id not in known for image in images):
                grown = request_id
            if request_id in news.reloaded:
                self._images[request_id] = {image.id: image for image in images}
            else:
                self._images.setdefault(request_id, {}).update((i.id, i) for i in images)
        if news.paused != self._paused and not self._pending_jobs:
            self._paused = news.paused
            self.paused_changed.emit(news.paused)
        for request_id in news.changed:
            self.request_changed.emit(request_id)
        for request_id, images in news.images.items():
            self.images_changed.emit(request_id, [image.id for image in images])
        for request_id, status in news.finished:
            self.request_finished.emit(request_id, status)
        if grown:
            self.images_listed.emit(grown)
        for request_id in list(self._deliveries):
            if request_id not in self._looked_at:
                del self._deliveries[request_id]
        self._deliveries.update(news.deliveries)
        for request_id in news.deliveries:
            self.deliveries_changed.emit(request_id)

    def _on_problem(self, message: str) -> None:
        if message != self.problem:
            self.problem = message
            self.connection_changed.emit(message)

    # -- the background thread ----------------------------------------------------------------

    def _queue(self, job: _Job) -> None:
        with self._lock:
            self._pending_jobs += 1
        self._jobs.put(job)

    def _broker(self) -> ClusterActors:
        """The actors on the broker, connected (again) when needed (BrokerError: cannot)."""
        if self._actors is None:
            from imgdesk.cluster.actors import ClusterActors
            from imgdesk.cluster.broker import make_broker

            broker = make_broker(self._broker_url)
            self._actors, self._ping = ClusterActors(broker), broker.client.ping
        return self._actors

    def _broker_problem(self) -> str:
        """What is wrong with the broker, in one sentence; "" when Redis answers."""
        import redis

        from imgdesk.cluster.broker import BrokerError

        try:
            if self._actors is None:
                self._broker()  # it pings
            else:
                self._ping()
        except redis.RedisError as error:
            self._actors = None
            return _problem_sentence(BrokerError(f"the broker does not answer ({error})"))
        except ImdeskError as error:
            return _problem_sentence(error)
        return ""

    def _run(self) -> None:
        """The background thread: the queued jobs in order, a poll whenever one is due."""
        watcher = ClusterWatcher()
        next_poll = time.monotonic()
        failed: _Job | None = None  # a job the cluster did not take: tried after each poll
        while not self._stop.is_set():
            if failed is not None:
                self._poll(watcher, failed)
                if self._stop.wait(self._poll_interval_s):
                    return
                failed = None if self._do(failed) else failed
                continue
            try:
                job = self._jobs.get(timeout=max(0.0, next_poll - time.monotonic()))
            except queue.Empty:
                job = _NO_JOB
            if job is None:  # shutdown: every job before it is done
                return
            if job is not _NO_JOB and not self._do(job):
                failed = job
            if time.monotonic() >= next_poll:
                self._poll(watcher, failed)
                next_poll = time.monotonic() + self._poll_interval_s

    def _do(self, job: _Job) -> bool:
        """Run one job; False when the cluster could not be reached (try it again later)."""
        try:
            job()
        except ImdeskError as error:
            logger.warning("the cluster did not take it (tried again shortly): %s", error)
            self._actors = None  # a broker that failed is connected again
            self._say_problem(_problem_sentence(error))
            return False
        except Exception:  # noqa: BLE001 - one failed job must not stop the window's cluster
            logger.exception("a cluster job failed")
        with self._lock:
            self._pending_jobs -= 1
        return True

    def _poll(self, watcher: ClusterWatcher, failed: _Job | None) -> None:
        with self._lock:
            looked_at = set(self._looked_at)
        try:
            news = watcher.poll(looked_at)
        except ImdeskError as error:
            logger.warning("polling the cluster failed: %s", error)
            self._say_problem(_problem_sentence(error))
            return
        except Exception:  # noqa: BLE001 - a bug in one poll: the next one may do
            logger.exception("polling the cluster failed")
            return
        self._polled.emit(news)
        problem = self._broker_problem()
        if problem or failed is None:
            self._say_problem(problem)

    def _say_problem(self, message: str) -> None:
        """Tell the GUI thread what is wrong now ("" for nothing), once per change."""
        if message != self._thread_problem:
            self._thread_problem = message
            self._problem.emit(message)


def _problem_sentence(error: ImdeskError) -> str:
    """One sentence for the status bar: what cannot be reached, and that imgdesk goes on."""
    text = str(error).rstrip(".")
    return f"The cluster cannot be reached ({text}); showing what was last seen, trying again."


class ClusterWriter:
    """The engine writer's import calls, recorded by the front's background thread.

    The window's importer records a dropped file chunk by chunk through ``writer``; here each
    call only queues the work and returns at once.
    """

    def __init__(self, front: ClusterFront) -> None:
        """Queue on ``front``'s background thread."""
        self._front = front
        self._imports: dict[str, QueuedImport] = {}

    def start_import(self, head: Catalogue, csv_path: Path) -> QueuedImport:
        """Begin recording a file's request in the shared database (queued)."""
        recording = QueuedImport(self._front, head, csv_path)
        self._imports[recording.request_id] = recording
        return recording

    def record_rows(self, recording: QueuedImport, rows: PreparedRows) -> None:
        """Record one chunk of rows (queued)."""
        recording.add(rows)

    def finish_import(self, recording: QueuedImport) -> str:
        """Mark the import recorded in full (queued); returns its id (see QueuedImport)."""
        return recording.finish()

    def real_id_of(self, request_id: str) -> Callable[[], str]:
        """A call, for the background thread, that gives the recorded id of ``request_id``."""
        recording = self._imports.pop(request_id, None)
        if recording is None:
            return lambda: request_id
        return recording.recorded_id


class QueuedImport:
    """A :class:`RequestImport` made on the background thread, fed in the order of the calls.

    ``request_id`` is this window's name for the import until the database recorded it under
    its own id; the request appears in the list with the next poll after that.
    """

    def __init__(self, front: ClusterFront, head: Catalogue, csv_path: Path) -> None:
        """Queue the request's creation."""
        self._front = front
        self.request_id = f"importing-{uuid.uuid4()}"
        self.name = head.name
        self.rows_recorded = 0
        self._recording: RequestImport | None = None

        def create() -> None:
            self._recording = Repository().start_import(head, csv_path)

        front._queue(create)

    def recorded_id(self) -> str:
        """The id in the database (on the background thread, once created)."""
        assert self._recording is not None
        return self._recording.request_id

    def add(self, rows: PreparedRows) -> None:
        """Queue one chunk of rows."""
        self.rows_recorded += rows.row_count

        def add() -> None:
            assert self._recording is not None
            self._recording.add(rows)

        self._front._queue(add)

    def finish(self) -> str:
        """Queue the end of the import; returns :attr:`request_id`."""

        def finish() -> None:
            assert self._recording is not None
            self._recording.finish()

        self._front._queue(finish)
        return self.request_id

    def abandon(self) -> None:
        """Queue the removal of what was recorded (the file was refused)."""

        def abandon() -> None:
            if self._recording is not None:
                self._recording.abandon()

        self._front._queue(abandon)


class ClusterRepository(Repository):
    """The repository the window reads in cluster mode: the front's snapshot, never a wait.

    The reads the window makes as the engine's news comes in (requests, their images,
    cancelled counts) answer from the last poll; the rest (the dashboard's error counts, an
    export) read the shared database.
    """

    def __init__(self, front: ClusterFront) -> None:
        """Answer from ``front``'s snapshot."""
        super().__init__()
        self._front = front

    def list_requests(self) -> list[RequestInfo]:
        """Every request as last seen, newest first."""
        return self._front.cached_requests()

    def get_request(self, request_id: str) -> RequestInfo | None:
        """A request as last seen."""
        return self._front.cached_request(request_id)

    def find_request_id(self, prefix: str) -> str | None:
        """The only request whose id starts with ``prefix``, as last seen."""
        ids = [r.id for r in self._front.cached_requests() if r.id.startswith(prefix)]
        return ids[0] if len(ids) == 1 else None

    def cancelled_counts(self, request_ids: Iterable[str] | None = None) -> dict[str, int]:
        """Cancelled images per request, as last seen."""
        return self._front.cached_cancelled(None if request_ids is None else list(request_ids))

    def list_images_page(
        self,
        request_id: str,
        after_id: int,
        limit: int,
        statuses: Iterable[str] | None = None,
    ) -> list[ImageInfo]:
        """A page of the request's images as last seen (DatabaseBusyError: not read yet)."""
        wanted = None if statuses is None else set(statuses)
        images = sorted(
            (
                image
                for image in self._front.cached_images(request_id).values()
                if image.id > after_id and (wanted is None or image.status in wanted)
            ),
            key=lambda image: image.id,
        )
        return images[:limit]

    def get_images(self, image_ids: Iterable[int]) -> list[ImageInfo]:
        """Some images as last seen, in input order."""
        found = self._front.cached_images_by_id(set(image_ids))
        found.sort(key=lambda image: (image.row_index, image.position))
        return found


class ClusterOutbox(Outbox):
    """The outbox the webhook dock reads in cluster mode: the front's snapshot, never a wait."""

    def __init__(self, front: ClusterFront) -> None:
        """Answer from ``front``'s snapshot."""
        super().__init__()
        self._front = front

    def list_deliveries(self, request_id: str) -> list[DeliveryInfo]:
        """The request's deliveries as last seen (DatabaseBusyError until read once)."""
        return self._front.cached_deliveries(request_id)
