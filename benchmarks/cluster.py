"""The cluster benchmark (issue 15): ``imgdesk worker`` processes against the embedded engine.

``python -m benchmarks.cluster [--quick] [--json FILE]`` starts its own private Redis and
PostgreSQL (with the test suite's start and stop code, ``tests/services_*.py``) and an image
server on several loopback addresses, then measures three figures, each as min / median /
max over repetitions of runs of at least 15 s (``--quick``: 3 s, and the report says so):

1. **Scaling on a latency-bound load**: every image waits ``latency`` (200 ms) at the server
   before its answer; small images, so the CPU is not the limit. 1, 2 and 4 ``imgdesk
   worker --processes 1 --threads 5`` subprocesses, the request submitted by the real
   ``imgdesk process --database ... --broker ...``. Images/s each and the ratio 4 / 1.
2. **CPU-bound on this machine**: the photo corpus (:mod:`benchmarks.corpus`), 1 and 2
   workers against the embedded ``imgdesk process`` on the same images, in the same run.
3. **Overhead per image of the queue**: tiny images answered at once, 1 worker against the
   embedded engine: the extra wall time per image, and the CPU per image of the worker,
   Redis and PostgreSQL processes against the embedded process's.

Every run is timed from the first image request the server sees to the last image response
(as :mod:`benchmarks.runner` times the local engine). The CPU figures come from ``/proc``
at those two moments, for every process of the run; ``others`` is what the rest of the
machine used meanwhile, as a share of all cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks.corpus import ensure_corpus
from benchmarks.formats import machine_load
from benchmarks.runner import imgdesk_command, wait_for_quiet
from benchmarks.server import process_cpu_s
from benchmarks.workloads import catalogue_csv
from tests import services_pg, services_redis
from tests.images import encode, photo
from tests.services_pg import PostgresServer
from tests.services_redis import RedisServer

THREADS = 5  # --threads of each worker: the original per-worker concurrency
PER_HOST_LIMIT = 5  # imgdesk's default per-host limit, held across all workers
# Enough hosts that 4 workers x 5 threads never wait for a host's slot: the slots are keyed
# by host name (imgdesk/cluster/host_slots.py), so each loopback address is a host of its own.
HOSTS = 8
LATENCY_S = 0.2
WORKER_COUNTS = (1, 2, 4)
CPU_WORKER_COUNTS = (1, 2)
SCALING_TARGET = 3.5
RUN_MARGIN = 1.1  # runs are sized for the minimum length plus 10 %
START_TIMEOUT_S = 90.0  # a worker on a busy machine takes a few seconds to import
RUN_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Plan:
    """How much to measure.

    Attributes:
        quick: shorter runs, said so in the report.
        min_run_s: the shortest measured run.
        repetitions: runs of each row.
        corpus_images: photos of the CPU-bound figure (a multiple of 20).
        latency_s: the server's wait before each answer on the latency-bound load.
        quiet_wait_s: how long to wait for other processes to leave the cores before a run.
    """

    quick: bool
    min_run_s: float
    repetitions: int
    corpus_images: int
    latency_s: float = LATENCY_S
    quiet_wait_s: float = 10.0


FULL = Plan(quick=False, min_run_s=15.0, repetitions=3, corpus_images=200)
QUICK = Plan(quick=True, min_run_s=3.0, repetitions=2, corpus_images=20, quiet_wait_s=3.0)


# -- the services -----------------------------------------------------------------------------


@dataclass
class Services:
    """A running Redis and PostgreSQL: fresh databases, an empty broker, their processes."""

    redis: RedisServer
    postgres: PostgresServer

    def new_database(self) -> str:
        """The URL of a new empty database."""
        return self.postgres.create_database("imgdesk_bench")

    def transactions(self, url: str) -> int:
        """Transactions made in the database of ``url``, once its clients are gone.

        A backend hands its statistics over as it ends: wait (up to 10 s) until none is left.
        """
        name = url.rsplit("/", 1)[-1]
        admin = self.postgres.admin()
        try:
            with admin.cursor() as cursor:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    cursor.execute(
                        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s", (name,)
                    )
                    if cursor.fetchone() == (0,):
                        break
                    time.sleep(0.1)
                cursor.execute(
                    "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
                    (name,),
                )
                row = cursor.fetchone()
        finally:
            admin.close()
        return int(row[0]) if row else 0

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (made by :meth:`new_database`)."""
        self.postgres.drop_database(url)

    def empty_broker(self) -> None:
        """Forget every queue, delayed message, heartbeat and host slot of earlier runs."""
        import redis

        client = redis.Redis.from_url(self.redis.url)
        try:
            client.flushall()
        finally:
            client.close()

    def pids(self) -> dict[str, list[int]]:
        """The processes of the services now: Redis, and PostgreSQL with its backends."""
        return {
            "broker": [self.redis.process.pid],
            "postgres": [self.postgres.pid, *_children(self.postgres.pid)],
        }


@contextlib.contextmanager
def start_services(folder: Path) -> Iterator[Services]:
    """A private Redis and PostgreSQL, started and stopped by the test suite's own code.

    Raises:
        RuntimeError: a server could not start (redis-server or PostgreSQL is missing).
    """
    redis_folder = Path(tempfile.mkdtemp(prefix="redis-", dir=folder))
    redis_service = services_redis.start_redis(redis_folder)
    try:
        postgres_service = services_pg.start_postgres()
        try:
            yield Services(redis_service, postgres_service)
        finally:
            services_pg.stop_postgres(postgres_service)
    finally:
        services_redis.stop_redis(redis_service)


def _children(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (PostgreSQL's backends and helpers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.append(int(entry))
    return found


# -- the image server -------------------------------------------------------------------------


def _busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - fields[3] - fields[4]) / ticks, sum(fields[:8]) / ticks


@dataclass
class Snapshot:
    """The CPU seconds of the machine, this process and each watched process at one moment."""

    at: float
    machine_busy: float
    machine_total: float
    own_cpu: float
    cpu: dict[str, dict[int, float]]

    @classmethod
    def take(cls, watched: dict[str, list[int]]) -> Snapshot:
        busy, total = _busy_seconds()
        cpu = {
            group: {pid: used for pid in pids if (used := process_cpu_s(pid)) is not None}
            for group, pids in watched.items()
        }
        return cls(time.perf_counter(), busy, total, time.process_time(), cpu)


@dataclass
class Span:
    """One run seen from the server: its first request and its ``expected``-th response.

    At both moments it takes a :class:`Snapshot` of the processes ``watch()`` names (called
    then, so PostgreSQL's backends are listed as they are).
    """

    expected: int
    watch: Any  # () -> dict[str, list[int]]
    first: Snapshot | None = None
    last: Snapshot | None = None
    responses: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def request_started(self) -> None:
        with self._lock:
            if self.first is None:
                self.first = Snapshot.take(self.watch())

    def response_sent(self) -> None:
        with self._lock:
            self.responses += 1
            if self.responses == self.expected:
                self.last = Snapshot.take(self.watch())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HostServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        owner = self.server.owner
        body = owner.files.get(self.path.split("?", 1)[0].rsplit("/", 1)[-1])
        if body is None:
            self._answer(404, b"not found", "text/plain")
            return
        span = owner.span
        if span is not None:
            span.request_started()
        if owner.latency_s:
            time.sleep(owner.latency_s)
        kind = "image/png" if body.startswith(b"\x89PNG") else "image/jpeg"
        self._answer(200, body, kind)
        if span is not None:
            span.response_sent()

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silent: a log line per request would cost more than the answer."""


class _HostServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    owner: LoopbackServer


class LoopbackServer:
    """Serves named files from memory on 127.0.0.1 ... 127.0.0.N, one "host" per address.

    Linux answers the whole of 127.0.0.0/8 on the loopback interface, so each address is a
    distinct host for imgdesk's per-host limit without leaving the machine.
    """

    def __init__(self, files: dict[str, bytes], hosts: int = HOSTS) -> None:
        self.files = files
        self.latency_s = 0.0
        self.span: Span | None = None
        self._servers = [_HostServer((f"127.0.0.{n}", 0), _Handler) for n in range(1, hosts + 1)]
        for server in self._servers:
            server.owner = self

    @property
    def base_urls(self) -> list[str]:
        """One base URL per host."""
        return [f"http://{s.server_address[0]!s}:{s.server_address[1]}" for s in self._servers]

    def urls(self, names: list[str], count: int, tag: str) -> list[str]:
        """``count`` distinct URLs cycling over ``names`` and over the hosts."""
        bases = self.base_urls
        return [
            f"{bases[i % len(bases)]}/img/{names[i % len(names)]}?run={tag}&n={i}"
            for i in range(count)
        ]

    def __enter__(self) -> LoopbackServer:
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


# -- one run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """What one run downloads: ``count`` URLs over ``names``, answered after ``latency_s``."""

    names: list[str]
    count: int
    latency_s: float = 0.0


def run_once(
    server: LoopbackServer,
    services: Services | None,
    load: Load,
    workers: int,
    work_dir: Path,
    quiet_wait_s: float,
) -> dict[str, Any]:
    """One ``imgdesk process`` run: embedded (``workers`` 0) or on that many workers.

    Raises:
        RuntimeError: a process failed, or the request did not end with every image done.
    """
    if workers and services is None:
        raise ValueError("a cluster run needs the services")
    folder = Path(tempfile.mkdtemp(prefix="imgdesk-bench-cluster-", dir=work_dir))
    command, env = imgdesk_command(None)
    database = services.new_database() if services is not None and workers else None
    processes: dict[str, list[subprocess.Popen[bytes]]] = {"workers": []}
    try:
        cluster_args = []
        if database is not None and services is not None:
            cluster_args = ["--database", database, "--broker", services.redis.url]
            processes["workers"] = _start_workers(command, env, folder, cluster_args, workers)
        csv_path = folder / "catalogue.csv"
        csv_path.write_bytes(catalogue_csv(server.urls(load.names, load.count, folder.name)))
        submitter: list[subprocess.Popen[bytes]] = []

        def watched() -> dict[str, list[int]]:
            pids = {"workers": [w.pid for w in processes["workers"]]}
            pids["process"] = [p.pid for p in submitter]
            if services is not None and workers:
                pids.update(services.pids())
            return pids

        span = Span(load.count, watched)
        server.latency_s, server.span = load.latency_s, span
        wait_for_quiet(quiet_wait_s)
        started = time.perf_counter()
        with open(folder / "process.txt", "wb") as stderr:
            child = subprocess.Popen(
                [*command, "--data-dir", str(folder / "data"), "process", str(csv_path)]
                + ["-o", str(folder / "output.csv"), *cluster_args],
                cwd=folder,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
            submitter.append(child)
            try:
                child.wait(timeout=RUN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        exited = time.perf_counter()
        server.span = None
        if child.returncode != 0:
            tail = (folder / "process.txt").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"imgdesk process exited with {child.returncode}:\n{tail}")
        status = _status(command, env, folder, cluster_args)
        if status["succeeded"] != load.count:
            raise RuntimeError(
                f"imgdesk process did {status['succeeded']} of {load.count} images "
                f"({status['failed']} failed): the figures would not compare"
            )
        if span.first is None or span.last is None:
            raise RuntimeError(f"the server saw {span.responses} of {load.count} image responses")
        figures = _figures(span.first, span.last, load, workers, started, exited, span.responses)
        if services is not None and database is not None:
            _stop_workers(processes["workers"])  # their last statistics reach the server
            figures["transactions_per_image"] = services.transactions(database) / load.count
        return figures
    finally:
        server.span = None
        _stop_workers(processes["workers"])
        if services is not None and database is not None:
            services.drop_database(database)
            services.empty_broker()
        shutil.rmtree(folder, ignore_errors=True)


def _start_workers(
    command: list[str], env: dict[str, str], folder: Path, cluster_args: list[str], count: int
) -> list[subprocess.Popen[bytes]]:
    """``count`` ``imgdesk worker`` processes, each with its own data folder and log.

    The first one creates the tables of the new database alone; the others start once it
    works, and every one is waited for until it says it takes messages.
    """
    started: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []

    def start(number: int) -> None:
        log = folder / f"worker{number}.txt"
        logs.append(log)
        with log.open("wb") as stderr:
            started.append(
                subprocess.Popen(
                    [*command, "--data-dir", str(folder / f"worker{number}"), "worker"]
                    + [*cluster_args, "--storage", str(folder / "outputs")]
                    + ["--processes", "1", "--threads", str(THREADS)],
                    cwd=folder,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            )

    try:
        start(1)
        _wait_started(started, logs)
        for number in range(2, count + 1):
            start(number)
        _wait_started(started, logs)
    except BaseException:
        _stop_workers(started)
        raise
    return started


def _wait_started(workers: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    """Wait until every worker logged that it started (its Dramatiq threads take messages)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        texts = [log.read_text(errors="replace") for log in logs]
        if all("started with" in text for text in texts):
            return
        for worker, text in zip(workers, texts, strict=True):
            if worker.poll() is not None:
                raise RuntimeError(f"imgdesk worker exited with {worker.returncode}:\n{text}")
        if time.monotonic() > deadline:
            raise RuntimeError("imgdesk worker did not start:\n" + "\n".join(texts)[-3000:])
        time.sleep(0.1)


def _stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each worker (a clean stop), SIGKILL one that does not stop within 60 s."""
    for worker in workers:
        if worker.poll() is None:
            os.kill(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()


def _status(
    command: list[str], env: dict[str, str], folder: Path, cluster_args: list[str]
) -> dict[str, Any]:
    """The request's counts from ``imgdesk status --json`` (one request in the database)."""
    completed = subprocess.run(
        [*command, "--data-dir", str(folder / "data"), "status", "--json", *cluster_args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or len(lines) != 1:
        raise RuntimeError(f"imgdesk status failed:\n{completed.stderr[-2000:]}")
    status: dict[str, Any] = json.loads(lines[0])
    return status


def _figures(
    first: Snapshot,
    last: Snapshot,
    load: Load,
    workers: int,
    started: float,
    exited: float,
    responses: int,
) -> dict[str, Any]:
    """A run's figures from the snapshots at its first request and its last response."""
    wall = max(last.at - first.at, 1e-9)
    cpu: dict[str, float] = {}
    for group, pids in last.cpu.items():
        before = first.cpu.get(group, {})
        # A process born in between (a PostgreSQL backend) counts from zero.
        cpu[group] = sum(used - before.get(pid, 0.0) for pid, used in pids.items())
    own = last.own_cpu - first.own_cpu
    cores = max(last.machine_total - first.machine_total, 1e-9) / wall
    foreign = (last.machine_busy - first.machine_busy) - sum(cpu.values()) - own
    return {
        "workers": workers,
        "images": load.count,
        "latency_s": load.latency_s,
        "wall_s": wall,
        "images_per_s": load.count / wall,
        "cpu_s": cpu,
        "server_cpu_s": own,
        "others": max(0.0, foreign) / (wall * cores),
        "startup_s": first.at - started,
        "tail_s": exited - last.at,
        "responses": responses,
    }


def engine_cpu_s(run: dict[str, Any]) -> float:
    """The CPU of what does the work: the embedded process, or workers, Redis and PostgreSQL."""
    cpu = run["cpu_s"]
    if run["workers"] == 0:
        return float(cpu["process"])
    return float(cpu["workers"] + cpu.get("broker", 0.0) + cpu.get("postgres", 0.0))


# -- the three figures ------------------------------------------------------------------------


def small_images() -> dict[str, bytes]:
    """Small product photos (320 x 240 JPEG, a few KB): the CPU is not what limits."""
    return {f"small{n}.jpg": encode(photo(320 + 8 * n, 240), "JPEG", quality=90) for n in range(4)}


def tiny_images() -> dict[str, bytes]:
    """Tiny images (32 x 32), so the queue's own cost is what a run measures."""
    return {
        "tiny0.jpg": encode(photo(32, 32), "JPEG", quality=90),
        "tiny1.png": encode(photo(32, 32), "PNG"),
    }


def _images_for(rate: float, min_run_s: float, multiple: int = 1) -> int:
    """Images for a run of at least ``min_run_s`` (plus the margin) at ``rate`` images/s."""
    count = math.ceil(rate * min_run_s * RUN_MARGIN)
    return max(multiple, math.ceil(count / multiple) * multiple)


def measure_scaling(
    server: LoopbackServer,
    services: Services,
    plan: Plan,
    work_dir: Path,
    worker_counts: tuple[int, ...] = WORKER_COUNTS,
    count: int | None = None,
) -> dict[str, Any]:
    """Figure 1: images/s with 1, 2 and 4 workers on the latency-bound load.

    A run's images are sized from the best rate it could reach (workers x threads images per
    latency), so a run never ends sooner than ``plan.min_run_s``.
    """
    names = sorted(n for n in server.files if n.startswith("small"))
    runs: dict[str, list[dict[str, Any]]] = {str(w): [] for w in worker_counts}
    for repetition in range(plan.repetitions):
        order = worker_counts if repetition % 2 == 0 else tuple(reversed(worker_counts))
        for workers in order:
            best_rate = workers * THREADS / plan.latency_s
            images = count or _images_for(best_rate, plan.min_run_s)
            _progress(f"latency-bound: {workers} worker(s), {images} images")
            load = Load(names, images, plan.latency_s)
            runs[str(workers)].append(
                run_once(server, services, load, workers, work_dir, plan.quiet_wait_s)
            )
    low, high = str(min(worker_counts)), str(max(worker_counts))
    ratios = [
        top["images_per_s"] / one["images_per_s"]
        for top, one in zip(runs[high], runs[low], strict=True)
    ]
    return {"runs": runs, "ratios": ratios, "hosts": len(server.base_urls)}


def measure_pairs(
    server: LoopbackServer,
    services: Services,
    plan: Plan,
    work_dir: Path,
    names: list[str],
    worker_counts: tuple[int, ...],
    what: str,
    count: int | None = None,
    probe_images: int = 0,
) -> dict[str, Any]:
    """The embedded command and ``worker_counts`` workers on the same images, taking turns.

    Without ``count``, one embedded run over ``probe_images`` (default: ``names`` once; not
    kept) sizes the runs; when a run
    still comes out shorter than ``plan.min_run_s`` (the probe met a busier machine), the
    runs are sized again from the fastest rate seen and measured again (at most twice).
    """
    sized = count is None
    if count is None:
        probe_load = Load(names, probe_images or len(names))
        _progress(f"{what}: sizing the runs with one embedded run over {probe_load.count} images")
        probe = run_once(server, None, probe_load, 0, work_dir, plan.quiet_wait_s)
        count = _images_for(probe["images_per_s"], plan.min_run_s, len(names))
    rows = (0, *worker_counts)
    for _sizing in range(3):
        runs: dict[str, list[dict[str, Any]]] = {str(w): [] for w in rows}
        for repetition in range(plan.repetitions):
            for workers in rows if repetition % 2 == 0 else tuple(reversed(rows)):
                _progress(f"{what}: {_row_name(workers)}, {count} images")
                load = Load(names, count)
                runs[str(workers)].append(
                    run_once(server, services, load, workers, work_dir, plan.quiet_wait_s)
                )
            latest = [row_runs[-1] for row_runs in runs.values()]
            if sized and _sizing < 2 and min(r["wall_s"] for r in latest) < plan.min_run_s:
                fastest = max(r["images_per_s"] for r in latest)
                count = _images_for(fastest, plan.min_run_s, len(names))
                break
        else:
            break
    return {"runs": runs, "images": count}


def overhead(pairs: dict[str, Any]) -> dict[str, list[float]]:
    """Figure 3 per repetition: extra wall ms per image, CPU ms per image of each side."""
    embedded, cluster = pairs["runs"]["0"], pairs["runs"]["1"]
    return {
        "wall_ms_per_image": [
            (c["wall_s"] - e["wall_s"]) * 1000 / c["images"]
            for c, e in zip(cluster, embedded, strict=True)
        ],
        "cluster_cpu_ms_per_image": [engine_cpu_s(c) * 1000 / c["images"] for c in cluster],
        "embedded_cpu_ms_per_image": [engine_cpu_s(e) * 1000 / e["images"] for e in embedded],
    }


# -- the report -------------------------------------------------------------------------------


def _spread(values: list[float], form: str) -> str:
    """``min / median / max`` of ``values``, each formatted with ``form``."""
    return " / ".join(
        format(v, form) for v in (min(values), statistics.median(values), max(values))
    )


def _row_name(workers: int) -> str:
    if workers == 0:
        return "embedded `imgdesk process`"
    return f"{workers} worker{'s' if workers > 1 else ''}"


def _row(label: str, runs: list[dict[str, Any]], extra: str = "") -> str:
    median = statistics.median
    cpu = median(engine_cpu_s(r) * 1000 / r["images"] for r in runs)
    return (
        f"| {label} | {runs[0]['images']} | {_spread([r['images_per_s'] for r in runs], '.1f')} "
        f"| {median(r['wall_s'] for r in runs):.1f} | {cpu:.1f} "
        f"| {median(r['others'] for r in runs):.0%} | {extra} |"
    )


def report(results: dict[str, Any]) -> str:
    """The README-ready markdown table and the figures around it."""
    plan = results["plan"]
    lines = ["# imgdesk cluster benchmark (issue 15)", ""]
    if plan["quick"]:
        lines += [
            f"**Quick run**: runs of >= {plan['min_run_s']:g} s, {plan['repetitions']} "
            "repetitions; not the figures to quote.",
            "",
        ]
    load = results["load_before"], results["load_after"]
    lines += [
        f"Machine: {results['cores']} cores; load average (1 / 5 / 15 min) before "
        + " / ".join(f"{load[0][k]:.2f}" for k in ("1min", "5min", "15min"))
        + ", after "
        + " / ".join(f"{load[1][k]:.2f}" for k in ("1min", "5min", "15min"))
        + f". Runs of >= {plan['min_run_s']:g} s, {plan['repetitions']} repetitions; "
        "`others` is the CPU the rest of the machine used during a run, in % of all cores.",
        "",
        "| row | images | images/s (min / median / max) | wall s | CPU ms/img | others | |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    scaling = results.get("scaling")
    if scaling:
        for workers, runs in scaling["runs"].items():
            label = f"latency-bound ({plan['latency_s'] * 1000:.0f} ms), {_row_name(int(workers))}"
            lines.append(_row(label, runs))
        ratio = statistics.median(scaling["ratios"])
        verdict = "met" if ratio >= SCALING_TARGET else "NOT met"
        top = max(int(w) for w in scaling["runs"])
        lines.append(
            f"| **{top} workers / 1** (per repetition) | | {_spread(scaling['ratios'], '.2f')}× "
            f"| | | | target ≥ {SCALING_TARGET}×: {verdict} |"
        )
    for key, title in (("cpu_bound", "photo corpus"), ("overhead", "tiny images")):
        pairs = results.get(key)
        if not pairs:
            continue
        embedded = pairs["runs"]["0"]
        for workers, runs in pairs["runs"].items():
            extra = ""
            if workers != "0":
                shares = [
                    c["images_per_s"] / e["images_per_s"]
                    for c, e in zip(runs, embedded, strict=True)
                ]
                extra = f"{_spread(shares, '.2f')}× embedded"
            lines.append(_row(f"{title}, {_row_name(int(workers))}", runs, extra))
    figures = results.get("overhead_per_image")
    if figures:
        lines.append(
            "| **queue overhead** (1 worker − embedded) | | "
            f"{_spread(figures['wall_ms_per_image'], '.1f')} ms/img wall | | "
            f"{statistics.median(figures['cluster_cpu_ms_per_image']):.1f} vs "
            f"{statistics.median(figures['embedded_cpu_ms_per_image']):.1f} | | |"
        )
    lines += ["", *_notes(results)]
    return "\n".join(lines) + "\n"


def _notes(results: dict[str, Any]) -> list[str]:
    notes = [
        f"- Hosts: the images are spread over {results['hosts']} loopback addresses "
        "(127.0.0.1 ...), each a host of its own: imgdesk's per-host limit (5 by default) "
        "holds across all workers and is keyed by host name, so 4 workers x 5 threads need "
        f"at least 4 hosts; {results['hosts']} leave every thread a free slot.",
        "- Timed from the first image request the server sees to the last image response. "
        "CPU ms/img: the embedded process's, or the workers' + Redis's + PostgreSQL's "
        "(the submitter's polling apart); the image server (this process) is not counted.",
        "- Workers: `imgdesk worker --processes 1 --threads 5` each, started and ready "
        "before the run; the request submitted with `imgdesk process --database ... --broker "
        "...`. The embedded engine runs `imgdesk process` with its defaults.",
    ]
    runs = [
        run
        for key in ("scaling", "cpu_bound", "overhead")
        for rows in (results.get(key) or {}).get("runs", {}).values()
        for run in rows
    ]
    scaling = results.get("scaling")
    if scaling:
        top = max(scaling["runs"], key=int)
        ideal = int(top) * THREADS / results["plan"]["latency_s"]
        cpu = statistics.median(engine_cpu_s(r) / r["images"] for r in scaling["runs"][top])
        notes.append(
            f"- CPU bound of the scaling figure: {top} workers at their ideal {ideal:.0f} "
            f"images/s ({top} x {THREADS} threads / {results['plan']['latency_s']:g} s) would "
            f"need {ideal * cpu:.2f} cores for the workers, Redis and PostgreSQL alone "
            f"({cpu * 1000:.1f} ms/img), of the machine's {results['cores']}."
        )
    transactions = [r["transactions_per_image"] for r in runs if "transactions_per_image" in r]
    if transactions:
        notes.append(
            "- PostgreSQL transactions per image (workers and submitter): "
            f"{_spread(transactions, '.1f')}."
        )
    short = [run for run in runs if run["wall_s"] < results["plan"]["min_run_s"]]
    if short:
        notes.append(f"- {len(short)} runs were shorter than the minimum length.")
    submitter = [r["cpu_s"]["process"] * 1000 / r["images"] for r in runs if r["workers"]]
    if submitter:
        notes.append(
            f"- The submitter's CPU (reading the CSV is before the span; following once a "
            f"second): median {statistics.median(submitter):.2f} ms/img."
        )
    return notes


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(plan: Plan, work_dir: Path) -> dict[str, Any]:
    """All three figures, with services and a server of their own."""
    results: dict[str, Any] = {
        "plan": {
            "quick": plan.quick,
            "min_run_s": plan.min_run_s,
            "repetitions": plan.repetitions,
            "latency_s": plan.latency_s,
        },
        "cores": os.cpu_count(),
        "load_before": machine_load(),
        "hosts": HOSTS,
    }
    corpus = ensure_corpus(plan.corpus_images)
    files = {**small_images(), **tiny_images(), **corpus.load()}
    with start_services(work_dir) as services, LoopbackServer(files) as server:
        results["scaling"] = measure_scaling(server, services, plan, work_dir)
        photos = [item.name for item in corpus.items]
        results["cpu_bound"] = measure_pairs(
            server, services, plan, work_dir, photos, CPU_WORKER_COUNTS, "CPU-bound"
        )
        tiny = sorted(tiny_images())
        results["overhead"] = measure_pairs(
            server, services, plan, work_dir, tiny, (1,), "overhead", probe_images=200
        )
        results["overhead_per_image"] = overhead(results["overhead"])
    results["corpus"] = {"images": len(corpus.items), "source": corpus.source}
    results["load_after"] = machine_load()
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 whatever the figures, 1 when a run failed (it says why)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="runs of >= 3 s, 2 repetitions")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also keep the raw figures")
    parser.add_argument("--work-dir", type=Path, help="temporary folders (default: system temp)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    work_dir = Path(tempfile.mkdtemp(prefix="imgdesk-bench-cluster-", dir=args.work_dir))
    try:
        results = measure(plan, work_dir)
    except RuntimeError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
