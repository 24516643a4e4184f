"""PostgreSQL only: opening a URL, its errors in one sentence, and writers working at once.

A cluster's workers write results for images of one request at the same moment; the
request's counters must stay exact and no writer may deadlock another.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest

from imgdesk.core import db_postgres
from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.db import SCHEMA_VERSION, close_database, db, is_postgres, open_database_url
from imgdesk.core.errors import DatabaseBusyError, DatabaseError
from imgdesk.core.repository import Repository, prepare_rows
from tests.services_pg import PostgresServer

REPO_ROOT = Path(__file__).resolve().parents[2]
HEADER = "S. No.,Product Name,Input Image Urls"


@pytest.fixture(autouse=True)
def _closed_afterwards() -> Iterator[None]:
    yield
    close_database()


def catalogue(products: int, images_each: int = 1, name: str = "products.csv") -> object:
    lines = [HEADER]
    for n in range(products):
        urls = ",".join(f"http://h/{name}/{n}-{k}.jpg" for k in range(images_each))
        lines.append(f'{n},P{n},"{urls}"')
    return parse_catalogue("\n".join(lines).encode(), name)


def recount(url: str, request_id: str) -> tuple[int, int, int, int, int, int]:
    """The request's counts computed from its images, on a connection of its own."""
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'done'), "
            "COUNT(*) FILTER (WHERE status = 'failed'), "
            "COUNT(*) FILTER (WHERE status IN ('downloading', 'compressing')), "
            "COALESCE(SUM(input_bytes) FILTER (WHERE status = 'done'), 0), "
            "COALESCE(SUM(output_bytes), 0) FROM image WHERE request_id = %s",
            (request_id,),
        )
        row = cursor.fetchone()
    connection.close()
    assert row is not None
    return tuple(int(value) for value in row)  # type: ignore[return-value]


def counters(repo: Repository, request_id: str) -> tuple[int, int, int, int, int, int]:
    request = repo.get_request(request_id)
    assert request is not None
    return (
        request.total,
        request.done,
        request.failed,
        request.in_flight,
        request.input_bytes,
        request.output_bytes,
    )


def run_together(*work: Callable[[], None]) -> None:
    """Run each function on a thread of its own (its own connection), all starting at once."""
    start = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def run(function: Callable[[], None]) -> None:
        try:
            start.wait(30)
            function()
        except BaseException as error:  # reported by the test below
            errors.append(error)
        finally:
            db.close()  # this thread's connection

    threads = [threading.Thread(target=run, args=(function,)) for function in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []


def test_writers_of_one_request_at_once_keep_its_counters_exact(
    postgres_repository: Repository, postgres_url: str
) -> None:
    repo = postgres_repository
    request_id = repo.create_request(catalogue(200))  # type: ignore[arg-type]
    ids = [image.id for image in repo.list_images(request_id)]

    def worker(mine: list[int]) -> Callable[[], None]:
        def write() -> None:
            for first in range(0, len(mine), 5):  # small batches, as results come in
                batch = mine[first : first + 5]
                repo.update_images({i: {"status": "downloading"} for i in batch})
                repo.store(
                    {i: {"status": "done", "input_bytes": 1000, "output_bytes": i} for i in batch},
                    {request_id: "processing"},
                    active_time={request_id: 0.5},
                )

        return write

    run_together(worker(ids[0::2]), worker(ids[1::2]))

    assert counters(repo, request_id) == recount(postgres_url, request_id)
    assert counters(repo, request_id) == (200, 200, 0, 0, 200_000, sum(ids))
    request = repo.get_request(request_id)
    assert request is not None and request.active_s == 0.5 * 40


def test_a_cancel_while_workers_write_neither_deadlocks_nor_miscounts(
    postgres_repository: Repository, postgres_url: str
) -> None:
    repo = postgres_repository
    request_id = repo.create_request(catalogue(300))  # type: ignore[arg-type]
    ids = [image.id for image in repo.list_images(request_id)]
    cancelled: list[int] = []

    def write_results() -> None:
        # Descending ids, against the cancel's ascending scan: the worst order for locks.
        for first in range(0, len(ids), 10):
            batch = list(reversed(ids))[first : first + 10]
            repo.store(
                {i: {"status": "done", "output_bytes": 7} for i in batch},
                {request_id: "processing"},  # the engine's batch: the request, then images
            )

    def cancel() -> None:
        for _round in range(5):
            cancelled.append(repo.fail_unfinished(request_id, "cancelled", "Cancelled."))
            repo.reset_failed(request_id)

    run_together(write_results, cancel)

    assert counters(repo, request_id) == recount(postgres_url, request_id)
    assert counters(repo, request_id)[1] == 300  # every result was written


def test_two_imports_at_once_each_keep_their_rows(
    postgres_repository: Repository, postgres_url: str
) -> None:
    repo = postgres_repository
    made: dict[str, str] = {}

    def importer(name: str) -> Callable[[], None]:
        def record() -> None:
            rows = catalogue(120, 2, name)
            recording = repo.start_import(rows)  # type: ignore[arg-type]
            for first in range(0, 120, 10):
                recording.add(prepare_rows(rows.rows[first : first + 10]))  # type: ignore[attr-defined]
            made[name] = recording.finish()

        return record

    run_together(importer("a.csv"), importer("b.csv"))

    for name, request_id in made.items():
        urls = [image.url for image in repo.list_images(request_id)]
        assert urls == [f"http://h/{name}/{n}-{k}.jpg" for n in range(120) for k in range(2)]
        assert counters(repo, request_id) == recount(postgres_url, request_id)


def test_a_fresh_database_gets_the_current_schema_and_keeps_its_data(postgres_url: str) -> None:
    open_database_url(postgres_url)
    assert is_postgres()
    request_id = Repository().create_request(catalogue(3))  # type: ignore[arg-type]
    close_database()
    open_database_url(postgres_url)  # a second start finds the schema
    assert [r.total for r in Repository().list_requests()] == [3]
    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT value FROM key_value WHERE key = 'schema_version'")
        assert cursor.fetchall() == [(str(SCHEMA_VERSION),)]
    connection.close()
    assert request_id


def test_a_worker_starting_beside_busy_ones_takes_no_table_lock(postgres_url: str) -> None:
    """Its schema's DDL would wait for (and deadlock with) the writes of running workers."""
    open_database_url(postgres_url)
    close_database()
    busy = psycopg2.connect(postgres_url)
    opened = threading.Event()

    def start_worker() -> None:
        open_database_url(postgres_url)
        opened.set()

    try:
        with busy.cursor() as cursor:  # a worker in the middle of storing results
            cursor.execute("LOCK TABLE image, request IN ROW EXCLUSIVE MODE")
        starting = threading.Thread(target=start_worker, daemon=True)
        starting.start()
        assert opened.wait(30), "opening the database waited for the busy worker's locks"
    finally:
        busy.rollback()
        busy.close()
    starting.join(130)


def test_workers_starting_together_on_a_fresh_database_all_get_it(postgres_url: str) -> None:
    script = (
        "import sys\n"
        "from imgdesk.core.db import open_database_url\n"
        "from imgdesk.core.repository import Repository\n"
        "open_database_url(sys.argv[1])\n"
        "print(len(Repository().list_requests()))\n"
    )
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", script, postgres_url],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [start.communicate(timeout=120) for start in starts]
    assert [
        (start.returncode, out, err) for start, (out, err) in zip(starts, results, strict=True)
    ] == [(0, "0\n", "")] * 4


def test_a_file_path_still_opens_the_embedded_database(tmp_path: Path) -> None:
    open_database_url(str(tmp_path / "imgdesk.sqlite3"))
    assert not is_postgres()
    assert (tmp_path / "imgdesk.sqlite3").exists()
    open_database_url(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    assert not is_postgres() and (tmp_path / "other.sqlite3").exists()


def test_a_server_that_is_not_there_is_one_sentence_without_the_password(
    postgres_server: PostgresServer,
) -> None:
    with psycopg2.connect(postgres_server.url("postgres")):
        pass
    closed_port = _free_port()
    url = f"postgresql://imgdesk:hunter2@127.0.0.1:{closed_port}/shop"
    with pytest.raises(DatabaseError) as info:
        open_database_url(url)
    message = str(info.value)
    assert message.startswith(
        f"imgdesk cannot use the PostgreSQL database 127.0.0.1:{closed_port}/shop ("
    )
    assert "Connection refused" in message
    assert "hunter2" not in message and "\n" not in message


def test_without_the_driver_the_sentence_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import peewee

    monkeypatch.setattr(peewee, "psycopg2", None)  # as if psycopg2 were not installed
    monkeypatch.setattr(peewee, "psycopg", None)
    with pytest.raises(DatabaseError) as info:
        open_database_url("postgresql://imgdesk:hunter2@db.example:5433/shop")
    assert str(info.value) == (
        "imgdesk cannot use the PostgreSQL database db.example:5433/shop: its driver is "
        "missing. Install imgdesk with its cluster extra (pip install 'imgdesk[cluster]')."
    )


def test_a_wrong_password_is_one_sentence_without_it(postgres_server: PostgresServer) -> None:
    server = postgres_server
    url = f"postgresql://{server.user}:not-{server.password}@{server.host}:{server.port}/postgres"
    with pytest.raises(DatabaseError) as info:
        open_database_url(url)
    message = str(info.value)
    assert f"{server.host}:{server.port}/postgres" in message
    assert "password authentication failed" in message
    assert server.password not in message and "\n" not in message
    assert not isinstance(info.value, DatabaseBusyError)


def test_a_connection_the_server_dropped_is_one_sentence_then_replaced(
    postgres_repository: Repository, postgres_url: str
) -> None:
    repo = postgres_repository
    request_id = repo.create_request(catalogue(2))  # type: ignore[arg-type]
    for call in (repo.list_requests, repo.recover_interrupted):  # outside, inside a transaction
        admin = psycopg2.connect(postgres_url)
        admin.autocommit = True
        with admin.cursor() as cursor:  # what a server restart does to every connection
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND datname = current_database()"
            )
        admin.close()
        with pytest.raises(DatabaseError) as info:
            call()
        assert str(info.value).startswith("The PostgreSQL server did not answer (")
        assert "\n" not in str(info.value)
        assert [r.id for r in repo.list_requests()] == [request_id]  # connected again


def test_a_newer_schema_is_refused(postgres_url: str) -> None:
    open_database_url(postgres_url)
    close_database()
    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        cursor.execute("UPDATE key_value SET value = %s", (str(SCHEMA_VERSION + 1),))
    connection.close()
    with pytest.raises(DatabaseError) as info:
        open_database_url(postgres_url)
    assert f"holds imgdesk schema {SCHEMA_VERSION + 1}" in str(info.value)


def test_a_lock_held_by_another_program_is_busy(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_postgres, "LOCK_TIMEOUT_MS", 200)
    open_database_url(postgres_url)
    repo = Repository()
    request_id = repo.create_request(catalogue(2))  # type: ignore[arg-type]
    holder = psycopg2.connect(postgres_url)
    try:
        with holder.cursor() as cursor:
            cursor.execute("LOCK TABLE request IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(DatabaseBusyError):
                repo.set_request_status(request_id, "processing")
        holder.rollback()
    finally:
        holder.close()
    repo.set_request_status(request_id, "processing")  # the same call works once it let go
    assert repo.get_request(request_id).status == "processing"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("sqlstate", "busy"),
    [("40001", True), ("40P01", True), ("55P03", True), ("23505", False), ("42P01", False)],
)
def test_the_servers_error_codes_are_imgdesks_errors(
    postgres_repository: Repository, sqlstate: str, busy: bool
) -> None:
    from imgdesk.core.db import translate_errors

    @translate_errors
    class Raiser:
        def run(self) -> None:
            db.execute_sql(  # type: ignore[no-untyped-call]
                f"DO $$ BEGIN RAISE EXCEPTION 'refused here' USING ERRCODE = '{sqlstate}'; END $$"
            )

    with pytest.raises(DatabaseError) as info:
        Raiser().run()
    assert isinstance(info.value, DatabaseBusyError) is busy
    assert str(info.value) == "refused here"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
