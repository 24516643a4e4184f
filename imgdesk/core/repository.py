"""Every query imgdesk makes. Callers get frozen dataclasses, never live peewee rows.

Only one object per process writes through this module (the engine, or the CLI command
that drives it); readers such as ``imgdesk status`` may run beside it thanks to WAL. On
PostgreSQL (a cluster) several processes write at once: the few queries that differ there
say so, and take their locks in one order.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from peewee import Case, fn

from imgdesk.core import states
from imgdesk.core.csvio import Catalogue, CatalogueRow
from imgdesk.core.db import (
    ImageRow,
    KeyValue,
    OutputCache,
    ProductRow,
    RequestRow,
    check_database_file,
    db,
    is_postgres,
    set_synchronous,
    translate_errors,
)
from imgdesk.core.dialect import (
    PostgresImport,
    execute,
    in_values,
    json_rows,
    lock_requests,
    store_cache_postgres,
    update_images_postgres,
)
from imgdesk.core.errors import ErrorCode, RequestGoneError
from imgdesk.core.output import OutputSettings
from imgdesk.core.recording import IMPORTING as IMPORTING  # re-exported
from imgdesk.core.recording import PreparedRows as PreparedRows  # re-exported
from imgdesk.core.recording import RequestImport as RequestImport  # re-exported
from imgdesk.core.recording import delete_request_rows
from imgdesk.core.recording import prepare_rows as prepare_rows  # re-exported
from imgdesk.core.records import FINAL_REQUEST_STATES as FINAL_REQUEST_STATES  # re-exported
from imgdesk.core.records import NORMAL, PRIORITIES
from imgdesk.core.records import ImageInfo as ImageInfo  # re-exported
from imgdesk.core.records import RequestInfo as RequestInfo  # re-exported
from imgdesk.core.settings import Settings
from imgdesk.core.storage_choice import StorageChoice
from imgdesk.core.types import CachedOutput, ImageResult

logger = logging.getLogger(__name__)

# The state words live in imgdesk.core.states; these names stay for the repository's callers.
IN_FLIGHT = tuple(str(state) for state in states.IN_FLIGHT)
UNFINISHED = tuple(str(state) for state in states.UNFINISHED)
# Rows recorded per transaction of an import; the window records one chunk per event-loop
# turn (100,000 rows dropped: heartbeat worst 25-44 ms with 500, 18-30 ms with 250).
IMPORT_CHUNK_ROWS = 250
# The output cache's columns that make a CachedOutput besides its key (``output_path``).
CACHED_OUTPUT_FIELDS = (
    "etag",
    "last_modified",
    "content_sha256",
    "input_bytes",
    "output_bytes",
    "width",
    "height",
    "input_type",
    "note",
)
LIST_PAGE_IMAGES = 5000  # a whole request is read in pages of this many (bounded JSON)
_CANCELLED = ErrorCode.CANCELLED.value  # what an image the user cancelled fails with


# What a done image holds about its output; a twin (the same URL earlier in the request)
# copies these from the image that was processed.
OUTCOME_COLUMNS = (
    "http_status",
    "input_bytes",
    "output_bytes",
    "width",
    "height",
    "input_type",
    "output_path",
    "output_url",
    "output_format",
    "note",
)
IMAGE_UPDATE_FIELDS = frozenset(
    {"status", "attempts", "error_code", "error", "download_ms", "compress_ms", *OUTCOME_COLUMNS}
)


@translate_errors
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
        value = json.dumps(settings.to_dict())
        KeyValue.insert(key="settings", value=value).on_conflict(
            conflict_target=[KeyValue.key], update={KeyValue.value: value}
        ).execute()

    def set_power_safe(self, enabled: bool) -> None:
        """``synchronous=FULL`` when enabled, else ``NORMAL`` (see the README's guarantees).

        SQLite only: a PostgreSQL server's durability is its own configuration.
        """
        set_synchronous("full" if enabled else "normal")

    # -- creating ---------------------------------------------------------------------------

    def create_request(
        self,
        catalogue: Catalogue,
        csv_path: Path | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        output: OutputSettings | None = None,
        storage: StorageChoice | None = None,
    ) -> str:
        """Record a request for the catalogue's valid rows, all at once (command line, tests).

        Invalid rows are stored too (without images) so the export keeps every input row.
        ``output`` is what its images will be written as (see :meth:`start_import`).
        """
        recording = self.start_import(
            catalogue, csv_path, webhook_url, webhook_secret, output, storage
        )
        rows = catalogue.rows
        for first in range(0, len(rows), IMPORT_CHUNK_ROWS):
            recording.add(prepare_rows(rows[first : first + IMPORT_CHUNK_ROWS]))
        return recording.finish()

    def start_import(
        self,
        head: Catalogue,
        csv_path: Path | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        output: OutputSettings | None = None,
        storage: StorageChoice | None = None,
    ) -> RequestImport:
        """Begin recording a request; :meth:`RequestImport.add` its rows, then ``finish``.

        The request keeps ``output`` and ``storage`` for good (its retries use them too);
        None takes the stored settings' default, as the window applies it to requests added
        now.
        """
        if output is None or storage is None:
            stored = self.load_settings()
            output = output or stored.output
            storage = storage or stored.storage
        recording = PostgresImport if is_postgres() else RequestImport
        return recording(head, csv_path, webhook_url, webhook_secret, output, storage)

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
        query = RequestRow.select().order_by(RequestRow.created_at.desc())
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
                output=OutputSettings.from_dict(json.loads(r.output_settings)),
                storage=StorageChoice.from_dict(json.loads(r.storage)),
                files_removed_at=r.files_removed_at,
                active_s=r.active_s,
                priority=r.priority or NORMAL,
            )
            for r in query
        ]

    def list_images(
        self, request_id: str, statuses: Iterable[str] | None = None
    ) -> list[ImageInfo]:
        """The request's images in input order, optionally only those in some states."""
        wanted = None if statuses is None else list(statuses)
        images: list[ImageInfo] = []
        while True:
            after_id = images[-1].id if images else 0
            page = self.list_images_page(request_id, after_id, LIST_PAGE_IMAGES, wanted)
            images.extend(page)
            if len(page) < LIST_PAGE_IMAGES:
                return images

    def image_ids(
        self, request_id: str, statuses: Iterable[str], error_code: str | None = None
    ) -> list[int]:
        """Ids of the request's images in some states (and with an error code), in input order."""
        wanted = list(statuses)
        where = f"request_id = ? AND status IN ({', '.join('?' * len(wanted))})"
        params: list[Any] = [request_id, *wanted]
        if error_code is not None:
            where += " AND error_code = ?"
            params.append(error_code)
        rows = json_rows(f"SELECT id FROM image WHERE {where}", ["id"], params)
        return sorted(row[0] for row in rows)

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
            plus = "" if is_postgres() else "+"
            where, params = f"{plus}i.request_id = ? AND i.id > ?", [request_id, after_id]
        else:
            wanted = list(statuses)
            where = f"i.request_id = ? AND i.status IN ({', '.join('?' * len(wanted))})"
            where += " AND i.id > ?"
            params = [request_id, *wanted, after_id]
        page = _image_infos(f"{where} ORDER BY i.id LIMIT ?", [*params, limit])
        page.sort()  # by id, the first field; SQLite does not promise the aggregate's order
        return page

    def get_images(self, image_ids: Iterable[int]) -> list[ImageInfo]:
        """Some images by id, in input order."""
        condition, ids = in_values("i.id", image_ids, "bigint")
        found = _image_infos(condition, [ids])
        found.sort(key=lambda image: (image.row_index, image.position))
        return found

    def unfinished_request_ids(self) -> list[str]:
        """Requests that still have images waiting, oldest first."""
        # created_at is selected too: PostgreSQL sorts DISTINCT rows only on what they hold.
        query = (
            RequestRow.select(RequestRow.id, RequestRow.created_at)
            .join(ImageRow, on=(ImageRow.request == RequestRow.id))
            .where(ImageRow.status.in_(UNFINISHED) & (RequestRow.status != IMPORTING))
            .distinct()
            .order_by(RequestRow.created_at)
        )
        return [r.id for r in query]

    # -- writing ----------------------------------------------------------------------------

    def update_images(self, updates: Mapping[int, Mapping[str, Any]]) -> None:
        """Apply field changes to many images in one transaction (the engine's batched write).

        One UPDATE per set of changed fields, its rows passed as one JSON array: one SQLite
        step instead of one per image (see json_rows for why that matters).
        """
        now = time.time()
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for image_id, fields in updates.items():
            names = tuple(sorted(fields))
            unknown = set(names) - IMAGE_UPDATE_FIELDS
            if unknown:
                raise ValueError(f"not image fields: {sorted(unknown)}")
            groups.setdefault(names, []).append((image_id, *(fields[n] for n in names)))
        if is_postgres():
            update_images_postgres(groups, now)
            return
        with db.atomic():
            for names, rows in groups.items():
                columns = ImageRow._meta.fields
                assignments = ", ".join(
                    f"{columns[name].column_name} = json_extract(j.value, '$[{k}]')"
                    for k, name in enumerate(names, start=1)
                )
                db.execute_sql(  # type: ignore[no-untyped-call]
                    f"UPDATE image SET {assignments}, updated_at = ? "
                    "FROM json_each(?) AS j WHERE image.id = json_extract(j.value, '$[0]')",
                    (now, json.dumps(rows)),
                )

    def store(
        self,
        image_updates: Mapping[int, Mapping[str, Any]],
        request_statuses: Mapping[str, str],
        cache_updates: Sequence[Mapping[str, Any]] = (),
        active_time: Mapping[str, float] | None = None,
    ) -> None:
        """The engine's batched write: requests (states, active seconds), images, cache."""
        with db.atomic():
            lock_requests([*(active_time or {}), *request_statuses], image_updates.keys())
            for request_id, seconds in (active_time or {}).items():
                RequestRow.update(active_s=RequestRow.active_s + seconds).where(
                    RequestRow.id == request_id
                ).execute()
            for request_id, status in request_statuses.items():
                self.set_request_status(request_id, status)
            self.update_images(image_updates)
            # The last result of a URL wins, as INSERT OR REPLACE would do row after row.
            cache_updates = list({(c["url"], c["settings_key"]): c for c in cache_updates}.values())
            if cache_updates and is_postgres():
                store_cache_postgres(cache_updates)
            elif cache_updates:
                names = sorted(cache_updates[0])
                columns = OutputCache._meta.fields
                values = ", ".join(f"json_extract(value, '$[{k}]')" for k in range(len(names)))
                db.execute_sql(  # type: ignore[no-untyped-call]
                    f"INSERT OR REPLACE INTO {OutputCache._meta.table_name} "
                    f"({', '.join(columns[name].column_name for name in names)}, "
                    f"{OutputCache.updated_at.column_name}) "
                    f"SELECT {values}, ? FROM json_each(?)",
                    (
                        time.time(),
                        json.dumps([[fields[name] for name in names] for fields in cache_updates]),
                    ),
                )

    def cached_outputs(self, urls: Iterable[str], settings_key: str) -> dict[str, CachedOutput]:
        """Earlier outputs of these URLs made under ``settings_key`` (for conditional requests).

        ``settings_key`` is :meth:`Settings.output_key` of the request's output settings.
        """
        names = ["url", "output_path", *CACHED_OUTPUT_FIELDS]
        condition, listed = in_values("url", set(urls), "text")
        rows = json_rows(
            f"SELECT {', '.join(names)} FROM output_cache WHERE settings_key = ? AND {condition}",
            names,
            (settings_key, listed),
        )
        return {url: CachedOutput(_cache_key(stored), *rest) for url, stored, *rest in rows}

    def done_twins(self, request_id: str, urls: Iterable[str]) -> dict[str, ImageInfo]:
        """A finished image of the request for each of these URLs that has one."""
        condition, listed = in_values("i.url", set(urls), "text")
        images = _image_infos(
            f"i.request_id = ? AND i.status = 'done' AND {condition}", [request_id, listed]
        )
        return {image.url: image for image in images}

    def done_outputs(self, request_id: str) -> dict[str, list[int]]:
        """The file names of the request's finished outputs, each with its images' ids.

        Twins (the same URL twice) share one file, so a name can stand for several images.
        """
        rows = json_rows(
            "SELECT id, output_path FROM image "
            "WHERE request_id = ? AND status = 'done' AND output_path IS NOT NULL",
            ["id", "output_path"],
            [request_id],
        )
        outputs: dict[str, list[int]] = {}
        for image_id, path in rows:
            outputs.setdefault(Path(path).name, []).append(image_id)
        return outputs

    def reset_done(self, request_id: str, image_ids: Iterable[int]) -> int:
        """Put done images whose output file has vanished back to pending; returns how many.

        Their output columns are cleared, so the request's counters (kept by the trigger)
        stop counting them as done and their bytes as stored.
        """
        condition, ids = in_values("id", image_ids, "bigint")
        with db.atomic():
            lock_requests([request_id])
            cursor = execute(
                "UPDATE image SET status = 'pending', output_path = NULL, output_url = NULL, "
                "output_bytes = NULL, output_format = NULL, note = NULL, updated_at = ? "
                f"WHERE request_id = ? AND status = 'done' AND {condition}",
                (time.time(), request_id, ids),
            )
            count = int(cursor.rowcount)
            if count:
                # A finished request has work again; a running one simply goes on.
                RequestRow.update(status="pending", finished_at=None, error=None).where(
                    (RequestRow.id == request_id) & RequestRow.status.in_(FINAL_REQUEST_STATES)
                ).execute()
        return count

    def check_database_file(self) -> None:
        """Raise :class:`DataFolderError` when the database file was deleted or replaced."""
        check_database_file()

    def set_request_error(self, request_id: str, error: str | None) -> None:
        """Show why a request waits (or clear it) without changing its state."""
        RequestRow.update(error=error).where(RequestRow.id == request_id).execute()

    def set_request_status(self, request_id: str, status: str, error: str | None = None) -> None:
        """Move a request to a state, stamping start and finish times."""
        fields: dict[str, Any] = {"status": status, "error": error}
        now = time.time()
        if status == "processing":
            fields["finished_at"] = None
            fields["files_removed_at"] = None  # a retry stores its files again
            request = RequestRow.get_or_none(RequestRow.id == request_id)
            if request is not None and request.started_at is None:
                fields["started_at"] = now
        elif status in FINAL_REQUEST_STATES:
            fields["finished_at"] = now
        RequestRow.update(**fields).where(RequestRow.id == request_id).execute()

    def set_output_csv(self, request_id: str, output_csv: str) -> None:
        """Remember where the request's output CSV was last written."""
        RequestRow.update(output_csv=output_csv).where(RequestRow.id == request_id).execute()

    def set_request_storage(self, request_id: str, storage: StorageChoice) -> None:
        """Store the request's outputs in ``storage`` from now on (``retry --storage``)."""
        value = "{}" if storage.is_default else json.dumps(storage.to_dict())
        RequestRow.update(storage=value).where(RequestRow.id == request_id).execute()

    def set_priority(self, request_id: str, priority: str) -> None:
        """Serve the request by ``priority`` (one of PRIORITIES) from now on, here or on a cluster.

        Raises:
            ValueError: not one of PRIORITIES (the callers check what users type).
        """
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}")
        RequestRow.update(priority=priority).where(RequestRow.id == request_id).execute()

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
            if request_id is not None:
                lock_requests([request_id])
            elif is_postgres():
                lock_requests([row.id for row in RequestRow.select(RequestRow.id)])
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
            lock_requests([request_id])
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
            lock_requests([request_id])
            return int(
                ImageRow.update(
                    status="failed", error_code=error_code, error=message, updated_at=time.time()
                )
                .where((ImageRow.request == request_id) & (ImageRow.status.in_(UNFINISHED)))
                .execute()
            )

    def delete_request(self, request_id: str) -> None:
        """Forget a request, its products and images (files are the caller's business)."""
        delete_request_rows(request_id)

    # -- export -----------------------------------------------------------------------------

    def export_data(self, request_id: str) -> tuple[Catalogue, dict[int, list[str | None]]]:
        """The catalogue as loaded and each valid row's output URLs (None where not done).

        Raises:
            RequestGoneError: the request was deleted (its id is still on someone's screen).
        """
        request = RequestRow.get_or_none(RequestRow.id == request_id)
        if request is None:
            raise RequestGoneError(
                f"Request {request_id} is no longer there: it was deleted, so there is "
                "nothing to export."
            )
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
        # Cleanup removed the files: their URLs lead nowhere, so every front exports none.
        kept = request.files_removed_at is None
        for image in _dicts(query):
            url = image["output_url"] if kept and image["status"] == "done" else None
            outputs.setdefault(image["row_index"], []).append(url)
        return catalogue, outputs

    # -- statistics (dashboard) -------------------------------------------------------------
    # An image the user cancelled did not fail and says nothing about its server: the
    # statistics leave cancellations out (SPEC 7), and cancelled_counts tells them apart.

    def cancelled_counts(self, request_ids: Iterable[str] | None = None) -> dict[str, int]:
        """Images cancelled by the user, per request (all requests, or these); none: absent.

        A failed request with cancelled images is one the user cancelled (SPEC 2: cancelling
        fails the unfinished images with ``cancelled``), not one that failed.
        """
        query = (
            ImageRow.select(ImageRow.request.alias("request_id"), fn.COUNT(ImageRow.id).alias("n"))
            .where((ImageRow.status == "failed") & (ImageRow.error_code == _CANCELLED))
            .group_by(ImageRow.request)
        )
        if request_ids is not None:
            ids = list(request_ids)
            if not ids:
                return {}
            query = query.where(ImageRow.request.in_(ids))
        return {str(row["request_id"]): int(row["n"]) for row in _dicts(query)}

    def error_counts(self, request_id: str | None = None) -> list[tuple[str, int]]:
        """(error code, failed images) over all requests or one, most frequent first.

        Cancelled images are not errors and are left out.
        """
        code = fn.COALESCE(ImageRow.error_code, "unknown")
        query = (
            ImageRow.select(code.alias("code"), fn.COUNT(ImageRow.id).alias("count"))
            .where((ImageRow.status == "failed") & _not_cancelled())
            .group_by(code)
        )
        if request_id is not None:
            query = query.where(ImageRow.request == request_id)
        counts = [(str(row["code"]), int(row["count"])) for row in _dicts(query)]
        return sorted(counts, key=lambda item: (-item[1], item[0]))

    def host_error_counts(self, request_id: str | None = None) -> list[tuple[str, int, int]]:
        """(host, failed images, all images) per host over all requests or one.

        Every host is listed, failing or not, most failures first, so a user sees which
        servers cause trouble and how much of the work they carry. Cancelled images count
        neither as failures nor as work: the user stopped them, the server did nothing wrong.
        The database groups on the URL's authority (between "://" and the next "/"), so the
        counting stays in the database; Python then lowercases it and drops user info, query
        and fragment.
        """
        # SQLite's instr(text, part) is PostgreSQL's strpos(text, part).
        position = fn.strpos if is_postgres() else fn.instr
        rest = fn.substr(ImageRow.url, position(ImageRow.url, "://") + 3)
        # The appended "/" makes instr() find an end even for "https://host".
        authority = fn.substr(rest, 1, position(rest.concat("/"), "/") - 1)
        query = (
            ImageRow.select(
                authority.alias("authority"),
                fn.SUM(Case(None, [(ImageRow.status == "failed", 1)], 0)).alias("failed"),
                fn.COUNT(ImageRow.id).alias("total"),
            )
            .where(_not_cancelled())
            .group_by(authority)
        )
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

    def requests_finished_before(self, cutoff: float) -> list[RequestInfo]:
        """Requests finished before ``cutoff`` whose files are still kept, oldest first."""
        finished = RequestRow.status.in_(FINAL_REQUEST_STATES) & (RequestRow.finished_at < cutoff)
        query = RequestRow.select(RequestRow.id).where(
            finished & RequestRow.files_removed_at.is_null()
        )
        ids = [row.id for row in query.order_by(RequestRow.finished_at)]
        return [request for request in map(self.get_request, ids) if request is not None]

    def mark_files_removed(self, request_id: str, when: float) -> None:
        """Record that the request's stored files were removed at ``when``; its rows stay."""
        RequestRow.update(files_removed_at=when).where(RequestRow.id == request_id).execute()


def _not_cancelled() -> Any:
    """Images the user did not cancel (an image with no error code is not cancelled)."""
    return ImageRow.error_code.is_null() | (ImageRow.error_code != _CANCELLED)


# Every ImageInfo column, in the tuple's field order. Plain SQL: peewee's per-value
# conversions cost more than the query itself for a 300,000-image request.
_IMAGE_COLUMNS = (
    "i.id, i.request_id, p.row_index, p.serial, p.name, i.position, i.url, i.status, "
    "i.attempts, i.error_code, i.error, i.http_status, i.input_bytes, i.output_bytes, i.width, "
    "i.height, i.input_type, i.download_ms, i.compress_ms, i.output_path, i.output_url, "
    "i.output_format, i.note"
)
# The same columns as the query above names them.
_IMAGE_NAMES = [column.strip().partition(".")[2] for column in _IMAGE_COLUMNS.split(",")]


def result_columns(
    result: ImageResult, *, attempts: int, output_path: str | None, output_url: str | None
) -> dict[str, Any]:
    """The image columns that record a final :class:`ImageResult` (one place for them)."""
    return {
        "status": result.status,
        "attempts": attempts,
        "error_code": result.error_code,
        "error": result.error,
        "http_status": result.http_status,
        "input_bytes": result.input_bytes,
        "output_bytes": result.output_bytes,
        "width": result.width,
        "height": result.height,
        "input_type": result.input_type,
        "download_ms": result.download_ms,
        "compress_ms": result.compress_ms,
        "output_path": output_path,
        "output_url": output_url,
        "output_format": result.output_format,
        "note": result.note,
    }


def cache_columns(result: ImageResult, settings_key: str) -> dict[str, Any]:
    """The output-cache row that lets a later run of the same URL reuse ``result``."""
    return {
        "url": result.url,
        "settings_key": settings_key,
        "etag": result.etag,
        "last_modified": result.last_modified,
        "content_sha256": result.content_sha256,
        "output_path": result.output_key,  # the cache keeps the storage key
        "input_bytes": result.input_bytes,
        "output_bytes": result.output_bytes,
        "width": result.width,
        "height": result.height,
        "input_type": result.input_type,
        "note": result.note,
    }


def _cache_key(stored: str) -> str:
    """The storage key of a cached output; imgdesk 0.1 stored the file's absolute path."""
    if stored.startswith(("/", "\\")) or ":" in stored[:3]:
        path = Path(stored)
        return f"{path.parent.name}/{path.name}"
    return stored


def _image_infos(condition: str, params: Sequence[Any]) -> list[ImageInfo]:
    query = (
        f"SELECT {_IMAGE_COLUMNS} FROM image i JOIN product p ON p.id = i.product_id "
        f"WHERE {condition}"
    )
    return [ImageInfo._make(row) for row in json_rows(query, _IMAGE_NAMES, params)]


def _dicts(query: Any) -> Iterable[dict[str, Any]]:
    """Rows as dicts: aggregates and joined columns by name (peewee's hints lack ``.dicts()``)."""
    return cast(Iterable[dict[str, Any]], query.dicts())
