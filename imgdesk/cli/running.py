"""Run one request to its end under a ``QCoreApplication``: the engine, the CSV, the webhook."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from imgdesk.cli.console import EXIT_COMPLETED, EXIT_FAILED, say
from imgdesk.cli.reporter import Reporter
from imgdesk.cli.stopping import StopRequest, exit_now, stop_now
from imgdesk.core.handover import cancel_notes, remove_cancel_note
from imgdesk.core.outbox import Outbox
from imgdesk.core.repository import Repository
from imgdesk.core.settings import Settings
from imgdesk.core.states import RequestStatus

if TYPE_CHECKING:
    import qasync

    from imgdesk.engine.engine import Engine
    from imgdesk.engine.finisher import RequestFinisher
    from imgdesk.engine.webhooks import WebhookSender

CANCEL_NOTE_CHECK_MS = 500  # `imgdesk cancel` promises a running request stops within 2 s
CANCEL_WEBHOOK_WAIT_S = 10.0  # how long `imgdesk cancel` tries to deliver the webhook itself


def run_to_end(
    repo: Repository,
    settings: Settings,
    data_dir: Path,
    request_id: str,
    output: Path | None,
    reporter: Reporter,
    begin: Callable[[Engine], None] | None = None,
) -> int:
    """Process the request until it finishes, export it, then deliver its webhook.

    ``begin`` sets the engine going (``retry`` puts failed images back through
    ``Engine.retry``); by default the request is started as it is. ``output`` is where the
    CSV goes besides the storage's copy (None: the storage's copy only).
    """
    loop, engine, sender, finisher = _processing_parts(repo, settings, data_dir)
    engine.image_finished.connect(reporter.image_finished)
    engine.request_changed.connect(lambda rid: reporter.progress(repo, rid))
    engine.request_held.connect(reporter.held)
    sender.attempt_recorded.connect(reporter.webhook_attempt)
    if output is not None:
        finisher.set_destination(request_id, output)
    stop = StopRequest(loop)
    engine.database_lost.connect(stop.database_lost)
    watcher = _CancelNoteWatcher(engine, repo, data_dir, request_id)

    async def run() -> int:
        # Events an earlier run still owes (killed, stopped) go out now, under their own ids.
        sender.start()
        finished: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()

        def on_finished(finished_id: str, location: str, problem: str) -> None:
            # The finisher wrote the output CSV (or says why not) and queued the webhook.
            if finished_id == request_id and not finished.done():
                finished.set_result((location, problem))

        finisher.finished.connect(on_finished)
        (begin or (lambda started: started.start_request(request_id)))(engine)
        outcome = await stop.unless_stopped(finished)
        if outcome is None:
            stop_now(stop, engine, sender, repo, request_id, reporter)
        location, problem = outcome
        watcher.stop()
        if watcher.cancelled:
            # The images still on the wire are stale: nothing waits for them.
            engine.shutdown(timeout_ms=0)
            reporter.note(f"request {request_id} cancelled from another terminal.")
        else:
            engine.shutdown()
        if problem:
            say(
                f"imgdesk: the output CSV could not be written: {problem} The images are "
                f"stored, and imgdesk export {request_id} -o OUTPUT.csv writes it elsewhere."
            )
        request = repo.get_request(request_id)
        assert request is not None
        reporter.finished(request, location)
        # This request's event and those resumed above are all delivered (or given up)
        # before the command exits.
        if await stop.unless_stopped(sender.drain()) is None:
            stop_now(stop, engine, sender, repo, request_id, reporter)
        if watcher.cancelled:
            # Downloads cut short still hold worker threads, which Python would wait for.
            exit_now(EXIT_FAILED)
        completed = request.status == RequestStatus.COMPLETED
        return EXIT_COMPLETED if completed and location and not problem else EXIT_FAILED

    try:
        with loop:
            return int(loop.run_until_complete(run()))
    finally:
        engine.shutdown()


def _processing_parts(
    repo: Repository, settings: Settings, data_dir: Path
) -> tuple[qasync.QEventLoop, Engine, WebhookSender, RequestFinisher]:
    """An event loop with an engine, a webhook sender and the finisher that joins them."""
    # Qt is imported here, not at the top: status and export never need it.
    import qasync
    from PySide6.QtCore import QCoreApplication

    from imgdesk.engine.engine import Engine
    from imgdesk.engine.finisher import RequestFinisher
    from imgdesk.engine.webhooks import WebhookSender

    app = QCoreApplication.instance() or QCoreApplication([])
    engine = Engine(repo, settings, data_dir)
    sender = WebhookSender(Outbox(), settings)
    finisher = RequestFinisher(repo, engine, sender)
    return qasync.QEventLoop(app), engine, sender, finisher


class _CancelNoteWatcher:
    """Acts on the notes ``imgdesk cancel`` leaves, every ``CANCEL_NOTE_CHECK_MS``."""

    def __init__(self, engine: Engine, repo: Repository, data_dir: Path, request_id: str) -> None:
        from PySide6.QtCore import QTimer

        self.cancelled = False  # True once this run's request was cancelled by a note
        self._engine = engine
        self._repo = repo
        self._data_dir = data_dir
        self._request_id = request_id
        self._timer = QTimer()
        self._timer.setInterval(CANCEL_NOTE_CHECK_MS)
        self._timer.timeout.connect(self._check)
        self._timer.start()

    def stop(self) -> None:
        """No more checks (the request has ended)."""
        self._timer.stop()

    def _check(self) -> None:
        if self._request_id in act_on_cancel_notes(self._engine, self._repo, self._data_dir):
            self.cancelled = True


def act_on_cancel_notes(engine: Engine, repo: Repository, data_dir: Path) -> list[str]:
    """Cancel every request ``imgdesk cancel`` left a note for; returns the ids cancelled.

    The engine cancels a request it is not running just as well (its images fail with
    ``cancelled``), so a note never waits for a run that will not come. A note for a request
    that has finished or is gone is only removed.
    """
    cancelled = []
    for note_id in cancel_notes(data_dir):
        request = repo.get_request(note_id)
        if request is not None and not request.finished:
            engine.cancel(note_id)
            cancelled.append(note_id)
        remove_cancel_note(data_dir, note_id)
    return cancelled


def cancel_here(repo: Repository, settings: Settings, data_dir: Path, request_id: str) -> int:
    """Cancel a request nobody runs, as the window would; returns how many images it failed.

    The caller holds the data folder's lock. The finisher writes its output CSV into the
    storage and queues its webhook, which goes out now if the receiver answers within
    ``CANCEL_WEBHOOK_WAIT_S``; else it stays owed to the next imgdesk run on this data folder.
    """
    loop, engine, sender, finisher = _processing_parts(repo, settings, data_dir)
    before = repo.get_request(request_id)
    unfinished = 0 if before is None else before.total - before.done - before.failed

    async def run() -> None:
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_finished(finished_id: str, _location: str, _problem: str) -> None:
            if finished_id == request_id and not finished.done():
                finished.set_result(None)

        finisher.finished.connect(on_finished)
        engine.cancel(request_id)
        await finished
        await sender.drain(CANCEL_WEBHOOK_WAIT_S)
        sender.stop_now()

    try:
        with loop:
            loop.run_until_complete(run())
    finally:
        engine.shutdown(timeout_ms=0)
    return unfinished
