"""Keep a request's stored outputs and its done rows in agreement, after a crash or a loss."""

from __future__ import annotations

import logging

from imgdesk.core.errors import ImageError
from imgdesk.core.repository import Repository
from imgdesk.core.storage import Storage, storage_key

logger = logging.getLogger(__name__)

# Output files the engine may find in a request's folder (for removing orphans of a crash).
OUTPUT_EXTENSIONS = (".jpg", ".webp", ".avif")


def reconcile_outputs(
    storage: Storage, repository: Repository, request_id: str, *, writing: bool
) -> list[int]:
    """Match the request's stored outputs with its done rows, in one listing.

    An output without its done row was written just before a crash: its image is pending
    again and will be stored anew, so the output goes (only while nothing of ours is
    ``writing`` there). A done row without its output (the file or its folder was deleted)
    goes back to pending and is fetched again. So an output always has its done row and a
    done row always has its output.

    Returns:
        The ids of the done images put back to pending.
    """
    try:
        present = storage.names(request_id)
    except ImageError as error:
        logger.warning("request %s: cannot list its outputs: %s", request_id, error.message)
        return []
    outputs = repository.done_outputs(request_id)
    if not writing:
        storage.clean_partial(request_id)
        for name in sorted(present - outputs.keys()):
            if name.endswith(OUTPUT_EXTENSIONS):
                logger.info("removing %s, left by an interrupted run", name)
                storage.delete(storage_key(request_id, name))
    vanished = [
        image_id
        for name, image_ids in outputs.items()
        if name not in present
        for image_id in image_ids
    ]
    if not vanished:
        return []
    count = repository.reset_done(request_id, vanished)
    logger.warning(
        "request %s: the files of %s finished images have vanished; fetching them again",
        request_id,
        count,
    )
    return vanished
