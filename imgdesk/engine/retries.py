"""When a transient failure is tried again, and what its images say meanwhile (SPEC 3)."""

from __future__ import annotations

from typing import Any

from imgdesk.core.backoff import retry_delay
from imgdesk.core.settings import Settings
from imgdesk.core.states import ImageStatus
from imgdesk.core.types import ImageResult


def retry_plan(
    result: ImageResult, attempt: int, settings: Settings
) -> tuple[float, dict[str, Any]]:
    """Seconds to wait before the next attempt, and the image columns to write meanwhile.

    The server's Retry-After was capped by the download already (a longer one fails).
    """
    delay = retry_delay(
        attempt, settings.retry_base_delay_s, result.retry_after, settings.retry_after_cap_s
    ).seconds
    waiting = {
        "status": ImageStatus.PENDING,
        "error_code": result.error_code,
        "error": f"{result.error} Trying again in {delay:.0f} s.",
        "http_status": result.http_status,
    }
    return delay, waiting
