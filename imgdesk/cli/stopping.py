"""Ctrl-C, SIGTERM or a lost database: one clean stop, one line, the right exit code."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from imgdesk.cli.console import EXIT_FAILED
from imgdesk.cli.reporter import Reporter
from imgdesk.core.db import close_database
from imgdesk.core.logs import stop_logging
from imgdesk.core.repository import Repository

if TYPE_CHECKING:
    from imgdesk.engine.engine import Engine
    from imgdesk.engine.webhooks import WebhookSender

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_T = TypeVar("_T")


class StopRequest:
    """Turns SIGINT/SIGTERM, or the database lost, into one clean stop of the run.

    The handlers run as event loop callbacks (asyncio's ``add_signal_handler``, which wakes
    Qt's loop through a wakeup fd), never inside an engine slot, so no KeyboardInterrupt
    is raised in the middle of the engine's work. After the first signal, a plain handler
    ends the process at once on the next one, even while the loop is busy.

    Attributes:
        requested: done once the run must stop.
        exit_code: 130 (Ctrl-C), 143 (SIGTERM), or 1 (the database is lost).
        signal_name: "Ctrl-C" or "SIGTERM"; empty when the database is lost.
        message: what the database loss was, in words.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.requested: asyncio.Future[None] = loop.create_future()
        self.exit_code = EXIT_FAILED
        self.signal_name = ""
        self.message = ""
        self._loop = loop
        self._ticker: Any = None
        for signum in STOP_SIGNALS:
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
            except NotImplementedError:  # Windows: no wakeup fd for the loop
                signal.signal(signum, self._on_signal_elsewhere)
                self._keep_python_running()

    async def unless_stopped(self, awaitable: Awaitable[_T]) -> _T | None:
        """The result of ``awaitable``, or None when a stop comes first."""
        task = asyncio.ensure_future(awaitable)
        waiting: list[asyncio.Future[Any]] = [task, self.requested]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        return None

    def database_lost(self, message: str) -> None:
        """Slot of ``Engine.database_lost``: nothing can be stored any more."""
        if not self.requested.done():
            self.message = message
            self.requested.set_result(None)

    def _on_signal(self, signum: int) -> None:
        if self.requested.done():
            _exit_at_once(signum, None)
        # The loop's wakeup fd stays, so an idle loop still wakes for the next signal.
        for each in STOP_SIGNALS:
            signal.signal(each, _exit_at_once)
        logger.info("stopping on signal %s", signum)
        self.exit_code = 128 + signum
        self.signal_name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        self.requested.set_result(None)

    def _on_signal_elsewhere(self, signum: int, frame: FrameType | None) -> None:
        self._loop.call_soon_threadsafe(self._on_signal, signum)

    def _keep_python_running(self) -> None:
        """Without a wakeup fd a Python signal handler waits for Python code to run."""
        if self._ticker is None:
            from PySide6.QtCore import QTimer

            self._ticker = QTimer()
            self._ticker.timeout.connect(lambda: None)
            self._ticker.start(100)


def stop_now(
    stop: StopRequest,
    engine: Engine,
    sender: WebhookSender,
    repo: Repository,
    request_id: str,
    reporter: Reporter,
) -> NoReturn:
    """End the run as ``stop`` asks: images in flight back to pending, one line, exit."""
    engine.shutdown(timeout_ms=0)  # nothing is waited for: the run ends now
    sender.stop_now()  # a POST in flight gives its claim back: the next run sends it at once
    if not stop.signal_name:
        reporter.note(stop.message)
        exit_now(stop.exit_code)
    request = repo.get_request(request_id)
    if request is not None and not request.finished:
        repo.set_request_error(
            request_id,
            f"Interrupted by {stop.signal_name}; imgdesk retry {request_id} resumes it.",
        )
        reporter.note(
            f"interrupted by {stop.signal_name}; the images in flight went back to pending "
            f"and imgdesk retry {request_id} resumes the request."
        )
    else:
        reporter.note(
            f"interrupted by {stop.signal_name}; the webhook still owed goes out with the next "
            "imgdesk run on this data folder."
        )
    exit_now(stop.exit_code)


def exit_now(code: int) -> NoReturn:
    """End the process without waiting for threads still on the network.

    A download or a webhook POST can take minutes to time out, and Qt's thread pool and
    qasync's executor wait for their threads when torn down. What is worth keeping is
    stored by now, and what a thread writes later is cleaned up by the next run (as after
    a crash), so the log and the database are closed and the process ends.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    stop_logging()
    close_database()
    os._exit(code)


def _exit_at_once(signum: int, frame: FrameType | None) -> None:
    """A second Ctrl-C (or SIGTERM) while stopping: the user wants out now."""
    os.write(sys.stderr.fileno(), b"imgdesk: stopped at once.\n")
    os._exit(128 + signum)
