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


class ServiceUnavailableError(RuntimeError):
    """A private server cannot be started here (its program is missing or it failed)."""


def redis_program() -> str:
    """The ``redis-server`` executable.

    Raises:
        ServiceUnavailableError: it is not installed.
    """
    program = shutil.which("redis-server")
    if program is None:
        raise ServiceUnavailableError(
            "redis-server is not installed (Debian: apt-get install redis-server)"
        )
    return program


def start_redis(folder: Path) -> RedisServer:
    """A fresh ``redis-server`` (no persistence) on a free port, its files in ``folder``.

    Raises:
        ServiceUnavailableError: redis-server is missing or did not start (its log's end said).
    """
    program = redis_program()
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
    server = RedisServer(f"redis://127.0.0.1:{port}/0", port, process)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _ping(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_redis(server)
            log_file = folder / "redis.log"
            log = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            raise ServiceUnavailableError(f"redis-server did not start on port {port}:\n{log}")
        time.sleep(0.05)
    return server


def stop_redis(server: RedisServer) -> None:
    """Stop the server by its PID: SIGTERM, then SIGKILL after 10 s."""
    if server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A fresh Redis (no persistence) in a temp folder for one test.

    Without redis-server the test fails saying so, or skips when IMGDESK_SKIP_SERVICES=1.
    """
    try:
        server = start_redis(tmp_path_factory.mktemp("redis"))
    except ServiceUnavailableError as error:
        if os.environ.get("IMGDESK_SKIP_SERVICES") == "1":
            print(f"skipping: {error}; IMGDESK_SKIP_SERVICES=1")
            pytest.skip(str(error))
        pytest.fail(f"{error}; or set IMGDESK_SKIP_SERVICES=1 to skip the cluster tests")
    try:
        yield server
    finally:
        stop_redis(server)
