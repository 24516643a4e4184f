"""The cluster's actors: one message per image id, one per webhook delivery.

A message is acknowledged only after its actor returns, so a worker killed at any moment
loses nothing: the broker redelivers it (to a live worker, once the dead one's heartbeat
has stopped). Everything an actor does is therefore safe to do twice: it re-reads the image,
skips one already finished, writes the output under its deterministic key and stores the
result with a conditional update (see :mod:`imgdesk.core.cluster_store`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from imgdesk.cluster.broker import BrokerError
from imgdesk.cluster.host_slots import HostSlots
from imgdesk.core.backoff import retry_delay
from imgdesk.core.cluster_store import NORMAL, PRIORITIES, ClusterStore, ImageWork
from imgdesk.core.csvio import output_csv_name, write_output_rows
from imgdesk.core.errors import DatabaseBusyError, ImageError, RequestGoneError
from imgdesk.core.fetch import new_session
from imgdesk.core.http_session import ImageSession
from imgdesk.core.outbox import PENDING, Outbox
from imgdesk.core.process import process_image
from imgdesk.core.repository import Repository, cache_columns, result_columns
from imgdesk.core.settings import Settings
from imgdesk.core.storage import Storage, output_file_name, storage_key
from imgdesk.core.storage_choice import StorageChoice, StorageShelf
from imgdesk.core.types import ImageResult, ImageTask
from imgdesk.core.webhook import ATTEMPT_TIMEOUT_S, DELIVERED, RETRY, post_once, url_origin

logger = logging.getLogger(__name__)

IMAGES_QUEUE = "imgdesk-images"
WEBHOOKS_QUEUE = "imgdesk-webhooks"
PROCESS_IMAGE_ACTOR = "imgdesk_process_image"
# One queue per request priority: Redis has no message priority, so a worker consumes all
# three, and Dramatiq's actor priority (lower first) orders the messages it has fetched:
# its threads take a high request's images before the others'.
IMAGES_QUEUES = {
    "high": f"{IMAGES_QUEUE}-high",
    NORMAL: IMAGES_QUEUE,
    "low": f"{IMAGES_QUEUE}-low",
}
_ACTOR_PRIORITY = {"high": 0, NORMAL: 50, "low": 100}
DELIVER_WEBHOOK_ACTOR = "imgdesk_deliver_webhook"
# A host at its limit: the message comes back after this long (plus jitter), unclaimed.
HOST_BUSY_DELAY_MS = 300
# The cluster paused: the message comes back after this long (plus jitter), unclaimed.
PAUSED_DELAY_MS = 3000
# A worker reads the cluster's settings from the database at most this often: a change
# reaches every worker within this time.
SETTINGS_TTL_S = 5.0
# A webhook claim outlives the attempt's deadline by this much (as the window's sender).
WEBHOOK_CLAIM_GRACE_S = 30.0
# A busy database (SQLite's lock): try again this many times, this long apart.
BUSY_TRIES = 40
BUSY_WAIT_S = 0.25
# Anything unexpected (the database unreachable): Dramatiq retries the message with backoff.
UNEXPECTED_RETRIES = 20

_T = TypeVar("_T")


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker process needs, plain data so it can be handed to a child process.

    Attributes:
        database_url: the shared database (``--database``).
        broker_url: the Redis broker (``--broker``).
        data_dir: this machine's data folder (logs; outputs when nothing else is said).
        storage: where requests that name no storage of their own store their outputs.
        threads: images one worker process works on at once.
        heartbeat_timeout_s: a worker silent this long is taken for dead.
        verbose: log to stderr at debug level too.
    """

    database_url: str
    broker_url: str
    data_dir: Path
    storage: StorageChoice
    threads: int
    heartbeat_timeout_s: float
    verbose: bool = False


class WorkerContext:
    """What the actors of one worker process share: the database, storages, HTTP sessions."""

    def __init__(self, broker: RedisBroker, data_dir: Path, storage: StorageChoice) -> None:
        self.store = ClusterStore()
        self.repo = Repository()
        self.outbox = Outbox()
        self.host_slots = HostSlots(broker.client)
        self._shelf = StorageShelf(data_dir)
        self._default_storage = storage
        self._sessions = threading.local()
        self._settings: Settings | None = None
        self._settings_read_at = 0.0
        self._settings_lock = threading.Lock()

    def session(self, settings: Settings) -> ImageSession:
        """This thread's HTTP session, reused for every image it fetches (made as the engine's)."""
        session: ImageSession | None = getattr(self._sessions, "session", None)
        if session is None:
            session = new_session(settings)
            self._sessions.session = session
        return session

    def storage(self, choice: StorageChoice) -> Storage:
        """The request's storage; a request that names none uses this worker's ``--storage``."""
        return self._shelf.open(self._default_storage if choice.is_default else choice)

    def settings(self) -> Settings:
        """The cluster's settings, as stored in the shared database at most a few s ago.

        Read again once :data:`SETTINGS_TTL_S` old, not per message: with the pause flag,
        that read was two of a worker's ten statements per image.
        """
        with self._settings_lock:
            now = time.monotonic()
            if self._settings is None or now - self._settings_read_at >= SETTINGS_TTL_S:
                self._settings = patiently(self.repo.load_settings)
                self._settings_read_at = now
            return self._settings


def patiently(call: Callable[[], _T]) -> _T:
    """``call()``, tried again while the database is busy (another worker's write lock)."""
    for _ in range(BUSY_TRIES - 1):
        try:
            return call()
        except DatabaseBusyError:
            time.sleep(BUSY_WAIT_S * (1 + random.random()))
    return call()


class ClusterActors:
    """The actors, declared on one broker; ``context`` is None where messages are only sent.

    Attributes:
        images: the per-image actor of each request priority, its one argument an image id.
        process: the per-image actor of normal requests.
        deliver: the webhook actor, its one argument an outbox delivery id.
    """

    def __init__(self, broker: RedisBroker, context: WorkerContext | None = None) -> None:
        self._context = context
        # Said once per change in this process, not once per message held back.
        self._seen_paused = False
        self.images: dict[str, dramatiq.Actor[[int], None]] = {
            priority: dramatiq.actor(
                actor_name=_image_actor_name(priority),
                queue_name=IMAGES_QUEUES[priority],
                priority=_ACTOR_PRIORITY[priority],
                broker=broker,
                max_retries=UNEXPECTED_RETRIES,
                min_backoff=1000,
                max_backoff=60_000,
            )(self._process_image)
            for priority in PRIORITIES
        }
        self.process = self.images[NORMAL]
        self.deliver: dramatiq.Actor[[str], None] = dramatiq.actor(
            actor_name=DELIVER_WEBHOOK_ACTOR,
            queue_name=WEBHOOKS_QUEUE,
            broker=broker,
            max_retries=UNEXPECTED_RETRIES,
            min_backoff=1000,
            max_backoff=60_000,
        )(self._deliver_webhook)

    def _work(self) -> WorkerContext:
        if self._context is None:
            raise RuntimeError("these actors only send messages in this process")
        return self._context

    # -- one image ----------------------------------------------------------------------------

    def _process_image(self, image_id: int) -> None:
        """Process one image (and its twins) unless it is finished; finish its request."""
        context = self._work()
        work = patiently(lambda: context.store.load_image_work(image_id))
        if work is None:
            logger.info("image %s is gone (its request was deleted); skipped", image_id)
            return
        remaining: int | None = work.remaining
        if not work.finished:
            if self._held_by_pause(work.paused):
                # Sent back unclaimed: no attempt counted, and no retry of Dramatiq's used.
                delay = round(PAUSED_DELAY_MS * (1 + random.random()))
                self.images[work.priority].send_with_options(args=(work.image_id,), delay=delay)
                return
            remaining = self._process(context, work)
        # Also after a skip: the worker that stored the last image may have died before
        # finishing the request, and this redelivered message is what is left of it.
        if remaining == 0:
            self._finish(context, work.request_id)

    def _held_by_pause(self, paused: bool) -> bool:
        """True while the cluster is paused (``imgdesk pause``), read with each message."""
        if paused != self._seen_paused:
            self._seen_paused = paused
            logger.info("the cluster is %s", "paused: no new image starts" if paused else "resumed")
        return paused

    def _process(self, context: WorkerContext, work: ImageWork) -> int | None:
        """Download, compress and store one image; then the request's images left.

        None when no final result was written: the image went back to the queue (a busy
        host, a retry later) or another worker had stored it before the claim.
        """
        settings = context.settings()
        host = (urlsplit(work.url).hostname or "").lower()
        slot = context.host_slots.take(host, settings.per_host_concurrency)
        if slot is None:
            # The host serves its limit already, across all workers: come back shortly.
            delay = round(HOST_BUSY_DELAY_MS * (1 + random.random()))
            logger.debug("%s is at its limit; image %s again in %s ms", host, work.image_id, delay)
            self.images[work.priority].send_with_options(args=(work.image_id,), delay=delay)
            return None
        try:
            attempt = patiently(lambda: context.store.claim_image(work))
            if attempt is None:
                return None  # stored by another worker meanwhile
            storage = context.storage(work.storage)
            name = output_file_name(
                work.row_index + 1, work.product_name, work.position, work.output.extension
            )
            # An earlier output of the URL under the same settings: asked "changed since?".
            cache_key = settings.output_key(work.output)
            task = ImageTask(
                image_id=work.image_id,
                request_id=work.request_id,
                url=work.url,
                output_key=storage_key(work.request_id, name),
                output=work.output,
                attempt=attempt,
                cached=work.cached.get(cache_key),
                storage=work.storage,
            )
            result = process_image(task, settings, context.session(settings), storage)
        finally:
            context.host_slots.give_back(slot)
        if not result.ok and result.transient and attempt <= settings.max_retries:
            self._retry_later(context, work, result, attempt, settings)
            return None
        key = result.output_key
        path = storage.local_path(key) if key else None
        final = result_columns(
            result,
            attempts=attempt,
            output_path=str(path) if path is not None else key,
            output_url=storage.url(key, settings.public_base_url) if key else None,
        )
        reusable = result.ok and result.content_sha256 and key and result.input_type
        cache_row = cache_columns(result, cache_key) if reusable else None
        stored = patiently(lambda: context.store.store_final(work, final, cache_row))
        if result.ok:
            logger.info(
                "%s %s %s (%s -> %s bytes, %s+%s ms)",
                "reused" if result.reused else "done",
                work.request_id,
                work.url,
                result.input_bytes,
                result.output_bytes,
                result.download_ms,
                result.compress_ms,
            )
        else:
            logger.warning(
                "failed %s %s: %s %s", work.request_id, work.url, result.error_code, result.error
            )
        if not stored.stored:
            logger.info("%s was stored by another worker already", work.url)
        # Also after a store that changed nothing: a cancel may have finished every image.
        return stored.remaining

    def _retry_later(
        self,
        context: WorkerContext,
        work: ImageWork,
        result: ImageResult,
        attempt: int,
        settings: Settings,
    ) -> None:
        """A transient failure: the image waits for its next attempt, its message delayed."""
        # The server's Retry-After was capped by the download already (a longer one fails).
        wait = retry_delay(
            attempt, settings.retry_base_delay_s, result.retry_after, settings.retry_after_cap_s
        ).seconds
        logger.info("retrying %s in %.1f s (attempt %s failed)", work.url, wait, attempt)
        columns = {
            "error_code": result.error_code,
            "error": f"{result.error} Trying again in {wait:.0f} s.",
            "http_status": result.http_status,
        }
        patiently(lambda: context.store.back_to_pending(work, columns))
        self.images[work.priority].send_with_options(
            args=(work.image_id,), delay=round(wait * 1000)
        )

    def _finish(self, context: WorkerContext, request_id: str) -> None:
        """The request's last image is stored: write its CSV, finish it, send its webhook."""
        request = patiently(lambda: context.repo.get_request(request_id))
        if request is None or request.finished:
            return
        settings = context.settings()
        # Written before the finish is claimed, so the webhook names a file that exists; two
        # workers racing here write the same bytes under the same key.
        storage = context.storage(request.storage)
        key = storage_key(request_id, output_csv_name(request.csv_name))
        try:
            catalogue, outputs = patiently(lambda: context.repo.export_data(request_id))
        except RequestGoneError:
            return  # deleted meanwhile: nothing to write, nobody to tell
        location = ""
        try:
            with storage.open_output(key) as handle:
                write_output_rows(
                    handle, catalogue, outputs, neutralise=settings.neutralise_formulas
                )
            location = storage.url(key)
        except ImageError as error:
            logger.warning("the output CSV of %s could not be stored: %s", request_id, error)
        finished = patiently(
            lambda: context.store.finish_request(
                request_id, location, settings.webhook_url, settings.webhook_secret
            )
        )
        if finished is None:
            return  # another worker finished it
        logger.info(
            "request %s %s: %s done, %s failed of %s",
            request_id,
            finished.request.status,
            finished.request.done,
            finished.request.failed,
            finished.request.total,
        )
        if finished.delivery_id is not None:
            self.deliver.send(finished.delivery_id)

    # -- one webhook delivery -----------------------------------------------------------------

    def _deliver_webhook(self, delivery_id: str) -> None:
        """Make the delivery's next attempt when it is due; schedule the one after."""
        context = self._work()
        delivery = patiently(lambda: context.outbox.get(delivery_id))
        if delivery is None or delivery.status != PENDING:
            return
        now = time.time()
        if delivery.next_attempt_at > now:
            self._deliver_later(delivery_id, delivery.next_attempt_at - now)
            return
        until = now + ATTEMPT_TIMEOUT_S + WEBHOOK_CLAIM_GRACE_S
        if not patiently(lambda: context.outbox.claim(delivery_id, now, until)):
            # Another worker posts it now; look again once its claim would have expired.
            self._deliver_later(delivery_id, until - now)
            return
        settings = context.settings()
        number = delivery.attempts + 1
        outcome = post_once(
            delivery.url, delivery.id, delivery.payload, delivery.secret, timestamp=int(now)
        )
        next_attempt_at = None
        if outcome.outcome == RETRY and number <= settings.webhook_retries:
            wait = retry_delay(
                number,
                settings.webhook_first_delay_ms / 1000,
                outcome.retry_after,
                settings.retry_after_cap_s,
            ).seconds
            next_attempt_at = time.time() + wait
        _, updated = patiently(
            lambda: context.outbox.record_attempt(delivery.id, outcome, now, next_attempt_at)
        )
        logger.log(
            logging.INFO if outcome.outcome == DELIVERED else logging.WARNING,
            "webhook %s attempt %s to %s: %s (%s)",
            delivery.id,
            number,
            url_origin(delivery.url),
            outcome.status_code,
            outcome.error or outcome.outcome,
        )
        if updated.status == PENDING and next_attempt_at is not None:
            self._deliver_later(delivery_id, next_attempt_at - time.time())

    def _deliver_later(self, delivery_id: str, seconds: float) -> None:
        self.deliver.send_with_options(args=(delivery_id,), delay=max(0, round(seconds * 1000)))

    def resend_owed_webhooks(self) -> int:
        """A message for every delivery still owed (a worker died between outbox and send)."""
        owed = patiently(self._work().outbox.pending)
        for delivery in owed:
            self.deliver.send(delivery.id)
        return len(owed)


def _image_actor_name(priority: str) -> str:
    """The normal actor keeps the first version's name, so its queued messages still run."""
    return PROCESS_IMAGE_ACTOR if priority == NORMAL else f"{PROCESS_IMAGE_ACTOR}_{priority}"


def send_images(
    actors: ClusterActors, image_ids: list[int], priority: str = NORMAL, batch: int = 1000
) -> None:
    """One message per image id on the queue of ``priority``, a batch at a time.

    Raises:
        BrokerError: Redis stopped answering (the messages sent so far stay queued).
    """
    actor = actors.images[priority]
    for first in range(0, len(image_ids), batch):
        try:
            for image_id in image_ids[first : first + batch]:
                actor.send(image_id)
        except redis.RedisError as error:
            raise BrokerError(f"the broker stopped answering ({error})") from None
        logger.info("sent %s of %s images", min(first + batch, len(image_ids)), len(image_ids))
