"""Webhook delivery on the asyncio loop that qasync runs on Qt's (window and CLI alike).

Each owed event gets one asyncio task: it waits for the event's due time with ``await``
(no thread and no window is ever blocked), claims it in the outbox, runs the POST in an
executor thread, records the attempt, and either finishes or sets the next due time. All
state lives in the outbox, so a quit or a crash at any point loses nothing: the next
:meth:`WebhookSender.start` (the window, ``process`` or ``retry``, whichever runs next)
carries on where the last run stopped, under the same ``webhook-id``.

A webhook never changes a request: this module only reads :class:`RequestInfo`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from imgdesk.core.errors import DatabaseBusyError, DatabaseError
from imgdesk.core.outbox import FAILED, PENDING, AttemptInfo, DeliveryInfo, Outbox
from imgdesk.core.repository import RequestInfo
from imgdesk.core.settings import Settings
from imgdesk.core.webhook import (
    ATTEMPT_TIMEOUT_S,
    DELIVERED,
    RETRY,
    STOPPED,
    AttemptAbort,
    AttemptOutcome,
    build_payload,
    encode_body,
    post_once,
    retry_delay,
    same_result,
    sample_payload,
    url_origin,
)

logger = logging.getLogger(__name__)

# A claim outlives the attempt's own timeout by this much before another run may take over.
CLAIM_GRACE_S = 30.0

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class AttemptReport:
    """One recorded attempt and what follows from it, for progress lines and views.

    Attributes:
        attempt: the attempt as stored (time, status, error, duration, excerpt).
        delivery: the delivery after it: delivered, pending for a retry, or failed.
        number: 1 for the first attempt of the delivery's round, 2 for the first retry...
        next_delay_s: seconds until the retry, None when no retry follows.
    """

    attempt: AttemptInfo
    delivery: DeliveryInfo
    number: int
    next_delay_s: float | None

    @property
    def gave_up(self) -> bool:
        """True when this was the last attempt and the event was not delivered."""
        return self.delivery.status == FAILED


class WebhookSender(QObject):
    """Delivers the outbox's events with retries, backoff and Retry-After.

    Build one per process in the composition root, call :meth:`start` once the loop runs
    (it resumes what earlier runs still owe) and :meth:`request_finished` for every request
    that reaches ``completed`` or ``failed``.

    Signals:
        attempt_recorded(AttemptReport): an attempt was stored, whatever its outcome.
        delivery_finished(DeliveryInfo): a delivery was delivered, or given up for good.
    """

    attempt_recorded = Signal(object)
    delivery_finished = Signal(object)

    def __init__(
        self,
        outbox: Outbox,
        settings: Settings,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        timeout_s: float = ATTEMPT_TIMEOUT_S,
        parent: QObject | None = None,
    ) -> None:
        """Create an idle sender; ``clock`` and ``sleep`` are injectable so tests never wait."""
        super().__init__(parent)
        self._outbox = outbox
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._timeout_s = timeout_s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._posting: dict[str, AttemptAbort] = {}  # POSTs on the wire, so stop() can cut them
        self._deferred: list[str] = []  # queued while no event loop was running
        self._stopped = False

    # -- public API -------------------------------------------------------------------------

    def set_settings(self, settings: Settings) -> None:
        """Use new retry settings (and the new global URL for events queued from now on)."""
        self._settings = settings

    def start(self) -> int:
        """Resume every delivery a previous run left pending; returns how many.

        Call it once per process, with the event loop running (without one, the deliveries
        wait for the next :meth:`drain`).
        """
        pending = self._outbox.pending()
        for delivery in pending:
            self._spawn(delivery.id)
        self._spawn_deferred()
        if pending:
            logger.info("webhook: resuming %s pending deliveries", len(pending))
        return len(pending)

    def request_finished(self, request: RequestInfo) -> str | None:
        """Queue the event of a finished request; returns its delivery id.

        Returns None when no event is due: no URL, or the request ended just as its last
        event said (a retry that changed nothing is no news; that event, delivered or still
        owed, stands). A request's own webhook URL and secret win over the global settings.
        The event is in the outbox before this returns, so it survives whatever happens next.
        """
        url = request.webhook_url or self._settings.webhook_url
        if not url:
            return None
        if not request.finished:
            logger.warning("webhook: request %s is %s, not finished", request.id, request.status)
            return None
        payload = build_payload(request)
        last = self._outbox.latest_for_request(request.id)
        if last is not None and same_result(last.payload, payload):
            logger.info(
                "webhook: request %s ended as its event %s (%s) said; no new event",
                request.id,
                last.id,
                last.status,
            )
            return None
        secret = request.webhook_secret or self._settings.webhook_secret or None
        delivery_id = self._outbox.enqueue(
            request.id, payload["event"], url, secret, encode_body(payload), self._clock()
        )
        self._spawn(delivery_id)
        return delivery_id

    def redeliver(self, delivery_id: str) -> DeliveryInfo | None:
        """Send an event again by hand, with the same webhook-id (or now, if it is waiting).

        A delivery whose POST is on the wire right now is left alone: that attempt decides.
        """
        if delivery_id in self._posting:
            return self._outbox.get(delivery_id)
        delivery = self._outbox.redeliver(delivery_id, self._clock())
        if delivery is None:
            return None
        waiting = self._tasks.pop(delivery_id, None)
        if waiting is not None:
            waiting.cancel()  # asleep until the old due time
        self._spawn(delivery_id)
        return delivery

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until this sender owes nothing more; False when ``timeout`` came first.

        The CLI awaits this before it exits, so retries happen before the process ends.
        """
        self._spawn_deferred()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            tasks = [task for task in self._tasks.values() if not task.done()]
            if not tasks:
                return True
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(tasks, timeout=remaining)

    async def stop(self) -> None:
        """Stop every delivery now (see :meth:`stop_now`) and wait for its task to end."""
        tasks = self.stop_now()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop_now(self) -> list[asyncio.Task[None]]:
        """Stop every delivery at once, a POST on the wire included; what is owed stays owed.

        A POST in flight is cut off (its socket is shut, so its thread ends at once and a
        Ctrl-C never waits for a receiver), left unrecorded, and its claim is given back, so
        the next run sends the event at once, under the same webhook-id. A stopped sender
        starts nothing more: events queued afterwards wait in the outbox. Nothing is awaited,
        so a process about to exit can call it; returns the cancelled tasks.
        """
        self._stopped = True
        cut_off = list(self._posting.items())
        for _delivery_id, abort in cut_off:
            abort.abort(STOPPED)
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        now = self._clock()
        for delivery_id, _abort in cut_off:
            try:
                self._outbox.release(delivery_id, now)
            except (DatabaseBusyError, DatabaseError) as error:
                # Harmless: the claim expires by itself, only later.
                logger.warning("webhook %s: claim not given back: %s", delivery_id, error)
        return tasks

    async def send_test_event(self, url: str, secret: str | None) -> AttemptOutcome:
        """POST one ``test`` event (not stored, not retried) so settings can show the answer."""
        now = self._clock()
        msg_id = f"msg_{uuid.uuid4().hex}"
        body = encode_body(sample_payload(now))
        outcome = await asyncio.get_running_loop().run_in_executor(
            None,
            functools.partial(
                post_once,
                url,
                msg_id,
                body,
                secret or None,
                timestamp=int(now),
                timeout_s=self._timeout_s,
            ),
        )
        logger.info(
            "webhook test to %s: %s %s",
            url_origin(url),
            outcome.status_code,
            outcome.error or outcome.outcome,
        )
        return outcome

    # -- delivery ---------------------------------------------------------------------------

    def _spawn(self, delivery_id: str) -> None:
        if delivery_id in self._tasks or self._stopped:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # Safe in the outbox already; drain() or start() schedules it once a loop runs.
            self._deferred.append(delivery_id)
            return
        task = loop.create_task(self._deliver(delivery_id), name=f"webhook {delivery_id}")
        self._tasks[delivery_id] = task
        task.add_done_callback(functools.partial(self._on_task_done, delivery_id))

    def _spawn_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        for delivery_id in deferred:
            self._spawn(delivery_id)

    def _on_task_done(self, delivery_id: str, task: asyncio.Task[None]) -> None:
        # A redelivery may have replaced the task already; only forget this one.
        if self._tasks.get(delivery_id) is task:
            del self._tasks[delivery_id]

    async def _deliver(self, delivery_id: str) -> None:
        """Attempt one delivery until it is delivered or given up."""
        try:
            while True:
                delivery = self._outbox.get(delivery_id)
                if delivery is None or delivery.status != PENDING:
                    return
                now = self._clock()
                if delivery.next_attempt_at > now:
                    # Re-read after waking: a redelivery or another process may have acted.
                    await self._sleep(delivery.next_attempt_at - now)
                    continue
                claim_until = now + self._timeout_s + CLAIM_GRACE_S
                if not self._outbox.claim(delivery_id, now, claim_until):
                    continue  # another run took it, or it was settled: the re-read tells
                if await self._attempt(delivery):
                    return
        except Exception:
            # The delivery stays pending in the outbox and resumes at the next start.
            logger.exception("webhook %s: delivery stopped by an unexpected error", delivery_id)

    async def _attempt(self, delivery: DeliveryInfo) -> bool:
        """POST once in a worker thread and record it; True when the delivery is settled."""
        number = delivery.attempts + 1
        attempted_at = self._clock()
        abort = AttemptAbort()
        post = functools.partial(
            post_once,
            delivery.url,
            delivery.id,
            delivery.payload,
            delivery.secret,
            timestamp=int(attempted_at),
            timeout_s=self._timeout_s,
            abort=abort,
        )
        self._posting[delivery.id] = abort
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(None, post)
        finally:
            del self._posting[delivery.id]

        settings = self._settings
        next_attempt_at = None
        next_delay_s = None
        if outcome.outcome == RETRY and number <= settings.webhook_retries:
            delay = retry_delay(
                number,
                settings.webhook_first_delay_ms / 1000,
                outcome.retry_after,
                settings.retry_after_cap_s,
            )
            if delay.note:
                # Said in the attempt's record, so status and the window show the cut.
                outcome = dataclasses.replace(outcome, error=f"{outcome.error}; {delay.note}")
            next_delay_s = delay.seconds
            next_attempt_at = self._clock() + next_delay_s
        attempt, updated = self._outbox.record_attempt(
            delivery.id, outcome, attempted_at, next_attempt_at
        )
        # The URL can carry a token (many receivers put one in the path): log its origin only.
        logger.log(
            logging.INFO if outcome.outcome == DELIVERED else logging.WARNING,
            "webhook %s attempt %s to %s: %s in %s ms (%s)",
            delivery.id,
            number,
            url_origin(delivery.url),
            outcome.status_code,
            outcome.duration_ms,
            outcome.error or outcome.outcome,
        )
        if updated.status != PENDING:
            next_delay_s = None  # settled meanwhile (by hand, or by another process)
        self.attempt_recorded.emit(AttemptReport(attempt, updated, number, next_delay_s))
        if updated.status == PENDING:
            if next_delay_s is not None:
                logger.info(
                    "webhook %s: retry %s of %s in %.1f s",
                    delivery.id,
                    number,
                    settings.webhook_retries,
                    next_delay_s,
                )
            return False
        if updated.status != DELIVERED:
            logger.warning(
                "webhook %s given up after %s attempts: %s",
                delivery.id,
                number,
                outcome.error,
            )
        self.delivery_finished.emit(updated)
        return True
