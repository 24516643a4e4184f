"""``imgdesk cancel``: cancel a request, whoever runs it: the window, a ``process``, or nobody."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from imgdesk.cli.commands import find_request
from imgdesk.cli.console import EXIT_COMPLETED, EXIT_FAILED, EXIT_REJECTED, say
from imgdesk.cli.running import cancel_here
from imgdesk.core.handover import CANCEL, ask_window, leave_cancel_note, remove_cancel_note
from imgdesk.core.instance import DataDirLock
from imgdesk.core.repository import Repository, RequestInfo

# A running `process` checks for notes twice a second; this leaves room for a busy machine.
CANCEL_WAIT_S = 10.0
_POLL_S = 0.1


def request_to_cancel(repo: Repository, request_id: str) -> tuple[RequestInfo | None, int]:
    """The request to cancel; or None and the exit code: 2 unknown, 0 finished already (said)."""
    request = find_request(repo, request_id)
    if request is None:
        return None, EXIT_REJECTED
    if request.finished:
        say(
            f"imgdesk: request {request.id} has already finished ({request.status}); nothing to do."
        )
        return None, EXIT_COMPLETED
    return request, EXIT_COMPLETED


def cmd_cancel(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    """Cancel the request: its unfinished images fail with ``cancelled`` (SPEC 2 and 6).

    Exit 0 once it is cancelled (or had already finished), 1 when whoever runs it did not
    cancel it, 2 for an unknown id.
    """
    request, code = request_to_cancel(repo, options.request_id)
    if request is None:
        return code
    answer = ask_window(data_dir, {CANCEL: request.id})
    if answer is not None:
        if answer["ok"] is True:
            say(f"imgdesk: the imgdesk window cancelled request {request.id}.")
            return EXIT_COMPLETED
        say(f"imgdesk: the imgdesk window did not cancel it: {answer.get('error')}")
        return EXIT_FAILED
    lock = DataDirLock(data_dir)
    if not lock.acquire("imgdesk cancel"):
        return _ask_the_running_command(repo, data_dir, request, lock.holder())
    try:
        cancelled = cancel_here(repo, repo.load_settings(), data_dir, request.id)
    finally:
        lock.release()
    return _said_cancelled(repo, request.id, f"{cancelled} unfinished images cancelled")


def _ask_the_running_command(
    repo: Repository, data_dir: Path, request: RequestInfo, holder: str
) -> int:
    """Leave a note for the ``process`` or ``retry`` holding the data folder; await its answer."""
    leave_cancel_note(data_dir, request.id)
    try:
        deadline = time.monotonic() + CANCEL_WAIT_S
        while time.monotonic() < deadline:
            current = repo.get_request(request.id)
            if current is None or current.finished:
                break
            time.sleep(_POLL_S)
    finally:
        # Never left behind: a later run must not cancel what the user retries meanwhile.
        remove_cancel_note(data_dir, request.id)
    current = repo.get_request(request.id)
    if current is None:
        say(f"imgdesk: request {request.id} was deleted meanwhile.")
        return EXIT_COMPLETED
    if not current.finished:
        say(
            f"imgdesk: {holder} holds {data_dir} and did not cancel request {request.id} "
            f"within {CANCEL_WAIT_S:g} s; stop it (Ctrl-C), then run imgdesk cancel "
            f"{request.id} again."
        )
        return EXIT_FAILED
    return _said_cancelled(repo, request.id, f"by {holder}")


def _said_cancelled(repo: Repository, request_id: str, how: str) -> int:
    """Say how the request ended once cancelled; exit 0."""
    request = repo.get_request(request_id)
    if request is None:
        return EXIT_COMPLETED
    say(
        f"imgdesk: cancelled request {request_id} ({how}): {request.status}, "
        f"{request.done} done, {request.failed} failed of {request.total}; "
        f"imgdesk retry {request_id} resumes it."
    )
    return EXIT_COMPLETED
