"""The per-host limit across every worker: slots in Redis that a dead worker gives back.

Each host has a sorted set in Redis; a download holds one member (a token naming the worker
process) whose score is the time, by Redis's clock, at which the slot lapses. A worker
process pushes that time forward for every slot it holds, every few seconds, while the
download runs, however long it takes; a worker killed with ``kill -9`` stops doing so, and
its slots lapse within :data:`SLOT_TTL_MS`. Taking a slot first drops the lapsed ones, then
adds a member only while fewer than the limit are left: one script, so two workers never
both take the last slot.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from typing import Any

import redis

logger = logging.getLogger(__name__)

# A slot not refreshed for this long is a dead worker's, and free again.
SLOT_TTL_MS = 10_000
# A worker refreshes its slots this often: five times per TTL, so a busy machine that
# delays one refresh by seconds still keeps its slots.
REFRESH_EVERY_S = 2.0
KEY_PREFIX = "imgdesk-host-slots:"

# Redis's clock for every worker, so the machines' clocks need not agree.
_NOW_MS = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
"""
# KEYS[1] the host's set; ARGV token, limit, ttl_ms. 1 when the slot was taken, else 0.
_TAKE = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
)
# KEYS the hosts' sets, ARGV[1] ttl_ms, ARGV[2..] the tokens, one per key. Only members still
# there are moved on (XX): a slot given back, or lapsed and taken by another, stays so.
_REFRESH = (
    _NOW_MS
    + """
local refreshed = 0
for index, key in ipairs(KEYS) do
  refreshed = refreshed + redis.call(
    'ZADD', key, 'XX', 'CH', now_ms + tonumber(ARGV[1]), ARGV[index + 1])
  redis.call('PEXPIRE', key, tonumber(ARGV[1]))
end
return refreshed
"""
)


class HostSlots:
    """The slots this worker process holds, and the thread that keeps them alive.

    Thread-safe: every worker thread takes and gives back its own slots.
    """

    def __init__(
        self,
        client: redis.Redis,
        ttl_ms: int = SLOT_TTL_MS,
        refresh_every_s: float = REFRESH_EVERY_S,
    ) -> None:
        self._client = client
        self._ttl_ms = ttl_ms
        self._refresh_every_s = refresh_every_s
        self._take: Any = client.register_script(_TAKE)
        self._refresh: Any = client.register_script(_REFRESH)
        # Who holds a slot, for a person reading the set: this machine and process.
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._held: dict[str, str] = {}  # token -> the host's key
        self._lock = threading.Lock()
        self._refresher: threading.Thread | None = None
        self._stop = threading.Event()

    def take(self, host: str, limit: int) -> str | None:
        """A slot of ``host`` if fewer than ``limit`` are taken (by any worker); its token."""
        key = KEY_PREFIX + host
        token = f"{self._owner}:{uuid.uuid4().hex}"
        if not self._take(keys=[key], args=[token, limit, self._ttl_ms]):
            return None
        with self._lock:
            self._held[token] = key
            if self._refresher is None:
                self._refresher = threading.Thread(
                    target=self._keep_alive, name="imgdesk-host-slots", daemon=True
                )
                self._refresher.start()
        return token

    def give_back(self, token: str) -> None:
        """Free the slot of ``token`` (taken by :meth:`take`)."""
        with self._lock:
            key = self._held.pop(token, None)
        if key is not None:
            self._client.zrem(key, token)

    def refresh(self) -> int:
        """Move the lapse time of every slot still held on by a TTL; how many moved."""
        with self._lock:
            held = list(self._held.items())
        if not held:
            return 0
        keys = [key for _, key in held]
        tokens = [token for token, _ in held]
        return int(self._refresh(keys=keys, args=[self._ttl_ms, *tokens]))

    def stop(self) -> None:
        """Stop refreshing (the slots still held then lapse by themselves)."""
        self._stop.set()

    def _keep_alive(self) -> None:
        while not self._stop.wait(self._refresh_every_s):
            try:
                self.refresh()
            except redis.RedisError as error:
                # The broker is down: the worker cannot take messages either; try again.
                logger.warning("could not refresh the per-host slots: %s", error)
