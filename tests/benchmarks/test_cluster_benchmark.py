"""The cluster benchmark's measuring parts on a tiny load: the figures are sane, not fast.

The benchmark itself is run by hand (``python -m benchmarks.cluster``); these tests run its
functions with real ``imgdesk worker`` processes, the private Redis and PostgreSQL of the
test suite and the benchmark's loopback server, and check the counts and that every rate
and ratio is a positive number. Nothing here asserts a duration.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import cluster
from tests.services_pg import PostgresServer
from tests.services_redis import RedisServer

TINY = cluster.Plan(quick=True, min_run_s=0.5, repetitions=1, corpus_images=20, quiet_wait_s=0)


@pytest.fixture
def services(redis_server: RedisServer, postgres_server: PostgresServer) -> cluster.Services:
    """The benchmark's view of the test suite's Redis and PostgreSQL."""
    return cluster.Services(redis_server, postgres_server)


@pytest.fixture
def server() -> Iterator[cluster.LoopbackServer]:
    """The benchmark's image server on its loopback hosts."""
    with cluster.LoopbackServer({**cluster.small_images(), **cluster.tiny_images()}) as running:
        yield running


def _sane(run: dict[str, Any], images: int, workers: int) -> None:
    assert run["images"] == images
    assert run["responses"] == images
    assert run["workers"] == workers
    assert isinstance(run["wall_s"], float) and run["wall_s"] > 0
    assert isinstance(run["images_per_s"], float) and run["images_per_s"] > 0
    assert 0 <= run["others"] <= 1
    assert cluster.engine_cpu_s(run) > 0
    if workers:
        assert run["transactions_per_image"] > 0


def test_the_server_answers_on_distinct_loopback_hosts(server: cluster.LoopbackServer) -> None:
    """Each URL goes to one of several hosts: the per-host limit sees them apart."""
    urls = server.urls(["small0.jpg"], cluster.HOSTS * 2, "t")
    hosts = {url.split("/")[2].split(":")[0] for url in urls}
    assert hosts == {f"127.0.0.{n}" for n in range(1, cluster.HOSTS + 1)}
    assert len(set(urls)) == len(urls)


def test_scaling_and_overhead_on_a_tiny_load(
    services: cluster.Services, server: cluster.LoopbackServer, tmp_path: Path
) -> None:
    """1 and 2 workers on a latency-bound load, then the overhead pair: figures are sane."""
    plan = cluster.Plan(
        quick=True, min_run_s=0.5, repetitions=1, corpus_images=20, latency_s=0.05, quiet_wait_s=0
    )
    scaling = cluster.measure_scaling(server, services, plan, tmp_path, (1, 2), count=12)
    assert set(scaling["runs"]) == {"1", "2"}
    for workers, runs in scaling["runs"].items():
        assert len(runs) == 1
        _sane(runs[0], 12, int(workers))
        assert runs[0]["cpu_s"]["postgres"] > 0  # the workers' database is watched too
    assert len(scaling["ratios"]) == 1 and scaling["ratios"][0] > 0

    tiny = sorted(cluster.tiny_images())
    pairs = cluster.measure_pairs(server, services, TINY, tmp_path, tiny, (1,), "overhead", 10)
    assert pairs["images"] == 10
    _sane(pairs["runs"]["0"][0], 10, 0)
    _sane(pairs["runs"]["1"][0], 10, 1)
    figures = cluster.overhead(pairs)
    assert all(len(values) == 1 for values in figures.values())
    assert figures["cluster_cpu_ms_per_image"][0] > 0
    assert figures["embedded_cpu_ms_per_image"][0] > 0

    results = {
        "plan": {"quick": True, "min_run_s": 0.5, "repetitions": 1, "latency_s": 0.05},
        "cores": 2,
        "load_before": {"1min": 1.0, "5min": 1.0, "15min": 1.0},
        "load_after": {"1min": 1.0, "5min": 1.0, "15min": 1.0},
        "hosts": cluster.HOSTS,
        "scaling": scaling,
        "overhead": pairs,
        "overhead_per_image": figures,
    }
    table = cluster.report(results)
    assert "Quick run" in table
    assert "2 workers / 1" in table
    assert "queue overhead" in table
    assert f"{cluster.HOSTS} loopback addresses" in table
    assert "PostgreSQL transactions per image" in table
    # Nothing is left behind: the run's database was dropped and the broker emptied.
    import redis

    client = redis.Redis.from_url(services.redis.url)
    try:
        assert client.dbsize() == 0
    finally:
        client.close()
