"""Cancel, retry, pause and resume on the cluster: the one code the commands and the window run.

The request lives in the shared database and its images are the workers' messages, so each
of these only changes the database (conditional on the images' states, see
:mod:`imgdesk.core.cluster_store`) and sends messages; the workers do the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from imgdesk.core.cluster_store import ClusterStore
from imgdesk.core.errors import DatabaseBusyError
from imgdesk.core.repository import Repository

if TYPE_CHECKING:
    from imgdesk.cluster.actors import ClusterActors

logger = logging.getLogger(__name__)

# The workers' writes hold a shared SQLite file's lock in turns: wait for ours this long.
BUSY_TRIES = 40
BUSY_WAIT_S = 0.25

_T = TypeVar("_T")


def when_free(call: Callable[[], _T]) -> _T:
    """``call()``, tried again while the database is busy with the workers' writes."""
    for _ in range(BUSY_TRIES - 1):
        try:
            return call()
        except DatabaseBusyError:
            time.sleep(BUSY_WAIT_S)
    return call()


def cancel_request(store: ClusterStore, actors: ClusterActors | None, request_id: str) -> int:
    """Fail the request's unfinished images with ``cancelled``; returns how many.

    With ``actors`` one more message makes a worker finish the request (its output CSV and
    webhook) even when none of its messages is left.

    Raises:
        BrokerError: Redis stopped answering (the images are cancelled all the same).
    """
    from imgdesk.cluster.actors import send_images

    cancelled = when_free(lambda: store.cancel_request(request_id))
    image_id = store.any_image_id(request_id)
    if actors is not None and image_id is not None:
        send_images(actors, [image_id], store.request_priority(request_id))
    logger.info("request %s cancelled on the cluster (%s images)", request_id, cancelled)
    return cancelled


def retry_request(
    store: ClusterStore,
    actors: ClusterActors,
    request_id: str,
    image_ids: list[int] | None = None,
) -> tuple[int, list[int]]:
    """Put failed images (all, or these) back to pending and send a message for each.

    Pending images are sent again too (a submitter killed before it sent them all); images
    in flight are left to the broker, which redelivers a dead worker's messages.

    Returns:
        How many failed images went back to pending, and the image ids sent.

    Raises:
        BrokerError: Redis stopped answering.
    """
    from imgdesk.cluster.actors import send_images

    if image_ids is None:
        retried = when_free(lambda: store.retry_request(request_id))
    else:
        retried = when_free(lambda: Repository().reset_failed(request_id, image_ids))
    sent = store.images_waiting(request_id)
    if not sent and not store.request_finished(request_id):
        # Nothing to send, yet unfinished: one message makes a worker finish it if it is due.
        nudge = store.any_image_id(request_id)
        sent = [] if nudge is None else [nudge]
    send_images(actors, sent, store.request_priority(request_id))
    logger.info("request %s: %s failed images retried on the cluster", request_id, retried)
    return retried, sent


def set_paused(store: ClusterStore, paused: bool) -> None:
    """Pause or resume the whole cluster (every request, every worker)."""
    when_free(lambda: store.set_paused(paused))
    logger.info("the cluster is %s", "paused" if paused else "resumed")
