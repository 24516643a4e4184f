"""A private Redis server for the cluster tests, on a free 127.0.0.1 port, stopped by PID.

Needs the ``redis-server`` program (the Debian package ``redis-server``). Without it the
tests fail with a message saying so; ``IMGDESK_SKIP_SERVICES=1`` skips them instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RedisServer:
    """A running ``redis-server``: its URL and process."""

    url: str
    port: int
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_program() -> str:
    """The ``redis-server`` executable; fails (or skips, when asked) the test without it."""
    program = shutil.which("redis-server")
    if program is None:
        why = "redis-server is not installed (Debian: apt-get install redis-server)"
        if os.environ.get("IMGDESK_SKIP_SERVICES") == "1":
            print(f"skipping: {why}; IMGDESK_SKIP_SERVICES=1")
            pytest.skip(why)
        pytest.fail(f"{why}; or set IMGDESK_SKIP_SERVICES=1 to skip the cluster tests")
    return program


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A fresh Redis (no persistence) in a temp folder for one test."""
    program = redis_program()
    folder: Path = tmp_path_factory.mktemp("redis")
    port = _free_port()
    process = subprocess.Popen(
        [
            program,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(folder),
            "--logfile", str(folder / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ping(port):
            if process.poll() is not None or time.monotonic() > deadline:
                log = (folder / "redis.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"redis-server did not start on port {port}:\n{log}")
            time.sleep(0.05)
        yield RedisServer(f"redis://127.0.0.1:{port}/0", port, process)
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
