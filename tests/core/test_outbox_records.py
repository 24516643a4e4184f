"""The outbox hands back every stored field of a delivery and of its attempts, as stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgdesk.core.db import open_database
from imgdesk.core.outbox import PENDING, AttemptInfo, DeliveryInfo, Outbox
from imgdesk.core.webhook import DELIVERED, RETRY, AttemptOutcome


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    open_database(tmp_path / "db.sqlite3")
    return Outbox()


def test_a_delivery_and_its_attempts_come_back_field_for_field(outbox: Outbox) -> None:
    delivery_id = outbox.enqueue("req-1", "request.completed", "http://x/h", "s3cr", "{}", 10.0)
    first = AttemptOutcome(RETRY, 503, "HTTP 503", 40, "busy", 2.0, 10)
    attempt, after_first = outbox.record_attempt(delivery_id, first, 10.5, next_attempt_at=12.0)
    assert attempt == AttemptInfo(attempt.id, delivery_id, 10.5, 503, "HTTP 503", 40, "busy")
    assert after_first == DeliveryInfo(
        id=delivery_id,
        request_id="req-1",
        event="request.completed",
        url="http://x/h",
        secret="s3cr",
        payload="{}",
        status=PENDING,
        attempts=1,
        next_attempt_at=12.0,
        created_at=10.0,
        finished_at=None,
        last_error="HTTP 503",
    )

    second = AttemptOutcome(DELIVERED, 200, None, 250, "ok", None, 12)
    outbox.record_attempt(delivery_id, second, 12.0, next_attempt_at=None)
    full = outbox.get(delivery_id, with_history=True)
    assert full is not None
    assert (full.status, full.attempts, full.finished_at, full.last_error) == (
        DELIVERED,
        2,
        12.25,
        None,
    )
    assert [(a.attempted_at, a.status_code, a.error, a.response_excerpt) for a in full.history] == [
        (10.5, 503, "HTTP 503", "busy"),
        (12.0, 200, None, "ok"),
    ]
    assert outbox.list_deliveries("req-1") == [full]
