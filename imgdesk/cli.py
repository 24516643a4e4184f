"""The ``imgdesk`` command: the window by default, or headless sub-commands.

The headless commands drive the same :class:`~imgdesk.engine.engine.Engine` as the window,
under a ``QCoreApplication`` with qasync, so every behaviour exists once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from imgdesk import __version__
from imgdesk.core.csvio import Catalogue, read_catalogue, write_output_csv
from imgdesk.core.db import open_database
from imgdesk.core.errors import CsvFileError, SettingsError
from imgdesk.core.instance import DataDirLock
from imgdesk.core.logs import setup_logging
from imgdesk.core.outbox import Outbox
from imgdesk.core.paths import database_path, resolve_data_dir
from imgdesk.core.repository import Repository, RequestInfo
from imgdesk.core.settings import Settings, check_http_url
from imgdesk.core.webhook import check_secret

logger = logging.getLogger(__name__)

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_REJECTED = 2
COMMANDS = ("process", "status", "export", "retry", "demo")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``imgdesk`` executable; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser()
    # Global options may come before the command; look past them to find it.
    global_options = argparse.ArgumentParser(add_help=False)
    _add_global_options(global_options)
    _, rest = global_options.parse_known_args(args)
    if not rest or rest[0] not in COMMANDS:
        window_args = _build_window_parser().parse_args(args)
        return _open_window(window_args.data_dir, window_args.files, demo=False)
    options = parser.parse_args(args)
    if options.command == "demo":
        return _open_window(options.data_dir, [], demo=True)
    data_dir = resolve_data_dir(options.data_dir)
    setup_logging(data_dir, verbose=options.verbose)
    open_database(database_path(data_dir))
    repo = Repository()
    if options.command in ("process", "retry"):
        lock = DataDirLock(data_dir)
        if not lock.acquire(f"imgdesk {options.command}"):
            _say(
                f"imgdesk: {lock.holder()} is already processing in {data_dir}. Wait for it to "
                "finish (imgdesk status shows progress), or use another --data-dir."
            )
            return EXIT_REJECTED
    handler = {
        "process": _cmd_process,
        "status": _cmd_status,
        "export": _cmd_export,
        "retry": _cmd_retry,
    }[options.command]
    try:
        return int(handler(options, repo, data_dir))
    except SettingsError as error:
        _say(f"imgdesk: {error}")
        return EXIT_REJECTED


# -- parsers --------------------------------------------------------------------------------


def _add_global_options(parser: argparse.ArgumentParser, on_command: bool = False) -> None:
    # On a sub-command the defaults are suppressed, so `imgdesk --data-dir D process` and
    # `imgdesk process --data-dir D` both work without the sub-parser resetting the value.
    default: Any = argparse.SUPPRESS if on_command else None
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        default=default,
        help="where the database, images and logs live (default: $IMGDESK_DATA_DIR or the "
        "platform's user data folder)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS if on_command else False,
        help="log to stderr too",
    )


def _build_window_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgdesk",
        description="Open the imgdesk window, optionally with CSV files loaded. "
        f"Headless commands: {', '.join(COMMANDS)} (imgdesk COMMAND --help).",
    )
    _add_global_options(parser)
    parser.add_argument("--version", action="version", version=f"imgdesk {__version__}")
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE.csv")
    return parser


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imgdesk")
    _add_global_options(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    process = sub.add_parser("process", help="process a CSV headless and write the output CSV")
    _add_global_options(process, on_command=True)
    process.add_argument("input", type=Path, metavar="INPUT.csv")
    process.add_argument("-o", "--output", type=Path, metavar="OUTPUT.csv")
    process.add_argument("--quality", type=int, help="JPEG quality 1-95 (default: setting, 50)")
    process.add_argument("--concurrency", type=int, help="images in flight (default: 5)")
    process.add_argument("--webhook", metavar="URL", help="POST an event here when done")
    process.add_argument("--webhook-secret", metavar="S", help="sign the webhook with this")
    process.add_argument(
        "--skip-invalid", action="store_true", help="process the valid rows, skip invalid ones"
    )
    process.add_argument("--json", action="store_true", help="print JSON lines on stdout")

    status = sub.add_parser("status", help="list requests, or show one request's images")
    _add_global_options(status, on_command=True)
    status.add_argument("request_id", nargs="?", metavar="REQUEST_ID")
    status.add_argument("--json", action="store_true")

    export = sub.add_parser("export", help="write a request's output CSV")
    _add_global_options(export, on_command=True)
    export.add_argument("request_id", metavar="REQUEST_ID")
    export.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.csv")

    retry = sub.add_parser("retry", help="retry failed images, resume pending ones, run to the end")
    _add_global_options(retry, on_command=True)
    retry.add_argument("request_id", metavar="REQUEST_ID")
    retry.add_argument("-o", "--output", type=Path, metavar="OUTPUT.csv")
    retry.add_argument("--json", action="store_true", help="print JSON lines on stdout")

    demo = sub.add_parser("demo", help="open the window on a bundled sample catalogue")
    _add_global_options(demo, on_command=True)
    return parser


# -- commands -------------------------------------------------------------------------------


def _cmd_process(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    settings = repo.load_settings()
    overrides = {
        key: value
        for key, value in (("jpeg_quality", options.quality), ("concurrency", options.concurrency))
        if value is not None
    }
    settings = settings.replace(**overrides)
    if options.webhook:
        check_http_url(options.webhook, "--webhook")
    if options.webhook_secret:
        check_secret(options.webhook_secret)
    try:
        catalogue = read_catalogue(options.input)
    except CsvFileError as error:
        _say(f"imgdesk: {options.input.name} was rejected: {error}")
        return EXIT_REJECTED
    except OSError as error:
        _say(f"imgdesk: cannot read {options.input}: {error.strerror or error}")
        return EXIT_REJECTED
    for warning in catalogue.warnings:
        _say(f"imgdesk: warning: {warning}")
    if catalogue.invalid_rows:
        for row in catalogue.invalid_rows:
            _say(f"imgdesk: line {row.line}: {' '.join(row.problems)}")
        if not options.skip_invalid:
            _say(
                f"imgdesk: {len(catalogue.invalid_rows)} of {len(catalogue.rows)} rows are "
                "invalid; fix them or pass --skip-invalid to process the valid rows only."
            )
            return EXIT_REJECTED
        if not catalogue.valid_rows:
            _say("imgdesk: no valid rows to process.")
            return EXIT_REJECTED
    output = options.output or _default_output(options.input)
    request_id = repo.create_request(
        catalogue,
        options.input.absolute(),
        webhook_url=options.webhook,
        webhook_secret=options.webhook_secret,
    )
    reporter = _Reporter(options.json, sys.stdout, sys.stderr)
    reporter.created(request_id, catalogue, repo)
    return _run_to_end(repo, settings, data_dir, request_id, output, reporter)


def _cmd_retry(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    request = _find_request(repo, options.request_id)
    if request is None:
        return EXIT_REJECTED
    settings = repo.load_settings()
    repo.recover_interrupted(request.id)
    reset = repo.reset_failed(request.id)
    reporter = _Reporter(options.json, sys.stdout, sys.stderr)
    if not options.json:
        _say(f"imgdesk: retrying {reset} failed images of {request.id}")
    output = options.output or _stored_output(request) or _default_output(Path(request.csv_name))
    return _run_to_end(repo, settings, data_dir, request.id, output, reporter)


def _cmd_status(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    out = sys.stdout
    if options.request_id is None:
        requests = repo.list_requests()
        if options.json:
            for request in requests:
                out.write(json.dumps(_request_json(request)) + "\n")
            return EXIT_COMPLETED
        if not requests:
            out.write("No requests yet. Try: imgdesk process products.csv\n")
        for request in requests:
            out.write(
                f"{request.id}  {request.status:<10}  {request.done:>6} done  "
                f"{request.failed:>5} failed  {request.total:>6} total  "
                f"{_iso(request.created_at)}  {request.csv_name}\n"
            )
        return EXIT_COMPLETED
    request = _find_request(repo, options.request_id)
    if request is None:
        return EXIT_REJECTED
    images = repo.list_images(request.id)
    deliveries = Outbox().list_deliveries(request.id)
    if options.json:
        payload = _request_json(request)
        payload["webhook_deliveries"] = [
            {
                "webhook_id": delivery.id,
                "event": delivery.event,
                "status": delivery.status,
                "attempts": [
                    {
                        "at": _iso(attempt.attempted_at),
                        "status_code": attempt.status_code,
                        "error": attempt.error,
                        "duration_ms": attempt.duration_ms,
                    }
                    for attempt in delivery.history
                ],
            }
            for delivery in deliveries
        ]
        payload["images"] = [
            {
                "serial": image.serial,
                "product": image.product_name,
                "position": image.position,
                "url": image.url,
                "status": image.status,
                "attempts": image.attempts,
                "error_code": image.error_code,
                "error": image.error,
                "http_status": image.http_status,
                "input_bytes": image.input_bytes,
                "output_bytes": image.output_bytes,
                "output_url": image.output_url,
            }
            for image in images
        ]
        out.write(json.dumps(payload) + "\n")
        return EXIT_COMPLETED
    out.write(
        f"request   {request.id}\ncsv       {request.csv_name}\nstatus    {request.status}"
        + (f" ({request.error})" if request.error else "")
        + f"\nimages    {request.done} done, {request.failed} failed, {request.total} total\n"
        f"created   {_iso(request.created_at)}\n"
    )
    if request.output_csv:
        out.write(f"output    {request.output_csv}\n")
    for delivery in deliveries:
        out.write(f"webhook   {delivery.event} {delivery.status} ({delivery.id})\n")
        for attempt in delivery.history:
            answer = attempt.error or f"HTTP {attempt.status_code}"
            out.write(
                f"          {_iso(attempt.attempted_at)}  {answer}  {attempt.duration_ms} ms\n"
            )
    out.write("\n")
    for image in images:
        problem = f"  {image.error_code}: {image.error}" if image.error_code else ""
        out.write(
            f"{image.serial:>6} #{image.position:<2} {image.status:<11} {image.url}{problem}\n"
        )
    return EXIT_COMPLETED


def _cmd_export(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    request = _find_request(repo, options.request_id)
    if request is None:
        return EXIT_REJECTED
    settings = repo.load_settings()
    path = export_request(repo, request.id, options.output, settings)
    _say(f"imgdesk: wrote {path} ({request.done} of {request.total} images done)")
    return EXIT_COMPLETED


# -- shared helpers -------------------------------------------------------------------------


def export_request(repo: Repository, request_id: str, path: Path, settings: Settings) -> Path:
    """Write the request's output CSV to ``path`` and remember where it went."""
    catalogue, outputs = repo.export_data(request_id)
    write_output_csv(path, catalogue, outputs, neutralise=settings.neutralise_formulas)
    repo.set_output_csv(request_id, path.absolute().as_uri())
    return path


def _run_to_end(
    repo: Repository,
    settings: Settings,
    data_dir: Path,
    request_id: str,
    output: Path,
    reporter: _Reporter,
) -> int:
    """Process the request until it finishes, export it, then deliver its webhook."""
    import qasync
    from PySide6.QtCore import QCoreApplication

    from imgdesk.engine.engine import Engine
    from imgdesk.engine.webhooks import WebhookSender

    app = QCoreApplication.instance() or QCoreApplication([])
    engine = Engine(repo, settings, data_dir)
    engine.image_finished.connect(reporter.image_finished)
    engine.request_changed.connect(lambda rid: reporter.progress(repo, rid))
    engine.request_held.connect(reporter.held)
    sender = WebhookSender(Outbox(), settings)
    sender.attempt_recorded.connect(reporter.webhook_attempt)

    async def run() -> str:
        finished: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def on_finished(finished_id: str, status: str) -> None:
            if finished_id == request_id and not finished.done():
                finished.set_result(status)

        engine.request_finished.connect(on_finished)
        engine.start_request(request_id)
        status = await finished
        engine.shutdown()
        export_request(repo, request_id, output, settings)
        request = repo.get_request(request_id)
        assert request is not None
        reporter.finished(request, output)
        # The event names the output CSV, so it is queued only once that is written.
        if sender.request_finished(request) is not None:
            await sender.drain()
        return status

    loop = qasync.QEventLoop(app)
    try:
        with loop:
            status = loop.run_until_complete(run())
    finally:
        engine.shutdown()
    return EXIT_COMPLETED if status == "completed" else EXIT_FAILED


class _Reporter:
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
        if self._json:
            self._emit(
                "image.finished",
                request_id=event.request_id,
                serial=event.serial,
                position=event.position,
                url=event.url,
                status=event.status,
                error_code=event.error_code,
                error=event.error,
                output_url=event.output_url,
            )
        elif not self._tty and event.status == "failed":
            self._err.write(
                f"imgdesk: failed {event.serial} #{event.position} {event.url}: {event.error}\n"
            )

    def progress(self, repo: Repository, request_id: str) -> None:
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
        if message:
            self._err.write(f"\nimgdesk: {message}\n")
        else:
            self._err.write("imgdesk: there is room again; carrying on\n")
        self._err.flush()

    def webhook_attempt(self, attempt: Any) -> None:
        if self._json:
            self._emit("webhook.attempt", status_code=attempt.status_code, error=attempt.error)
        elif attempt.error:
            self._err.write(f"imgdesk: webhook: {attempt.error}\n")
        else:
            self._err.write(f"imgdesk: webhook delivered ({attempt.status_code})\n")

    def finished(self, request: RequestInfo, output: Path) -> None:
        if self._json:
            self._emit(
                "request.finished",
                request_id=request.id,
                status=request.status,
                succeeded=request.done,
                failed=request.failed,
                output_csv=output.absolute().as_uri(),
            )
            return
        if self._tty:
            self._err.write("\n")
        seconds = request.duration_s or 0.0
        self._err.write(
            f"imgdesk: {request.status}: {request.done} done, {request.failed} failed of "
            f"{request.total} in {seconds:.1f} s; saved {request.bytes_saved / 1e6:.1f} MB; "
            f"output: {output}\n"
        )


def _find_request(repo: Repository, given: str) -> RequestInfo | None:
    request_id = repo.find_request_id(given)
    request = repo.get_request(request_id) if request_id else None
    if request is None:
        _say(f"imgdesk: no request with id {given!r} (see: imgdesk status)")
    return request


def _default_output(input_path: Path) -> Path:
    return input_path.with_name(f"{input_path.stem}-output.csv")


def _stored_output(request: RequestInfo) -> Path | None:
    if not request.output_csv:
        return None
    return Path(unquote(urlsplit(request.output_csv).path))


def _request_json(request: RequestInfo) -> dict[str, Any]:
    return {
        "request_id": request.id,
        "csv_name": request.csv_name,
        "status": request.status,
        "error": request.error,
        "total_images": request.total,
        "succeeded": request.done,
        "failed": request.failed,
        "created_at": _iso(request.created_at),
        "finished_at": _iso(request.finished_at) if request.finished_at else None,
        "output_csv": request.output_csv,
    }


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _open_window(data_dir: str | None, files: list[Path], demo: bool) -> int:
    from imgdesk.gui.app import run_window

    return run_window(data_dir, files, demo=demo)
