"""types: tasks and results survive a trip through JSON, as a task queue carries them."""

from __future__ import annotations

import json

from imgdesk.core.output import OutputSettings
from imgdesk.core.types import (
    KEPT_ORIGINAL,
    OVER_TARGET,
    CachedOutput,
    ImageResult,
    ImageTask,
    has_note,
    image_note,
)

WEBP = OutputSettings(format="webp", quality=60, max_width=1200, target_size_kb=150)


def test_a_task_with_a_cached_output_round_trips_through_json() -> None:
    cached = CachedOutput(
        "req/0001_mug_1.webp", '"etag"', None, "ab" * 32, 10, 5, 8, 6, "png", "over_target"
    )
    task = ImageTask(7, "req", "http://h/a.png?x=1", "req/0001_mug_1.webp", WEBP, 2, cached)
    again = ImageTask.from_dict(json.loads(json.dumps(task.to_dict())))
    assert again == task
    assert isinstance(again.cached, CachedOutput)
    assert isinstance(again.output, OutputSettings)


def test_a_task_without_cache_and_a_result_round_trip() -> None:
    task = ImageTask(1, "req", "http://h/a.jpg", "req/0001_a_1.jpg", OutputSettings())
    assert ImageTask.from_dict(json.loads(json.dumps(task.to_dict()))) == task
    result = ImageResult(
        1, "req", "http://h/a.jpg", "failed", 3, "http_503", "busy", True, 2.5, 503
    )
    assert ImageResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_a_done_result_round_trips_with_its_format_and_notes() -> None:
    result = ImageResult(
        1,
        "req",
        "http://h/a.jpg",
        "done",
        1,
        output_format="avif",
        kept_original=False,
        over_target=True,
    )
    again = ImageResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    assert again.note == OVER_TARGET


def test_notes_name_what_a_person_should_know_about_an_output() -> None:
    assert image_note(False, False) is None
    assert image_note(True, False) == KEPT_ORIGINAL == "kept_original"
    assert image_note(False, True) == OVER_TARGET == "over_target"
    both = image_note(True, True)
    assert both == "kept_original,over_target"
    assert has_note(both, KEPT_ORIGINAL) and has_note(both, OVER_TARGET)
    assert not has_note(None, KEPT_ORIGINAL) and not has_note("over_target", KEPT_ORIGINAL)
