"""The speed and time left of requests, from their stored counts and active time."""

from __future__ import annotations

import pytest

from imgdesk.core.pace import MIN_ACTIVE_S, Pace, pace, time_left_text


def test_a_normal_run_has_a_speed_and_a_time_left() -> None:
    figures = pace(finished=30, total=90, active_s=12.0, bytes_done=6_000_000)
    assert figures.images_per_s == pytest.approx(2.5)
    assert figures.bytes_per_s == pytest.approx(500_000)
    assert figures.left == 60
    assert figures.eta_s == pytest.approx(24.0)  # 60 images at 2.5 a second
    assert not figures.paused


def test_nothing_finished_yet_has_no_speed_and_no_time_left() -> None:
    assert pace(finished=0, total=50, active_s=0.0, bytes_done=0) == Pace(None, None, 50, None)
    # Working for a while without an image finished (a slow server): still no figure, not
    # "0 images/s" with an endless time left.
    assert pace(finished=0, total=50, active_s=30.0, bytes_done=0) == Pace(None, None, 50, None)


def test_paused_work_shows_no_figure() -> None:
    figures = pace(finished=30, total=90, active_s=12.0, bytes_done=6_000_000, paused=True)
    assert figures == Pace(None, None, 60, None, paused=True)


def test_a_request_that_only_reused_outputs_gets_no_silly_speed() -> None:
    # 300 images reused from an earlier run in 40 ms read as 7,500 images/s (and hundreds of
    # MB/s): under MIN_ACTIVE_S of active time there is no speed at all.
    figures = pace(finished=300, total=300, active_s=0.04, bytes_done=120_000_000)
    assert figures.images_per_s is None and figures.bytes_per_s is None
    assert figures.eta_s == 0.0  # nothing left, whatever the speed
    assert pace(finished=3, total=10, active_s=MIN_ACTIVE_S / 2, bytes_done=9000).eta_s is None


def test_finished_work_has_nothing_left_and_never_a_negative_count() -> None:
    figures = pace(finished=90, total=90, active_s=36.0, bytes_done=1000)
    assert figures.left == 0 and figures.eta_s == 0.0
    assert figures.images_per_s == pytest.approx(2.5)
    assert pace(finished=5, total=3, active_s=2.0, bytes_done=0).left == 0  # a late count
    assert pace(finished=0, total=0, active_s=0.0, bytes_done=0).eta_s == 0.0  # no images


@pytest.mark.parametrize(
    ("eta_s", "text"),
    [
        (None, ""),
        (0.0, ""),
        (3.2, "a few seconds left"),
        (24.0, "about 20 s left"),
        (47.0, "about 50 s left"),
        (58.0, "about 1 min left"),
        (130.0, "about 2 min left"),
        (59 * 60 + 20, "about 59 min left"),
        (3600.0, "about 1 h left"),
        (80 * 60 + 10, "about 1 h 20 min left"),
        (26 * 3600.0, "about 26 h left"),
    ],
)
def test_the_time_left_reads_as_an_estimate(eta_s: float | None, text: str) -> None:
    assert time_left_text(eta_s) == text
