"""``imgdesk process --database … --broker …``: submit a request to the cluster, follow it.

The submitter only records the request, sends one message per image and then reads the
shared database once a second, so killing it stops nothing: the workers go on, and
``imgdesk status REQUEST_ID --database …`` shows the request from any machine.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from imgdesk.cli.console import EXIT_COMPLETED, EXIT_FAILED, EXIT_REJECTED, say
from imgdesk.cli.reporter import Reporter
from imgdesk.core.cluster_store import ClusterStore
from imgdesk.core.csvio import write_output_csv
from imgdesk.core.errors import ImageError, ImdeskError
from imgdesk.core.outbox import PENDING, AttemptInfo, DeliveryInfo, Outbox
from imgdesk.core.repository import Repository
from imgdesk.core.settings import Settings
from imgdesk.core.states import RequestStatus

if TYPE_CHECKING:
    from imgdesk.cluster.actors import ClusterActors

POLL_INTERVAL_S = 1.0
# Images are found by the time a worker stored them; machines' clocks may differ this much.
CLOCK_SLACK_S = 120.0
# How long the submitter waits for the workers to settle the request's webhook.
WEBHOOK_WAIT_S = 120.0
# Nothing finished and nothing in work for this long, the cluster not paused: the submitter
# says what it waits for (without workers it would wait in silence, as long as it is left).
STALL_NOTICE_S = 60.0


class _StallWatch:
    """Tells when a followed request has stood still for ``STALL_NOTICE_S``: once per stall."""

    def __init__(self, request_id: str, repo: Repository, store: ClusterStore) -> None:
        self._request_id = request_id
        self._repo = repo
        self._store = store
        self._counts: tuple[int, int] | None = None
        self._still_since = time.monotonic()
        self._noticed = False

    def noticed_now(self) -> bool:
        """True the first time the request has stood still long enough (not paused)."""
        request = self._repo.get_request(self._request_id)
        counts = (request.done + request.failed, request.in_flight) if request else None
        if counts != self._counts or (counts is not None and counts[1] > 0):
            self._counts, self._still_since, self._noticed = counts, time.monotonic(), False
            return False
        if self._noticed or time.monotonic() - self._still_since < STALL_NOTICE_S:
            return False
        if self._store.is_paused():  # waiting is what a paused cluster does
            self._still_since = time.monotonic()
            return False
        self._noticed = True
        return True


@dataclass(frozen=True)
class _AttemptReport:
    """One recorded webhook attempt, as :meth:`Reporter.webhook_attempt` reads it."""

    attempt: AttemptInfo
    delivery: DeliveryInfo
    number: int
    next_delay_s: float | None
    gave_up: bool


class Submitter:
    """Sends a request's images to the cluster and follows the request to its end."""

    def __init__(self, actors: ClusterActors, repo: Repository) -> None:
        self._actors = actors
        self._repo = repo
        self._store = ClusterStore()
        self._stop = threading.Event()
        self._signal = 0
        # From before the request is recorded: a stop then still sends its images, and
        # the request goes on in the cluster like one stopped later.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)

    @property
    def actors(self) -> ClusterActors:
        """The actors this submitter sends to (for :mod:`imgdesk.cluster.control`)."""
        return self._actors

    @classmethod
    def connect(cls, broker_url: str, repo: Repository) -> Submitter | None:
        """A submitter on the broker; None (said in one sentence) when it cannot be used."""
        try:
            from imgdesk.cluster.actors import ClusterActors
            from imgdesk.cluster.broker import make_broker
        except ImportError as error:
            say(
                f"imgdesk: the cluster needs {error.name}, which is not installed: "
                'pip install "imgdesk[cluster]"'
            )
            return None
        try:
            broker = make_broker(broker_url)
        except ImdeskError as error:
            say(f"imgdesk: {error}")
            return None
        return cls(ClusterActors(broker), repo)

    def send(self, image_ids: list[int], priority: str) -> bool:
        """Send these images' messages; False, said in one sentence, when the broker fails."""
        from imgdesk.cluster.actors import send_images

        try:
            send_images(self._actors, image_ids, priority)
        except ImdeskError as error:
            say(f"imgdesk: {error}")
            return False
        return True

    def run(
        self,
        request_id: str,
        output: Path | None,
        settings: Settings,
        reporter: Reporter,
        image_ids: list[int] | None = None,
    ) -> int:
        """Send the images, follow the request, write the output CSV; the exit code.

        ``image_ids`` are the messages to send (by default one per unfinished URL). Without
        ``output`` the output CSV is the copy the finishing worker stored. Images finished
        before this run (a retry's) and webhook events from before are not reported again.
        """
        from imgdesk.cluster.actors import send_images

        try:
            return self._run(request_id, output, settings, reporter, image_ids, send_images)
        except ImdeskError as error:  # the database or the broker went away
            say(
                f"imgdesk: lost the cluster ({error}); request {request_id} goes on if the "
                f"workers can reach it (imgdesk status {request_id} --database ... shows it)."
            )
            return EXIT_FAILED

    def _run(
        self,
        request_id: str,
        output: Path | None,
        settings: Settings,
        reporter: Reporter,
        image_ids: list[int] | None,
        send_images: Callable[[ClusterActors, list[int], str], None],
    ) -> int:
        reported = set(self._store.finished_image_ids(request_id, 0.0))
        earlier_delivery = self._store.latest_delivery_id(request_id)
        if image_ids is None:
            image_ids = self._store.images_to_send(request_id)
        send_images(self._actors, image_ids, self._store.request_priority(request_id))
        if not self._follow(request_id, reporter, reported):
            return self._stopped(request_id, reporter)
        request = self._repo.get_request(request_id)
        assert request is not None
        if output is not None:
            location = self._write_output(request_id, output, settings)
        else:
            location = request.output_csv or ""
        reporter.finished(request, location)
        if not self._report_webhook(request_id, reporter, earlier_delivery):
            return self._stopped(request_id, reporter)
        completed = request.status == RequestStatus.COMPLETED
        return EXIT_COMPLETED if completed and location else EXIT_FAILED

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stop.is_set():
            os._exit(128 + signum)  # a second Ctrl-C while stopping: at once
        self._signal = signum
        self._stop.set()

    def _follow(self, request_id: str, reporter: Reporter, reported: set[int]) -> bool:
        """Report each finished image and the progress until the request ends; False: stopped.

        ``reported``: the images not to report (finished before); the reported ones are added.
        """
        since = 0.0
        stall = _StallWatch(request_id, self._repo, self._store)
        while True:
            polled_at = time.time()
            finished = self._store.request_finished(request_id)
            fresh = [
                i for i in self._store.finished_image_ids(request_id, since) if i not in reported
            ]
            for image in self._repo.get_images(fresh):
                reporter.image_finished(image)
                reported.add(image.id)
            reporter.progress(self._repo, request_id)
            if finished:
                return True
            if stall.noticed_now():
                reporter.note(
                    f"request {request_id} has not moved for {STALL_NOTICE_S:.0f} s: no image "
                    "finished, none is being worked on. Are workers running on this database "
                    "and broker "
                    "(imgdesk worker --database ... --broker ...)? Still waiting; Ctrl-C stops "
                    "waiting, and the request stays queued for the workers."
                )
            since = polled_at - CLOCK_SLACK_S
            if self._stop.wait(POLL_INTERVAL_S):
                return False

    def _write_output(self, request_id: str, output: Path, settings: Settings) -> str:
        """The output CSV where the local ``process`` puts it; its URL, "" when not written."""
        catalogue, outputs = self._repo.export_data(request_id)
        try:
            write_output_csv(output, catalogue, outputs, neutralise=settings.neutralise_formulas)
        except ImageError as error:
            say(
                f"imgdesk: the output CSV could not be written: {error.message} The images are "
                f"stored, and imgdesk export {request_id} -o OUTPUT.csv writes it elsewhere."
            )
            return ""
        location = output.absolute().as_uri()
        self._repo.set_output_csv(request_id, location)
        return location

    def _report_webhook(self, request_id: str, reporter: Reporter, earlier: str | None) -> bool:
        """Report the attempts of the request's webhook until it is settled; False: stopped.

        ``earlier``: the request's newest event before this run; still the newest, it is old
        news (a retry that changed nothing sends no new event).
        """
        outbox = Outbox()
        shown = 0
        deadline = time.monotonic() + WEBHOOK_WAIT_S
        while time.monotonic() < deadline:
            delivery_id = self._store.latest_delivery_id(request_id)
            delivery = None if delivery_id is None else outbox.get(delivery_id, with_history=True)
            if delivery is None or delivery_id == earlier:
                return True  # no webhook for this request, or none new
            for number, attempt in enumerate(delivery.history[shown:], start=shown + 1):
                settled = number == len(delivery.history) and delivery.status != PENDING
                reporter.webhook_attempt(
                    _AttemptReport(
                        attempt,
                        delivery,
                        number,
                        None,
                        gave_up=settled and attempt.error is not None,
                    )
                )
            shown = len(delivery.history)
            if delivery.status != PENDING:
                return True
            if self._stop.wait(POLL_INTERVAL_S):
                return False
        say("imgdesk: the webhook is still owed; the cluster's workers go on delivering it.")
        return True

    def _stopped(self, request_id: str, reporter: Reporter) -> int:
        name = "Ctrl-C" if self._signal == signal.SIGINT else "SIGTERM"
        reporter.note(
            f"stopped following on {name}; request {request_id} goes on in the cluster "
            f"(imgdesk status {request_id} --database ... shows it)."
        )
        return 128 + self._signal if self._signal else EXIT_REJECTED
