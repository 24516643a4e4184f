"""Schema 5: a request's priority, added to databases made by imgdesk before it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg2

from imgdesk.core.cluster_store import ClusterStore
from imgdesk.core.db import SCHEMA_VERSION, close_database, open_database, open_database_url
from imgdesk.core.repository import Repository
from tests.cluster.test_cluster_store import make_request


def test_a_schema_4_sqlite_database_gets_priorities(tmp_path: Path) -> None:
    path = tmp_path / "imgdesk.sqlite3"
    open_database(path)
    request_id = make_request(Repository(), tmp_path, ["http://a.test/1.png"])
    close_database()
    raw = sqlite3.connect(path)
    raw.execute("ALTER TABLE request DROP COLUMN priority")
    raw.execute("UPDATE key_value SET value = '4' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()

    open_database(path)
    try:
        store = ClusterStore()
        assert store.request_priority(request_id) == "normal"  # as every request before
        store.set_priority(request_id, "high")
        assert store.request_priority(request_id) == "high"
    finally:
        close_database()
    version = sqlite3.connect(path).execute(
        "SELECT value FROM key_value WHERE key = 'schema_version'"
    )
    assert version.fetchone() == (str(SCHEMA_VERSION),) == ("5",)


def test_a_schema_4_postgresql_database_gets_priorities(postgres_url: str, tmp_path: Path) -> None:
    open_database_url(postgres_url)
    request_id = make_request(Repository(), tmp_path, ["http://a.test/1.png"])
    close_database()
    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        cursor.execute("ALTER TABLE request DROP COLUMN priority")
        cursor.execute("UPDATE key_value SET value = '4' WHERE key = 'schema_version'")
    connection.close()

    open_database_url(postgres_url)
    try:
        store = ClusterStore()
        assert store.request_priority(request_id) == "normal"
        store.set_priority(request_id, "low")
        assert store.request_priority(request_id) == "low"
    finally:
        close_database()
    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT value FROM key_value WHERE key = 'schema_version'")
        assert cursor.fetchall() == [(str(SCHEMA_VERSION),)]
    connection.close()
