"""The PostgreSQL side of the database: connecting, its schema's extras, its error codes.

:mod:`imgdesk.core.db` opens a ``postgresql://`` URL through this module; the tables are the
same peewee models as in SQLite. Only what PostgreSQL does differently lives here.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from peewee import DatabaseError as PeeweeDatabaseError
from peewee import ImproperlyConfigured, PostgresqlDatabase
from peewee import InterfaceError as PeeweeInterfaceError

from imgdesk.core.errors import DatabaseError
from imgdesk.core.redact import redact_text
from imgdesk.core.states import IN_FLIGHT

logger = logging.getLogger(__name__)

URL_SCHEMES = ("postgresql://", "postgres://")

# SQLite's INTEGER is 64 bits and its REAL a double; PostgreSQL's INTEGER and REAL are half
# that: byte counters would overflow past 2 GB and Unix times lose minutes.
FIELD_TYPES = {
    "AUTO": "BIGSERIAL",
    "INT": "BIGINT",
    "FLOAT": "DOUBLE PRECISION",
}

# The one lock every imgdesk taking a fresh database's schema waits for (any constant).
SCHEMA_LOCK_KEY = 0x1D6DE5C

# Wait at most this long for a lock another writer holds, as SQLite's busy_timeout: then the
# call is DatabaseBusyError and the engine keeps its changes and tries again.
LOCK_TIMEOUT_MS = 1000

# SQLSTATEs of "another transaction was in the way": trying again may succeed.
# serialization_failure, deadlock_detected, lock_not_available.
BUSY_CODES = frozenset({"40001", "40P01", "55P03"})

# Every foreign key needs an index here: PostgreSQL checks a deleted product against the
# images with a scan of the image table otherwise (SQLite's bulk delete does not).
PRODUCT_INDEX = "CREATE INDEX IF NOT EXISTS image_product_id ON image (product_id)"

# The request's counters follow every change of its images, as SQLite's image_counts trigger
# does, but once per statement (transition tables): failing 300,000 images updates each
# request once, not 300,000 times. The requests are locked in id order first, so two
# writers of the same requests queue instead of deadlocking.
_IN_FLIGHT_SQL = "(" + ", ".join(f"'{state}'" for state in IN_FLIGHT) + ")"
IMAGE_COUNTS_FUNCTION = f"""
CREATE OR REPLACE FUNCTION image_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM request WHERE id IN (SELECT request_id FROM new_rows) ORDER BY id FOR UPDATE;
  UPDATE request SET
    done_images = request.done_images + change.done,
    failed_images = request.failed_images + change.failed,
    in_flight_images = request.in_flight_images + change.in_flight,
    done_input_bytes = request.done_input_bytes + change.done_input,
    output_bytes = request.output_bytes + change.output
  FROM (
    SELECT request_id, SUM(done) AS done, SUM(failed) AS failed,
      SUM(in_flight) AS in_flight, SUM(done_input) AS done_input, SUM(output) AS output
    FROM (
      SELECT request_id, (status = 'done')::int AS done, (status = 'failed')::int AS failed,
        (status IN {_IN_FLIGHT_SQL})::int AS in_flight,
        CASE WHEN status = 'done' THEN COALESCE(input_bytes, 0) ELSE 0 END AS done_input,
        COALESCE(output_bytes, 0) AS output
      FROM new_rows
      UNION ALL
      SELECT request_id, -(status = 'done')::int, -(status = 'failed')::int,
        -(status IN {_IN_FLIGHT_SQL})::int,
        CASE WHEN status = 'done' THEN -COALESCE(input_bytes, 0) ELSE 0 END,
        -COALESCE(output_bytes, 0)
      FROM old_rows
    ) AS row_change
    GROUP BY request_id
  ) AS change
  WHERE request.id = change.request_id
    AND (change.done <> 0 OR change.failed <> 0 OR change.in_flight <> 0
      OR change.done_input <> 0 OR change.output <> 0);
  RETURN NULL;
END
$$
"""
# Transition tables allow no column list, so it runs after every UPDATE of images; the
# images whose state and sizes did not change add nothing.
IMAGE_COUNTS_TRIGGER = (
    "CREATE TRIGGER image_counts AFTER UPDATE ON image "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION image_counts()"
)
DROP_IMAGE_COUNTS_TRIGGER = "DROP TRIGGER IF EXISTS image_counts ON image"


class ReconnectingPostgresDatabase(PostgresqlDatabase):
    """A PostgreSQL database that replaces a connection the server dropped.

    After a server restart or a network cut, the statement that found the connection gone
    fails (DatabaseError, the caller keeps its changes); the next one, outside a
    transaction, opens a new connection instead of failing for ever.
    """

    def cursor(self, named_cursor: Any = None) -> Any:
        """A cursor on this thread's connection, reconnecting first if the server dropped it."""
        # peewee's stubs leave out its per-thread connection state.
        connection = self._state.conn  # type: ignore[attr-defined]
        if connection is not None and connection.closed and not self.in_transaction():
            logger.info("the PostgreSQL connection was lost; connecting again")
            self.dispose()
        return super().cursor(named_cursor)  # type: ignore[no-untyped-call]


def is_postgres_url(url: str) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL, not for a file path."""
    return url.startswith(URL_SCHEMES)


def where(url: str) -> str:
    """``host:port/database`` of a URL, for messages: never its user or password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    return f"{host}:{port}/{parts.path.lstrip('/')}"


def connect(url: str) -> ReconnectingPostgresDatabase:
    """A connected peewee database for ``url``.

    Raises:
        DatabaseError: the server cannot be reached or refuses the login, in one sentence
            that names the host and database, never the password.
    """
    database = ReconnectingPostgresDatabase(
        url,
        field_types=FIELD_TYPES,
        connect_timeout=10,
        options=f"-c lock_timeout={LOCK_TIMEOUT_MS}",
    )
    try:
        database.connect()
    except ImproperlyConfigured:  # psycopg2 is not installed
        raise DatabaseError(
            f"imgdesk cannot use the PostgreSQL database {where(url)}: its driver is missing. "
            "Install imgdesk with its cluster extra (pip install 'imgdesk[cluster]')."
        ) from None
    except (PeeweeDatabaseError, PeeweeInterfaceError) as error:
        raise cannot_connect(url, error) from None
    return database


def cannot_connect(url: str, error: Exception) -> DatabaseError:
    """The one sentence for a server that cannot be reached, or refuses us."""
    return DatabaseError(
        f"imgdesk cannot use the PostgreSQL database {where(url)} ({first_line(error)}). "
        "Check the --database URL, and that the server runs and lets this user in."
    )


def is_driver_error(error: Exception) -> bool:
    """True when peewee's ``error`` wraps one of psycopg2's (peewee keeps it as ``orig``)."""
    return type(getattr(error, "orig", None)).__module__.startswith("psycopg2")


def first_line(error: Exception) -> str:
    """psycopg2's message without its hints on further lines, credentials hidden."""
    original = getattr(error, "orig", None) or (error.args[0] if error.args else error)
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    text = lines[0] if lines else type(original).__name__
    # libpq's "connection to server at ... failed: FATAL:  password ..." says it twice.
    text = text.replace("FATAL:  ", "").rstrip(".")
    return redact_text(text)
