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
