"""types: tasks and results survive a trip through JSON, as a task queue carries them."""

from __future__ import annotations

import json

from imgdesk.core.types import CachedOutput, ImageResult, ImageTask


def test_a_task_with_a_cached_output_round_trips_through_json() -> None:
    cached = CachedOutput("req/0001_mug_1.jpg", '"etag"', None, "ab" * 32, 10, 5, 8, 6, "png")
    task = ImageTask(7, "req", "http://h/a.png?x=1", "req/0001_mug_1.jpg", 2, cached)
    again = ImageTask.from_dict(json.loads(json.dumps(task.to_dict())))
    assert again == task
    assert isinstance(again.cached, CachedOutput)


def test_a_task_without_cache_and_a_result_round_trip() -> None:
    task = ImageTask(1, "req", "http://h/a.jpg", "req/0001_a_1.jpg")
    assert ImageTask.from_dict(json.loads(json.dumps(task.to_dict()))) == task
    result = ImageResult(
        1, "req", "http://h/a.jpg", "failed", 3, "http_503", "busy", True, 2.5, 503
    )
    assert ImageResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
