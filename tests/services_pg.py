"""A private PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` in a temporary folder.

One server per test session, on a free 127.0.0.1 port with its unix socket in that folder;
each test gets a fresh database (``CREATE DATABASE ... TEMPLATE template0``). The server
runs as a non-root user (``initdb`` refuses root): as root, the system user
``imgdesk-test`` is created once and the commands run through ``runuser``. It is stopped
by its PID at the end of the session.

Without Debian's ``postgresql`` package the fixtures fail, saying so; they skip only when
``IMGDESK_SKIP_SERVICES=1`` is set.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from imgdesk.core.db import close_database, open_database, open_database_url
from imgdesk.core.repository import Repository

POSTGRES_ROOT = Path("/usr/lib/postgresql")
TEST_USER = "imgdesk-test"  # the system user the server runs as when the tests run as root
ROLE = "imgdesk"  # the server's superuser, with a password (the tests check auth failures)


@dataclass(frozen=True)
class PostgresServer:
    """A running private server: where it listens and how to log in."""

    host: str
    port: int
    user: str
    password: str
    folder: Path
    pid: int
    bin_dir: Path

    def url(self, database: str) -> str:
        """The ``postgresql://`` URL of one of its databases."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def admin(self) -> psycopg2.extensions.connection:
        """An autocommit connection to its ``postgres`` database (to create or drop others)."""
        connection = psycopg2.connect(self.url("postgres"))
        connection.autocommit = True
        return connection

    def create_database(self, prefix: str = "imgdesk") -> str:
        """A new empty database (``prefix_`` and a random suffix); its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        admin = self.admin()
        try:
            with admin.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        finally:
            admin.close()
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (made by :meth:`create_database`), clients or not."""
        name = url.rsplit("/", 1)[-1]
        admin = self.admin()
        try:
            with admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            admin.close()


class ServiceUnavailableError(RuntimeError):
    """The private server cannot be started here (PostgreSQL is missing or it failed)."""


def _postgres_bin() -> Path | None:
    """The newest installed ``/usr/lib/postgresql/<version>/bin`` that has initdb and pg_ctl."""
    found = [
        path.parent
        for path in POSTGRES_ROOT.glob("*/bin/initdb")
        if (path.parent / "pg_ctl").exists()
    ]

    def version(bin_dir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in bin_dir.parent.name.split(".") if part.isdigit())

    return max(found, key=version) if found else None


def _as_server_user(command: list[str]) -> list[str]:
    """``command`` run as the non-root test user when we are root, else as ourselves."""
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER],
            check=True,
            capture_output=True,
        )
    return ["runuser", "-u", TEST_USER, "--", *command]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(command: list[str]) -> None:
    done = subprocess.run(_as_server_user(command), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()}")


def start_postgres() -> PostgresServer:
    """A private PostgreSQL server in a new temporary folder, on a free 127.0.0.1 port.

    Raises:
        ServiceUnavailableError: PostgreSQL is not installed, or its server did not start.
    """
    bin_dir = _postgres_bin()
    if bin_dir is None:
        raise ServiceUnavailableError(
            f"PostgreSQL's initdb and pg_ctl are not under {POSTGRES_ROOT}/<version>/bin: "
            "install the Debian package postgresql (apt-get install postgresql)"
        )
    # Not under pytest's tmp_path: its parents are private to us, the server user could not
    # enter them.
    folder = Path(tempfile.mkdtemp(prefix="imgdesk-pg-"))
    try:
        return _start_in(folder, bin_dir)
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        shutil.rmtree(folder, ignore_errors=True)
        raise ServiceUnavailableError(f"PostgreSQL did not start: {error}") from None


def _start_in(folder: Path, bin_dir: Path) -> PostgresServer:
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    password = secrets.token_hex(8)
    (folder / "password").write_text(password)
    if os.geteuid() == 0:
        _as_server_user(["true"])  # creates the user if needed
        shutil.chown(folder, TEST_USER)
        shutil.chown(sockets, TEST_USER)
        shutil.chown(folder / "password", TEST_USER)
    _run(
        [
            str(bin_dir / "initdb"),
            "--pgdata", str(data),
            "--username", ROLE,
            "--pwfile", str(folder / "password"),
            "--auth-host", "scram-sha-256",
            "--auth-local", "trust",
            "--encoding", "UTF8",
            "--no-sync",
        ]
    )  # fmt: skip
    port = 0
    for _attempt in range(3):  # another program may take the free port first
        port = _free_port()
        options = (
            f"-h 127.0.0.1 -p {port} -k {sockets} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        try:
            _run(
                [
                    str(bin_dir / "pg_ctl"),
                    "--pgdata", str(data),
                    "--log", str(folder / "server.log"),
                    "--options", options,
                    "--wait",
                    "--timeout", "60",
                    "start",
                ]
            )  # fmt: skip
            break
        except RuntimeError:
            if _attempt == 2:
                raise
    pid = int((data / "postmaster.pid").read_text().split()[0])
    return PostgresServer("127.0.0.1", port, ROLE, password, folder, pid, bin_dir)


def stop_postgres(server: PostgresServer) -> None:
    """Stop the server (``pg_ctl stop -m immediate``, else SIGKILL by PID); remove its folder."""
    stopped = subprocess.run(
        _as_server_user(
            [
                str(server.bin_dir / "pg_ctl"),
                "--pgdata", str(server.folder / "data"),
                "-m", "immediate",
                "stop",
            ]
        ),
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    if stopped.returncode != 0:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGKILL)
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the whole session, stopped by PID at its end.

    Without Debian's postgresql the tests fail saying so, or skip when
    IMGDESK_SKIP_SERVICES=1.
    """
    try:
        server = start_postgres()
    except ServiceUnavailableError as error:
        if os.environ.get("IMGDESK_SKIP_SERVICES") == "1":
            print(f"skipping the PostgreSQL tests (IMGDESK_SKIP_SERVICES=1): {error}")
            pytest.skip(f"IMGDESK_SKIP_SERVICES=1: {error}")
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        stop_postgres(server)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database on the private server, dropped after the test."""
    url = postgres_server.create_database()
    try:
        yield url
        close_database()
    finally:
        postgres_server.drop_database(url)


@pytest.fixture
def postgres_repository(postgres_url: str) -> Iterator[Repository]:
    """A :class:`Repository` on a fresh PostgreSQL database."""
    open_database_url(postgres_url)
    yield Repository()
    close_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_repository(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repository]:
    """A :class:`Repository` on a new SQLite file, then on a fresh PostgreSQL database."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        open_database_url(url)
    else:
        open_database(tmp_path / "data" / "imgdesk.sqlite3")
    yield Repository()
    close_database()
