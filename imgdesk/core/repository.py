"""Every query imgdesk makes. Callers get frozen dataclasses, never live peewee rows.

Only one object per process writes through this module (the engine, or the CLI command
that drives it); readers such as ``imgdesk status`` may run beside it thanks to WAL.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from peewee import fn

from imgdesk.core.csvio import Catalogue, CatalogueRow
from imgdesk.core.db import ImageRow, KeyValue, OutputCache, ProductRow, RequestRow, db
from imgdesk.core.settings import Settings
from imgdesk.core.types import CachedOutput

logger = logging.getLogger(__name__)

IN_FLIGHT = ("downloading", "compressing")
UNFINISHED = ("pending", *IN_FLIGHT)
FINAL_REQUEST_STATES = ("completed", "failed")
# A request whose rows are still being recorded: invisible to lists and to the engine.
IMPORTING = "importing"
IMPORT_CHUNK_ROWS = 2000
# Values bound per statement when a query takes a list (SQLite allows 32,766 since 3.32).
SQL_CHUNK = 1000


@dataclass(frozen=True)
class RequestInfo:
    """A processing request with its image counts."""

    id: str
    csv_name: str
    csv_path: str
    status: str
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    total: int
    done: int
    failed: int
    in_flight: int
    input_bytes: int
    output_bytes: int
    webhook_url: str | None
    webhook_secret: str | None
    output_csv: str | None

    @property
    def pending(self) -> int:
        """Images not started yet (or waiting for a retry)."""
        return self.total - self.done - self.failed - self.in_flight

    @property
    def finished(self) -> bool:
        """True once the request reached ``completed`` or ``failed``."""
        return self.status in FINAL_REQUEST_STATES

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to finish (or to now while it runs)."""
        if self.started_at is None:
            return None
        return (self.finished_at or time.time()) - self.started_at

    @property
    def bytes_saved(self) -> int:
        """Input bytes minus output bytes over the finished images."""
        return self.input_bytes - self.output_bytes


@dataclass(frozen=True)
class ImageInfo:
    """One image with its product's identity, as shown in tables and exports."""

    id: int
    request_id: str
    row_index: int
    serial: str
    product_name: str
    position: int
    url: str
    status: str
    attempts: int
    error_code: str | None
    error: str | None
    http_status: int | None
    input_bytes: int | None
    output_bytes: int | None
    width: int | None
    height: int | None
    input_type: str | None
    download_ms: int | None
    compress_ms: int | None
    output_path: str | None
    output_url: str | None


IMAGE_UPDATE_FIELDS = frozenset(
    {
        "status",
        "attempts",
        "error_code",
        "error",
        "http_status",
        "input_bytes",
        "output_bytes",
        "width",
        "height",
        "input_type",
        "download_ms",
        "compress_ms",
        "output_path",
        "output_url",
    }
)


@dataclass(frozen=True)
class PreparedCatalogue:
    """A catalogue with its rows encoded for the database, built off the GUI thread."""

    catalogue: Catalogue
    # (row_index, line, serial, name, cells, urls, problems, valid) per row, JSON encoded.
    products: list[tuple[Any, ...]]
    image_count: int


def prepare_catalogue(catalogue: Catalogue) -> PreparedCatalogue:
    """Encode the rows once; the JSON work is most of the cost of recording a big file."""
    products = [
        (
            row.index,
            row.line,
            row.serial,
            row.product_name,
            json.dumps(row.cells),
            json.dumps(row.urls),
            json.dumps(row.problems),
            row.valid,
        )
        for row in catalogue.rows
    ]
    image_count = sum(len(row.urls) for row in catalogue.valid_rows)
    return PreparedCatalogue(catalogue, products, image_count)


class RequestImport:
    """Records one request in short transactions, so the window keeps responding.

    The request is ``importing`` (hidden from every list and from the engine) until its
    last rows are in; an import cut short is removed by :meth:`Repository.recover_interrupted`.
    """

    def __init__(
        self,
        prepared: PreparedCatalogue,
        csv_path: Path | None,
        webhook_url: str | None,
        webhook_secret: str | None,
    ) -> None:
        catalogue = prepared.catalogue
        self.request_id = str(uuid.uuid4())
        self._prepared = prepared
        self._next_row = 0
        with db.atomic():
            RequestRow.create(
                id=self.request_id,
                csv_name=catalogue.name,
                csv_path=str(csv_path or ""),
                status=IMPORTING,
                created_at=time.time(),
                header=json.dumps(list(catalogue.header)),
                delimiter=catalogue.delimiter,
                encoding=catalogue.encoding,
                serial_column=catalogue.serial_column,
                name_column=catalogue.name_column,
                urls_column=catalogue.urls_column,
                output_column=catalogue.output_column,
                webhook_url=webhook_url or None,
                webhook_secret=webhook_secret or None,
                total_images=prepared.image_count,
            )

    @property
    def name(self) -> str:
        """The file name shown to users."""
        return self._prepared.catalogue.name

    @property
    def fraction(self) -> float:
        """How much of the file is recorded, 0 to 1."""
        return self._next_row / max(1, len(self._prepared.products))

    def step(self, rows: int | None = None) -> bool:
        """Record the next ``rows`` (default IMPORT_CHUNK_ROWS) products and their images.

        Returns True once all are in.

        Each step is one transaction: a step that fails (database busy) changed nothing and
        can simply be called again.
        """
        rows = rows or IMPORT_CHUNK_ROWS
        first = self._next_row
        products = self._prepared.products[first : first + rows]
        catalogue_rows = self._prepared.catalogue.rows[first : first + rows]
        last = first + rows >= len(self._prepared.products)
        request_id = self.request_id
        with db.atomic():
            # sqlite3's executemany: peewee builds SQL per value, which took 20 s for
            # 300,000 images against well under one this way.
            cursor = db.cursor()  # type: ignore[no-untyped-call]
            cursor.executemany(
                "INSERT INTO product (request_id, row_index, line, serial, name, cells, urls, "
                "problems, valid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(request_id, *product) for product in products],
            )
            product_ids = dict(
                cursor.execute(
                    "SELECT row_index, id FROM product WHERE request_id = ? "
                    "AND row_index BETWEEN ? AND ?",
                    (request_id, products[0][0], products[-1][0]),
                )
                if products
                else ()
            )
            cursor.executemany(
                "INSERT INTO image (request_id, product_id, position, url, status, attempts) "
                "VALUES (?, ?, ?, ?, 'pending', 0)",
                [
                    (request_id, product_ids[row.index], position, url)
                    for row in catalogue_rows
                    if row.valid
                    for position, url in enumerate(row.urls, start=1)
                ],
            )
            if last:
                RequestRow.update(status="pending").where(RequestRow.id == request_id).execute()
        self._next_row = first + len(products)
        if last:
            logger.info("request %s created from %s", request_id, self.name)
        return last

    def abandon(self) -> None:
        """Remove what was recorded so far (the window closed during the import)."""
        Repository().delete_request(self.request_id)


class Repository:
    """Reads and writes requests, products, images and settings in the open database."""

    # -- settings ---------------------------------------------------------------------------

    def load_settings(self) -> Settings:
        """The stored settings, or the defaults when none were saved."""
        row = KeyValue.get_or_none(KeyValue.key == "settings")
        if row is None:
            return Settings()
        return Settings.from_dict(json.loads(row.value))

    def save_settings(self, settings: Settings) -> None:
        """Store the settings for the next run of the window or the command line."""
        KeyValue.insert(
            key="settings", value=json.dumps(settings.to_dict())
        ).on_conflict_replace().execute()

    def set_power_safe(self, enabled: bool) -> None:
        """``synchronous=FULL`` when enabled, else ``NORMAL`` (see the README's guarantees)."""
        db.pragma("synchronous", "full" if enabled else "normal")

    # -- creating ---------------------------------------------------------------------------

    def create_request(
        self,
        catalogue: Catalogue,
        csv_path: Path | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> str:
        """Record a request for the catalogue's valid rows, all at once (command line, tests).

        Invalid rows are stored too (without images) so the export keeps every input row.
        """
        recording = self.start_import(
            prepare_catalogue(catalogue), csv_path, webhook_url, webhook_secret
        )
        while not recording.step():
            pass
        return recording.request_id

    def start_import(
        self,
        prepared: PreparedCatalogue,
        csv_path: Path | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> RequestImport:
        """Begin recording a request; call :meth:`RequestImport.step` until it returns True."""
        return RequestImport(prepared, csv_path, webhook_url, webhook_secret)

    # -- reading ----------------------------------------------------------------------------

    def list_requests(self) -> list[RequestInfo]:
        """Every request, newest first."""
        return self._requests(None)

    def get_request(self, request_id: str) -> RequestInfo | None:
        """One request, or None when there is no such id."""
        found = self._requests(request_id)
        return found[0] if found else None

    def find_request_id(self, prefix: str) -> str | None:
        """The id of the only request whose id starts with ``prefix`` (as users type ids)."""
        query = RequestRow.select(RequestRow.id).where(
            RequestRow.id.startswith(prefix) & (RequestRow.status != IMPORTING)
        )
        ids = [r.id for r in query]
        return ids[0] if len(ids) == 1 else None

    def _requests(self, request_id: str | None) -> list[RequestInfo]:
        # The counts are columns kept by a trigger (see db.IMAGE_COUNTS_TRIGGER): one row read.
        query = (
            RequestRow.select()
            .where(RequestRow.status != IMPORTING)
            .order_by(RequestRow.created_at.desc())
        )
        if request_id is not None:
            query = query.where(RequestRow.id == request_id)
        return [
            RequestInfo(
                id=r.id,
                csv_name=r.csv_name,
                csv_path=r.csv_path,
                status=r.status,
                error=r.error,
                created_at=r.created_at,
                started_at=r.started_at,
                finished_at=r.finished_at,
                total=r.total_images,
                done=r.done_images,
                failed=r.failed_images,
                in_flight=r.in_flight_images,
                input_bytes=r.done_input_bytes,
                output_bytes=r.output_bytes,
                webhook_url=r.webhook_url,
                webhook_secret=r.webhook_secret,
                output_csv=r.output_csv,
            )
            for r in query
        ]

    def list_images(
        self, request_id: str, statuses: Iterable[str] | None = None
    ) -> list[ImageInfo]:
        """The request's images in input order, optionally only those in some states."""
        where, params = "i.request_id = ?", [request_id]
        if statuses is not None:
            wanted = list(statuses)
            where += f" AND i.status IN ({', '.join('?' * len(wanted))})"
            params += wanted
        return _image_infos(f"{where} ORDER BY p.row_index, i.position", params)

    def list_images_page(
        self,
        request_id: str,
        after_id: int,
        limit: int,
        statuses: Iterable[str] | None = None,
    ) -> list[ImageInfo]:
        """Up to ``limit`` images with an id above ``after_id``, in input order.

        Images are inserted in input order, so id order is input order: a big request is read
        a page at a time, each page an index range, never the whole request at once.
        """
        if statuses is None:
            # "+" keeps SQLite off the (request, status) index, which would sort the whole
            # request for every page: the id range is already in order.
            where, params = "+i.request_id = ? AND i.id > ?", [request_id, after_id]
        else:
            wanted = list(statuses)
            where = f"i.request_id = ? AND i.status IN ({', '.join('?' * len(wanted))})"
            where += " AND i.id > ?"
            params = [request_id, *wanted, after_id]
        return _image_infos(f"{where} ORDER BY i.id LIMIT ?", [*params, limit])

    def get_images(self, image_ids: Iterable[int]) -> list[ImageInfo]:
        """Some images by id, in input order."""
        found: list[ImageInfo] = []
        for chunk in _chunks(image_ids, SQL_CHUNK):
            found.extend(_image_infos(f"i.id IN ({', '.join('?' * len(chunk))})", chunk))
        found.sort(key=lambda image: (image.row_index, image.position))
        return found

    def unfinished_request_ids(self) -> list[str]:
        """Requests that still have images waiting, oldest first."""
        query = (
            RequestRow.select(RequestRow.id)
            .join(ImageRow, on=(ImageRow.request == RequestRow.id))
            .where(ImageRow.status.in_(UNFINISHED) & (RequestRow.status != IMPORTING))
            .distinct()
            .order_by(RequestRow.created_at)
        )
        return [r.id for r in query]

    # -- writing ----------------------------------------------------------------------------

    def update_images(self, updates: Mapping[int, Mapping[str, Any]]) -> None:
        """Apply field changes to many images in one transaction (the engine's batched write)."""
        now = time.time()
        # One executemany per set of changed fields: peewee would build an UPDATE statement
        # per image (~100-250 us each, on the GUI thread); sqlite3 binds rows in C.
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for image_id, fields in updates.items():
            names = tuple(sorted(fields))
            unknown = set(names) - IMAGE_UPDATE_FIELDS
            if unknown:
                raise ValueError(f"not image fields: {sorted(unknown)}")
            groups.setdefault(names, []).append((*(fields[n] for n in names), now, image_id))
        with db.atomic():
            cursor = db.cursor()  # type: ignore[no-untyped-call]
            for names, rows in groups.items():
                columns = ImageRow._meta.fields
                assignments = ", ".join(f"{columns[name].column_name} = ?" for name in names)
                cursor.executemany(
                    f"UPDATE {ImageRow._meta.table_name} SET {assignments}, "
                    f"{ImageRow.updated_at.column_name} = ? WHERE {ImageRow.id.column_name} = ?",
                    rows,
                )

    def store(
        self,
        image_updates: Mapping[int, Mapping[str, Any]],
        request_statuses: Mapping[str, str],
        cache_updates: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """The engine's batched write: request states, image changes and the output cache."""
        with db.atomic():
            for request_id, status in request_statuses.items():
                self.set_request_status(request_id, status)
            self.update_images(image_updates)
            now = time.time()
            if cache_updates:
                names = sorted(cache_updates[0])
                columns = OutputCache._meta.fields
                sql = (
                    f"INSERT OR REPLACE INTO {OutputCache._meta.table_name} "
                    f"({', '.join(columns[name].column_name for name in names)}, "
                    f"{OutputCache.updated_at.column_name}) "
                    f"VALUES ({', '.join('?' for _ in names)}, ?)"
                )
                db.cursor().executemany(  # type: ignore[no-untyped-call]
                    sql, [(*(fields[name] for name in names), now) for fields in cache_updates]
                )

    def cached_outputs(self, urls: Iterable[str], settings_key: str) -> dict[str, CachedOutput]:
        """Earlier outputs of these URLs made under ``settings_key`` (for conditional requests)."""
        found: dict[str, CachedOutput] = {}
        for chunk in _chunks(set(urls), SQL_CHUNK):
            cursor = db.execute_sql(  # type: ignore[no-untyped-call]
                "SELECT url, output_path, etag, last_modified, content_sha256, input_bytes, "
                "output_bytes, width, height, input_type FROM output_cache "
                f"WHERE settings_key = ? AND url IN ({', '.join('?' * len(chunk))})",
                (settings_key, *chunk),
            )
            found.update((url, CachedOutput(Path(path), *rest)) for url, path, *rest in cursor)
        return found

    def done_twins(self, request_id: str, urls: Iterable[str]) -> dict[str, ImageInfo]:
        """A finished image of the request for each of these URLs that has one."""
        found: dict[str, ImageInfo] = {}
        for chunk in _chunks(set(urls), SQL_CHUNK):
            condition = (
                f"i.request_id = ? AND i.status = 'done' "
                f"AND i.url IN ({', '.join('?' * len(chunk))})"
            )
            images = _image_infos(condition, [request_id, *chunk])
            found.update((image.url, image) for image in images)
        return found

    def done_output_names(self, request_id: str) -> set[str]:
        """File names of the request's finished outputs (what its folder must keep)."""
        cursor = db.execute_sql(  # type: ignore[no-untyped-call]
            "SELECT output_path FROM image "
            "WHERE request_id = ? AND status = 'done' AND output_path IS NOT NULL",
            (request_id,),
        )
        return {Path(path).name for (path,) in cursor}

    def set_request_error(self, request_id: str, error: str | None) -> None:
        """Show why a request waits (or clear it) without changing its state."""
        RequestRow.update(error=error).where(RequestRow.id == request_id).execute()

    def set_request_status(self, request_id: str, status: str, error: str | None = None) -> None:
        """Move a request to a state, stamping start and finish times."""
        fields: dict[str, Any] = {"status": status, "error": error}
        now = time.time()
        if status == "processing":
            fields["finished_at"] = None
            request = RequestRow.get_or_none(RequestRow.id == request_id)
            if request is not None and request.started_at is None:
                fields["started_at"] = now
        elif status in FINAL_REQUEST_STATES:
            fields["finished_at"] = now
        RequestRow.update(**fields).where(RequestRow.id == request_id).execute()

    def set_output_csv(self, request_id: str, output_csv: str) -> None:
        """Remember where the request's output CSV was last written."""
        RequestRow.update(output_csv=output_csv).where(RequestRow.id == request_id).execute()

    def final_status(self, request_id: str) -> str:
        """``completed`` when every image is done, else ``failed``."""
        not_done = (
            ImageRow.select()
            .where((ImageRow.request == request_id) & (ImageRow.status != "done"))
            .count()
        )
        return "failed" if not_done else "completed"

    def recover_interrupted(self, request_id: str | None = None) -> list[str]:
        """After a crash or quit: in-flight images go back to pending; returns unfinished requests.

        Only one request is touched when ``request_id`` is given (``imgdesk retry``), so a
        window running on the same data folder keeps its own work. Finished images are left
        alone so they are never fetched again.
        """
        images = ImageRow.status.in_(IN_FLIGHT)
        requests = RequestRow.status == "processing"
        if request_id is not None:
            images &= ImageRow.request == request_id
            requests &= RequestRow.id == request_id
        with db.atomic():
            reset = ImageRow.update(status="pending").where(images).execute()
            RequestRow.update(status="pending").where(requests).execute()
        if request_id is None:
            cut_short = RequestRow.select(RequestRow.id).where(RequestRow.status == IMPORTING)
            for stale_id in [row.id for row in cut_short]:
                logger.info("removing request %s: its import was cut short", stale_id)
                self.delete_request(stale_id)
        if reset:
            logger.info("recovered %s interrupted images", reset)
        return self.unfinished_request_ids()

    def reset_failed(self, request_id: str, image_ids: Iterable[int] | None = None) -> int:
        """Put failed images (all, or the given ones) back to pending; returns how many."""
        with db.atomic():
            query = ImageRow.update(
                status="pending", error_code=None, error=None, http_status=None
            ).where((ImageRow.request == request_id) & (ImageRow.status == "failed"))
            if image_ids is not None:
                query = query.where(ImageRow.id.in_(list(image_ids)))
            count = int(query.execute())
            if count:
                RequestRow.update(status="pending", finished_at=None, error=None).where(
                    RequestRow.id == request_id
                ).execute()
        return count

    def fail_unfinished(self, request_id: str, error_code: str, message: str) -> int:
        """Fail every unfinished image of the request (cancelled, or storage unusable)."""
        with db.atomic():
            return int(
                ImageRow.update(
                    status="failed", error_code=error_code, error=message, updated_at=time.time()
                )
                .where((ImageRow.request == request_id) & (ImageRow.status.in_(UNFINISHED)))
                .execute()
            )

    def delete_request(self, request_id: str) -> None:
        """Forget a request, its products and images (files are the caller's business)."""
        with db.atomic():
            ImageRow.delete().where(ImageRow.request == request_id).execute()
            ProductRow.delete().where(ProductRow.request == request_id).execute()
            RequestRow.delete().where(RequestRow.id == request_id).execute()

    # -- export -----------------------------------------------------------------------------

    def export_data(self, request_id: str) -> tuple[Catalogue, dict[int, list[str | None]]]:
        """The catalogue as loaded and each valid row's output URLs (None where not done)."""
        request = RequestRow.get_by_id(request_id)
        rows = [
            CatalogueRow(
                index=p.row_index,
                line=p.line,
                cells=tuple(json.loads(p.cells)),
                serial=p.serial,
                product_name=p.name,
                urls=tuple(json.loads(p.urls)),
                problems=tuple(json.loads(p.problems)),
            )
            for p in ProductRow.select()
            .where(ProductRow.request == request_id)
            .order_by(ProductRow.row_index)
        ]
        catalogue = Catalogue(
            name=request.csv_name,
            header=tuple(json.loads(request.header)),
            delimiter=request.delimiter,
            encoding=request.encoding,
            warnings=(),
            rows=tuple(rows),
            serial_column=request.serial_column,
            name_column=request.name_column,
            urls_column=request.urls_column,
            output_column=request.output_column,
        )
        outputs: dict[int, list[str | None]] = {}
        query = (
            ImageRow.select(
                ImageRow.position, ImageRow.status, ImageRow.output_url, ProductRow.row_index
            )
            .join(ProductRow)
            .where(ImageRow.request == request_id)
            .order_by(ProductRow.row_index, ImageRow.position)
        )
        for image in _dicts(query):
            url = image["output_url"] if image["status"] == "done" else None
            outputs.setdefault(image["row_index"], []).append(url)
        return catalogue, outputs

    # -- statistics (dashboard) -------------------------------------------------------------

    def error_counts(self, request_id: str | None = None) -> list[tuple[str, int]]:
        """(error code, failed images) over all requests or one, most frequent first."""
        code = fn.COALESCE(ImageRow.error_code, "unknown")
        query = (
            ImageRow.select(code.alias("code"), fn.COUNT(ImageRow.id).alias("count"))
            .where(ImageRow.status == "failed")
            .group_by(code)
        )
        if request_id is not None:
            query = query.where(ImageRow.request == request_id)
        counts = [(str(row["code"]), int(row["count"])) for row in _dicts(query)]
        return sorted(counts, key=lambda item: (-item[1], item[0]))

    def host_error_counts(self, request_id: str | None = None) -> list[tuple[str, int, int]]:
        """(host, failed images, all images) per host over all requests or one.

        Every host is listed, failing or not, most failures first, so a user sees which
        servers cause trouble and how much of the work they carry. SQLite groups on the URL's
        authority (between "://" and the next "/"), so the counting stays in the database;
        Python then lowercases it and drops user info, query and fragment.
        """
        rest = fn.substr(ImageRow.url, fn.instr(ImageRow.url, "://") + 3)
        # The appended "/" makes instr() find an end even for "https://host".
        authority = fn.substr(rest, 1, fn.instr(rest.concat("/"), "/") - 1)
        query = ImageRow.select(
            authority.alias("authority"),
            fn.SUM(ImageRow.status == "failed").alias("failed"),
            fn.COUNT(ImageRow.id).alias("total"),
        ).group_by(authority)
        if request_id is not None:
            query = query.where(ImageRow.request == request_id)
        totals: dict[str, list[int]] = {}
        for row in _dicts(query):
            counts = totals.setdefault(self._host_of(str(row["authority"])), [0, 0])
            counts[0] += int(row["failed"] or 0)
            counts[1] += int(row["total"])
        rows = [(host, failed, total) for host, (failed, total) in totals.items()]
        return sorted(rows, key=lambda row: (-row[1], -row[2], row[0]))

    @staticmethod
    def _host_of(authority: str) -> str:
        """``user@Host:8080?x`` -> ``host:8080``: the part of an authority that names a server."""
        for mark in "?#":
            authority = authority.partition(mark)[0]
        return authority.rpartition("@")[2].lower()


# Every ImageInfo column, in the dataclass's field order. Plain SQL: peewee's per-value
# conversions cost more than the query itself for a 300,000-image request.
_IMAGE_COLUMNS = (
    "i.id, i.request_id, p.row_index, p.serial, p.name, i.position, i.url, i.status, "
    "i.attempts, i.error_code, i.error, i.http_status, i.input_bytes, i.output_bytes, i.width, "
    "i.height, i.input_type, i.download_ms, i.compress_ms, i.output_path, i.output_url"
)


def _image_infos(condition: str, params: Sequence[Any]) -> list[ImageInfo]:
    cursor = db.execute_sql(  # type: ignore[no-untyped-call]
        f"SELECT {_IMAGE_COLUMNS} FROM image i JOIN product p ON p.id = i.product_id "
        f"WHERE {condition}",
        params,
    )
    return [ImageInfo(*row) for row in cursor]


def _dicts(query: Any) -> Iterable[dict[str, Any]]:
    """Rows as dicts: aggregates and joined columns by name (peewee's hints lack ``.dicts()``)."""
    return cast(Iterable[dict[str, Any]], query.dicts())


def _chunks(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
