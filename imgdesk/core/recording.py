"""Recording a catalogue in the database: rows encoded off the GUI thread, stored in chunks.

A dropped file's rows are parsed in a worker thread (or a child process) and encoded as
:class:`PreparedRows`; :class:`RequestImport` stores them a chunk at a time on the thread
that owns the database, so a 100,000-row file never holds the window for long.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from imgdesk.core.csvio import Catalogue, CatalogueRow
from imgdesk.core.db import ImageRow, ProductRow, RequestRow, db, translate_errors
from imgdesk.core.output import OutputSettings
from imgdesk.core.states import RequestStatus
from imgdesk.core.storage_choice import StorageChoice

logger = logging.getLogger(__name__)

# A request whose rows are still being recorded: listed (its rows so far can be looked at),
# but never started by the engine; removed at the next start if the import was cut short.
IMPORTING = str(RequestStatus.IMPORTING)


@dataclass(frozen=True)
class PreparedRows:
    """Rows of a catalogue encoded for the database (built off the GUI thread).

    Two JSON arrays, the products and their images, recorded by :meth:`RequestImport.add`
    in two statements.
    """

    products: str
    images: str
    first_row_index: int
    row_count: int
    image_count: int


def prepare_rows(rows: Sequence[CatalogueRow]) -> PreparedRows:
    """Encode rows once: one ``json.dumps`` per chunk, not three per row."""
    products = [
        (
            row.index,
            row.line,
            row.serial,
            row.product_name,
            row.cells,
            row.urls,
            row.problems,
            row.valid,
        )
        for row in rows
    ]
    images = [
        (row.index, position, url)
        for row in rows
        if row.valid
        for position, url in enumerate(row.urls, start=1)
    ]
    first_row_index = rows[0].index if rows else 0
    return PreparedRows(
        json.dumps(products), json.dumps(images), first_row_index, len(rows), len(images)
    )


# One statement per chunk: the GUI thread gives up the GIL on every SQLite step, and getting
# it back from busy workers can take a switch interval each time (see _json_rows). A product's
# id is given, not looked up: the first free id plus its row's offset in the chunk.
_INSERT_PRODUCTS = (
    "INSERT INTO product (id, request_id, row_index, line, serial, name, cells, urls, "
    "problems, valid) SELECT :base + json_extract(value, '$[0]'), :request, "
    "json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), "
    "json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'), "
    "json_extract(value, '$[6]'), json_extract(value, '$[7]') FROM json_each(:rows) ORDER BY key"
)
_INSERT_IMAGES = (
    "INSERT INTO image (request_id, product_id, position, url, status, attempts) "
    "SELECT :request, :base + json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]'), 'pending', 0 FROM json_each(:rows) ORDER BY key"
)


@translate_errors
class RequestImport:
    """Records one request chunk by chunk, in short transactions, so the window keeps responding.

    The request is ``importing`` (listed, but never started by the engine) until
    :meth:`finish`; an import cut short is removed by :meth:`Repository.recover_interrupted`.
    """

    def __init__(
        self,
        head: Catalogue,
        csv_path: Path | None,
        webhook_url: str | None,
        webhook_secret: str | None,
        output: OutputSettings,
        storage: StorageChoice,
    ) -> None:
        """Record the request itself: ``head`` (name, header, columns), output and storage."""
        self.request_id = str(uuid.uuid4())
        self.name = head.name
        self.rows_recorded = 0
        with db.atomic():
            RequestRow.create(
                id=self.request_id,
                csv_name=head.name,
                csv_path=str(csv_path or ""),
                status=IMPORTING,
                created_at=time.time(),
                header=json.dumps(list(head.header)),
                delimiter=head.delimiter,
                encoding=head.encoding,
                serial_column=head.serial_column,
                name_column=head.name_column,
                urls_column=head.urls_column,
                output_column=head.output_column,
                webhook_url=webhook_url or None,
                webhook_secret=webhook_secret or None,
                output_settings=json.dumps(output.to_dict()),
                storage="{}" if storage.is_default else json.dumps(storage.to_dict()),
            )

    def add(self, rows: PreparedRows) -> None:
        """Record some rows and their images in one transaction.

        A call that fails (database busy) changed nothing and can simply be made again.
        """
        with db.atomic():
            cursor = db.execute_sql("SELECT COALESCE(MAX(id), 0) FROM product")  # type: ignore[no-untyped-call]
            base = cursor.fetchone()[0] + 1 - rows.first_row_index
            for sql, rows_json in (
                (_INSERT_PRODUCTS, rows.products),
                (_INSERT_IMAGES, rows.images),
            ):
                params = {"base": base, "request": self.request_id, "rows": rows_json}
                db.execute_sql(sql, params)  # type: ignore[no-untyped-call]
            RequestRow.update(total_images=RequestRow.total_images + rows.image_count).where(
                RequestRow.id == self.request_id
            ).execute()
        self.rows_recorded += rows.row_count

    def finish(self) -> str:
        """Make the request visible, ready for the engine; returns its id."""
        RequestRow.update(status=RequestStatus.PENDING).where(
            RequestRow.id == self.request_id
        ).execute()
        logger.info("request %s created from %s", self.request_id, self.name)
        return self.request_id

    def abandon(self) -> None:
        """Remove what was recorded so far (file refused, or the window closed meanwhile)."""
        delete_request_rows(self.request_id)


def delete_request_rows(request_id: str) -> None:
    """Delete a request with its products and images, in one transaction."""
    with db.atomic():
        ImageRow.delete().where(ImageRow.request == request_id).execute()
        ProductRow.delete().where(ProductRow.request == request_id).execute()
        RequestRow.delete().where(RequestRow.id == request_id).execute()
