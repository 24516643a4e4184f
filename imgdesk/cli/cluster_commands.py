"""``retry``, ``cancel``, ``pause`` and ``resume`` on the cluster, from any machine (SPEC 11).

The request lives in the shared database and its images are the workers' messages, so these
commands only change the database and send messages: the workers do the rest. Every write
is conditional on the images' states (see :mod:`imgdesk.core.cluster_store`), so a command
racing a worker never undoes what the other did.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from imgdesk.cli.cancelling import request_to_cancel
from imgdesk.cli.commands import retry_plan
from imgdesk.cli.console import EXIT_COMPLETED, EXIT_FAILED, EXIT_REJECTED, say
from imgdesk.cli.reporter import Reporter
from imgdesk.cli.submitting import Submitter
from imgdesk.core.cluster_store import ClusterStore
from imgdesk.core.errors import ImdeskError
from imgdesk.core.repository import Repository

# A worker finishes a cancelled request when it takes the request's next message: soon,
# unless every worker thread is in a download (those end as usual, and store nothing).
CANCEL_WAIT_S = 5.0
_POLL_S = 0.2


def cmd_cancel_shared(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    """Cancel a cluster request: its unfinished images fail with ``cancelled`` (SPEC 2).

    The workers skip its remaining messages, and one of them finishes the request (its
    output CSV, its webhook) once. With ``--broker`` one more message makes sure a worker
    does so even when none of the request's messages is left. Exit 0 once it is cancelled
    (or had finished already), 2 for an unknown id.
    """
    request, code = request_to_cancel(repo, options.request_id)
    if request is None:
        return code
    from imgdesk.cluster import control  # here: a local run imports nothing of the cluster

    store = ClusterStore()
    submitter = Submitter.connect(options.broker, repo) if options.broker else None
    try:
        cancelled = control.cancel_request(
            store, submitter.actors if submitter is not None else None, request.id
        )
    except ImdeskError as error:  # the broker failed after the images were cancelled
        say(
            f"imgdesk: cancelled the unfinished images of request {request.id}, but no worker "
            f"could be told ({error}); a worker finishes it with its next message."
        )
        return EXIT_COMPLETED
    deadline = time.monotonic() + CANCEL_WAIT_S
    while not store.request_finished(request.id) and time.monotonic() < deadline:
        time.sleep(_POLL_S)
    current = repo.get_request(request.id)
    if current is None:
        say(f"imgdesk: request {request.id} was deleted meanwhile.")
        return EXIT_COMPLETED
    if not current.finished:
        say(
            f"imgdesk: cancelled {cancelled} unfinished images of request {request.id}; the "
            "workers finish the request (its output CSV and webhook) once a thread is free "
            f"(downloads under way end first, and store nothing); imgdesk retry {request.id} "
            "resumes it."
        )
        return EXIT_COMPLETED
    say(
        f"imgdesk: cancelled request {request.id} ({cancelled} unfinished images cancelled): "
        f"{current.status}, {current.done} done, {current.failed} failed of {current.total}; "
        f"imgdesk retry {request.id} resumes it."
    )
    return EXIT_COMPLETED


def cmd_retry_shared(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    """Retry a cluster request: failed images back to pending, sent, followed like ``process``.

    Pending images are sent again too (a submitter killed before it sent them all); images
    in flight are left to the broker, which redelivers a dead worker's messages.
    """
    if not options.broker:
        say("imgdesk: retry on the cluster needs --broker redis://... (or IMGDESK_BROKER_URL).")
        return EXIT_REJECTED
    plan = retry_plan(options, repo)
    if plan is None:
        return EXIT_REJECTED
    request, storage, output = plan
    submitter = Submitter.connect(options.broker, repo)
    if submitter is None:
        return EXIT_REJECTED
    if storage is not None:
        repo.set_request_storage(request.id, storage)
    from imgdesk.cluster import control

    try:
        retried, _sent = control.retry_request(ClusterStore(), submitter.actors, request.id)
    except ImdeskError as error:
        say(f"imgdesk: {error}")
        return EXIT_FAILED
    if not options.json:
        shown = output or "the request's folder in the storage"
        say(f"imgdesk: retrying {retried} failed images of {request.id}; output: {shown}")
    reporter = Reporter(options.json, sys.stdout, sys.stderr)
    # Sent above: the submitter only follows the request.
    return submitter.run(request.id, output, repo.load_settings(), reporter, image_ids=[])


def cmd_pause(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    """Pause the cluster: workers start no new image until ``imgdesk resume``."""
    return _set_paused(True)


def cmd_resume(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    """Resume the cluster after ``imgdesk pause``."""
    return _set_paused(False)


def _set_paused(paused: bool) -> int:
    from imgdesk.cluster import control

    try:
        control.set_paused(ClusterStore(), paused)
    except ImdeskError as error:
        say(f"imgdesk: {error}")
        return EXIT_FAILED
    if paused:
        say(
            "imgdesk: the cluster is paused: images in flight finish, no new one starts "
            "(imgdesk resume --database ... goes on)."
        )
    else:
        say("imgdesk: the cluster is resumed.")
    return EXIT_COMPLETED
