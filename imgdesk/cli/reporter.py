"""Progress on the terminal while a request runs: a bar, quiet lines, or JSON lines."""

from __future__ import annotations

import json
import time
from typing import Any, TextIO

from imgdesk.cli.console import shown_text
from imgdesk.core.csvio import Catalogue
from imgdesk.core.paths import file_of_url
from imgdesk.core.redact import redact_url
from imgdesk.core.repository import Repository, RequestInfo
from imgdesk.core.states import ImageStatus


class Reporter:
    """Progress on the terminal: a bar on a tty, JSON lines with ``--json``, else quiet lines."""

    def __init__(self, as_json: bool, out: TextIO, err: TextIO) -> None:
        self._json = as_json
        self._out = out
        self._err = err
        self._tty = err.isatty() and not as_json
        self._started = time.monotonic()
        self._last_draw = 0.0

    def _emit(self, event: str, **fields: Any) -> None:
        self._out.write(json.dumps({"event": event, **fields}) + "\n")
        self._out.flush()

    def created(self, request_id: str, catalogue: Catalogue, repo: Repository) -> None:
        """The request is recorded: its id and how many images it has."""
        request = repo.get_request(request_id)
        total = request.total if request else 0
        if self._json:
            self._emit(
                "request.created",
                request_id=request_id,
                csv_name=catalogue.name,
                rows=len(catalogue.rows),
                valid_rows=len(catalogue.valid_rows),
                invalid_rows=len(catalogue.invalid_rows),
                total_images=total,
            )
        else:
            self._err.write(
                f"imgdesk: request {request_id}: {total} images from {catalogue.name}\n"
            )

    def image_finished(self, event: Any) -> None:
        """One image is done or failed for good."""
        if self._json:
            self._emit(
                "image.finished",
                request_id=event.request_id,
                serial=event.serial,
                position=event.position,
                url=redact_url(event.url),
                status=event.status,
                error_code=event.error_code,
                error=shown_text(event.error),
                output_url=event.output_url,
                output_format=event.output_format,
                note=event.note,
            )
        elif not self._tty and event.status == ImageStatus.FAILED:
            self._err.write(
                f"imgdesk: failed {event.serial} #{event.position} {redact_url(event.url)}: "
                f"{shown_text(event.error)}\n"
            )

    def progress(self, repo: Repository, request_id: str) -> None:
        """Redraw the progress bar (a terminal only, at most ten times a second)."""
        now = time.monotonic()
        if not self._tty or now - self._last_draw < 0.1:
            return
        self._last_draw = now
        request = repo.get_request(request_id)
        if request is None or not request.total:
            return
        finished = request.done + request.failed
        width = 30
        filled = width * finished // request.total
        rate = request.done / max(now - self._started, 1e-6)
        self._err.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {finished}/{request.total}  "
            f"{request.failed} failed  {rate:.1f} img/s "
        )
        self._err.flush()

    def held(self, request_id: str, message: str) -> None:
        """The request waits for disk space (message), or carries on ("")."""
        if message:
            self._err.write(f"\nimgdesk: {message}\n")
        else:
            self._err.write("imgdesk: there is room again; carrying on\n")
        self._err.flush()

    def note(self, message: str) -> None:
        """Why the run ends early, or what it waits for: below the progress bar, not over it."""
        self._err.write(("\n" if self._tty else "") + f"imgdesk: {message}\n")
        self._err.flush()

    def webhook_attempt(self, report: Any) -> None:
        """One webhook attempt (an ``AttemptReport``): a JSON line, or a line on stderr."""
        attempt = report.attempt
        webhook_id = report.delivery.id
        delay = None if report.next_delay_s is None else round(report.next_delay_s, 3)
        if self._json:
            self._emit(
                "webhook.attempt",
                webhook_id=webhook_id,
                attempt=report.number,
                status_code=attempt.status_code,
                error=attempt.error,
                next_delay_s=delay,
            )
            if report.gave_up:
                self._emit(
                    "webhook.gave_up",
                    webhook_id=webhook_id,
                    attempts=report.number,
                    error=attempt.error,
                )
            return
        if attempt.error is None:
            self._err.write(
                f"imgdesk: webhook {webhook_id} delivered (HTTP {attempt.status_code})\n"
            )
            return
        self._err.write(f"imgdesk: webhook attempt {report.number}: {attempt.error}\n")
        if delay is not None:
            self._err.write(f"imgdesk: webhook: retrying in {delay:g} s\n")
        elif report.gave_up:
            self._err.write(
                f"imgdesk: webhook {webhook_id} given up after {report.number} attempts "
                "(imgdesk status shows them)\n"
            )

    def finished(self, request: RequestInfo, output_csv: str) -> None:
        """The request ended; ``output_csv`` is its CSV's URL, "" when it could not be written."""
        if self._json:
            self._emit(
                "request.finished",
                request_id=request.id,
                status=request.status,
                succeeded=request.done,
                failed=request.failed,
                output_csv=output_csv or None,
            )
            return
        if self._tty:
            self._err.write("\n")
        seconds = request.duration_s or 0.0
        if request.error and request.failed == request.total:
            # Nothing was done: the one reason (an unusable storage, a cancel) says why.
            self._err.write(f"imgdesk: {shown_text(request.error)}\n")
        self._err.write(
            f"imgdesk: {request.status}: {request.done} done, {request.failed} failed of "
            f"{request.total} in {seconds:.1f} s; saved {request.bytes_saved / 1e6:.1f} MB; "
            f"output: {file_of_url(output_csv) or output_csv or 'not written'}\n"
        )
