"""The queries of the cluster's workers and submitter, each one short transaction.

Cluster workers are many processes on many machines writing to one database, so every
change of an image or a request here is a conditional update on its state: a message
delivered twice (a worker killed after storing, before acknowledging) changes nothing the
second time, and the request's counters (kept by the database) count each image once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from peewee import JOIN, fn

from imgdesk.core import states
from imgdesk.core.db import (
    ImageRow,
    KeyValue,
    OutputCache,
    ProductRow,
    RequestRow,
    db,
    is_postgres,
    open_database_url,
    translate_errors,
)
from imgdesk.core.dialect import update_then_upsert_postgres
from imgdesk.core.errors import CANCELLED_MESSAGE, ErrorCode
from imgdesk.core.outbox import Outbox
from imgdesk.core.output import OutputSettings
from imgdesk.core.records import FINAL_REQUEST_STATES, RequestInfo
from imgdesk.core.repository import CACHED_OUTPUT_FIELDS, Repository
from imgdesk.core.storage_choice import StorageChoice
from imgdesk.core.types import CachedOutput
from imgdesk.core.webhook import build_payload, encode_body, same_result

_UNFINISHED = [str(state) for state in states.UNFINISHED]
_FINAL_IMAGE = [str(states.ImageStatus.DONE), str(states.ImageStatus.FAILED)]
_OPEN_REQUEST = [str(states.RequestStatus.PENDING), str(states.RequestStatus.PROCESSING)]
# The KeyValue row that pauses the whole cluster ("1"); no row, or any other value: running.
PAUSED_KEY = "cluster_paused"
# Request priorities (SPEC 11), highest first; a request without one (NULL) is normal.
PRIORITIES = ("high", "normal", "low")
NORMAL = "normal"


def open_shared_database(url: str) -> None:
    """Open the database a ``--database`` URL names: ``postgresql://...`` or ``sqlite:///PATH``.

    A SQLite file serves several worker processes of one machine (tests, a small setup);
    machines that share work share a PostgreSQL database.

    Raises:
        DataFolderError: a SQLite file that cannot be used.
        DatabaseError: PostgreSQL cannot be reached or refuses (one sentence, no password).
    """
    # As SQLAlchemy writes them: sqlite:///relative.db, sqlite:////absolute/path.db.
    open_database_url(url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url)


@dataclass(frozen=True)
class ImageWork:
    """What a worker needs to process one image, read in one query.

    Attributes:
        remaining: the request's images not done or failed when read (its counters).
        paused: whether the whole cluster was paused when read (``imgdesk pause``).
        cached: earlier outputs of the URL, by :meth:`Settings.output_key` they were made
            under, for a conditional GET (the engine's output cache, SPEC 3).
    """

    image_id: int
    request_id: str
    url: str
    status: str
    attempts: int
    row_index: int
    product_name: str
    position: int
    request_status: str
    output: OutputSettings
    storage: StorageChoice
    priority: str = NORMAL
    remaining: int = 1
    paused: bool = False
    cached: dict[str, CachedOutput] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """True when nothing is left to do for the image (done, failed, or cancelled)."""
        return self.status not in _UNFINISHED


@dataclass(frozen=True)
class StoredResult:
    """What :meth:`ClusterStore.store_final` did.

    Attributes:
        stored: images changed (the image and its twins); 0 when stored or cancelled before.
        remaining: the request's images not done or failed after it, from its counters.
    """

    stored: int
    remaining: int


@dataclass(frozen=True)
class FinishedRequest:
    """A request this worker finished, and its webhook event (None when none is due)."""

    request: RequestInfo
    delivery_id: str | None


@translate_errors
class ClusterStore:
    """Reads and writes what the cluster's actors and submitter need."""

    def load_image_work(self, image_id: int) -> ImageWork | None:
        """The image, its product, its request's settings and counters; None when it is gone.

        One query for everything a message needs before its download: the pause flag and
        the URL's earlier outputs (one row each, usually none) come along.
        """
        paused = KeyValue.select(KeyValue.value).where(KeyValue.key == PAUSED_KEY)
        query = (
            ImageRow.select(
                ImageRow.id,
                ImageRow.request,
                ImageRow.url,
                ImageRow.status,
                ImageRow.attempts,
                ImageRow.position,
                ProductRow.row_index,
                ProductRow.name,
                RequestRow.status.alias("request_status"),
                RequestRow.output_settings,
                RequestRow.storage,
                RequestRow.priority,
                (RequestRow.total_images - RequestRow.done_images - RequestRow.failed_images).alias(
                    "remaining"
                ),
                paused.alias("paused"),
                *(getattr(OutputCache, name).alias(f"cache_{name}") for name in _CACHE_FIELDS),
            )
            .join(ProductRow, on=(ProductRow.id == ImageRow.product))
            .switch(ImageRow)
            .join(RequestRow, on=(RequestRow.id == ImageRow.request))
            .switch(ImageRow)
            .join(OutputCache, JOIN.LEFT_OUTER, on=(OutputCache.url == ImageRow.url))
            .where(ImageRow.id == image_id)
            .dicts()
        )
        rows = list(cast(Iterable[dict[str, Any]], query))
        if not rows:
            return None
        row = rows[0]
        return ImageWork(
            image_id=row["id"],
            request_id=row["request"],
            url=row["url"],
            status=row["status"],
            attempts=row["attempts"],
            row_index=row["row_index"],
            product_name=row["name"],
            position=row["position"],
            request_status=row["request_status"],
            output=OutputSettings.from_dict(json.loads(row["output_settings"])),
            storage=StorageChoice.from_dict(json.loads(row["storage"])),
            priority=row["priority"] or NORMAL,
            remaining=int(row["remaining"]),
            paused=row["paused"] == "1",
            cached=dict(entry for entry in map(_cached_output, rows) if entry is not None),
        )

    def claim_image(self, work: ImageWork) -> int | None:
        """Mark the image (and its twins: the same URL in the request) as downloading.

        Returns the attempt this is (the image's attempts, counted in the database), or None
        when the image is finished already: another worker stored it meanwhile.
        """
        now = time.time()
        claim = ImageRow.update(
            status=str(states.ImageStatus.DOWNLOADING),
            attempts=ImageRow.attempts + 1,
            updated_at=now,
        ).where(_unfinished_twins(work))
        if work.request_status == str(states.RequestStatus.PROCESSING) and is_postgres():
            # The usual case, one statement: the request is under way already.
            claimed = list(claim.returning(ImageRow.id, ImageRow.attempts).tuples().execute())
            return _attempt_of(work, claimed)
        with db.atomic():
            if not claim.execute():
                return None
            RequestRow.update(
                status=str(states.RequestStatus.PROCESSING),
                started_at=fn.COALESCE(RequestRow.started_at, now),
            ).where(
                (RequestRow.id == work.request_id)
                & (RequestRow.status == str(states.RequestStatus.PENDING))
            ).execute()
            attempts = ImageRow.get_by_id(work.image_id).attempts
        return int(attempts)

    def back_to_pending(self, work: ImageWork, columns: dict[str, Any]) -> None:
        """A transient failure: the image (and its twins) wait for their next attempt."""
        ImageRow.update(
            status=str(states.ImageStatus.PENDING), updated_at=time.time(), **columns
        ).where(_unfinished_twins(work)).execute()

    def store_final(
        self, work: ImageWork, columns: dict[str, Any], cache_row: dict[str, Any] | None = None
    ) -> StoredResult:
        """Record a final result for the image and its twins, and how many images are left.

        Only unfinished images change: a result applied twice changes nothing the second
        time, and the database's counters count it once. ``cache_row`` (an output a later
        run may reuse) is stored along, only when the result was. ``remaining`` is read
        after the result is in, from the request's counters, not counted: the worker whose
        write came last reads 0 (the counting trigger holds the request's row until each
        writer commits), so at least one finishes the request.
        """
        now = time.time()
        update = ImageRow.update(updated_at=now, **columns).where(_unfinished_twins(work))
        cached = None if cache_row is None else {**cache_row, "updated_at": now}
        if is_postgres():
            stored = update_then_upsert_postgres(update, OutputCache, cached, _CACHE_CONFLICT)
        else:
            with db.atomic():
                stored = int(update.execute())
                if stored and cached is not None:
                    OutputCache.insert(**cached).on_conflict_replace().execute()
        remaining = (
            RequestRow.select(
                RequestRow.total_images - RequestRow.done_images - RequestRow.failed_images
            )
            .where(RequestRow.id == work.request_id)
            .scalar()
        )
        # A request deleted meanwhile has nothing left to finish.
        return StoredResult(stored, 0 if remaining is None else int(remaining))

    def finish_request(
        self, request_id: str, output_csv: str, webhook_url: str, webhook_secret: str
    ) -> FinishedRequest | None:
        """Claim the request's finish, record its output CSV and queue its webhook event.

        One transaction with one conditional update on the request's state, so of all the
        workers that see the last image stored, exactly one finishes the request; None for
        the others. ``webhook_url`` / ``webhook_secret`` are the cluster's settings, which the
        request's own override.
        """
        now = time.time()
        with db.atomic():
            total = RequestRow.get_by_id(request_id).total_images
            done = (
                ImageRow.select()
                .where(
                    (ImageRow.request == request_id)
                    & (ImageRow.status == str(states.ImageStatus.DONE))
                )
                .count()
            )
            failed = done < total
            status = states.RequestStatus.FAILED if failed else states.RequestStatus.COMPLETED
            error = f"{total - done} of {total} images failed." if failed else None
            claimed = (
                RequestRow.update(
                    status=str(status),
                    error=error,
                    finished_at=now,
                    output_csv=output_csv or None,
                    # No engine measures active time here: the time from its start counts.
                    active_s=now - fn.COALESCE(RequestRow.started_at, now),
                )
                .where((RequestRow.id == request_id) & RequestRow.status.in_(_OPEN_REQUEST))
                .execute()
            )
            if not claimed:
                return None
            request = Repository().get_request(request_id)
            assert request is not None  # read in the same transaction
            return FinishedRequest(
                request, self._queue_webhook(request, webhook_url, webhook_secret, now)
            )

    @staticmethod
    def _queue_webhook(
        request: RequestInfo, webhook_url: str, webhook_secret: str, now: float
    ) -> str | None:
        """The outbox row of the request's event; None without a URL or when it is no news."""
        url = request.webhook_url or webhook_url
        if not url:
            return None
        outbox = Outbox()
        payload = build_payload(request)
        last = outbox.latest_for_request(request.id)
        if last is not None and same_result(last.payload, payload):
            return None  # a retry that changed nothing sends no new event (SPEC 5)
        secret = request.webhook_secret or webhook_secret or None
        return outbox.enqueue(request.id, payload["event"], url, secret, encode_body(payload), now)

    def images_to_send(self, request_id: str) -> list[int]:
        """The first unfinished image of each URL of the request: one message each."""
        query = (
            ImageRow.select(fn.MIN(ImageRow.id).alias("first"))
            .where((ImageRow.request == request_id) & ImageRow.status.in_(_UNFINISHED))
            .group_by(ImageRow.url)
        )
        rows = cast(Iterable[dict[str, Any]], query.dicts())
        return sorted(int(row["first"]) for row in rows)

    def finished_image_ids(self, request_id: str, since: float) -> list[int]:
        """Ids of the request's done or failed images changed at or after ``since``."""
        query = ImageRow.select(ImageRow.id).where(
            (ImageRow.request == request_id)
            & ImageRow.status.in_(_FINAL_IMAGE)
            & (ImageRow.updated_at >= since)
        )
        return sorted(int(row.id) for row in query)

    def latest_delivery_id(self, request_id: str) -> str | None:
        """The id of the request's newest webhook event, None when it has none."""
        latest = Outbox().latest_for_request(request_id)
        return None if latest is None else str(latest.id)

    def request_finished(self, request_id: str) -> bool:
        """True once the request is completed or failed."""
        row = RequestRow.get_or_none(RequestRow.id == request_id)
        return row is not None and row.status in FINAL_REQUEST_STATES

    # -- cancel, retry, pause from any machine ----------------------------------------------

    def cancel_request(self, request_id: str) -> int:
        """Fail the request's unfinished images with ``cancelled``; returns how many.

        Images in flight too: the worker's result write is conditional on an unfinished
        state, so a download that ends after this stores nothing and the image stays cancelled.
        """
        return Repository().fail_unfinished(request_id, ErrorCode.CANCELLED, CANCELLED_MESSAGE)

    def retry_request(self, request_id: str) -> int:
        """Put the request's failed images back to pending (cancelled ones too); how many."""
        return Repository().reset_failed(request_id)

    def images_waiting(self, request_id: str) -> list[int]:
        """The first pending image of each URL of the request: the messages ``retry`` sends.

        Images in flight are left out: their worker's message is still unacknowledged, and
        the broker hands it to another worker if that one died.
        """
        query = (
            ImageRow.select(fn.MIN(ImageRow.id).alias("first"))
            .where(
                (ImageRow.request == request_id)
                & (ImageRow.status == str(states.ImageStatus.PENDING))
            )
            .group_by(ImageRow.url)
        )
        rows = cast(Iterable[dict[str, Any]], query.dicts())
        return sorted(int(row["first"]) for row in rows)

    def any_image_id(self, request_id: str) -> int | None:
        """One image of the request: its message makes a worker finish the request if due."""
        row = ImageRow.select(ImageRow.id).where(ImageRow.request == request_id).first()
        return None if row is None else int(row.id)

    def is_paused(self) -> bool:
        """True while the cluster is paused: workers start no new image."""
        row = KeyValue.get_or_none(KeyValue.key == PAUSED_KEY)
        return row is not None and row.value == "1"

    def set_paused(self, paused: bool) -> None:
        """Pause or resume the whole cluster (every request, every worker)."""
        value = "1" if paused else "0"
        KeyValue.insert(key=PAUSED_KEY, value=value).on_conflict(
            conflict_target=[KeyValue.key], update={KeyValue.value: value}
        ).execute()

    # -- priorities ---------------------------------------------------------------------------

    def set_priority(self, request_id: str, priority: str) -> None:
        """Give the request a priority (one of PRIORITIES); its next messages go by it."""
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}")
        RequestRow.update(priority=priority).where(RequestRow.id == request_id).execute()

    def request_priority(self, request_id: str) -> str:
        """The request's priority; normal for one without (recorded before priorities)."""
        row = RequestRow.get_or_none(RequestRow.id == request_id)
        return NORMAL if row is None or row.priority is None else str(row.priority)


# An output-cache row is one URL's output under one settings key.
_CACHE_CONFLICT = ("url", "settings_key")
# The output cache's columns a worker reads with an image, to build its CachedOutput.
_CACHE_FIELDS = ("settings_key", "output_path", *CACHED_OUTPUT_FIELDS)


def _cached_output(row: dict[str, Any]) -> tuple[str, CachedOutput] | None:
    """The output-cache entry joined to an image's row, by settings key; None without one.

    The cluster stores storage keys (``<request_id>/<file name>``); an absolute file path
    (the rows of imgdesk 0.1) is left out.
    """
    key = row["cache_output_path"]
    if row["cache_settings_key"] is None or key.startswith(("/", "\\")) or ":" in key[:3]:
        return None
    values = {name: row[f"cache_{name}"] for name in CACHED_OUTPUT_FIELDS}
    return row["cache_settings_key"], CachedOutput(key=key, **values)


def _unfinished_twins(work: ImageWork) -> Any:
    """The image and its twins (the same URL in its request), while not finished."""
    return (
        (ImageRow.request == work.request_id)
        & (ImageRow.url == work.url)
        & ImageRow.status.in_(_UNFINISHED)
    )


def _attempt_of(work: ImageWork, claimed: list[tuple[int, int]]) -> int | None:
    """The attempt of ``work``'s image among the (id, attempts) a claim returned."""
    if not claimed:
        return None
    attempts = {image_id: count for image_id, count in claimed}
    return int(attempts.get(work.image_id, max(attempts.values())))
