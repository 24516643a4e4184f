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
from dataclasses import dataclass
from typing import Any, cast

from peewee import fn

from imgdesk.core import states
from imgdesk.core.db import (
    ImageRow,
    KeyValue,
    ProductRow,
    RequestRow,
    db,
    open_database_url,
    translate_errors,
)
from imgdesk.core.errors import CANCELLED_MESSAGE, ErrorCode
from imgdesk.core.outbox import Outbox
from imgdesk.core.output import OutputSettings
from imgdesk.core.records import FINAL_REQUEST_STATES, RequestInfo
from imgdesk.core.repository import Repository
from imgdesk.core.storage_choice import StorageChoice
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
    """What a worker needs to process one image, read in one query."""

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

    @property
    def finished(self) -> bool:
        """True when nothing is left to do for the image (done, failed, or cancelled)."""
        return self.status not in _UNFINISHED


@dataclass(frozen=True)
class FinishedRequest:
    """A request this worker finished, and its webhook event (None when none is due)."""

    request: RequestInfo
    delivery_id: str | None


@translate_errors
class ClusterStore:
    """Reads and writes what the cluster's actors and submitter need."""

    def load_image_work(self, image_id: int) -> ImageWork | None:
        """The image, its product and its request's settings; None when it is gone."""
        row = (
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
            )
            .join(ProductRow, on=(ProductRow.id == ImageRow.product))
            .switch(ImageRow)
            .join(RequestRow, on=(RequestRow.id == ImageRow.request))
            .where(ImageRow.id == image_id)
            .dicts()
            .first()
        )
        if row is None:
            return None
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
        )

    def claim_image(self, work: ImageWork) -> int | None:
        """Mark the image (and its twins: the same URL in the request) as downloading.

        Returns the attempt this is (the image's attempts, counted in the database), or None
        when the image is finished already: another worker stored it meanwhile.
        """
        now = time.time()
        with db.atomic():
            claimed = (
                ImageRow.update(
                    status=str(states.ImageStatus.DOWNLOADING),
                    attempts=ImageRow.attempts + 1,
                    updated_at=now,
                )
                .where(
                    (ImageRow.request == work.request_id)
                    & (ImageRow.url == work.url)
                    & ImageRow.status.in_(_UNFINISHED)
                )
                .execute()
            )
            if not claimed:
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
        ).where(
            (ImageRow.request == work.request_id)
            & (ImageRow.url == work.url)
            & ImageRow.status.in_(_UNFINISHED)
        ).execute()

    def store_final(self, work: ImageWork, columns: dict[str, Any]) -> int:
        """Record a final result for the image and its twins; returns how many rows changed.

        Only unfinished images change: a result applied twice changes nothing the second
        time, and the database's counters count it once.
        """
        return int(
            ImageRow.update(updated_at=time.time(), **columns)
            .where(
                (ImageRow.request == work.request_id)
                & (ImageRow.url == work.url)
                & ImageRow.status.in_(_UNFINISHED)
            )
            .execute()
        )

    def all_finished(self, request_id: str) -> bool:
        """True when no image of the request is pending or in flight."""
        unfinished = ImageRow.select(ImageRow.id).where(
            (ImageRow.request == request_id) & ImageRow.status.in_(_UNFINISHED)
        )
        return not unfinished.exists()

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
