"""How long to wait before trying again: one backoff for image downloads and webhooks.

The delay doubles from a first delay, and jitter only adds to it (up to half again), so many
clients do not retry in step and no retry comes sooner than its base delay (SPEC 3 and 5).
A server's ``Retry-After`` is honoured when it asks for longer, up to a cap.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

MAX_RETRY_DELAY_S = 24 * 3600.0  # 20 doublings of a long first delay must stay sane
MAX_JITTER = 0.5  # a retry waits its base delay plus up to half of it again, never less


@dataclass(frozen=True)
class RetryDelay:
    """How long to wait before a retry, and why it is not what the receiver asked for.

    Attributes:
        seconds: the wait.
        note: set when the receiver's ``Retry-After`` was cut to the cap, in words for the
            attempt's record (``asked to wait 100000 s; waiting 60 s, the cap``).
    """

    seconds: float
    note: str | None = None


def retry_delay(
    retry_number: int,
    first_delay_s: float,
    retry_after: float | None,
    retry_after_cap_s: float,
    rng: random.Random | None = None,
) -> RetryDelay:
    """The wait before retry ``retry_number`` (1 for the first retry).

    The delay doubles each time from ``first_delay_s``, and jitter only ADDS to it (up to
    half again), so many senders do not retry in step and no retry comes sooner than its
    base delay. A receiver's ``Retry-After`` is honoured when it asks for longer, up to the
    cap, so a receiver cannot park an event for days; the cut is said in the note.
    """
    base = min(first_delay_s * 2.0 ** (retry_number - 1), MAX_RETRY_DELAY_S)
    if retry_after is not None:
        wait = max(min(retry_after, retry_after_cap_s), base)
        if wait >= retry_after:
            return RetryDelay(wait)
        why = "the cap" if wait == retry_after_cap_s else "the backoff; Retry-After is capped"
        return RetryDelay(
            wait, f"asked to wait {_seconds(retry_after)} s; waiting {_seconds(wait)} s, {why}"
        )
    jitter = (rng or random).uniform(0.0, MAX_JITTER)
    return RetryDelay(min(base * (1.0 + jitter), MAX_RETRY_DELAY_S))


def _seconds(value: float) -> str:
    """Seconds as people write them: ``60``, ``1.5``, ``100000``."""
    return f"{value:.1f}".removesuffix(".0")
