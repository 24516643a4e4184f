"""The values the repository hands out: a request with its counts, and one image.

Frozen and plain, so a window, a command or a worker can keep them without a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from imgdesk.core import states
from imgdesk.core.output import OutputSettings
from imgdesk.core.storage_choice import StorageChoice

FINAL_REQUEST_STATES = tuple(str(state) for state in states.FINISHED_REQUEST)

# Request priorities (SPEC 11), highest first; a request recorded without one (NULL) is normal.
PRIORITIES = ("high", "normal", "low")
HIGH, NORMAL, LOW = PRIORITIES


def priority_rank(priority: str) -> int:
    """0 for high, 1 for normal, 2 for low: the lower rank is served first."""
    return PRIORITIES.index(priority)


@dataclass(frozen=True)
class RequestInfo:
    """A processing request with its image counts and the output settings it was made with."""

    id: str
    csv_name: str
    csv_path: str
    status: str
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    total: int
    done: int
    failed: int
    in_flight: int
    input_bytes: int
    output_bytes: int
    webhook_url: str | None
    webhook_secret: str | None
    output_csv: str | None
    output: OutputSettings
    storage: StorageChoice = field(default_factory=StorageChoice)
    files_removed_at: float | None = None  # its stored files were cleaned up then
    active_s: float = 0.0  # seconds it had images in flight
    priority: str = NORMAL  # one of PRIORITIES: higher requests are served first

    @property
    def pending(self) -> int:
        """Images not started yet (or waiting for a retry)."""
        return self.total - self.done - self.failed - self.in_flight

    @property
    def finished(self) -> bool:
        """True once the request reached ``completed`` or ``failed``."""
        return self.status in FINAL_REQUEST_STATES

    @property
    def duration_s(self) -> float | None:
        """Seconds it was worked on (images in flight), pauses and waits left out.

        None before it started. While it runs the figure is at most a second behind.
        """
        if self.started_at is None:
            return None
        return self.active_s

    @property
    def bytes_saved(self) -> int:
        """Input bytes minus output bytes over the finished images."""
        return self.input_bytes - self.output_bytes


class ImageInfo(NamedTuple):
    """One image with its product's identity, as shown in tables and exports.

    A named tuple, not a dataclass: a 300,000-image request builds this many of them, and a
    frozen dataclass's ``__init__`` costs ten times more.
    """

    id: int
    request_id: str
    row_index: int
    serial: str
    product_name: str
    position: int
    url: str
    status: str
    attempts: int
    error_code: str | None
    error: str | None
    http_status: int | None
    input_bytes: int | None
    output_bytes: int | None
    width: int | None
    height: int | None
    input_type: str | None
    download_ms: int | None
    compress_ms: int | None
    output_path: str | None
    output_url: str | None
    output_format: str | None
    note: str | None  # see imgdesk.core.types.image_note
