"""The cluster end to end: real ``imgdesk worker`` processes, a real Redis, a loopback server.

The shared database is a SQLite file here (several processes of one machine share it, as
in a small setup); the work, the messages and the guarantees are the same on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests import images
from tests.httpservers import Gate, HttpTestServer, delayed, gated, respond, sequence
from tests.services_redis import RedisServer

WAIT_S = 90.0  # generous: the machine is shared; nothing here asserts a duration
PROCESS_WAIT_S = 100.0  # under pytest's 120 s per test, which would show no process output
PNG = images.make_png(48, 32, "RGB", (200, 30, 30))


def imgdesk_args(data_dir: Path, *args: str) -> list[str]:
    """The command line of the real ``imgdesk``."""
    return [sys.executable, "-m", "imgdesk", "--data-dir", str(data_dir), *args]


def wait_for(check: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Wait until ``check()`` holds; fail naming ``what`` when it never does."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def write_csv(path: Path, urls: list[str]) -> Path:
    """An input CSV with one product per URL."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["S. No.", "Product Name", "Input Image Urls"])
        for number, url in enumerate(urls, start=1):
            writer.writerow([str(number), f"SKU{number}", url])
    return path


def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the shared database (SQLite file or PostgreSQL), read here."""
    if database_url.startswith("sqlite:///"):
        import sqlite3

        path = Path(database_url.removeprefix("sqlite:///"))
        # mode=rw: a query made before the workers created the file must not create it.
        connection: Any = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, timeout=30)
    else:
        import psycopg2

        connection = psycopg2.connect(database_url)
    try:
        cursor = connection.cursor()
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        connection.close()


def stored_images(cluster: Cluster) -> int:
    """Images done so far; 0 while the workers are still creating the database."""
    try:
        rows = query(cluster.database_url, "SELECT COUNT(*) FROM image WHERE status = 'done'")
    except Exception:  # noqa: BLE001 - sqlite3 or psycopg2: no tables yet
        return 0
    return int(rows[0][0])


class Cluster:
    """Worker processes and a submitter on one Redis and one shared database file."""

    def __init__(self, tmp_path: Path, redis: RedisServer, database_url: str) -> None:
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.broker_url = redis.url
        self.outputs = tmp_path / "outputs"
        self.workers: list[subprocess.Popen[str]] = []
        self._logs: list[Path] = []

    def cluster_args(self) -> list[str]:
        """``--database`` and ``--broker`` of this cluster."""
        return ["--database", self.database_url, "--broker", self.broker_url]

    def start_worker(
        self, threads: int = 3, processes: int = 1, *extra: str
    ) -> subprocess.Popen[str]:
        """One ``imgdesk worker`` with its own data folder, storing into the shared folder."""
        number = len(self.workers) + 1
        log = self.tmp_path / f"worker{number}.log"
        self._logs.append(log)
        with log.open("w") as stderr:
            worker = subprocess.Popen(
                imgdesk_args(
                    self.tmp_path / f"worker{number}",
                    "worker",
                    *self.cluster_args(),
                    "--storage", str(self.outputs),
                    "--processes", str(processes),
                    "--threads", str(threads),
                    "--heartbeat-timeout", "3",
                    *extra,
                ),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                text=True,
            )  # fmt: skip
        self.workers.append(worker)
        return worker

    def process(self, csv_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """``imgdesk process`` submitting to the cluster and following it to the end.

        It must end within ``PROCESS_WAIT_S`` (before pytest's own timeout, which would show nothing
        of the processes): otherwise the test fails with what it and the workers printed.
        """
        try:
            command = ["process", str(csv_path), *self.cluster_args(), *args]
            return subprocess.run(
                imgdesk_args(self.tmp_path / "submitter", *command),
                capture_output=True,
                text=True,
                timeout=PROCESS_WAIT_S,
            )
        except subprocess.TimeoutExpired as stuck:
            printed = [_text(stuck.stdout)[-4000:], _text(stuck.stderr)[-4000:]]
            pytest.fail(
                f"imgdesk process did not end within {PROCESS_WAIT_S:.0f} s.\nIt printed:\n"
                + "\n".join(printed)
                + f"\nThe workers printed:\n{self.worker_log()}"
            )

    def worker_log(self) -> str:
        """Every worker's stderr, for a failing test's message."""
        return "\n".join(log.read_text(errors="replace")[-4000:] for log in self._logs)

    def stop(self) -> None:
        """SIGTERM every worker still running and wait for it."""
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def _text(output: str | bytes | None) -> str:
    """What a timed-out subprocess printed (bytes, whatever ``text=True`` said)."""
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def serve_images(server: HttpTestServer, count: int, delay_s: float) -> list[str]:
    """``count`` PNG images, each answered after ``delay_s`` (so work overlaps)."""
    return [
        server.route(f"/img/{number}.png", delayed(delay_s, respond(PNG, content_type="image/png")))
        for number in range(1, count + 1)
    ]


def output_rows(path: Path) -> list[dict[str, str]]:
    """The output CSV's rows."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def assert_every_output_valid(cluster: Cluster, output_csv: Path, count: int) -> None:
    """Every row done, its output a whole JPEG in the shared folder, counters exact."""
    rows = output_rows(output_csv)
    assert len(rows) == count
    for row in rows:
        url = row["Output Image Urls"]
        assert url.startswith("file://"), row
        path = Path(url.removeprefix("file://"))
        with Image.open(io.BytesIO(path.read_bytes())) as picture:
            picture.load()
            assert picture.format == "JPEG" and picture.size == (48, 32)
    statuses = query(cluster.database_url, "SELECT status, COUNT(*) FROM image GROUP BY status")
    assert statuses == [("done", count)]
    counters = query(
        cluster.database_url,
        "SELECT status, total_images, done_images, failed_images, in_flight_images FROM request",
    )
    assert counters == [("completed", count, count, 0, 0)]


BOTH_DATABASES = pytest.mark.parametrize("cluster", ["sqlite", "postgresql"], indirect=True)


@BOTH_DATABASES
def test_a_request_completes_across_two_worker_processes(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    count = 12
    urls = serve_images(http_server, count, delay_s=0.2)
    for _ in range(2):
        cluster.start_worker(threads=3)
    csv_path = write_csv(cluster.tmp_path / "products.csv", urls)
    output_csv = cluster.tmp_path / "products-output.csv"

    done = cluster.process(csv_path, "--json", "-o", str(output_csv))

    assert done.returncode == 0, done.stderr + cluster.worker_log()
    assert_every_output_valid(cluster, output_csv, count)
    events = [json.loads(line) for line in done.stdout.splitlines()]
    finished = [event for event in events if event["event"] == "image.finished"]
    assert sorted(event["serial"] for event in finished) == sorted(
        str(n) for n in range(1, count + 1)
    )
    assert events[-1]["event"] == "request.finished" and events[-1]["status"] == "completed"
    # Each URL fetched once, and both workers ran beside each other to the end (which of them
    # takes which image is the broker's choice: a fast one may take them all).
    assert all(http_server.hits(f"/img/{n}.png") == 1 for n in range(1, count + 1))
    log = cluster.worker_log()
    pids = {worker.pid for worker in cluster.workers}
    assert all(f"worker {pid} started" in log for pid in pids), log
    assert all(worker.poll() is None for worker in cluster.workers), log


def save_cluster_settings(cluster: Cluster, **changes: Any) -> None:
    """Store settings in the shared database, as the window's Settings would."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from imgdesk.core.cluster_store import open_shared_database\n"
        "from imgdesk.core.db import close_database\n"
        "from imgdesk.core.repository import Repository\n"
        "from imgdesk.core.settings import Settings\n"
        "open_shared_database(sys.argv[1])\n"
        f"Repository().save_settings(Settings().replace(**{changes!r}))\n"
        "close_database()\n"
    )
    subprocess.run([sys.executable, "-c", code, cluster.database_url], check=True, timeout=60)


@BOTH_DATABASES
def test_kill_9_of_a_worker_mid_run_loses_nothing_and_duplicates_nothing(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    count = 10
    gate = Gate()
    handler = gated(gate, respond(PNG, content_type="image/png"))
    urls = [http_server.route(f"/img/{n}.png", handler) for n in range(1, count + 1)]
    victim = cluster.start_worker(threads=3)
    csv_path = write_csv(cluster.tmp_path / "products.csv", urls)
    output_csv = cluster.tmp_path / "products-output.csv"
    submitter = subprocess.Popen(
        imgdesk_args(
            cluster.tmp_path / "submitter",
            "process", str(csv_path), *cluster.cluster_args(), "-o", str(output_csv),
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        # The victim, the only worker, stores two images, then holds three downloads.
        gate.allow(2)
        wait_for(lambda: stored_images(cluster) == 2, "two images stored")
        wait_for(lambda: http_server.in_flight == 3, "the victim to hold three downloads")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        cluster.start_worker(threads=3)
        gate.open()
        _, stderr = submitter.communicate(timeout=WAIT_S * 2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            submitter.kill()
        submitter.communicate()
    assert submitter.returncode == 0, stderr + cluster.worker_log()
    assert_every_output_valid(cluster, output_csv, count)
    hits = [http_server.hits(f"/img/{n}.png") for n in range(1, count + 1)]
    # The three cut off by the kill were fetched again by the other worker; no URL more.
    assert sorted(hits) == [1] * (count - 3) + [2] * 3, hits


def test_the_per_host_limit_holds_across_workers(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    save_cluster_settings(cluster, per_host_concurrency=2)
    count = 12
    urls = serve_images(http_server, count, delay_s=0.3)
    for _ in range(2):
        cluster.start_worker(threads=3)
    csv_path = write_csv(cluster.tmp_path / "products.csv", urls)
    output_csv = cluster.tmp_path / "products-output.csv"

    done = cluster.process(csv_path, "-o", str(output_csv))

    assert done.returncode == 0, done.stderr + cluster.worker_log()
    assert_every_output_valid(cluster, output_csv, count)
    # Six threads in all, but never more than two downloads from the one host at once.
    assert 1 <= http_server.max_in_flight <= 2


@BOTH_DATABASES
def test_the_webhook_arrives_once_and_a_transient_error_is_retried(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    urls = serve_images(http_server, 3, delay_s=0.0)
    busy = respond(b"busy", 503, {"Retry-After": "1"}, content_type="text/plain")
    image = respond(PNG, content_type="image/png")

    urls.append(http_server.route("/img/busy.png", sequence(busy, image)))
    hook = http_server.route("/hook", respond(b"ok"))
    cluster.start_worker(threads=2)
    csv_path = write_csv(cluster.tmp_path / "products.csv", urls)
    output_csv = cluster.tmp_path / "products-output.csv"

    done = cluster.process(csv_path, "--json", "-o", str(output_csv), "--webhook", hook)

    assert done.returncode == 0, done.stderr + cluster.worker_log()
    assert_every_output_valid(cluster, output_csv, 4)
    posts = [request for request in http_server.requests if request.path == "/hook"]
    assert len(posts) == 1
    payload = json.loads(posts[0].body)
    assert payload["event"] == "request.completed" and payload["succeeded"] == 4
    events = [json.loads(line) for line in done.stdout.splitlines()]
    attempts = [event for event in events if event["event"] == "webhook.attempt"]
    assert [attempt["status_code"] for attempt in attempts] == [200]
    # The 503 was retried after its Retry-After, counted in the database.
    assert http_server.hits("/img/busy.png") == 2
    rows = query(cluster.database_url, "SELECT attempts FROM image WHERE url LIKE '%busy.png'")
    assert rows == [(2,)]


def test_killing_the_submitter_does_not_stop_the_work(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    count = 6
    urls = serve_images(http_server, count, delay_s=0.5)
    csv_path = write_csv(cluster.tmp_path / "products.csv", urls)
    submitter = subprocess.Popen(
        imgdesk_args(
            cluster.tmp_path / "submitter",
            "process",
            str(csv_path),
            *cluster.cluster_args(),
            "--json",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert submitter.stdout is not None
    created = json.loads(submitter.stdout.readline())
    assert created["event"] == "request.created"
    submitter.send_signal(signal.SIGTERM)
    _, stderr = submitter.communicate(timeout=60)
    assert submitter.returncode == 143
    assert "goes on in the cluster" in stderr and "Traceback" not in stderr
    cluster.start_worker(threads=3)

    def status() -> dict[str, Any]:
        shown = subprocess.run(
            imgdesk_args(
                cluster.tmp_path / "submitter",
                "status", created["request_id"], "--json", "--database", cluster.database_url,
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        return dict(json.loads(shown.stdout.splitlines()[0]))

    wait_for(lambda: status().get("status") == "completed", "the workers to finish the request")
    assert all(http_server.hits(f"/img/{n}.png") == 1 for n in range(1, count + 1))


def test_a_submitter_without_workers_says_what_it_waits_for_and_goes_on_waiting(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    count = 3
    csv_path = write_csv(cluster.tmp_path / "products.csv", serve_images(http_server, count, 0.0))
    # The real command, with the notice after 1 s instead of a minute.
    run_with_short_notice = (
        "import sys\n"
        "import imgdesk.cli.submitting as submitting\n"
        "submitting.STALL_NOTICE_S = 1.0\n"
        "from imgdesk.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    command = imgdesk_args(
        cluster.tmp_path / "submitter", "process", str(csv_path), *cluster.cluster_args()
    )
    submitter = subprocess.Popen(
        [sys.executable, "-c", run_with_short_notice, *command[3:]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert submitter.stderr is not None
        printed = [submitter.stderr.readline() for _ in range(2)]
        assert "3 images from products.csv" in printed[0]
        assert "has not moved for 1 s" in printed[1] and "Are workers running" in printed[1]
        assert submitter.poll() is None  # still waiting
        cluster.start_worker(threads=3)
        _, rest = submitter.communicate(timeout=PROCESS_WAIT_S)
    finally:
        if submitter.poll() is None:
            submitter.kill()
            submitter.wait()
    assert submitter.returncode == 0, "".join(printed) + rest + cluster.worker_log()
    assert f"completed: {count} done, 0 failed of {count}" in rest
    assert "has not moved" not in rest  # said once, and the request moved since


def test_unreachable_broker_is_one_sentence_and_records_nothing(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    broker = "redis://127.0.0.1:1/0"
    csv_path = write_csv(tmp_path / "products.csv", serve_images(http_server, 1, 0.0))
    for args in (
        ["worker", "--database", database_url, "--broker", broker, "--processes", "1"],
        ["process", str(csv_path), "--database", database_url, "--broker", broker],
    ):
        done = subprocess.run(
            imgdesk_args(tmp_path / "data", *args), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, done.stderr
        assert "cannot reach the broker at redis://127.0.0.1:1/0" in done.stderr
        assert "Traceback" not in done.stderr
    assert query(database_url, "SELECT COUNT(*) FROM request") == [(0,)]


def test_a_local_process_run_never_imports_the_cluster(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    csv_path = write_csv(tmp_path / "products.csv", serve_images(http_server, 1, 0.0))
    # psycopg2 is left out: peewee itself imports it whenever it is installed.
    code = (
        "import sys\n"
        "import imgdesk.cli\n"
        "assert imgdesk.cli.main(['--data-dir', sys.argv[1], 'process', sys.argv[2]]) == 0\n"
        "loaded = [name for name in sys.modules if name.split('.')[0] in ('dramatiq', 'redis')"
        " or name.startswith('imgdesk.cluster')]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "data"), str(csv_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_a_worker_without_the_cluster_extra_says_how_to_install_it(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['dramatiq'] = None  # as if the extra were not installed\n"
        "import imgdesk.cli\n"
        "sys.exit(imgdesk.cli.main(['--data-dir', sys.argv[1], 'worker', '--database', "
        "'sqlite:///' + sys.argv[1] + '/x.db', '--broker', 'redis://127.0.0.1:1/0']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert 'pip install "imgdesk[cluster]"' in done.stderr and "Traceback" not in done.stderr


def test_the_cluster_modules_are_qt_free() -> None:
    code = (
        "import sys\n"
        "import imgdesk.cluster.worker, imgdesk.cli.worker, imgdesk.cli.submitting\n"
        "loaded = [name for name in sys.modules if name.split('.')[0] in ('PySide6', 'qasync')]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_one_worker_command_runs_two_processes_and_stops_on_sigterm(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    count = 8
    urls = serve_images(http_server, count, delay_s=0.2)
    worker = cluster.start_worker(threads=2, processes=2)
    csv_path = write_csv(cluster.tmp_path / "products.csv", urls)
    output_csv = cluster.tmp_path / "products-output.csv"

    done = cluster.process(csv_path, "-o", str(output_csv))

    assert done.returncode == 0, done.stderr + cluster.worker_log()
    assert_every_output_valid(cluster, output_csv, count)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=90) == 0
    log = cluster.worker_log()
    assert log.count("started with 2 threads") == 2 and log.count("stopped") >= 2, log
    assert "Traceback" not in log


def test_a_failed_image_fails_the_request_with_exit_1_and_its_webhook_says_so(
    cluster: Cluster, http_server: HttpTestServer
) -> None:
    urls = serve_images(http_server, 2, delay_s=0.0)
    urls.append(http_server.url("/img/missing.png"))  # 404: permanent, not retried
    hook = http_server.route("/hook", respond(b"ok"))
    cluster.start_worker(threads=2)
    csv_path = write_csv(cluster.tmp_path / "products.csv", urls)
    output_csv = cluster.tmp_path / "products-output.csv"

    done = cluster.process(csv_path, "-o", str(output_csv), "--webhook", hook)

    assert done.returncode == 1, done.stderr + cluster.worker_log()
    assert "failed: 2 done, 1 failed of 3" in done.stderr
    rows = output_rows(output_csv)
    assert [bool(row["Output Image Urls"]) for row in rows] == [True, True, False]
    assert http_server.hits("/img/missing.png") == 1
    failed = query(
        cluster.database_url, "SELECT error_code, attempts FROM image WHERE status = 'failed'"
    )
    assert failed == [("http_404", 1)]
    (post,) = [request for request in http_server.requests if request.path == "/hook"]
    payload = json.loads(post.body)
    assert (payload["event"], payload["succeeded"], payload["failed"]) == ("request.failed", 2, 1)
