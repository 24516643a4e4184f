"""Jobs waiting to start: by their request's priority, then one FIFO queue per host."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, Protocol, TypeVar

from imgdesk.core.records import NORMAL, priority_rank


class HostJob(Protocol):
    """What the queues need of a job."""

    request_id: str
    host: str


J = TypeVar("J", bound=HostJob)


class HostQueues(Generic[J]):
    """Jobs waiting to start, one queue per host, so a big host cannot starve the others.

    The queues come in levels, one per request priority (SPEC 11): no job of a level starts
    while a higher level has a job waiting, even one whose host is busy. Within a level,
    hosts are served round-robin and each host's jobs in the order they came. Also counts
    the jobs running per host, for the per-host limit.
    """

    def __init__(self) -> None:
        self._levels: dict[int, dict[str, deque[J]]] = {}  # rank -> host -> its jobs
        # Request id -> rank (absent: normal), for every request started since the engine was.
        self._ranks: dict[str, int] = {}
        self._active: Counter[str] = Counter()

    def __len__(self) -> int:
        return sum(len(queue) for hosts in self._levels.values() for queue in hosts.values())

    def rank_of(self, request_id: str) -> int:
        """The request's rank (see :func:`~imgdesk.core.records.priority_rank`)."""
        return self._ranks.get(request_id, priority_rank(NORMAL))

    def queued_as_high_as(self, request_id: str) -> int:
        """How many jobs wait at the request's rank or higher (a lower rank is higher)."""
        rank = self.rank_of(request_id)
        return sum(
            len(queue)
            for level, hosts in self._levels.items()
            if level <= rank
            for queue in hosts.values()
        )

    def first_by_rank(self, request_ids: Iterable[str]) -> str | None:
        """The highest request of ``request_ids``; of equals, the first one given."""
        return min(request_ids, key=self.rank_of, default=None)

    def set_rank(self, request_id: str, rank: int) -> None:
        """Give the request's jobs ``rank``: its queued ones move there, in their order.

        Moved, they queue behind the jobs already at that rank (first come, first served).
        """
        if rank == self.rank_of(request_id):
            self._ranks[request_id] = rank
            return  # moving them would only put them behind their equals
        self._ranks[request_id] = rank
        for job in self.take_request(request_id):
            self.push(job)

    def push(self, job: J) -> None:
        """Queue a job behind the others of its host at its request's rank."""
        hosts = self._levels.setdefault(self.rank_of(job.request_id), {})
        hosts.setdefault(job.host, deque()).append(job)

    def start(
        self, free_slots: Callable[[], int], per_host: int, reading: str | None = None
    ) -> Iterator[J]:
        """Jobs to start now, highest rank first, while slots are free.

        ``reading`` is the highest request with images not queued yet (not read from the
        database): nothing below its rank starts, as if those images were queued already.
        Each job given out counts as running on its host until :meth:`finished`.
        """
        unread_rank = None if reading is None else self.rank_of(reading)
        for rank in sorted(self._levels):
            if unread_rank is not None and rank > unread_rank:
                return
            yield from self._start_level(rank, free_slots, per_host)
            if rank in self._levels:  # jobs of this level still wait: no lower one starts
                return

    def _start_level(self, rank: int, free_slots: Callable[[], int], per_host: int) -> Iterator[J]:
        """The jobs of one level, one host after another, while slots are free."""
        hosts = self._levels[rank]
        started = True
        while started:
            started = False
            for host in list(hosts):
                if free_slots() <= 0:
                    return
                if self._active[host] >= per_host:
                    continue
                queue = hosts[host]
                job = queue.popleft()
                if not queue:
                    del hosts[host]
                    if not hosts:
                        del self._levels[rank]
                self._active[host] += 1
                started = True
                yield job

    def finished(self, job: J) -> None:
        """A job given out by :meth:`start` ended: its host has a free slot."""
        self._active[job.host] -= 1

    def take_request(self, request_id: str) -> list[J]:
        """Remove and return the request's queued jobs, in queue order."""
        taken: list[J] = []
        for rank in list(self._levels):
            hosts = self._levels[rank]
            for host in list(hosts):
                kept: deque[J] = deque()
                for job in hosts[host]:
                    (taken if job.request_id == request_id else kept).append(job)
                if kept:
                    hosts[host] = kept
                else:
                    del hosts[host]
            if not hosts:
                del self._levels[rank]
        return taken

    def clear(self) -> None:
        """Forget every queued job (running ones still count until they finish)."""
        self._levels.clear()
