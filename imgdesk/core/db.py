"""The schema (peewee), in a SQLite file or a PostgreSQL database.

Only :mod:`imgdesk.core.repository` queries these tables. The embedded SQLite file is the
default; ``postgresql://`` URLs (a cluster's shared state) go through
:mod:`imgdesk.core.db_postgres`.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from peewee import (
    SQL,
    AutoField,
    BooleanField,
    CharField,
    Database,
    DatabaseProxy,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    PostgresqlDatabase,
    SqliteDatabase,
    TextField,
)
from peewee import DatabaseError as PeeweeDatabaseError
from peewee import InterfaceError as PeeweeInterfaceError

from imgdesk.core import db_postgres
from imgdesk.core.errors import DatabaseBusyError, DatabaseError, DataFolderError, SettingsError
from imgdesk.core.instance import unusable_data_folder
from imgdesk.core.settings import Settings
from imgdesk.core.states import IN_FLIGHT

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 5

# The models' database: the SQLite file (open_database) or a PostgreSQL database
# (open_database_url). One database per process, like Vorta's store. Typed as the Database
# it stands for, so its callers are checked as before.
_proxy = DatabaseProxy()
db = cast(Database, _proxy)
# The embedded database, bound to a file by open_database().
_sqlite = SqliteDatabase(None)


class BaseModel(Model):
    """Every table lives in the one open database ``db``."""

    class Meta:
        database = db
        legacy_table_names = False


class KeyValue(BaseModel):
    """Small named values: the schema version and the stored settings."""

    key = CharField(primary_key=True)
    value = TextField()


def _counter() -> IntegerField:
    """A count column; its SQL default matches the one schema 2's upgrade adds."""
    return IntegerField(default=0, constraints=[SQL("DEFAULT 0")])


class RequestRow(BaseModel):
    """One loaded CSV: a processing request."""

    id = CharField(primary_key=True)
    csv_name = TextField()
    csv_path = TextField(default="")
    status = CharField(index=True)  # pending | processing | completed | failed
    error = TextField(null=True)
    created_at = FloatField()
    started_at = FloatField(null=True)
    finished_at = FloatField(null=True)
    # What export needs to write the same spreadsheet back.
    header = TextField()  # JSON list
    delimiter = CharField()
    encoding = CharField()
    serial_column = IntegerField()
    name_column = IntegerField()
    urls_column = IntegerField()
    output_column = IntegerField(null=True)
    webhook_url = TextField(null=True)
    webhook_secret = TextField(null=True)
    output_csv = TextField(null=True)
    # The OutputSettings the request was created with, as JSON (schema 3): its retries use
    # them too, whatever the settings say by then.
    output_settings = TextField(default="{}", constraints=[SQL("DEFAULT '{}'")])
    # Where its outputs are stored, a StorageChoice as JSON (schema 4); "{}" is the data
    # folder's images. Never a secret: the credentials come from where the work runs.
    storage = TextField(default="{}", constraints=[SQL("DEFAULT '{}'")])
    # When `imgdesk cleanup` or the retention setting removed its stored files (schema 4):
    # the rows stay, and an export says the files are gone.
    files_removed_at = FloatField(null=True)
    # Seconds it had images in flight (schema 4): its time and speed leave out pauses,
    # waits and the days between a run and its retry.
    active_s = FloatField(default=0.0, constraints=[SQL("DEFAULT 0")])
    # high, normal or low (schema 5): higher ones are served first in the cluster (SPEC 11).
    # None is normal, as every request recorded before.
    priority = CharField(null=True)
    # Image counts kept by the image_counts trigger (schema 2), so reading a request's
    # progress is one row, not an aggregate over up to 300,000 images on every refresh.
    total_images = _counter()
    done_images = _counter()
    failed_images = _counter()
    in_flight_images = _counter()
    done_input_bytes = _counter()
    output_bytes = _counter()

    class Meta:
        table_name = "request"


class ProductRow(BaseModel):
    """One data row of the input CSV, valid or not (invalid rows export an empty cell)."""

    id = AutoField()
    # No index of its own: the unique (request, row_index) index below serves it.
    request = ForeignKeyField(RequestRow, backref="products", on_delete="CASCADE", index=False)
    row_index = IntegerField()
    line = IntegerField()
    serial = TextField()
    name = TextField()
    cells = TextField()  # JSON list
    urls = TextField()  # JSON list
    problems = TextField(default="[]")  # JSON list; empty when valid
    valid = BooleanField(default=True)

    class Meta:
        table_name = "product"
        indexes = ((("request", "row_index"), True),)


class ImageRow(BaseModel):
    """One image URL of a valid product, at its position (1-based)."""

    id = AutoField()
    # Few indexes on purpose: each one slows the bulk insert of a 300,000-image request.
    # (request, status) serves every per-request query; products are joined by their key.
    request = ForeignKeyField(RequestRow, backref="images", on_delete="CASCADE", index=False)
    product = ForeignKeyField(ProductRow, backref="images", on_delete="CASCADE", index=False)
    position = IntegerField()
    url = TextField()
    status = CharField()  # pending | downloading | compressing | done | failed
    attempts = IntegerField(default=0)
    error_code = CharField(null=True)
    error = TextField(null=True)
    http_status = IntegerField(null=True)
    input_bytes = IntegerField(null=True)
    output_bytes = IntegerField(null=True)
    width = IntegerField(null=True)
    height = IntegerField(null=True)
    input_type = CharField(null=True)
    download_ms = IntegerField(null=True)
    compress_ms = IntegerField(null=True)
    output_path = TextField(null=True)
    output_url = TextField(null=True)
    # Schema 3: the output's format ("jpeg", "webp", "avif"), and what a person should know
    # about it: "kept_original", "over_target" (comma-separated), or NULL.
    output_format = CharField(null=True)
    note = CharField(null=True)
    updated_at = FloatField(null=True)

    class Meta:
        table_name = "image"
        indexes = ((("request", "status"), False),)


class OutputCache(BaseModel):
    """The last stored output of a URL under some output settings, for later runs to reuse."""

    url = TextField()
    settings_key = CharField()  # see imgdesk.core.settings.Settings.output_key
    etag = TextField(null=True)
    last_modified = TextField(null=True)
    content_sha256 = CharField()
    output_path = TextField()  # the storage key (imgdesk 0.1: the absolute file path)
    input_bytes = IntegerField()
    output_bytes = IntegerField()
    width = IntegerField()
    height = IntegerField()
    input_type = CharField()
    note = CharField(null=True)  # the image's note (schema 3), so a reused output keeps it
    updated_at = FloatField()

    class Meta:
        table_name = "output_cache"
        indexes = ((("url", "settings_key"), True),)


class WebhookDelivery(BaseModel):
    """The outbox: one event owed to a webhook receiver, kept until delivered or given up."""

    id = CharField(primary_key=True)  # the stable ``webhook-id``, reused on every attempt
    request_id = CharField(index=True)  # no foreign key: deliveries outlive deleted requests
    event = CharField()  # request.completed | request.failed | test
    url = TextField()
    secret = TextField(null=True)
    payload = TextField()  # the exact JSON body, so every attempt sends the same bytes
    status = CharField(index=True)  # pending | delivered | failed
    attempts = IntegerField(default=0)
    next_attempt_at = FloatField()
    created_at = FloatField()
    finished_at = FloatField(null=True)
    last_error = TextField(null=True)

    class Meta:
        table_name = "webhook_delivery"


class WebhookAttempt(BaseModel):
    """One POST of a delivery and what came of it."""

    delivery = ForeignKeyField(WebhookDelivery, backref="attempt_rows", on_delete="CASCADE")
    attempted_at = FloatField()
    status_code = IntegerField(null=True)
    error = TextField(null=True)
    duration_ms = IntegerField()
    response_excerpt = TextField(null=True)

    class Meta:
        table_name = "webhook_attempt"


TABLES = [
    KeyValue,
    RequestRow,
    ProductRow,
    ImageRow,
    OutputCache,
    WebhookDelivery,
    WebhookAttempt,
]


def open_database(path: Path, synchronous: str = "normal") -> SqliteDatabase:
    """Open (creating if needed) the database file and bring its schema up to date.

    WAL lets ``imgdesk status`` read while the window writes; ``synchronous=normal`` can lose
    the last commits on power loss (never corrupts); ``full`` trades speed for that.

    Raises:
        DataFolderError: the folder cannot be written, or the file is not a database this
            imgdesk can use (garbage, damaged, newer schema); such a file is left untouched.
        DatabaseBusyError: another program holds the database's write lock.
    """
    global _checkpointer, _opened
    close_database()
    _check_database_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Opening for writing changes nothing, and an OSError says why in plain words.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o644))
    except OSError as error:
        raise unusable_data_folder(path.parent, error) from None
    _sqlite.init(
        str(path),
        pragmas={
            "journal_mode": "wal",
            "synchronous": synchronous,
            "foreign_keys": 1,
            # Checkpoints run on a thread of their own (_Checkpointer), not on commit.
            "wal_autocheckpoint": 0,
            # Wait at most a second for another writer; the engine keeps its changes and
            # tries again rather than freezing the window for longer.
            "busy_timeout": 1000,
        },
        check_same_thread=False,
    )
    _proxy.initialize(_sqlite)
    try:
        db.connect(reuse_if_open=True)
        _migrate()
    except PeeweeDatabaseError as error:
        close_database()
        if _is_busy(error):
            raise _busy(path) from None
        raise DataFolderError(
            f"imgdesk cannot use its database {path} ({error}). "
            "Move it away or use another --data-dir."
        ) from None
    file = path.stat()
    _opened = (path, file.st_dev, file.st_ino)
    _checkpointer = _Checkpointer(path)
    _checkpointer.start()
    return _sqlite


def open_database_url(url: str) -> Database:
    """Open a ``postgresql://user:password@host:port/name`` database, or else a SQLite file.

    A fresh PostgreSQL database gets the current schema directly; only SQLite files have
    older schemas to upgrade. Anything else is the file's path, as :func:`open_database`
    takes it, bare or as ``sqlite:///path`` (``sqlite:////tmp/x.db`` is ``/tmp/x.db``).

    Raises:
        DatabaseError: the PostgreSQL server cannot be reached, refuses the login, or the
            database holds a newer imgdesk's schema (one sentence, no password).
        DataFolderError: as :func:`open_database`, for a file.
        DatabaseBusyError: as :func:`open_database`, for a file.
    """
    if not db_postgres.is_postgres_url(url):
        return open_database(Path(url.removeprefix("sqlite:///")))
    close_database()
    postgres = db_postgres.connect(url)
    _proxy.initialize(postgres)
    try:
        _create_postgres_schema(url)
    except PeeweeDatabaseError as error:
        close_database()
        raise database_error(error) from None
    except DatabaseError:
        close_database()
        raise
    logger.info("using the PostgreSQL database %s", db_postgres.where(url))
    return postgres


def is_postgres() -> bool:
    """True when the open database is PostgreSQL (the repository's queries differ)."""
    return isinstance(_proxy.obj, PostgresqlDatabase)


def set_synchronous(mode: str) -> None:
    """SQLite's ``synchronous`` pragma (``normal`` or ``full``); PostgreSQL sets its own."""
    if not is_postgres():
        _sqlite.pragma("synchronous", mode)


def _create_postgres_schema(url: str) -> None:
    """Tables, indexes, the counting trigger and the schema version, once for everyone.

    Several workers may start on a fresh database at once: an advisory lock makes one of
    them create the schema while the others wait, then find it. A database already at this
    schema is left alone: its DDL would lock the tables that running workers are writing
    (a worker starting beside busy ones failed with "deadlock detected").
    """
    with db.atomic():
        # The others wait as long as the creation takes, not the usual one-second lock wait.
        db.execute_sql("SET LOCAL lock_timeout = '120s'")  # type: ignore[no-untyped-call]
        db.execute_sql(  # type: ignore[no-untyped-call]
            "SELECT pg_advisory_xact_lock(%s)", (db_postgres.SCHEMA_LOCK_KEY,)
        )
        if db.table_exists(KeyValue._meta.table_name):
            row = KeyValue.get_or_none(KeyValue.key == "schema_version")
            if row is not None and int(row.value) == SCHEMA_VERSION:
                return
        db.create_tables(TABLES, safe=True)
        row = KeyValue.get_or_none(KeyValue.key == "schema_version")
        version = int(row.value) if row else SCHEMA_VERSION
        if version == 4:
            # Schema 4 -> 5, the one upgrade a PostgreSQL database has seen: priorities.
            db.execute_sql(  # type: ignore[no-untyped-call]
                "ALTER TABLE request ADD COLUMN IF NOT EXISTS priority VARCHAR(255)"
            )
            KeyValue.update(value=str(SCHEMA_VERSION)).where(
                KeyValue.key == "schema_version"
            ).execute()
            logger.info("database schema at version %s", SCHEMA_VERSION)
            version = SCHEMA_VERSION
        if version != SCHEMA_VERSION:
            raise DatabaseError(
                f"The PostgreSQL database {db_postgres.where(url)} holds imgdesk schema "
                f"{version}; this imgdesk knows {SCHEMA_VERSION}. Use the same imgdesk "
                "version on every machine, or another database."
            )
        for statement in (
            db_postgres.PRODUCT_INDEX,
            db_postgres.IMAGE_COUNTS_FUNCTION,
            db_postgres.DROP_IMAGE_COUNTS_TRIGGER,
            db_postgres.IMAGE_COUNTS_TRIGGER,
        ):
            db.execute_sql(statement)  # type: ignore[no-untyped-call]
        if row is None:
            KeyValue.create(key="schema_version", value=str(SCHEMA_VERSION))
            logger.info("database schema at version %s", SCHEMA_VERSION)


def check_database_file() -> None:
    """Make sure the open database is still the file at its path.

    SQLite keeps writing to a deleted (unlinked) or replaced file without a word: results
    would be "stored" where nobody will ever read them.

    Raises:
        DataFolderError: the file was deleted or replaced since it was opened.
    """
    if _opened is None:
        return
    path, device, inode = _opened
    try:
        file = path.stat()
    except OSError:
        file = None
    if file is None or (file.st_dev, file.st_ino) != (device, inode):
        raise DataFolderError(
            f"The database {path} was deleted or replaced while imgdesk was running, so "
            "nothing more can be stored. Restore it, or start again with another --data-dir."
        )


def _check_database_file(path: Path) -> None:
    """Refuse a file that is not an imgdesk database this version can use, touching nothing.

    Read through an ``immutable`` connection (no lock, no ``-wal``/``-shm`` files, no write),
    or read-only when a write-ahead log exists: then its pages may be the newest.
    """
    try:
        if path.stat().st_size == 0:
            return  # new, or created but never written: SQLite starts it afresh
    except FileNotFoundError:
        return
    except OSError as error:
        raise unusable_data_folder(path.parent, error) from None
    wal = path.with_name(path.name + "-wal")
    mode = "mode=ro" if wal.exists() else "immutable=1"
    try:
        probe = sqlite3.connect(f"{path.absolute().as_uri()}?{mode}", uri=True)
    except sqlite3.Error as error:
        raise _not_usable(path, str(error)) from None
    try:
        tables = {row[0] for row in probe.execute("SELECT name FROM sqlite_master")}
        version = 0
        if tables and KeyValue._meta.table_name not in tables:
            raise _not_usable(path, "it holds another program's tables")
        if tables:
            row = probe.execute(
                f"SELECT value FROM {KeyValue._meta.table_name} WHERE key = 'schema_version'"
            ).fetchone()
            version = int(row[0]) if row else 0
    except sqlite3.Error as error:
        if _is_busy(error):
            raise _busy(path) from None
        raise _not_usable(path, str(error)) from None
    except ValueError:
        raise _not_usable(path, "its schema version is not a number") from None
    finally:
        probe.close()
    if version > SCHEMA_VERSION:
        raise DataFolderError(
            f"The database {path} was written by a newer imgdesk (schema {version}; this one "
            f"knows {SCHEMA_VERSION}). Update imgdesk, or use another --data-dir."
        )


def _not_usable(path: Path, reason: str) -> DataFolderError:
    return DataFolderError(
        f"{path} is not an imgdesk database ({reason}). Move it away or use another --data-dir."
    )


def _busy(path: Path) -> DatabaseBusyError:
    return DatabaseBusyError(
        f"Another program is using the database {path}. "
        "Close it, or wait for it to finish, then try again."
    )


def _is_busy(error: Exception) -> bool:
    """True for SQLite's "database is locked" / "busy": another writer, not a damaged file."""
    text = str(error).lower()
    return "locked" in text or "busy" in text


@atexit.register
def close_database() -> None:
    """Stop the checkpoint thread and close the connection (before removing the folder)."""
    global _checkpointer, _opened
    _opened = None
    if _checkpointer is not None:
        _checkpointer.stop()
        _checkpointer = None
    if _proxy.obj is not None and not db.is_closed():
        db.close()


class _Checkpointer(threading.Thread):
    """Copies the write-ahead log into the database file, on a thread of its own.

    SQLite otherwise does it on a committing thread every 1,000 pages, with an fsync: on
    the GUI thread that was one of the window's slowest moments in a batch. A passive
    checkpoint never waits for, nor blocks, the writer or the readers.
    """

    INTERVAL_S = 1.0

    def __init__(self, path: Path) -> None:
        super().__init__(name="sqlite-checkpoint", daemon=True)
        self._path = path
        self._stopping = threading.Event()

    def run(self) -> None:
        connection = sqlite3.connect(self._path, timeout=0, check_same_thread=False)
        try:
            while not self._stopping.wait(self.INTERVAL_S):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as error:  # busy, or the file went away: try later
                    logger.debug("checkpoint skipped: %s", error)
        finally:
            connection.close()

    def stop(self) -> None:
        """End the thread; the last connection to close checkpoints what is left."""
        self._stopping.set()
        self.join(5)


_checkpointer: _Checkpointer | None = None
# The open database's path and file identity (device, inode), see check_database_file.
_opened: tuple[Path, int, int] | None = None


# The request's counters follow every change of an image's state or sizes. Images are only
# inserted by create_request (which sets total_images) and only deleted with their request.
_IN_FLIGHT_SQL = "(" + ", ".join(f"'{state}'" for state in IN_FLIGHT) + ")"
IMAGE_COUNTS_TRIGGER = f"""
CREATE TRIGGER IF NOT EXISTS image_counts
AFTER UPDATE OF status, input_bytes, output_bytes ON image
WHEN OLD.status IS NOT NEW.status
  OR OLD.input_bytes IS NOT NEW.input_bytes
  OR OLD.output_bytes IS NOT NEW.output_bytes
BEGIN
  UPDATE request SET
    done_images = done_images + (NEW.status = 'done') - (OLD.status = 'done'),
    failed_images = failed_images + (NEW.status = 'failed') - (OLD.status = 'failed'),
    in_flight_images = in_flight_images
      + (NEW.status IN {_IN_FLIGHT_SQL}) - (OLD.status IN {_IN_FLIGHT_SQL}),
    done_input_bytes = done_input_bytes
      + CASE WHEN NEW.status = 'done' THEN COALESCE(NEW.input_bytes, 0) ELSE 0 END
      - CASE WHEN OLD.status = 'done' THEN COALESCE(OLD.input_bytes, 0) ELSE 0 END,
    output_bytes = output_bytes + COALESCE(NEW.output_bytes, 0) - COALESCE(OLD.output_bytes, 0)
  WHERE id = NEW.request_id;
END
"""

_COUNTER_COLUMNS = (
    "total_images",
    "done_images",
    "failed_images",
    "in_flight_images",
    "done_input_bytes",
    "output_bytes",
)


def _add_request_counters() -> None:
    """Schema 1 -> 2: counter columns on request, filled from the images once."""
    for column in _COUNTER_COLUMNS:
        db.execute_sql(  # type: ignore[no-untyped-call]
            f"ALTER TABLE request ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0"
        )
    db.execute_sql(  # type: ignore[no-untyped-call]
        "UPDATE request SET "
        "total_images = (SELECT COUNT(*) FROM image i WHERE i.request_id = request.id), "
        "done_images = (SELECT COUNT(*) FROM image i "
        "  WHERE i.request_id = request.id AND i.status = 'done'), "
        "failed_images = (SELECT COUNT(*) FROM image i "
        "  WHERE i.request_id = request.id AND i.status = 'failed'), "
        "in_flight_images = (SELECT COUNT(*) FROM image i "
        f"  WHERE i.request_id = request.id AND i.status IN {_IN_FLIGHT_SQL}), "
        "done_input_bytes = (SELECT COALESCE(SUM(i.input_bytes), 0) FROM image i "
        "  WHERE i.request_id = request.id AND i.status = 'done'), "
        "output_bytes = (SELECT COALESCE(SUM(i.output_bytes), 0) FROM image i "
        "  WHERE i.request_id = request.id)"
    )


def _add_output_settings() -> None:
    """Schema 2 -> 3: each request keeps its output settings; images note their format.

    Requests recorded before were all made as JPEG at the quality of the stored settings.
    """
    stored = KeyValue.get_or_none(KeyValue.key == "settings")
    try:
        settings = Settings.from_dict(json.loads(stored.value)) if stored else Settings()
    except (ValueError, TypeError, SettingsError) as error:
        logger.warning("stored settings unreadable (%s); old requests get the defaults", error)
        settings = Settings()
    db.execute_sql(  # type: ignore[no-untyped-call]
        "ALTER TABLE request ADD COLUMN output_settings TEXT NOT NULL DEFAULT '{}'"
    )
    db.execute_sql(  # type: ignore[no-untyped-call]
        "UPDATE request SET output_settings = ?", (json.dumps(settings.output.to_dict()),)
    )
    for table, column in (("image", "output_format"), ("image", "note"), ("output_cache", "note")):
        db.execute_sql(  # type: ignore[no-untyped-call]
            f"ALTER TABLE {table} ADD COLUMN {column} VARCHAR(255)"
        )
    db.execute_sql(  # type: ignore[no-untyped-call]
        "UPDATE image SET output_format = 'jpeg' WHERE output_path IS NOT NULL"
    )


def _add_active_time() -> None:
    """Schema 3 -> 4: requests made before count their wall-clock time as active."""
    db.execute_sql(  # type: ignore[no-untyped-call]
        "ALTER TABLE request ADD COLUMN active_s REAL NOT NULL DEFAULT 0"
    )
    db.execute_sql(  # type: ignore[no-untyped-call]
        "UPDATE request SET active_s = MAX(0, COALESCE(finished_at, started_at) - started_at) "
        "WHERE started_at IS NOT NULL"
    )


def _add_priority() -> None:
    """Schema 4 -> 5: requests have a priority; those made before are normal (NULL)."""
    columns = [column.name for column in db.get_columns("request")]
    if "priority" not in columns:  # a database turned back by hand may keep it
        db.execute_sql(  # type: ignore[no-untyped-call]
            "ALTER TABLE request ADD COLUMN priority VARCHAR(255)"
        )


def _migrate() -> None:
    with db.atomic():
        db.create_tables(TABLES, safe=True)
        row = KeyValue.get_or_none(KeyValue.key == "schema_version")
        # A newer version was refused by _check_database_file before anything was written.
        version = int(row.value) if row else 0
        if version == 1:
            _add_request_counters()
        if 1 <= version <= 2:
            _add_output_settings()
        if 1 <= version <= 3:
            db.execute_sql(  # type: ignore[no-untyped-call]
                "ALTER TABLE request ADD COLUMN storage TEXT NOT NULL DEFAULT '{}'"
            )
            db.execute_sql(  # type: ignore[no-untyped-call]
                "ALTER TABLE request ADD COLUMN files_removed_at REAL"
            )
            _add_active_time()
        if 1 <= version <= 4:
            _add_priority()
        db.execute_sql(IMAGE_COUNTS_TRIGGER)  # type: ignore[no-untyped-call]
        if version < SCHEMA_VERSION:
            KeyValue.insert(
                key="schema_version", value=str(SCHEMA_VERSION)
            ).on_conflict_replace().execute()
            logger.info("database schema at version %s", SCHEMA_VERSION)


# SQLite's result codes for "another connection holds the lock": SQLITE_BUSY, SQLITE_LOCKED.
_BUSY_CODES = frozenset({5, 6})
_T = TypeVar("_T")


def translate_errors(cls: type[_T]) -> type[_T]:
    """Make every public method of ``cls`` raise imgdesk's database errors, never peewee's.

    The one busy-database policy: a lock held by another program is
    :class:`~imgdesk.core.errors.DatabaseBusyError` (the same call may succeed later); any
    other refusal is :class:`~imgdesk.core.errors.DatabaseError`. Callers outside
    ``imgdesk.core`` never import peewee.
    """
    for name, member in list(vars(cls).items()):
        if inspect.isfunction(member) and not name.startswith("_"):
            setattr(cls, name, _translating(member))
    return cls


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def translated(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except PeeweeDatabaseError as error:
            raise database_error(error) from error
        except PeeweeInterfaceError as error:
            # psycopg2's "connection already closed": the server went away. From SQLite it
            # is a bug (a closed database used), and stays one.
            if db_postgres.is_driver_error(error):
                raise database_error(error) from error
            raise

    return translated


def database_error(error: Exception) -> DatabaseBusyError | DatabaseError:
    """Imgdesk's error for a peewee one (see :func:`translate_errors`)."""
    if db_postgres.is_driver_error(error):
        pgcode = getattr(getattr(error, "orig", None), "pgcode", None)
        if pgcode in db_postgres.BUSY_CODES:
            return DatabaseBusyError(db_postgres.first_line(error))
        if pgcode is None or pgcode.startswith("08"):  # no answer from the server
            return DatabaseError(
                f"The PostgreSQL server did not answer ({db_postgres.first_line(error)}). "
                "Check that it runs and can be reached, then try again."
            )
        return DatabaseError(db_postgres.first_line(error))
    original = error.args[0] if error.args else error
    code = getattr(original, "sqlite_errorcode", None)
    words = str(original).lower()
    if code in _BUSY_CODES or (code is None and ("locked" in words or "busy" in words)):
        return DatabaseBusyError(str(original))
    return DatabaseError(str(original))
