"""The per-host slots in a real Redis: the limit holds, a slot held is kept, a dead one lapses.

Nothing here asserts a duration: a lapse is waited for (generously), and a kept slot is
checked by Redis's own clock after many times its TTL, with a refresh every tenth of it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from imgdesk.cluster.host_slots import KEY_PREFIX, HostSlots
from tests.cluster.test_cluster import wait_for
from tests.services_redis import RedisServer

NEVER_S = 3600.0  # a refresh interval that never comes during a test: a dead worker


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the test's private Redis."""
    connection = redis.Redis.from_url(redis_server.url)
    try:
        yield connection
    finally:
        connection.close()


def redis_ms(client: redis.Redis) -> int:
    """Redis's clock, in ms: the one the slots lapse by."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def test_the_limit_holds_across_processes_and_a_slot_given_back_is_free(
    client: redis.Redis,
) -> None:
    one, other = HostSlots(client), HostSlots(client)  # two worker processes
    first = one.take("a.test", 2)
    second = other.take("a.test", 2)
    assert first is not None and second is not None
    assert one.take("a.test", 2) is None and other.take("a.test", 2) is None
    assert other.take("b.test", 2) is not None  # another host has slots of its own

    one.give_back(first)

    assert other.take("a.test", 2) is not None
    assert client.zcard(KEY_PREFIX + "a.test") == 2
    one.stop()
    other.stop()


def test_a_slot_nobody_refreshes_lapses_and_is_taken_again(client: redis.Redis) -> None:
    dead = HostSlots(client, ttl_ms=500, refresh_every_s=NEVER_S)  # as if killed with -9
    alive = HostSlots(client)
    assert dead.take("a.test", 1) is not None
    assert alive.take("a.test", 1) is None

    taken: list[str] = []

    def take() -> bool:
        token = alive.take("a.test", 1)
        if token is not None:
            taken.append(token)
        return token is not None

    wait_for(take, "the dead worker's slot to lapse")

    # The dead worker's refresh (had it come back) does not steal the slot back.
    assert dead.refresh() == 0
    assert client.zrange(KEY_PREFIX + "a.test", 0, -1) == [taken[0].encode()]
    alive.stop()


def test_a_refresh_moves_the_lapse_time_of_held_slots_only(client: redis.Redis) -> None:
    slots = HostSlots(client, ttl_ms=60_000, refresh_every_s=NEVER_S)
    held = slots.take("a.test", 5)
    given_back = slots.take("a.test", 5)
    assert held is not None and given_back is not None
    key = KEY_PREFIX + "a.test"
    first = client.zscore(key, held)
    assert first is not None
    slots.give_back(given_back)
    now = redis_ms(client)
    wait_for(lambda: redis_ms(client) > now + 5, "Redis's clock to move on")

    assert slots.refresh() == 1

    later = client.zscore(key, held)
    assert later is not None and later > first
    assert client.zscore(key, given_back) is None  # not brought back


def test_a_slow_download_keeps_its_slot_past_the_ttl(client: redis.Redis) -> None:
    slow = HostSlots(client, ttl_ms=1000, refresh_every_s=0.1)  # its refresher runs
    other = HostSlots(client, ttl_ms=1000, refresh_every_s=0.1)
    token = slow.take("a.test", 1)
    assert token is not None
    start = redis_ms(client)
    wait_for(lambda: redis_ms(client) > start + 5000, "five TTLs to pass")

    assert other.take("a.test", 1) is None  # still held: the limit holds

    slow.give_back(token)
    assert other.take("a.test", 1) is not None
    slow.stop()
    other.stop()
