"""The one scheduler: queues images, hands them to an executor, retries, and writes results.

The engine lives on the thread that owns the database (the GUI thread, or the CLI's main
thread). The per-image work runs elsewhere, through an :class:`ImageExecutor` (this
computer's thread pool by default); results come back to this thread and the engine applies
them in batched transactions every ``FLUSH_INTERVAL_MS``.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import sys
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QTimer, Signal, Slot

from imgdesk.core.errors import (
    BUSY_RETRY_MS,
    CANCELLED_MESSAGE,
    DatabaseBusyError,
    ErrorCode,
    ImageError,
)
from imgdesk.core.output import OutputSettings
from imgdesk.core.records import priority_rank
from imgdesk.core.repository import UNFINISHED, ImageInfo, Repository
from imgdesk.core.settings import Settings
from imgdesk.core.states import ImageStatus, RequestStatus
from imgdesk.core.storage import Storage, output_file_name, storage_key
from imgdesk.core.storage_choice import StorageChoice, StorageShelf
from imgdesk.core.types import CachedOutput, ImageResult, ImageTask
from imgdesk.engine.activity import DownloadProgress
from imgdesk.engine.executor import CancelToken, ImageExecutor, QtPoolExecutor
from imgdesk.engine.holds import HeldRequests
from imgdesk.engine.host_queues import HostQueues
from imgdesk.engine.main_thread_gc import collect_garbage_on_this_thread
from imgdesk.engine.outputs import reconcile_outputs
from imgdesk.engine.priorities import RequestPriorities
from imgdesk.engine.retries import retry_plan
from imgdesk.engine.write_buffer import ImageEvent as ImageEvent  # re-exported: the signal's type
from imgdesk.engine.writer import DatabaseWriter

logger = logging.getLogger(__name__)

# A started request's pending images are read a page at a time, in input order, so a
# 300,000-image request costs neither seconds on the GUI thread nor 300,000 jobs in memory.
# A page of 1,000 kept the window's thread 40-60 ms (its jobs are made there); 250 take a
# quarter of that, every 6 s at 40 images/s.
FEED_PAGE_IMAGES = 250
FEED_LOW_WATER = 100  # read the next page once fewer jobs than this wait in the queues
# While slots are free but every queued job waits for its busy host, read further ahead
# (up to this many queued jobs) to find images of other hosts.
FEED_MAX_QUEUED = 20_000
FEED_PAGES_PER_PUMP = 3


@dataclass
class _Job:
    """One download of one URL, standing for every image of the request with that URL."""

    request_id: str
    url: str
    images: list[ImageInfo]
    output_key: str
    output: OutputSettings  # the request's
    storage: StorageChoice  # the request's
    host: str
    token: CancelToken  # cancelled once the request is cancelled or deleted
    cached: CachedOutput | None = None
    attempt: int = 1
    image_ids: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.image_ids = [image.id for image in self.images]

    def task(self) -> ImageTask:
        """What an executor runs for this job's next attempt."""
        return ImageTask(
            image_id=self.image_ids[0],
            request_id=self.request_id,
            url=self.url,
            output_key=self.output_key,
            output=self.output,
            attempt=self.attempt,
            cached=self.cached,
            storage=self.storage,
        )


def _new_job(
    request_id: str,
    image: ImageInfo,
    output: OutputSettings,
    storage: StorageChoice,
    token: CancelToken,
    cached: CachedOutput | None,
) -> _Job:
    """The job of an image whose URL is not being fetched yet."""
    name = output_file_name(
        image.row_index + 1, image.product_name, image.position, output.extension
    )
    return _Job(
        request_id=request_id,
        url=image.url,
        images=[image],
        output_key=storage_key(request_id, name),
        output=output,
        storage=storage,
        host=(urlsplit(image.url).hostname or "").lower(),
        token=token,
        cached=cached,
    )


class Engine(QObject):
    """Schedules every image of every started request, within the configured limits.

    A higher request's images start first (``set_priority``); equals are served in turn.

    Signals:
        images_changed(str, list): a request's images whose stored state changed (coalesced).
        request_changed(str): a request's state or counts changed (coalesced).
        image_finished(ImageEvent): an image is done or failed for good (after it is stored).
        request_finished(str, str): a request reached ``completed`` or ``failed``.
        request_held(str, str): a request waits for disk space (message), or carries on ("").
        paused_changed(bool): processing was paused or resumed.
        database_lost(str): the database file was deleted or replaced (message); sent once,
            after which the engine starts nothing and stores nothing.
        images_progressed(str, list): a request's images received more bytes (at most every
            ``PROGRESS_INTERVAL_S`` per download; see :meth:`download_progress`).
    """

    images_changed = Signal(str, list)
    request_changed = Signal(str)
    image_finished = Signal(object)
    request_finished = Signal(str, str)
    request_held = Signal(str, str)
    paused_changed = Signal(bool)
    database_lost = Signal(str)
    images_progressed = Signal(str, list)

    def __init__(
        self,
        repository: Repository,
        settings: Settings,
        data_dir: Path,
        parent: QObject | None = None,
        *,
        storages: StorageShelf | None = None,
        executor: ImageExecutor | None = None,
    ) -> None:
        super().__init__(parent)
        self._repo = repository
        self._settings = settings
        self._data_dir = data_dir
        # Each request's outputs go where it was created to store them (StorageChoice).
        self._storages = storages or StorageShelf(data_dir)
        self._repo.set_power_safe(settings.power_safe_writes)
        self._executor: ImageExecutor = executor or QtPoolExecutor(self._storages, self)
        self._executor.set_max_workers(settings.concurrency)
        self._executor.set_callbacks(
            self._on_worker_result, self._on_worker_stage, self._on_worker_progress
        )
        self._progress = DownloadProgress()
        _limit_heap_growth()
        # Worker threads must never be the ones that free a QObject (main_thread_gc says why).
        collect_garbage_on_this_thread()

        # One FIFO queue per host, served round-robin, so a big host cannot starve the others;
        # a higher request's queues before a lower one's (SPEC 11).
        self._queues: HostQueues[_Job] = HostQueues()
        # Requests held because their output could not be written (disk full): their jobs wait
        # here until a probe finds room again.
        self._held: HeldRequests[_Job] = HeldRequests(self.storage_of, self._on_room_again, self)
        self._in_flight: dict[int, _Job] = {}  # by job key
        self._next_job_key = 0
        self._outstanding: Counter[str] = Counter()  # jobs queued, running or backing off
        self._scheduled: dict[int, str] = {}  # image id -> request id, for every job's images
        self._url_jobs: dict[tuple[str, str], _Job] = {}  # (request id, URL) -> outstanding job
        # Started requests with pending images not read yet: the id of the last image read.
        self._feeds: dict[str, int] = {}
        # Each started request's output settings, as recorded with it (retries use them too).
        self._outputs: dict[str, OutputSettings] = {}
        self._choices: dict[str, StorageChoice] = {}  # and where it stores them
        self._processing: set[str] = set()
        # Each started request's current token; cancel/delete cancels it and makes a new one.
        self._tokens: dict[str, CancelToken] = {}
        self._paused = False
        self._stopping = False  # shutdown() was called

        self._writer = DatabaseWriter(repository, self)
        self._buffer = self._writer.buffer
        self._writer.images_changed.connect(self.images_changed)
        self._writer.request_changed.connect(self.request_changed)
        self._writer.image_finished.connect(self.image_finished)
        self._writer.database_lost.connect(self._on_database_lost)
        self._priorities = RequestPriorities(repository, lambda: self._writer.lost is None, self)
        self._priorities.stored.connect(self.request_changed)

    # -- public API -------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings new work starts with."""
        return self._settings

    @property
    def storages(self) -> StorageShelf:
        """The storages the requests' outputs go to, with the keys they are opened with."""
        return self._storages

    @property
    def writer(self) -> DatabaseWriter:
        """The one writer of the database (the window's importer records through it)."""
        return self._writer

    def storage_of(self, request_id: str) -> Storage:
        """Where a request's outputs are stored, as recorded with it (ImageError if unusable)."""
        choice = self._choices.get(request_id)
        if choice is None:
            request = self._repo.get_request(request_id)
            choice = request.storage if request is not None else StorageChoice()
        return self._storages.open(choice)

    @property
    def paused(self) -> bool:
        """True while no new image starts."""
        return self._paused

    def held_requests(self) -> Mapping[str, str]:
        """The requests waiting for disk space, each with the message that says why (read-only).

        ``request_held`` tells when this changes; the window reads it here, keeping no copy.
        """
        return self._held.messages()

    @property
    def active_count(self) -> int:
        """Images being downloaded or compressed right now."""
        return len(self._in_flight)

    def is_busy(self, request_id: str | None = None) -> bool:
        """True while a request (or any) has images queued, running or waiting to retry."""
        if request_id is None:
            return bool(self._feeds) or any(self._outstanding.values())
        return request_id in self._feeds or self._outstanding[request_id] > 0

    def save_settings(self, settings: Settings) -> None:
        """Store new settings, then use them for work that starts from now on.

        Raises:
            DatabaseBusyError: another program holds the database; nothing changed.
        """
        self._repo.save_settings(settings)
        self.set_settings(settings)

    def set_settings(self, settings: Settings) -> None:
        """Use new settings for work that starts from now on."""
        self._settings = settings
        self._repo.set_power_safe(settings.power_safe_writes)
        self._executor.set_max_workers(settings.concurrency)
        self._pump()

    def start_request(self, request_id: str) -> int:
        """Queue the request's pending images that are not already scheduled.

        Done images whose output file has vanished (its folder deleted) are queued again.
        The first page is queued now; later pages as the queues drain (see ``_pump``).

        Returns:
            How many done images went back to pending because their file had vanished.
        """
        return self._start(request_id, check_files=True)

    def _start(self, request_id: str, check_files: bool) -> int:
        request = self._repo.get_request(request_id)
        if request is None:
            raise KeyError(request_id)
        # Pages and done rows are read from the database: store what is buffered first, so
        # an image that just finished is neither read as pending nor its file as an orphan.
        self.flush()
        if self._writer.lost is not None:
            return 0
        self._choices[request_id] = request.storage
        try:
            self.storage_of(request_id).check_writable(request_id)
        except ImageError as error:
            # One clear message before any download, rather than the same failure per image.
            logger.error("request %s cannot start: %s", request_id, error.message)
            unfinished = self._repo.image_ids(request_id, UNFINISHED)
            self._drop_jobs(request_id)
            self._repo.fail_unfinished(request_id, error.code, error.message)
            self._writer.announce(request_id, unfinished)
            self._finish_request(request_id, error.message)
            return 0
        vanished = self._check_output_files(request_id) if check_files else 0
        self._tokens.setdefault(request_id, CancelToken())
        self._outputs[request_id] = request.output
        self._queues.set_rank(request_id, self._priorities.rank_of(request))
        self._feeds[request_id] = 0
        self._feed_page(request_id)
        logger.info(
            "request %s started (%s images pending)", request_id, request.pending + vanished
        )
        self._finish_if_done(request_id)
        self._pump()
        return vanished

    def _feed_page(self, request_id: str) -> None:
        """Queue the next page of the request's pending images, one job per new URL."""
        after_id = self._feeds[request_id]
        output = self._outputs[request_id]
        pending = (ImageStatus.PENDING,)
        page = self._repo.list_images_page(request_id, after_id, FEED_PAGE_IMAGES, pending)
        if len(page) < FEED_PAGE_IMAGES:
            del self._feeds[request_id]
        else:
            self._feeds[request_id] = page[-1].id
        fresh = [image for image in page if image.id not in self._scheduled]
        known = self._url_jobs.keys() | self._buffer.done_unstored.keys()
        new_urls = {image.url for image in fresh if (request_id, image.url) not in known}
        # The same URL in one request is fetched once: a twin already done is copied (from
        # the write buffer, or else from the database), one still on its way takes this
        # image along.
        twins = self._repo.done_twins(request_id, new_urls) if new_urls else {}
        cache_key = self._settings.output_key(output)
        cache = self._repo.cached_outputs(new_urls, cache_key) if new_urls else {}
        for image in fresh:
            job = self._url_jobs.get((request_id, image.url))
            if job is not None:
                job.images.append(image)
                job.image_ids.append(image.id)
                self._scheduled[image.id] = request_id
                continue
            done = self._buffer.done_unstored.get((request_id, image.url))
            stored_twin = twins.get(image.url)
            if done is None and stored_twin is not None:
                done = stored_twin._asdict()
            if done is not None:
                self._buffer.record_twin(image, done)  # done with the output of its twin
                self._writer.schedule_flush()
                continue
            token, choice = self._tokens[request_id], self._choices[request_id]
            job = _new_job(request_id, image, output, choice, token, cache.get(image.url))
            self._url_jobs[(request_id, image.url)] = job
            self._scheduled[image.id] = request_id
            self._outstanding[request_id] += 1
            self._enqueue(job)

    def _check_output_files(self, request_id: str) -> int:
        """Match the request's outputs with its done rows; returns how many are redone."""
        writing = any(job.request_id == request_id for job in self._in_flight.values())
        try:
            storage = self.storage_of(request_id)
        except ImageError as error:
            logger.warning("request %s: its outputs cannot be listed: %s", request_id, error)
            return 0
        vanished = reconcile_outputs(storage, self._repo, request_id, writing=writing)
        if vanished:
            self._writer.announce(request_id, vanished)
        return len(vanished)

    def resume_interrupted(self) -> list[str]:
        """Start every request left unfinished by a quit or crash; returns their ids."""
        request_ids = self._repo.recover_interrupted()
        for request_id in request_ids:
            self.start_request(request_id)
        return request_ids

    def retry(
        self,
        request_id: str,
        image_ids: list[int] | None = None,
        storage: StorageChoice | None = None,
    ) -> int:
        """Put failed images (all, or some) back in the queue; returns how many.

        Done images whose file has vanished are queued again too, and counted. With
        ``storage`` the request stores into that place from now on, and its done images
        whose outputs are not there are redone.
        """
        if self._writer.lost is not None:
            return 0
        if storage is not None and not self.is_busy(request_id):
            self._repo.set_request_storage(request_id, storage)
            self._choices.pop(request_id, None)
        if not self.is_busy(request_id):
            # Not running here: images left "downloading" by a crash or a kill are pending.
            self._repo.recover_interrupted(request_id)
        wanted = None if image_ids is None else set(image_ids)
        failed = [
            image_id
            for image_id in self._repo.image_ids(request_id, (ImageStatus.FAILED,))
            if wanted is None or image_id in wanted
        ]
        self.flush()  # the done rows are compared with the folder: store them first
        if self._writer.lost is not None:
            return 0
        count = self._repo.reset_failed(request_id, failed)
        vanished = self._check_output_files(request_id)
        if count or vanished:
            logger.info(
                "request %s: retrying %s failed images and %s whose file had vanished",
                request_id,
                count,
                vanished,
            )
            self._writer.announce(request_id, failed)
            self._start(request_id, check_files=False)
        return count + vanished

    def cancel(self, request_id: str) -> None:
        """Fail the request's unfinished images with ``cancelled``; running ones are ignored."""
        if self._writer.lost is not None:
            return
        unfinished = self._repo.image_ids(request_id, UNFINISHED)
        self._drop_jobs(request_id)
        if self._writer.lost is not None:
            return
        cancelled = self._repo.fail_unfinished(request_id, ErrorCode.CANCELLED, CANCELLED_MESSAGE)
        self._writer.announce(request_id, unfinished)
        logger.info("request %s cancelled (%s images)", request_id, cancelled)
        self._finish_request(request_id)

    def delete(self, request_id: str, remove_files: bool = False) -> None:
        """Forget a request; ``remove_files`` also deletes its outputs, in the background."""
        if self._writer.lost is not None:
            return
        self._drop_jobs(request_id)
        if self._writer.lost is not None:
            return
        storage = self.storage_of(request_id) if remove_files else None  # while it is known
        self._repo.delete_request(request_id)
        self._tokens.pop(request_id, None)
        self._outputs.pop(request_id, None)
        self._choices.pop(request_id, None)
        self._buffer.forget_request(request_id)
        self._processing.discard(request_id)
        if storage is not None:
            threading.Thread(target=storage.delete_request, args=(request_id,), daemon=True).start()
        logger.info("request %s deleted (files removed: %s)", request_id, remove_files)
        self.request_changed.emit(request_id)

    def record_output_csv(self, request_id: str, location: str) -> None:
        """Remember where a request's output CSV went (the finisher, an export).

        Raises:
            DatabaseBusyError: another program holds the database; the caller may try again.
        """
        if self._writer.lost is not None or self._repo.get_request(request_id) is None:
            return
        self._repo.set_output_csv(request_id, location)
        self.request_changed.emit(request_id)

    def set_priority(self, request_id: str, priority: str) -> None:
        """Serve the request by ``priority`` from now on: its images not started go by it."""
        if self._writer.lost is None:
            self._priorities.set(request_id, priority)  # ValueError for an unknown one
            if self.is_busy(request_id):
                self._queues.set_rank(request_id, priority_rank(priority))
            self._pump()

    def pause(self) -> None:
        """Stop starting new images; running ones finish."""
        if not self._paused:
            self._paused = True
            logger.info("processing paused")
            self.paused_changed.emit(True)

    def resume(self) -> None:
        """Start new images again."""
        if self._paused:
            self._paused = False
            logger.info("processing resumed")
            self.paused_changed.emit(False)
            self._pump()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop starting work, let running images end, store what is known.

        No request finishes from here on: what did not end goes back to ``pending``.
        """
        self._paused = True
        self._stopping = True
        self._queues.clear()
        self._feeds.clear()
        self._held.clear()
        self._executor.shutdown(timeout_ms)
        # The results of images that ended during the wait are queued calls to this thread:
        # take them now, so a finished image is stored rather than fetched again.
        QCoreApplication.sendPostedEvents(self, QEvent.Type.MetaCall)
        for token in self._tokens.values():
            token.cancel()  # what still runs or waits to retry is stale
        self.flush()
        self._writer.stop()
        if self._writer.lost is None:
            # Whatever did not report back goes back to pending for the next start.
            self._repo.recover_interrupted()

    # -- scheduling -------------------------------------------------------------------------

    def _enqueue(self, job: _Job) -> None:
        if job.request_id in self._held:
            self._held.add_job(job.request_id, job)
        else:
            self._queues.push(job)

    def _pump(self) -> None:
        """Start queued jobs while there are free slots; read more pages as the queues drain.

        A few pages at most per call, so reading ahead never holds the GUI thread for long.
        """
        for page in range(FEED_PAGES_PER_PUMP + 1):
            if self._paused or self._writer.lost is not None:
                return
            # The next page read is the highest request's not held; of equals, the first's.
            feed = self._queues.first_by_rank(r for r in self._feeds if r not in self._held)
            self._start_queued_jobs(feed)
            # Only jobs as high as that page count (lower ones wait for it anyway); while slots
            # are free but every such job waits for its busy host, read further ahead.
            full = len(self._in_flight) >= self._settings.concurrency
            enough = FEED_LOW_WATER if full else FEED_MAX_QUEUED
            if feed is None or page == FEED_PAGES_PER_PUMP:
                return
            if self._queues.queued_as_high_as(feed) >= enough:
                return
            self._feed_page(feed)
            self._finish_if_done(feed)

    def _start_queued_jobs(self, feed: str | None) -> None:
        """Start queued jobs while slots are free, the highest first; none below ``feed``."""
        settings = self._settings
        for job in self._queues.start(
            lambda: settings.concurrency - len(self._in_flight), settings.per_host_concurrency, feed
        ):
            self._dispatch(job)

    def _dispatch(self, job: _Job) -> None:
        if job.request_id not in self._processing:
            self._processing.add(job.request_id)
            self._buffer.set_status(job.request_id, RequestStatus.PROCESSING)
        self._next_job_key += 1
        key = self._next_job_key
        self._in_flight[key] = job
        self._writer.image_started(job.request_id)
        downloading = ImageStatus.DOWNLOADING
        for image_id in job.image_ids:
            self._writer.write(job.request_id, image_id, status=downloading, attempts=job.attempt)
        self._executor.submit(key, job.task(), self._settings, job.token)

    @Slot(int, str)
    def _on_worker_stage(self, key: int, stage: str) -> None:
        job = self._in_flight.get(key)
        if job is not None and not job.token.cancelled:
            for other_id in job.image_ids:
                self._writer.write(job.request_id, other_id, status=stage)

    @Slot(int, int, object)
    def _on_worker_progress(self, key: int, received: int, announced: int | None) -> None:
        job = self._in_flight.get(key)
        if job is not None:
            self._progress.update(job.image_ids, received, announced)
            self.images_progressed.emit(job.request_id, job.image_ids)

    def download_progress(self, image_id: int) -> tuple[int, int | None] | None:
        """(bytes received, bytes announced or None) of an image downloading now."""
        return self._progress.of(image_id)

    @Slot(int, object)
    def _on_worker_result(self, key: int, result: ImageResult) -> None:
        job = self._in_flight.pop(key, None)
        if job is None:
            return
        self._progress.forget(job.image_ids)
        self._writer.image_ended(job.request_id)
        self._queues.finished(job)
        if self._writer.lost is not None:
            return  # nowhere to store it
        if job.token.cancelled:
            self._pump()  # cancelled or deleted meanwhile: the slot is free, the result is not ours
            return
        if not result.ok and result.transient and job.attempt <= self._settings.max_retries:
            self._schedule_retry(job, result)
        else:
            self._record_final(job, result)
            if result.error_code == ErrorCode.STORAGE:
                self._hold(job.request_id, result.error or "The output could not be written.")
        self._pump()

    def _schedule_retry(self, job: _Job, result: ImageResult) -> None:
        delay, waiting = retry_plan(result, job.attempt, self._settings)
        logger.info("retrying %s in %.1f s (attempt %s failed)", job.url, delay, job.attempt)
        for image_id in job.image_ids:
            self._writer.write(job.request_id, image_id, **waiting)
        job.attempt += 1

        def requeue() -> None:
            if not job.token.cancelled:
                self._enqueue(job)
                self._pump()

        QTimer.singleShot(round(delay * 1000), self, requeue)

    def _record_final(self, job: _Job, result: ImageResult) -> None:
        if self._writer.lost is None:
            self._buffer.record_result(
                job.request_id,
                job.images,
                result,
                attempts=job.attempt,
                storage=self.storage_of(job.request_id),
                public_base_url=self._settings.public_base_url,
                # A later run reuses the output only under the same output settings.
                cache_key=self._settings.output_key(job.output),
            )
            self._writer.schedule_flush()
        self._job_done(job)

    def _job_done(self, job: _Job) -> None:
        for image_id in job.image_ids:
            self._scheduled.pop(image_id, None)
        self._url_jobs.pop((job.request_id, job.url), None)
        self._outstanding[job.request_id] -= 1
        self._finish_if_done(job.request_id)

    def _finish_if_done(self, request_id: str) -> None:
        """Finish a started request once nothing of it is queued, running or left to read."""
        if self._stopping:
            return  # its unread pages and running images are not failures
        if request_id not in self._feeds and self._outstanding[request_id] <= 0:
            self._finish_request(request_id)

    def _drop_jobs(self, request_id: str) -> None:
        """Forget queued, waiting and running jobs of a request (running ones become stale)."""
        old = self._tokens.get(request_id)
        if old is not None:
            old.cancel()
        self._tokens[request_id] = CancelToken()
        self._queues.take_request(request_id)
        self._held.drop(request_id)
        self._scheduled = {
            image_id: owner for image_id, owner in self._scheduled.items() if owner != request_id
        }
        self._url_jobs = {key: job for key, job in self._url_jobs.items() if key[0] != request_id}
        self._feeds.pop(request_id, None)
        self._outstanding.pop(request_id, None)
        self.flush()

    # -- a full disk holds the request instead of failing every image after it -----------------

    def _hold(self, request_id: str, reason: str) -> None:
        message = f"Paused: {reason} imgdesk carries on by itself once there is room again."
        if not self._held.hold(request_id, message, self._queues.take_request(request_id)):
            return
        logger.warning("request %s held: %s", request_id, reason)
        self.flush()  # listeners then see the failed image with the message
        if self._writer.lost is not None:
            return
        self._repo.set_request_error(request_id, message)
        self.request_changed.emit(request_id)
        self.request_held.emit(request_id, message)

    def _on_room_again(self, request_id: str, jobs: list[_Job]) -> None:
        """The disk has room again: the held jobs go on, the images that failed are retried."""
        for job in jobs:
            self._enqueue(job)
        self._repo.set_request_error(request_id, None)
        storage_failures = self._repo.image_ids(
            request_id, (ImageStatus.FAILED,), error_code=ErrorCode.STORAGE
        )
        self.request_changed.emit(request_id)
        self.request_held.emit(request_id, "")
        if storage_failures:
            self.retry(request_id, storage_failures)
        self._pump()

    def _finish_request(self, request_id: str, error: str | None = None) -> None:
        if self._writer.lost is not None:
            return
        self._outstanding.pop(request_id, None)
        self._processing.discard(request_id)
        self.flush()
        if self._writer.lost is not None:
            return
        try:
            if self._buffer.has_unstored:
                raise DatabaseBusyError("earlier changes are not stored yet")
            request = self._repo.get_request(request_id)
            # The request's counters say it: a second count over its images is not needed.
            failed = request is not None and request.done < request.total
            status = RequestStatus.FAILED if failed else RequestStatus.COMPLETED
            if failed and request is not None and error is None:
                error = f"{request.failed} of {request.total} images failed."
            self._repo.set_request_status(request_id, status, error)
        except DatabaseBusyError as busy:
            logger.warning("database busy, finishing request %s later: %s", request_id, busy)
            QTimer.singleShot(BUSY_RETRY_MS, self, lambda: self._finish_request(request_id, error))
            return
        logger.info("request %s %s", request_id, status)
        self.request_changed.emit(request_id)
        self.request_finished.emit(request_id, status)

    # -- the single writer (engine/writer.py) ---------------------------------------------

    def flush(self) -> None:
        """Store buffered changes now, then tell listeners what changed."""
        self._writer.flush()

    def _on_database_lost(self, message: str) -> None:
        """Stop for good: every job is forgotten, nothing is started any more."""
        work: tuple[Any, ...] = (self._queues, self._feeds, self._held, self._outstanding)
        for state in (*work, self._scheduled, self._url_jobs, self._processing):
            state.clear()
        self.database_lost.emit(message)


def _limit_heap_growth() -> None:
    """Glibc only: serve big blocks (decoded images) from mmap and give them back on free.

    Otherwise freed 16 MB decode buffers stay in per-thread heaps: measured 401 MB peak RSS
    over 10,000 images, 195 MB with this. Two malloc arenas, not eight per core, for the
    pool's threads: each kept the freed 256 KiB reads of its downloads (302 -> 287 MB).
    The threshold is 4 MiB, not 1: a downloaded body (1.3 MB on average) then comes from the
    heap, whose pages are already there; from mmap, faulting its fresh pages in cost 0.73-1.02
    ms of CPU per 1.3 MB body, from the heap 0.19-0.21 ms (the workers' CPU per image fell
    from 43.5 to 40.6-42.6 ms; peak RSS at 10,000 images stayed 290 MB).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(-3, 4 << 20)  # M_MMAP_THRESHOLD = 4 MiB
            libc.mallopt(-8, 2)  # M_ARENA_MAX
