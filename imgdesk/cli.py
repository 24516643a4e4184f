"""The ``imgdesk`` command: the window by default, or headless sub-commands.

The headless commands drive the same :class:`~imgdesk.engine.engine.Engine` as the window,
under a ``QCoreApplication`` with qasync, so every behaviour exists once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar
from urllib.parse import unquote, urlsplit

from imgdesk import __version__
from imgdesk.core.csvio import (
    Catalogue,
    check_output_path,
    default_output_path,
    output_csv_name,
    read_catalogue,
    write_output_csv,
)
from imgdesk.core.db import close_database, open_database
from imgdesk.core.errors import (
    CsvFileError,
    DatabaseBusy,
    DataFolderError,
    ImageError,
    SettingsError,
)
from imgdesk.core.instance import DataDirLock
from imgdesk.core.logs import setup_logging, stop_logging
from imgdesk.core.outbox import DeliveryInfo, Outbox
from imgdesk.core.paths import database_path, resolve_data_dir
from imgdesk.core.redact import redact_text, redact_url
from imgdesk.core.repository import ImageInfo, Repository, RequestInfo
from imgdesk.core.settings import Settings, check_http_url
from imgdesk.core.storage import request_folder
from imgdesk.core.webhook import check_secret

if TYPE_CHECKING:
    from imgdesk.engine.engine import Engine
    from imgdesk.engine.webhooks import WebhookSender

logger = logging.getLogger(__name__)

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_REJECTED = 2
# Stopped by a signal: 128 + its number, as shells report it (130 for Ctrl-C, 143 for SIGTERM).
EXIT_SIGINT = 128 + signal.SIGINT
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
COMMANDS = ("process", "status", "export", "retry", "demo")
_T = TypeVar("_T")


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
        return _open_window(options.data_dir, [], demo=True, quit_when_done=options.quit_when_done)
    data_dir = resolve_data_dir(options.data_dir)
    try:
        return _run_command(options, data_dir)
    except (DataFolderError, DatabaseBusy) as error:
        # An unusable data folder or database: one sentence naming the file; nothing touched.
        _say(f"imgdesk: {error}")
        return EXIT_REJECTED
    except KeyboardInterrupt:
        # Ctrl-C outside a run (reading the CSV, recording the request): nothing is in flight.
        _say("imgdesk: interrupted.")
        return EXIT_SIGINT


def _run_command(options: argparse.Namespace, data_dir: Path) -> int:
    """Open the data folder and run a headless command; returns its exit code."""
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
    demo.add_argument(
        "--quit-when-done",
        action="store_true",
        help="close the window once the sample request finished: exit 0 if it ended as "
        "designed (every image done but the two that fail on purpose), else 1",
    )
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
        # The message quotes a wrong URL: without its password.
        check_http_url(redact_url(options.webhook), "--webhook")
    if options.webhook_secret:
        check_secret(options.webhook_secret, "--webhook-secret")
    catalogue = _read_input(options.input, options.skip_invalid)
    if catalogue is None:
        return EXIT_REJECTED
    # Before any download: hours of work must not end in "cannot write" or in the input
    # overwritten.
    output = _checked_output(options.output, options.input)
    if output is None:
        return EXIT_REJECTED
    request_id = repo.create_request(
        catalogue,
        options.input.absolute(),
        webhook_url=options.webhook,
        webhook_secret=options.webhook_secret,
    )
    reporter = _Reporter(options.json, sys.stdout, sys.stderr)
    reporter.created(request_id, catalogue, repo)
    return _run_to_end(repo, settings, data_dir, request_id, output, reporter)


def _read_input(path: Path, skip_invalid: bool) -> Catalogue | None:
    """Read and validate the input CSV, saying what is wrong; None when it is rejected."""
    try:
        catalogue = read_catalogue(path)
    except CsvFileError as error:
        _say(f"imgdesk: {path.name} was rejected: {error}")
        return None
    for warning in catalogue.warnings:
        _say(f"imgdesk: warning: {warning}")
    if catalogue.invalid_rows:
        for row in catalogue.invalid_rows:
            _say(f"imgdesk: line {row.line}: {_shown_text(' '.join(row.problems))}")
        if not skip_invalid:
            _say(
                f"imgdesk: {len(catalogue.invalid_rows)} of {len(catalogue.rows)} rows are "
                "invalid; fix them or pass --skip-invalid to process the valid rows only."
            )
            return None
        if not catalogue.valid_rows:
            _say("imgdesk: no valid rows to process.")
            return None
    return catalogue


def _checked_output(given: Path | None, input_path: Path) -> Path | None:
    """The output CSV of ``process``, checked (see check_output_path); None when refused."""
    if given is None and not input_path.is_file():
        # "Next to the input" means nothing for a pipe or a device (/dev/fd/63-output.csv).
        _say(f"imgdesk: {input_path} is not a regular file; say where the output goes with -o.")
        return None
    output = given or default_output_path(input_path)
    try:
        check_output_path(output, input_path)
    except CsvFileError as error:
        hint = "" if given else " Say where the output goes with -o."
        _say(f"imgdesk: {error.message}{hint}")
        return None
    return output


def _cmd_retry(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    request = _find_request(repo, options.request_id)
    if request is None:
        return EXIT_REJECTED
    output = _retry_output(options.output, request, data_dir)
    if output is None:
        return EXIT_REJECTED
    settings = repo.load_settings()
    repo.recover_interrupted(request.id)
    reset = repo.reset_failed(request.id)
    reporter = _Reporter(options.json, sys.stdout, sys.stderr)
    if not options.json:
        _say(f"imgdesk: retrying {reset} failed images of {request.id}; output: {output}")
    return _run_to_end(repo, settings, data_dir, request.id, output, reporter)


def _retry_output(given: Path | None, request: RequestInfo, data_dir: Path) -> Path | None:
    """Where ``retry`` writes the output CSV, checked; None when that place is refused.

    Without -o: where the last output went, else next to the input, else (the input is
    gone) in the request's folder of images. Never the current folder, where a file of the
    same name may be something else.
    """
    input_path = Path(request.csv_path) if request.csv_path else None
    output = given or _stored_output(request)
    if output is None and input_path is not None and input_path.is_file():
        output = default_output_path(input_path)
    if output is None:
        folder = request_folder(data_dir, request.id)
        with contextlib.suppress(OSError):  # check_output_path says what is wrong with it
            folder.mkdir(parents=True, exist_ok=True)
        output = folder / output_csv_name(request.csv_name)
    try:
        check_output_path(output, input_path)
    except CsvFileError as error:
        _say(f"imgdesk: {error.message}")
        return None
    return output


def _cmd_status(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    out = sys.stdout
    if options.request_id is None:
        _write_request_list(out, repo.list_requests(), options.json)
        return EXIT_COMPLETED
    request = _find_request(repo, options.request_id)
    if request is None:
        return EXIT_REJECTED
    images = repo.list_images(request.id)
    deliveries = Outbox().list_deliveries(request.id)
    if options.json:
        out.write(json.dumps(_request_detail_json(request, images, deliveries)) + "\n")
    else:
        _write_request_detail(out, request, images, deliveries)
    return EXIT_COMPLETED


def _write_request_list(out: TextIO, requests: list[RequestInfo], as_json: bool) -> None:
    if as_json:
        for request in requests:
            out.write(json.dumps(_request_json(request)) + "\n")
        return
    if not requests:
        out.write("No requests yet. Try: imgdesk process products.csv\n")
    for request in requests:
        out.write(
            f"{request.id}  {request.status:<10}  {request.done:>6} done  "
            f"{request.failed:>5} failed  {request.total:>6} total  "
            f"{_iso(request.created_at)}  {request.csv_name}\n"
        )


def _request_detail_json(
    request: RequestInfo, images: list[ImageInfo], deliveries: list[DeliveryInfo]
) -> dict[str, Any]:
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
                    "error": _shown_webhook_text(attempt.error),
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
            "url": redact_url(image.url),
            "status": image.status,
            "attempts": image.attempts,
            "error_code": image.error_code,
            "error": _shown_text(image.error),
            "http_status": image.http_status,
            "input_bytes": image.input_bytes,
            "output_bytes": image.output_bytes,
            "output_url": image.output_url,
        }
        for image in images
    ]
    return payload


def _write_request_detail(
    out: TextIO, request: RequestInfo, images: list[ImageInfo], deliveries: list[DeliveryInfo]
) -> None:
    out.write(
        f"request   {request.id}\ncsv       {request.csv_name}\nstatus    {request.status}"
        + (f" ({_shown_text(request.error)})" if request.error else "")
        + f"\nimages    {request.done} done, {request.failed} failed, {request.total} total\n"
        f"created   {_iso(request.created_at)}\n"
    )
    if request.output_csv:
        out.write(f"output    {request.output_csv}\n")
    for delivery in deliveries:
        out.write(f"webhook   {delivery.event} {delivery.status} ({delivery.id})\n")
        for attempt in delivery.history:
            answer = _shown_webhook_text(attempt.error) or f"HTTP {attempt.status_code}"
            out.write(
                f"          {_iso(attempt.attempted_at)}  {answer}  {attempt.duration_ms} ms\n"
            )
    out.write("\n")
    for image in images:
        problem = f"  {image.error_code}: {_shown_text(image.error)}" if image.error_code else ""
        out.write(
            f"{image.serial:>6} #{image.position:<2} {image.status:<11} "
            f"{redact_url(image.url)}{problem}\n"
        )


def _cmd_export(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    request = _find_request(repo, options.request_id)
    if request is None:
        return EXIT_REJECTED
    input_path = Path(request.csv_path) if request.csv_path else None
    try:
        check_output_path(options.output, input_path)
    except CsvFileError as error:
        _say(f"imgdesk: {error.message}")
        return EXIT_REJECTED
    settings = repo.load_settings()
    if not _write_output(repo, request.id, options.output, settings):
        return EXIT_FAILED
    _say(f"imgdesk: wrote {options.output} ({request.done} of {request.total} images done)")
    return EXIT_COMPLETED


# -- shared helpers -------------------------------------------------------------------------


def export_request(repo: Repository, request_id: str, path: Path, settings: Settings) -> Path:
    """Write the request's output CSV to ``path`` and remember where it went."""
    catalogue, outputs = repo.export_data(request_id)
    write_output_csv(path, catalogue, outputs, neutralise=settings.neutralise_formulas)
    repo.set_output_csv(request_id, path.absolute().as_uri())
    return path


def _write_output(repo: Repository, request_id: str, path: Path, settings: Settings) -> bool:
    """Export the request to ``path``; False, said in one sentence, when it cannot be written.

    The place was checked before any download, but a disk can fill or a folder go meanwhile.
    """
    try:
        export_request(repo, request_id, path, settings)
    except ImageError as error:
        _say(
            f"imgdesk: the output CSV could not be written: {error.message} The images are "
            f"stored, and imgdesk export {request_id} -o OUTPUT.csv writes it elsewhere."
        )
        return False
    return True


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
    from imgdesk.engine.finisher import RequestFinisher
    from imgdesk.engine.webhooks import WebhookSender

    app = QCoreApplication.instance() or QCoreApplication([])
    engine = Engine(repo, settings, data_dir)
    engine.image_finished.connect(reporter.image_finished)
    engine.request_changed.connect(lambda rid: reporter.progress(repo, rid))
    engine.request_held.connect(reporter.held)
    sender = WebhookSender(Outbox(), settings)
    sender.attempt_recorded.connect(reporter.webhook_attempt)
    finisher = RequestFinisher(repo, engine, sender)
    finisher.set_destination(request_id, output)
    loop = qasync.QEventLoop(app)
    stop = _StopRequest(loop)
    engine.database_lost.connect(stop.database_lost)

    async def run() -> int:
        # Events an earlier run still owes (killed, stopped) go out now, under their own ids.
        sender.start()
        finished: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def on_finished(finished_id: str, _location: str, problem: str) -> None:
            # The finisher wrote the output CSV (or says why not) and queued the webhook.
            if finished_id == request_id and not finished.done():
                finished.set_result(problem)

        finisher.finished.connect(on_finished)
        engine.start_request(request_id)
        problem = await stop.unless_stopped(finished)
        if problem is None:
            _stop_now(stop, engine, sender, repo, request_id, reporter)
        engine.shutdown()
        if problem:
            _say(
                f"imgdesk: the output CSV could not be written: {problem} The images are "
                f"stored, and imgdesk export {request_id} -o OUTPUT.csv writes it elsewhere."
            )
        request = repo.get_request(request_id)
        assert request is not None
        status = request.status
        written = not problem
        reporter.finished(request, output if written else None)
        # This request's event and those resumed above are all delivered (or given up)
        # before the command exits.
        if await stop.unless_stopped(sender.drain()) is None:
            _stop_now(stop, engine, sender, repo, request_id, reporter)
        return EXIT_COMPLETED if status == "completed" and written else EXIT_FAILED

    try:
        with loop:
            return int(loop.run_until_complete(run()))
    finally:
        engine.shutdown()


class _StopRequest:
    """Turns SIGINT/SIGTERM, or the database lost, into one clean stop of the run.

    The handlers run as event loop callbacks (asyncio's ``add_signal_handler``, which wakes
    Qt's loop through a wakeup fd), never inside an engine slot, so no KeyboardInterrupt
    is raised in the middle of the engine's work. After the first signal, a plain handler
    ends the process at once on the next one, even while the loop is busy.

    Attributes:
        requested: done once the run must stop.
        exit_code: 130 (Ctrl-C), 143 (SIGTERM), or 1 (the database is lost).
        signal_name: "Ctrl-C" or "SIGTERM"; empty when the database is lost.
        message: what the database loss was, in words.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.requested: asyncio.Future[None] = loop.create_future()
        self.exit_code = EXIT_FAILED
        self.signal_name = ""
        self.message = ""
        self._loop = loop
        self._ticker: Any = None
        for signum in STOP_SIGNALS:
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
            except NotImplementedError:  # Windows: no wakeup fd for the loop
                signal.signal(signum, self._on_signal_elsewhere)
                self._keep_python_running()

    async def unless_stopped(self, awaitable: Awaitable[_T]) -> _T | None:
        """The result of ``awaitable``, or None when a stop comes first."""
        task = asyncio.ensure_future(awaitable)
        waiting: list[asyncio.Future[Any]] = [task, self.requested]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        return None

    def database_lost(self, message: str) -> None:
        """Slot of ``Engine.database_lost``: nothing can be stored any more."""
        if not self.requested.done():
            self.message = message
            self.requested.set_result(None)

    def _on_signal(self, signum: int) -> None:
        if self.requested.done():
            _exit_at_once(signum, None)
        # The loop's wakeup fd stays, so an idle loop still wakes for the next signal.
        for each in STOP_SIGNALS:
            signal.signal(each, _exit_at_once)
        logger.info("stopping on signal %s", signum)
        self.exit_code = 128 + signum
        self.signal_name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        self.requested.set_result(None)

    def _on_signal_elsewhere(self, signum: int, frame: FrameType | None) -> None:
        self._loop.call_soon_threadsafe(self._on_signal, signum)

    def _keep_python_running(self) -> None:
        """Without a wakeup fd a Python signal handler waits for Python code to run."""
        if self._ticker is None:
            from PySide6.QtCore import QTimer

            self._ticker = QTimer()
            self._ticker.timeout.connect(lambda: None)
            self._ticker.start(100)


def _stop_now(
    stop: _StopRequest,
    engine: Engine,
    sender: WebhookSender,
    repo: Repository,
    request_id: str,
    reporter: _Reporter,
) -> NoReturn:
    """End the run as ``stop`` asks: images in flight back to pending, one line, exit."""
    engine.shutdown(timeout_ms=0)  # nothing is waited for: the run ends now
    sender.stop_now()  # a POST in flight gives its claim back: the next run sends it at once
    if not stop.signal_name:
        reporter.stopped(stop.message)
        _exit_now(stop.exit_code)
    request = repo.get_request(request_id)
    if request is not None and not request.finished:
        repo.set_request_error(
            request_id,
            f"Interrupted by {stop.signal_name}; imgdesk retry {request_id} resumes it.",
        )
        reporter.stopped(
            f"interrupted by {stop.signal_name}; the images in flight went back to pending "
            f"and imgdesk retry {request_id} resumes the request."
        )
    else:
        reporter.stopped(
            f"interrupted by {stop.signal_name}; the webhook still owed goes out with the next "
            "imgdesk run on this data folder."
        )
    _exit_now(stop.exit_code)


def _exit_now(code: int) -> NoReturn:
    """End the process without waiting for threads still on the network.

    A download or a webhook POST can take minutes to time out, and Qt's thread pool and
    qasync's executor wait for their threads when torn down. What is worth keeping is
    stored by now, and what a thread writes later is cleaned up by the next run (as after
    a crash), so the log and the database are closed and the process ends.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    stop_logging()
    close_database()
    os._exit(code)


def _exit_at_once(signum: int, frame: FrameType | None) -> None:
    """A second Ctrl-C (or SIGTERM) while stopping: the user wants out now."""
    os.write(sys.stderr.fileno(), b"imgdesk: stopped at once.\n")
    os._exit(128 + signum)


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
                url=redact_url(event.url),
                status=event.status,
                error_code=event.error_code,
                error=_shown_text(event.error),
                output_url=event.output_url,
            )
        elif not self._tty and event.status == "failed":
            self._err.write(
                f"imgdesk: failed {event.serial} #{event.position} {redact_url(event.url)}: "
                f"{_shown_text(event.error)}\n"
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

    def stopped(self, message: str) -> None:
        """The run ends early: the line goes below the progress bar, not over it."""
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

    def finished(self, request: RequestInfo, output: Path | None) -> None:
        """The request ended; ``output`` is None when its CSV could not be written."""
        if self._json:
            self._emit(
                "request.finished",
                request_id=request.id,
                status=request.status,
                succeeded=request.done,
                failed=request.failed,
                output_csv=output.absolute().as_uri() if output else None,
            )
            return
        if self._tty:
            self._err.write("\n")
        seconds = request.duration_s or 0.0
        self._err.write(
            f"imgdesk: {request.status}: {request.done} done, {request.failed} failed of "
            f"{request.total} in {seconds:.1f} s; saved {request.bytes_saved / 1e6:.1f} MB; "
            f"output: {output or 'not written'}\n"
        )


def _find_request(repo: Repository, given: str) -> RequestInfo | None:
    request_id = repo.find_request_id(given)
    request = repo.get_request(request_id) if request_id else None
    if request is None:
        _say(f"imgdesk: no request with id {given!r} (see: imgdesk status)")
    return request


def _stored_output(request: RequestInfo) -> Path | None:
    """Where the request's output CSV was last written, when that was a local file."""
    if not request.output_csv:
        return None
    parts = urlsplit(request.output_csv)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


def _request_json(request: RequestInfo) -> dict[str, Any]:
    return {
        "request_id": request.id,
        "csv_name": request.csv_name,
        "status": request.status,
        "error": _shown_text(request.error),
        "total_images": request.total,
        "succeeded": request.done,
        "failed": request.failed,
        "created_at": _iso(request.created_at),
        "finished_at": _iso(request.finished_at) if request.finished_at else None,
        "output_csv": request.output_csv,
    }


def _shown_text(text: str | None) -> str | None:
    """A message about images as printed: URLs without their password (queries may stay)."""
    return redact_text(text, hide_query=False) if text else text


def _shown_webhook_text(text: str | None) -> str | None:
    """A message about the webhook as printed: its URL's password and query values hidden."""
    return redact_text(text) if text else text


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _open_window(
    data_dir: str | None, files: list[Path], demo: bool, quit_when_done: bool = False
) -> int:
    from imgdesk.gui.app import run_window

    return run_window(data_dir, files, demo=demo, quit_when_done=quit_when_done)
