"""kill -9 at random moments, round after round, as SQLite's crash tests do."""

from __future__ import annotations

import csv
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests import images
from tests.httpservers import HttpTestServer, delayed, respond

JPEG = images.make_jpeg(160, 120, "photo", 90)
COUNT = 300
ROUNDS = 20


def snapshot(database: Path) -> dict[str, str]:
    """url -> status of every image, read beside the writer (WAL allows it)."""
    with sqlite3.connect(database, timeout=10) as connection:
        return dict(connection.execute("SELECT url, status FROM image"))


def output_files(data_dir: Path) -> set[str]:
    return {p.name for p in (data_dir / "images").rglob("*") if p.is_file()}


@pytest.mark.timeout(300)
def test_twenty_kill_9_rounds_lose_nothing_and_refetch_nothing(
    tmp_path: Path, http_server: HttpTestServer
) -> None:
    rng = random.Random(20261129)
    urls = [http_server.route(f"/p{i}.jpg", delayed(0.1, respond(JPEG))) for i in range(COUNT)]
    source = tmp_path / "catalogue.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["S. No.", "Product Name", "Input Image Urls"])
        writer.writerows([i + 1, f"Product {i}", url] for i, url in enumerate(urls))
    data = tmp_path / "data"
    database = data / "imgdesk.sqlite3"
    out = tmp_path / "out.csv"
    base = [sys.executable, "-m", "imgdesk", "--data-dir", str(data)]

    first = subprocess.Popen(
        [*base, "process", str(source), "-o", str(out), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert first.stdout is not None
    request_id = first.stdout.readline().split('"request_id": "')[1].split('"')[0]
    process = first
    done_before: set[str] = set()
    hits_when_done: dict[str, int] = {}
    progress: list[int] = []
    for round_number in range(ROUNDS):
        time.sleep(rng.uniform(0.2, 1.5))
        process.kill()
        process.wait(10)
        if process.stdout:
            process.stdout.close()

        with sqlite3.connect(database) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        states = snapshot(database)
        done_now = {url for url, status in states.items() if status == "done"}
        assert done_before <= done_now, f"round {round_number}: a finished image was lost"
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
        progress.append(len(done_now))
        process = subprocess.Popen(
            [*base, "retry", request_id, "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    process.kill()
    process.wait(10)
    # Most rounds were real interruptions: the request was still unfinished at the kill,
    # and work got done between kills.
    interrupted = [done for done in progress if done < COUNT]
    assert len(interrupted) >= ROUNDS // 2, progress
    assert len(set(interrupted)) >= ROUNDS // 4, progress

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
