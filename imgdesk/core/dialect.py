"""The SQL that differs between SQLite (the desktop's file) and PostgreSQL (a cluster).

The repository writes its queries once, with SQLite's ``?`` placeholders; these helpers run
them on whichever database is open, and hold the few statements PostgreSQL needs of its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from peewee import SQL

from imgdesk.core.db import ImageRow, OutputCache, RequestRow, db, is_postgres, translate_errors
from imgdesk.core.recording import PreparedRows, RequestImport


def json_rows(query: str, names: Sequence[str], params: Sequence[Any]) -> list[list[Any]]:
    """The rows of ``query`` (its columns called ``names``) fetched as one JSON array.

    sqlite3 gives up the GIL for every step, i.e. every row. On the GUI thread, with
    workers busy, each step then waits up to a switch interval for the GIL: 500 rows one by
    one took 87 ms against a busy thread, as one JSON array in one step 6.5 ms. Row order
    is not kept: callers sort. psycopg2 reads every row at once without such steps, so on
    PostgreSQL the query runs as it is.
    """
    if is_postgres():
        return [list(row) for row in execute(query, params).fetchall()]
    cursor = db.execute_sql(  # type: ignore[no-untyped-call]
        f"SELECT json_group_array(json_array({', '.join(names)})) FROM ({query})", params
    )
    (text,) = cursor.fetchone()
    rows: list[list[Any]] = json.loads(text)
    return rows


def execute(sql: str, params: Sequence[Any]) -> Any:
    """Run raw SQL written with SQLite's ``?`` placeholders on whichever database is open."""
    if is_postgres():
        sql = sql.replace("?", "%s")
    return db.execute_sql(sql, params)  # type: ignore[no-untyped-call]


def in_values(column: str, values: Iterable[Any], sql_type: str) -> tuple[str, Any]:
    """``column`` is one of ``values``: SQL with one ``?`` and the parameter that fills it.

    SQLite reads the values from a JSON array (one parameter, whatever their number);
    PostgreSQL takes an array of ``sql_type``.
    """
    listed = list(values)
    if is_postgres():
        return f"{column} = ANY(?::{sql_type}[])", listed
    return f"{column} IN (SELECT value FROM json_each(?))", json.dumps(listed)


# -- PostgreSQL -------------------------------------------------------------------------------
# Where its SQL differs from SQLite's: rows arrive as JSON records with typed columns
# (jsonb_to_recordset), upserts name their conflict, and writers lock the requests they
# change in id order first, so concurrent writers of one request queue, never deadlock.

_POSTGRES_TYPES = {"INT": "bigint", "FLOAT": "double precision", "VARCHAR": "text", "TEXT": "text"}


def lock_requests(request_ids: Iterable[str] = (), image_ids: Iterable[int] = ()) -> None:
    """Lock the requests about to change (these, and those of these images), in id order.

    PostgreSQL only, inside the writing transaction: its counting trigger locks a request
    after the images it counts, so a writer that changed images first (a cancel) and one
    that changed the request first (a batch) would wait for each other for ever. SQLite's
    one writer holds the whole file, so there it does nothing.
    """
    if not is_postgres():
        return
    execute(
        "SELECT 1 FROM request WHERE id = ANY(?::text[]) "
        "OR id IN (SELECT request_id FROM image WHERE id = ANY(?::bigint[])) "
        "ORDER BY id FOR UPDATE",
        [sorted(set(request_ids)), sorted(set(image_ids))],
    )


def _record_columns(model: Any, names: Sequence[str]) -> tuple[list[str], str]:
    """The column names of fields ``names``, and their ``name type`` list for a record."""
    fields = model._meta.fields
    columns = [fields[name].column_name for name in names]
    types = [_POSTGRES_TYPES[fields[name].field_type] for name in names]
    return columns, ", ".join(
        f"{column} {kind}" for column, kind in zip(columns, types, strict=True)
    )


def update_images_postgres(
    groups: Mapping[tuple[str, ...], list[tuple[Any, ...]]], now: float
) -> None:
    """:meth:`Repository.update_images` on PostgreSQL: one UPDATE per set of fields."""
    if not groups:
        return
    with db.atomic():
        lock_requests(image_ids=[row[0] for rows in groups.values() for row in rows])
        for names, rows in groups.items():
            columns, record = _record_columns(ImageRow, names)
            assignments = ", ".join(f"{column} = j.{column}" for column in columns)
            records = [dict(zip(("id", *columns), row, strict=True)) for row in rows]
            execute(
                f"UPDATE image SET {assignments}, updated_at = ? "
                f"FROM jsonb_to_recordset(?::jsonb) AS j(id bigint, {record}) "
                "WHERE image.id = j.id",
                (now, json.dumps(records)),
            )


def store_cache_postgres(cache_updates: Sequence[Mapping[str, Any]]) -> None:
    """The output cache's upsert on PostgreSQL (one row per URL and settings key)."""
    names = sorted(cache_updates[0])
    columns, record = _record_columns(OutputCache, names)
    replaced = [*columns, OutputCache.updated_at.column_name]
    execute(
        f"INSERT INTO {OutputCache._meta.table_name} ({', '.join(replaced)}) "
        f"SELECT {', '.join(f'j.{column}' for column in columns)}, ? "
        f"FROM jsonb_to_recordset(?::jsonb) AS j({record}) "
        "ON CONFLICT (url, settings_key) DO UPDATE SET "
        + ", ".join(f"{column} = EXCLUDED.{column}" for column in replaced),
        (
            time.time(),
            json.dumps(
                [dict(zip(columns, (c[n] for n in names), strict=True)) for c in cache_updates]
            ),
        ),
    )


def update_then_upsert_postgres(
    update: Any, model: Any, row: Mapping[str, Any] | None, conflict: Sequence[str]
) -> int:
    """Run ``update``, then upsert ``row`` into ``model``'s table if it changed a row.

    One statement, so one round trip: a cluster worker's result and its output-cache row.
    The row's values are typed by their columns (INSERT ... SELECT resolves them so).

    Returns:
        The rows ``update`` changed.
    """
    if row is None:
        return int(update.execute())
    update_sql, params = update.returning(SQL("1")).sql()
    fields = model._meta.fields
    columns = [fields[name].column_name for name in row]
    keys = [fields[name].column_name for name in conflict]
    changes = ", ".join(f"{column} = EXCLUDED.{column}" for column in columns if column not in keys)
    sql = (
        f"WITH changed AS ({update_sql}), cached AS ("
        f"INSERT INTO {model._meta.table_name} ({', '.join(columns)}) "
        f"SELECT {', '.join(['%s'] * len(columns))} WHERE EXISTS (SELECT 1 FROM changed) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {changes}) "
        "SELECT COUNT(*) FROM changed"
    )
    cursor = db.execute_sql(sql, [*params, *row.values()])  # type: ignore[no-untyped-call]
    return int(cursor.fetchone()[0])


# The same rows as recording's SQLite statements, read from JSON arrays in their order.
_POSTGRES_INSERT_PRODUCTS = (
    "INSERT INTO product (id, request_id, row_index, line, serial, name, cells, urls, "
    "problems, valid) SELECT %(base)s + (value->>0)::bigint, %(request)s, "
    "(value->>0)::bigint, (value->>1)::bigint, value->>2, value->>3, (value->4)::text, "
    "(value->5)::text, (value->6)::text, (value->>7)::boolean "
    "FROM json_array_elements(%(rows)s::json) WITH ORDINALITY AS chunk(value, n) ORDER BY n"
)
_POSTGRES_INSERT_IMAGES = (
    "INSERT INTO image (request_id, product_id, position, url, status, attempts) "
    "SELECT %(request)s, %(base)s + (value->>0)::bigint, (value->>1)::bigint, value->>2, "
    "'pending', 0 "
    "FROM json_array_elements(%(rows)s::json) WITH ORDINALITY AS chunk(value, n) ORDER BY n"
)


@translate_errors
class PostgresImport(RequestImport):
    """:class:`RequestImport` on PostgreSQL, where other machines may import at once."""

    def add(self, rows: PreparedRows) -> None:
        """Record some rows and their images in one transaction (see the base class).

        Product ids are the first free id plus the row's offset: the product table is
        locked against other imports until the transaction ends, so two never take the same.
        """
        with db.atomic():
            db.execute_sql("LOCK TABLE product IN SHARE ROW EXCLUSIVE MODE")  # type: ignore[no-untyped-call]
            cursor = db.execute_sql("SELECT COALESCE(MAX(id), 0) FROM product")  # type: ignore[no-untyped-call]
            base = cursor.fetchone()[0] + 1 - rows.first_row_index
            for sql, rows_json in (
                (_POSTGRES_INSERT_PRODUCTS, rows.products),
                (_POSTGRES_INSERT_IMAGES, rows.images),
            ):
                params = {"base": base, "request": self.request_id, "rows": rows_json}
                db.execute_sql(sql, params)  # type: ignore[no-untyped-call]
            RequestRow.update(total_images=RequestRow.total_images + rows.image_count).where(
                RequestRow.id == self.request_id
            ).execute()
        self.rows_recorded += rows.row_count
