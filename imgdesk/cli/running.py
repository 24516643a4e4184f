"""Run one request to its end under a ``QCoreApplication``: the engine, the CSV, the webhook."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from imgdesk.cli.console import EXIT_COMPLETED, EXIT_FAILED, say
from imgdesk.cli.reporter import Reporter
from imgdesk.cli.stopping import StopRequest, exit_now, stop_now
from imgdesk.core.handover import cancel_notes, remove_cancel_note
from imgdesk.core.outbox import Outbox
from imgdesk.core.repository import Repository
from imgdesk.core.settings import Settings

if TYPE_CHECKING:
    from imgdesk.engine.engine import Engine

CANCEL_NOTE_CHECK_MS = 500  # `imgdesk cancel` promises a running request stops within 2 s
CANCEL_WEBHOOK_WAIT_S = 10.0  # how long `imgdesk cancel` tries to deliver the webhook itself


def run_to_end(
    repo: Repository,
    settings: Settings,
    data_dir: Path,
    request_id: str,
    output: Path,
    reporter: Reporter,
) -> int:
    """Process the request until it finishes, export it, then deliver its webhook."""
    # Qt is imported here, not at the top: status and export never need it.
    import qasync
    from PySide6.QtCore import QCoreApplication, QTimer

    from imgdesk.engine.engine import Engine
    from imgdesk.engine.finisher import RequestFinisher
    from imgdesk.engine.webhooks import WebhookSender

    app = QCoreApplication.instance() or QCoreApplication([])
    engine = Engine(repo, settings, data_dir)
    engine.image_finished.connect(reporter.image_finished)
    engine.request_changed.connect(lambda rid: reporter.progress(repo, rid))
    engine.request_held.connect(reporter.held)
    sender = WebhookSender(Outbox(), settings)
    sender.attempt_recorded.connect(reporter.webhook_attempt)
    finisher = RequestFinisher(repo, engine, sender)
    finisher.set_destination(request_id, output)
    loop = qasync.QEventLoop(app)
    stop = StopRequest(loop)
    engine.database_lost.connect(stop.database_lost)
    cancelled_elsewhere: list[str] = []  # this request's id, once `imgdesk cancel` asked

    def check_cancel_notes() -> None:
        if request_id in act_on_cancel_notes(engine, repo, data_dir):
            cancelled_elsewhere.append(request_id)

    note_timer = QTimer()
    note_timer.setInterval(CANCEL_NOTE_CHECK_MS)
    note_timer.timeout.connect(check_cancel_notes)
    note_timer.start()

    async def run() -> int:
        # Events an earlier run still owes (killed, stopped) go out now, under their own ids.
        sender.start()
        finished: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def on_finished(finished_id: str, _location: str, problem: str) -> None:
            # The finisher wrote the output CSV (or says why not) and queued the webhook.
            if finished_id == request_id and not finished.done():
                finished.set_result(problem)

        finisher.finished.connect(on_finished)
        engine.start_request(request_id)
        problem = await stop.unless_stopped(finished)
        if problem is None:
            stop_now(stop, engine, sender, repo, request_id, reporter)
        note_timer.stop()
        if cancelled_elsewhere:
            # The images still on the wire are stale: nothing waits for them.
            engine.shutdown(timeout_ms=0)
            reporter.stopped(f"request {request_id} cancelled from another terminal.")
        else:
            engine.shutdown()
        if problem:
            say(
                f"imgdesk: the output CSV could not be written: {problem} The images are "
                f"stored, and imgdesk export {request_id} -o OUTPUT.csv writes it elsewhere."
            )
        request = repo.get_request(request_id)
        assert request is not None
        status = request.status
        written = not problem
        reporter.finished(request, output if written else None)
        # This request's event and those resumed above are all delivered (or given up)
        # before the command exits.
        if await stop.unless_stopped(sender.drain()) is None:
            stop_now(stop, engine, sender, repo, request_id, reporter)
        if cancelled_elsewhere:
            # Downloads cut short still hold worker threads, which Python would wait for.
            exit_now(EXIT_FAILED)
        return EXIT_COMPLETED if status == "completed" and written else EXIT_FAILED

    try:
        with loop:
            return int(loop.run_until_complete(run()))
    finally:
        engine.shutdown()


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
    import qasync
    from PySide6.QtCore import QCoreApplication

    from imgdesk.engine.engine import Engine
    from imgdesk.engine.finisher import RequestFinisher
    from imgdesk.engine.webhooks import WebhookSender

    app = QCoreApplication.instance() or QCoreApplication([])
    engine = Engine(repo, settings, data_dir)
    sender = WebhookSender(Outbox(), settings)
    finisher = RequestFinisher(repo, engine, sender)
    loop = qasync.QEventLoop(app)
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
