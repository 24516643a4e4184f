"""Run one request to its end under a ``QCoreApplication``: the engine, the CSV, the webhook."""

from __future__ import annotations

import asyncio
from pathlib import Path

from imgdesk.cli.console import EXIT_COMPLETED, EXIT_FAILED, say
from imgdesk.cli.reporter import Reporter
from imgdesk.cli.stopping import StopRequest, stop_now
from imgdesk.core.outbox import Outbox
from imgdesk.core.repository import Repository
from imgdesk.core.settings import Settings


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
    from PySide6.QtCore import QCoreApplication

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
        return EXIT_COMPLETED if status == "completed" and written else EXIT_FAILED

    try:
        with loop:
            return int(loop.run_until_complete(run()))
    finally:
        engine.shutdown()
