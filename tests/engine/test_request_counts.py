"""Database upkeep: request counters kept by a trigger, the log checkpointed off the writer."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

import pytest

from imgdesk.core import db as db_module
from imgdesk.core.db import SCHEMA_VERSION, db, open_database
from imgdesk.core.output import OutputSettings
from imgdesk.core.repository import Repository

from .conftest import create_request


def counted(request_id: str) -> tuple[int, ...]:
    """The same figures as the counters, aggregated over the image rows."""
    row = db.execute_sql(
        "SELECT COUNT(*), "
        "COALESCE(SUM(status = 'done'), 0), COALESCE(SUM(status = 'failed'), 0), "
        "COALESCE(SUM(status IN ('downloading', 'compressing')), 0), "
        "COALESCE(SUM(CASE WHEN status = 'done' THEN input_bytes END), 0), "
        "COALESCE(SUM(output_bytes), 0) FROM image WHERE request_id = ?",
        (request_id,),
    ).fetchone()
    return tuple(row)


def shown(repo: Repository, request_id: str) -> tuple[int, ...]:
    info = repo.get_request(request_id)
    assert info is not None
    return (
        info.total,
        info.done,
        info.failed,
        info.in_flight,
        info.input_bytes,
        info.output_bytes,
    )


def test_counters_follow_every_kind_of_change(repo: Repository) -> None:
    rows = [(str(n), f"P{n}", [f"http://h/{n}-{k}.jpg" for k in range(3)]) for n in range(40)]
    request_id = create_request(repo, rows)
    other_id = create_request(repo, rows[:5])
    ids = [image.id for image in repo.list_images(request_id)]
    assert shown(repo, request_id) == counted(request_id) == (120, 0, 0, 0, 0, 0)

    rng = random.Random(7)
    states = ["pending", "downloading", "compressing", "done", "failed"]
    for _round in range(30):
        updates = {}
        for image_id in rng.sample(ids, 25):
            status = rng.choice(states)
            fields: dict[str, object] = {"status": status}
            if status == "done":
                fields |= {"input_bytes": rng.randint(1, 9999), "output_bytes": rng.randint(1, 999)}
            elif rng.random() < 0.3:
                fields |= {"input_bytes": None, "output_bytes": None}
            updates[image_id] = fields
        repo.update_images(updates)
        assert shown(repo, request_id) == counted(request_id)
    repo.reset_failed(request_id)
    assert shown(repo, request_id) == counted(request_id)
    repo.fail_unfinished(request_id, "cancelled", "Cancelled by the user.")
    assert shown(repo, request_id) == counted(request_id)
    assert shown(repo, request_id)[1] > 0  # some are done, so the test saw real changes
    assert shown(repo, other_id) == counted(other_id) == (15, 0, 0, 0, 0, 0)


def test_a_schema_1_database_gets_its_counters_filled(repo: Repository, data_dir: Path) -> None:
    request_id = create_request(repo, [("1", "Shirt", ["http://h/a.jpg", "http://h/b.jpg"])])
    first, second = (image.id for image in repo.list_images(request_id))
    repo.update_images({first: {"status": "done", "input_bytes": 900, "output_bytes": 300}})
    db.close()

    # Turn the file back into what schema 1 wrote: no counter columns, no trigger.
    path = data_dir / "imgdesk.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("DROP TRIGGER image_counts")
    for column in (
        "total_images",
        "done_images",
        "failed_images",
        "in_flight_images",
        "done_input_bytes",
        "output_bytes",
    ):
        raw.execute(f"ALTER TABLE request DROP COLUMN {column}")
    # Nor the columns of schema 3.
    for table, column in (
        ("request", "output_settings"),
        ("image", "output_format"),
        ("image", "note"),
        ("output_cache", "note"),
        ("request", "storage"),
        ("request", "files_removed_at"),
        ("request", "active_s"),
    ):
        raw.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    raw.execute("UPDATE key_value SET value = '1' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()

    open_database(path)
    assert shown(repo, request_id) == (2, 1, 0, 0, 900, 300)
    repo.update_images({second: {"status": "failed"}})
    assert shown(repo, request_id) == (2, 1, 1, 0, 900, 300)
    version = db.execute_sql("SELECT value FROM key_value WHERE key = 'schema_version'")
    assert int(version.fetchone()[0]) == SCHEMA_VERSION == 5
    [request] = repo.list_requests()
    assert request.output == OutputSettings()  # JPEG at the default quality, as it was made


def test_the_log_is_checkpointed_by_its_own_thread_not_on_commit(
    repo: Repository, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module._Checkpointer, "INTERVAL_S", 0.05)
    path = data_dir / "imgdesk.sqlite3"
    open_database(path)  # again, with the short interval
    assert db.execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    checkpointer = db_module._checkpointer
    assert checkpointer is not None and checkpointer.is_alive()
    before = path.stat().st_size
    rows = [(str(n), f"P{n}", [f"http://h/{n}-{k}.jpg" for k in range(3)]) for n in range(3000)]
    create_request(repo, rows)  # a few MB into the log; the database file only by checkpoint
    deadline = time.monotonic() + 5
    while path.stat().st_size <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.stat().st_size > before
    db_module.close_database()
    assert not checkpointer.is_alive()
