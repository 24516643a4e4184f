"""One FIFO queue of jobs per host, served round-robin within the concurrency limits."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterator
from typing import Generic, Protocol, TypeVar


class HostJob(Protocol):
    """What the queues need of a job."""

    request_id: str
    host: str


J = TypeVar("J", bound=HostJob)


class HostQueues(Generic[J]):
    """Jobs waiting to start, one queue per host, so a big host cannot starve the others.

    Also counts the jobs running per host, for the per-host limit.
    """

    def __init__(self) -> None:
        self._queues: dict[str, deque[J]] = {}
        self._active: Counter[str] = Counter()

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def push(self, job: J) -> None:
        """Queue a job behind the others of its host."""
        self._queues.setdefault(job.host, deque()).append(job)

    def start(self, free_slots: Callable[[], int], per_host: int) -> Iterator[J]:
        """Jobs to start now, one host after another, while slots are free.

        Each job given out counts as running on its host until :meth:`finished`.
        """
        started = True
        while started:
            started = False
            for host in list(self._queues):
                if free_slots() <= 0:
                    return
                if self._active[host] >= per_host:
                    continue
                queue = self._queues[host]
                job = queue.popleft()
                if not queue:
                    del self._queues[host]
                self._active[host] += 1
                started = True
                yield job

    def finished(self, job: J) -> None:
        """A job given out by :meth:`start` ended: its host has a free slot."""
        self._active[job.host] -= 1

    def take_request(self, request_id: str) -> list[J]:
        """Remove and return the request's queued jobs, in queue order."""
        taken: list[J] = []
        for host in list(self._queues):
            kept: deque[J] = deque()
            for job in self._queues[host]:
                (taken if job.request_id == request_id else kept).append(job)
            if kept:
                self._queues[host] = kept
            else:
                del self._queues[host]
        return taken

    def clear(self) -> None:
        """Forget every queued job (running ones still count until they finish)."""
        self._queues.clear()
