"""The states of requests, images and webhook deliveries: the one place their words live.

They are ``StrEnum`` members, so they compare equal to the words stored in the database
(``ImageStatus.DONE == "done"``) and can be written to it as they are.
"""

from __future__ import annotations

from enum import StrEnum


class RequestStatus(StrEnum):
    """Where a processing request stands (SPEC 2)."""

    # Its rows are still being recorded from a dropped file: listed, never started.
    IMPORTING = "importing"
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class ImageStatus(StrEnum):
    """Where one image stands (SPEC 2)."""

    PENDING = "pending"
    DOWNLOADING = "downloading"
    COMPRESSING = "compressing"
    DONE = "done"
    FAILED = "failed"


class DeliveryStatus(StrEnum):
    """Where one webhook delivery of the outbox stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


# An image some worker is busy with: back to pending after a crash or a stop.
IN_FLIGHT = (ImageStatus.DOWNLOADING, ImageStatus.COMPRESSING)
UNFINISHED = (ImageStatus.PENDING, *IN_FLIGHT)
FINISHED_REQUEST = (RequestStatus.COMPLETED, RequestStatus.FAILED)


class ShownState(StrEnum):
    """The window's word for a row: a stored state seen through pause, hold, retry and cancel.

    The database keeps only where work stands; the window also says why it does not move
    (paused, waiting for disk space, waiting to retry) and how it ended in the user's terms
    (cancelled, finished with failures). Every stored request and image state is one of
    these too, so a view's state key is always a ``ShownState``.
    """

    IMPORTING = "importing"
    PENDING = "pending"
    QUEUED = "queued"  # a pending request, not paused
    PAUSED = "paused"  # a pending or processing request while the engine is paused
    HELD = "held"  # a request waiting for disk space
    RETRYING = "retrying"  # a pending image that failed before: it waits for its next try
    PROCESSING = "processing"
    DOWNLOADING = "downloading"
    COMPRESSING = "compressing"
    DONE = "done"
    COMPLETED = "completed"
    FINISHED_WITH_FAILURES = "finished_with_failures"  # a failed request with images done
    FAILED = "failed"
    CANCELLED = "cancelled"  # a failed image or request the user cancelled


# Each stored word's ShownState by a dict look-up: ``ShownState(word)`` costs twenty times
# more, and sorting a 300,000-image table by state asks once per image.
_SHOWN_BY_WORD: dict[str, ShownState] = {state.value: state for state in ShownState}


def shown_state(status: str) -> ShownState:
    """The window's state for a stored request or image status, as it is.

    Raises:
        KeyError: ``status`` is no stored state's word.
    """
    return _SHOWN_BY_WORD[status]
