"""The Redis broker, made once per process from a ``redis://`` URL before actors are used."""

from __future__ import annotations

import logging

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from imgdesk.core.errors import ImdeskError
from imgdesk.core.redact import redact_url

logger = logging.getLogger(__name__)

# Dramatiq's default; a worker silent this long is taken for dead and its messages redelivered.
DEFAULT_HEARTBEAT_TIMEOUT_S = 60.0
# Out of dramatiq's 1,000,000 per broker command: the check for dead workers is one cheap
# script, so do it on 1 command in 10 and a dead worker's messages come back within seconds.
MAINTENANCE_CHANCE = 100_000
# How long a redelivered-and-dead worker's unacknowledged messages are kept for it (a week).
DEAD_MESSAGE_TTL_MS = 7 * 24 * 3600 * 1000


class BrokerError(ImdeskError):
    """The broker cannot be reached or its URL cannot be used (one sentence)."""


def make_broker(url: str, heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_TIMEOUT_S) -> RedisBroker:
    """The broker of ``url``, checked with a PING and set as this process's broker.

    Raises:
        BrokerError: not a ``redis://`` URL, or Redis does not answer there.
    """
    shown = redact_url(url)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise BrokerError(f"imgdesk cannot use the broker {shown}: give a redis:// URL.")
    broker = RedisBroker(  # type: ignore[no-untyped-call]
        url=url,
        heartbeat_timeout=round(heartbeat_timeout_s * 1000),
        dead_message_ttl=DEAD_MESSAGE_TTL_MS,
        maintenance_chance=MAINTENANCE_CHANCE,
    )
    try:
        broker.client.ping()
    except redis.RedisError as error:
        raise BrokerError(f"imgdesk cannot reach the broker at {shown} ({error}).") from None
    dramatiq.set_broker(broker)
    logger.info("broker %s", shown)
    return broker
