"""The webhook outbox: every query on the ``webhook_delivery`` and ``webhook_attempt`` tables.

An event is written here before any attempt is made, so a quit or a crash never loses it:
the next start picks up whatever is still ``pending``. Callers get frozen dataclasses.

Times are Unix seconds passed in by the caller, so tests can drive a fake clock.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field, fields
from typing import Any

from imgdesk.core.db import WebhookAttempt, WebhookDelivery, db, translate_errors
from imgdesk.core.states import DeliveryStatus
from imgdesk.core.webhook import DELIVERED, AttemptOutcome

logger = logging.getLogger(__name__)

# Delivery states; ``delivered`` is shared with the attempt outcome of that name.
PENDING = str(DeliveryStatus.PENDING)
FAILED = str(DeliveryStatus.FAILED)


@dataclass(frozen=True)
class AttemptInfo:
    """One recorded POST of a delivery."""

    id: int
    delivery_id: str
    attempted_at: float
    status_code: int | None
    error: str | None
    duration_ms: int
    response_excerpt: str | None


@dataclass(frozen=True)
class DeliveryInfo:
    """One event owed to a receiver.

    ``id`` is the ``webhook-id``, the same on every attempt and on a redelivery.
    ``attempts`` counts the attempts of the current round (a redelivery starts a new one,
    with a fresh retry budget); ``history`` holds every attempt ever made, oldest first,
    when it was asked for.
    """

    id: str
    request_id: str
    event: str
    url: str
    secret: str | None = field(repr=False)  # never in a repr that could reach a log
    payload: str
    status: str
    attempts: int
    next_attempt_at: float
    created_at: float
    finished_at: float | None
    last_error: str | None
    history: tuple[AttemptInfo, ...] = ()


@translate_errors
class Outbox:
    """Reads and writes webhook deliveries and their attempts in the open database."""

    def enqueue(
        self,
        request_id: str,
        event: str,
        url: str,
        secret: str | None,
        payload: str,
        now: float,
    ) -> str:
        """Store a new event, due at once; returns its id (the stable ``webhook-id``).

        The id is prefixed ``msg_`` like the Standard Webhooks examples, so it reads as a
        message id in a receiver's logs rather than as a request id.
        """
        delivery_id = f"msg_{uuid.uuid4().hex}"
        # Each event of a request later than the one before, even within one clock tick, so
        # the newest is the one with the latest created_at on SQLite and PostgreSQL alike.
        latest = self.latest_for_request(request_id)
        created_at = now
        if latest is not None and latest.created_at >= now:
            created_at = latest.created_at + 1e-6
        WebhookDelivery.create(
            id=delivery_id,
            request_id=request_id,
            event=event,
            url=url,
            secret=secret or None,
            payload=payload,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=created_at,
        )
        logger.info("webhook %s queued: %s for request %s", delivery_id, event, request_id)
        return delivery_id

    def get(self, delivery_id: str, with_history: bool = False) -> DeliveryInfo | None:
        """One delivery (and its attempts when asked), or None when there is no such id."""
        row = WebhookDelivery.get_or_none(WebhookDelivery.id == delivery_id)
        if row is None:
            return None
        history = self._history([delivery_id]).get(delivery_id, ()) if with_history else ()
        return _delivery_info(row, history)

    def pending(self) -> list[DeliveryInfo]:
        """Every delivery still owed, soonest first."""
        query = (
            WebhookDelivery.select()
            .where(WebhookDelivery.status == PENDING)
            .order_by(WebhookDelivery.next_attempt_at)
        )
        return [_delivery_info(row) for row in query]

    def latest_for_request(self, request_id: str) -> DeliveryInfo | None:
        """The request's newest event (any state), or None when none was ever queued."""
        row = (
            WebhookDelivery.select()
            .where(WebhookDelivery.request_id == request_id)
            .order_by(WebhookDelivery.created_at.desc())
            .first()
        )
        return None if row is None else _delivery_info(row)

    def pending_count(self) -> int:
        """How many deliveries are still owed."""
        return int(WebhookDelivery.select().where(WebhookDelivery.status == PENDING).count())

    def list_deliveries(self, request_id: str) -> list[DeliveryInfo]:
        """A request's deliveries, newest first, each with every attempt."""
        rows = list(
            WebhookDelivery.select()
            .where(WebhookDelivery.request_id == request_id)
            .order_by(WebhookDelivery.created_at.desc())
        )
        histories = self._history([row.id for row in rows])
        return [_delivery_info(row, histories.get(row.id, ())) for row in rows]

    def claim(self, delivery_id: str, now: float, until: float) -> bool:
        """Take a due delivery for one attempt; False when it is not due or not pending.

        The claim pushes ``next_attempt_at`` to ``until``, so another imgdesk process on
        the same data folder (the window and ``imgdesk retry``) does not post it too; if
        this process dies mid-attempt, the claim simply expires.
        """
        updated = (
            WebhookDelivery.update(next_attempt_at=until)
            .where(
                (WebhookDelivery.id == delivery_id)
                & (WebhookDelivery.status == PENDING)
                & (WebhookDelivery.next_attempt_at <= now)
            )
            .execute()
        )
        return int(updated) == 1

    def release(self, delivery_id: str, now: float) -> None:
        """Give a claim back: the attempt was cut off unrecorded, so the event is due now.

        Without this, the next run would wait for the claim to expire before sending it.
        """
        WebhookDelivery.update(next_attempt_at=now).where(
            (WebhookDelivery.id == delivery_id) & (WebhookDelivery.status == PENDING)
        ).execute()

    def record_attempt(
        self,
        delivery_id: str,
        outcome: AttemptOutcome,
        attempted_at: float,
        next_attempt_at: float | None,
    ) -> tuple[AttemptInfo, DeliveryInfo]:
        """Store an attempt and what follows from it, in one transaction.

        The delivery becomes ``delivered`` on success, stays ``pending`` until
        ``next_attempt_at`` when that is given, and is ``failed`` otherwise.
        """
        if outcome.outcome == DELIVERED:
            status = DELIVERED
        elif next_attempt_at is not None:
            status = PENDING
        else:
            status = FAILED
        finished_at = None if status == PENDING else attempted_at + outcome.duration_ms / 1000
        changes: dict[Any, Any] = {
            WebhookDelivery.status: status,
            WebhookDelivery.attempts: WebhookDelivery.attempts + 1,
            WebhookDelivery.last_error: outcome.error,
            WebhookDelivery.finished_at: finished_at,
        }
        if next_attempt_at is not None:
            changes[WebhookDelivery.next_attempt_at] = next_attempt_at
        with db.atomic():
            row = WebhookAttempt.create(
                delivery=delivery_id,
                attempted_at=attempted_at,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
                response_excerpt=outcome.response_excerpt,
            )
            # Only a pending delivery moves on: a hand redelivery or another process may have
            # settled it while this attempt was on the wire.
            WebhookDelivery.update(changes).where(
                (WebhookDelivery.id == delivery_id) & (WebhookDelivery.status == PENDING)
            ).execute()
        delivery = self.get(delivery_id)
        assert delivery is not None  # deliveries are never deleted while owed
        return _attempt_info(row), delivery

    def redeliver(self, delivery_id: str, now: float) -> DeliveryInfo | None:
        """Make an event due again, with the SAME ``webhook-id`` and body.

        Standard Webhooks asks for one id per message across every retry, so a receiver
        that already has it can ignore the copy. The round's attempt count starts over (a
        fresh retry budget); earlier attempts stay in the history.
        """
        updated = (
            WebhookDelivery.update(
                status=PENDING, attempts=0, next_attempt_at=now, finished_at=None, last_error=None
            )
            .where(WebhookDelivery.id == delivery_id)
            .execute()
        )
        if not updated:
            return None
        logger.info("webhook %s redelivery requested", delivery_id)
        return self.get(delivery_id)

    def _history(self, delivery_ids: list[str]) -> dict[str, tuple[AttemptInfo, ...]]:
        found: dict[str, list[AttemptInfo]] = {}
        if not delivery_ids:
            return {}
        query = (
            WebhookAttempt.select()
            .where(WebhookAttempt.delivery.in_(delivery_ids))
            .order_by(WebhookAttempt.attempted_at, WebhookAttempt._meta.primary_key)
        )
        for row in query:
            info = _attempt_info(row)
            found.setdefault(info.delivery_id, []).append(info)
        return {key: tuple(value) for key, value in found.items()}


def _attempt_info(row: Any) -> AttemptInfo:
    return AttemptInfo(**_row_values(row, AttemptInfo))


def _delivery_info(row: Any, history: tuple[AttemptInfo, ...] = ()) -> DeliveryInfo:
    return DeliveryInfo(**_row_values(row, DeliveryInfo, but="history"), history=history)


def _row_values(row: Any, info: Any, but: str = "") -> dict[str, Any]:
    """The row's values for the fields of ``info`` (a dataclass) but ``but``, by column name."""
    names = [info_field.name for info_field in fields(info) if info_field.name != but]
    return {name: getattr(row, name) for name in names}
