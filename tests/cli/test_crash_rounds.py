"""kill -9 at random moments, round after round, as SQLite's crash tests do.

The server answers only as many images as the test allows each round (a gate), so every
kill is measured to hit a running process with work in flight and an unfinished request,
however busy the machine: the test never guesses how far a process got in some time.
"""

from __future__ import annotations

import csv
import json
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests import images
from tests.httpservers import Gate, HttpTestServer, gated, respond

JPEG = images.make_jpeg(160, 120, "photo", 90)
COUNT = 300
ROUNDS = 20
# Images the server answers in one round: ROUNDS x this stays far below COUNT, so no round
# can finish the request, and every kill interrupts it.
MAX_ANSWERS_PER_ROUND = 8
WAIT_S = 60.0  # for states that come within a second; generous for a busy machine


def snapshot(database: Path) -> dict[str, str]:
    """url -> status of every image, read beside the writer (WAL allows it)."""
    with sqlite3.connect(database, timeout=10) as connection:
        return dict(connection.execute("SELECT url, status FROM image"))


def output_files(data_dir: Path) -> set[str]:
    return {p.name for p in (data_dir / "images").rglob("*.jpg") if p.is_file()}


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        time.sleep(0.005)


def read_stored(process: subprocess.Popen[str], count: int) -> list[str]:
    """Read ``--json`` lines until ``count`` images were reported stored; their URLs."""
    assert process.stdout is not None
    stored: list[str] = []
    while len(stored) < count:
        line = process.stdout.readline()
        assert line, f"imgdesk exited ({process.wait(10)}) before storing {count} images"
        event = json.loads(line)
        if event["event"] == "image.finished":
            assert event["status"] == "done", event
            stored.append(event["url"])
    return stored


@pytest.mark.timeout(300)
def test_twenty_kill_9_rounds_lose_nothing_and_refetch_nothing(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    rng = random.Random(20261129)
    gate = Gate()
    urls = [http_server.route(f"/p{i}.jpg", gated(gate, respond(JPEG))) for i in range(COUNT)]
    source = tmp_path / "catalogue.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["S. No.", "Product Name", "Input Image Urls"])
        writer.writerows([i + 1, f"Product {i}", url] for i, url in enumerate(urls))
    data = tmp_path / "data"
    database = data / "imgdesk.sqlite3"
    out = tmp_path / "out.csv"
    base = [sys.executable, "-m", "imgdesk", "--data-dir", str(data)]

    command = [*base, "process", str(source), "-o", str(out), "--json"]
    request_id = ""
    done_before: set[str] = set()
    hits_when_done: dict[str, int] = {}
    for round_number in range(ROUNDS):
        # stderr is left to pytest, which shows it if the test fails.
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        if not request_id:
            created = json.loads(process.stdout.readline())
            request_id = created["request_id"]
            command = [*base, "retry", request_id, "-o", str(out), "--json"]
        # First proof that this process works: it stores a few images.
        first = rng.randint(1, MAX_ANSWERS_PER_ROUND // 2)
        gate.allow(first)
        stored = read_stored(process, first)
        # Then a few more answers, and the kill falls anywhere in their download, decoding
        # and storing (results are stored in batches about every 100 ms).
        more = rng.randint(0, MAX_ANSWERS_PER_ROUND // 2)
        gate.allow(more)
        time.sleep(rng.uniform(0.0, 0.2))
        gate.close()
        wait_until(lambda: http_server.in_flight >= 1, "the process waits on the server")
        assert process.poll() is None, f"round {round_number}: the process was not running"
        process.kill()
        process.wait(10)
        process.stdout.close()
        # Every request the dead process left at the gate gives up before the next round,
        # so the next round's answers go to the next process.
        wait_until(lambda: http_server.in_flight == 0, "the dead process's requests end")

        with sqlite3.connect(database) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        states = snapshot(database)
        done_now = {url for url, status in states.items() if status == "done"}
        assert done_before <= done_now, f"round {round_number}: a finished image was lost"
        assert set(stored) <= done_now, f"round {round_number}: a stored image was lost"
        assert len(done_now) < COUNT, f"round {round_number}: the kill interrupted nothing"
        # A done row always has its file.
        with sqlite3.connect(database) as connection:
            paths = [
                p
                for (p,) in connection.execute(
                    "SELECT output_path FROM image WHERE status = 'done'"
                )
            ]
        assert all(Path(p).is_file() for p in paths), f"round {round_number}: file missing"
        for url in done_now - done_before:
            hits_when_done[url] = http_server.hits(urlsplit(url).path)
        for url in done_before:
            # Finished in an earlier round: never fetched again since.
            assert http_server.hits(urlsplit(url).path) == hits_when_done[url], url
        done_before = done_now

    gate.open()
    final = subprocess.run(
        [*base, "retry", request_id, "-o", str(out)], capture_output=True, text=True, timeout=120
    )
    assert final.returncode == 0, final.stderr
    states = snapshot(database)
    assert set(states.values()) == {"done"}
    for url, hits in hits_when_done.items():
        assert http_server.hits(urlsplit(url).path) == hits, url
    with out.open(newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    written = {Path(unquote(urlsplit(row[3]).path)).name for row in rows}
    assert len(written) == COUNT
    # No output file without its row, no row without its file.
    assert output_files(data) == written
