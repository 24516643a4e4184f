"""The cluster tests' fixture: worker processes and a submitter on a private Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.test_cluster import Cluster
from tests.services_redis import RedisServer


@pytest.fixture
def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer
) -> Iterator[Cluster]:
    """A cluster on a SQLite file (or, with ``indirect`` "postgresql", on PostgreSQL)."""
    if getattr(request, "param", "sqlite") == "postgresql":
        database_url = request.getfixturevalue("postgres_url")
    else:
        database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    running = Cluster(tmp_path, redis_server, database_url)
    try:
        yield running
    finally:
        running.stop()
