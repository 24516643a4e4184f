"""How fast requests go and how long they still need, from their stored figures.

The window's status bar and its requests list both show a speed and a time left, so the
figures are computed once, here, without Qt.

The speed is the average over the whole run's *active* time (the seconds images were in
flight: pauses, waits for a retry and the idle time between a run and its retry are left
out), not a moving average over the last seconds. Active time already removes what made the
old figures wrong, and the average then needs nothing but the counters every request stores,
so the requests list can show it for any request, after a restart too. It also keeps the time
left calm: a moving average jumps with every large image or burst of small ones. The price is
that it follows a server that slows down in the middle of a long run only gradually.
"""

from __future__ import annotations

from dataclasses import dataclass

# Under this much active time a speed means nothing: a request that only reused the outputs
# of an earlier run finishes in a few milliseconds and would read as hundreds of images/s.
MIN_ACTIVE_S = 1.0


@dataclass(frozen=True)
class Pace:
    """The speed of some work and the time it still needs; None where it cannot be told."""

    images_per_s: float | None  # images finished (done or failed) per active second
    bytes_per_s: float | None  # bytes downloaded per active second
    left: int  # images not finished yet
    eta_s: float | None  # seconds left at that speed; 0.0 once nothing is left
    paused: bool = False  # no figures while paused: they would read as work going on


def pace(
    finished: int, total: int, active_s: float, bytes_done: int, *, paused: bool = False
) -> Pace:
    """The speed and time left of work with ``finished`` of ``total`` images finished.

    Requests that run at the same time are worked on together, so for several of them pass
    the sums of their counts and the longest active time.

    Args:
        finished: images done or failed for good.
        total: every image of the work.
        active_s: seconds the work had images in flight.
        bytes_done: bytes downloaded: the inputs of the finished images, and what the
            running downloads received so far where the caller knows it.
        paused: whether the work is paused (then no speed and no time left).
    """
    left = max(0, total - finished)
    if paused:
        return Pace(None, None, left, None, paused=True)
    if active_s < MIN_ACTIVE_S:
        return Pace(None, None, left, 0.0 if left == 0 else None)
    images_per_s = finished / active_s if finished > 0 else None
    bytes_per_s = bytes_done / active_s if bytes_done > 0 else None
    if left == 0:
        eta_s: float | None = 0.0
    elif images_per_s is None:
        eta_s = None
    else:
        eta_s = left / images_per_s
    return Pace(images_per_s, bytes_per_s, left, eta_s)


def time_left_text(eta_s: float | None) -> str:
    """``about 2 min left``: an estimate, rounded as one; empty when unknown or nothing is left.

    The figure is an estimate, so it is worded as one, rounded to what reads steady: ten
    seconds under a minute, minutes under an hour, ten minutes beyond.
    """
    if eta_s is None or eta_s <= 0:
        return ""
    if eta_s < 10:
        return "a few seconds left"
    if eta_s < 55:
        return f"about {round(eta_s / 10) * 10} s left"
    minutes = max(1, round(eta_s / 60))
    if minutes < 60:
        return f"about {minutes} min left"
    hours, minutes = divmod(round(eta_s / 600) * 10, 60)
    return f"about {hours} h {minutes:02d} min left" if minutes else f"about {hours} h left"
