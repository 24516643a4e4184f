"""The commands that process or export a request: ``process``, ``retry`` and ``export``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from imgdesk.cli.console import EXIT_COMPLETED, EXIT_FAILED, EXIT_REJECTED, say, shown_text
from imgdesk.cli.parser import output_settings_from, priority_from, storage_choice_from
from imgdesk.cli.reporter import Reporter
from imgdesk.cli.running import run_to_end
from imgdesk.cli.submitting import Submitter
from imgdesk.core.csvio import (
    Catalogue,
    check_output_path,
    default_output_path,
    read_catalogue,
    write_output_csv,
)
from imgdesk.core.errors import CsvFileError, ImageError
from imgdesk.core.output import encoder_for
from imgdesk.core.paths import file_of_url
from imgdesk.core.records import NORMAL
from imgdesk.core.redact import redact_url
from imgdesk.core.repository import Repository, RequestInfo
from imgdesk.core.retention import removed_notice
from imgdesk.core.settings import Settings, check_http_url
from imgdesk.core.storage_choice import StorageChoice
from imgdesk.core.webhook import check_secret

if TYPE_CHECKING:
    from imgdesk.engine.engine import Engine


def cmd_process(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    """``imgdesk process``: record the CSV as a request and run it to the end."""
    settings = repo.load_settings()
    if options.concurrency is not None:
        settings = settings.replace(concurrency=options.concurrency)
    output_settings = output_settings_from(options, settings.output)
    priority = priority_from(options)
    storage = storage_choice_from(options) or settings.storage
    # A format this Pillow cannot write: one sentence now, not one failure per image.
    encoder_for(output_settings.format)
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
    submitter = None
    if getattr(options, "broker", None):
        # The broker is checked before the request is recorded: no request left unsent.
        submitter = Submitter.connect(options.broker, repo)
        if submitter is None:
            return EXIT_REJECTED
    request_id = repo.create_request(
        catalogue,
        options.input.absolute(),
        webhook_url=options.webhook,
        webhook_secret=options.webhook_secret,
        output=output_settings,
        storage=storage,
    )
    if priority != NORMAL:
        # Kept with the request: the engine here and the cluster's workers serve it by it.
        repo.set_priority(request_id, priority)
    reporter = Reporter(options.json, sys.stdout, sys.stderr)
    reporter.created(request_id, catalogue, repo)
    if submitter is not None:
        return submitter.run(request_id, output, settings, reporter)
    return run_to_end(repo, settings, data_dir, request_id, output, reporter)


def _read_input(path: Path, skip_invalid: bool) -> Catalogue | None:
    """Read and validate the input CSV, saying what is wrong; None when it is rejected."""
    try:
        catalogue = read_catalogue(path)
    except CsvFileError as error:
        say(f"imgdesk: {path.name} was rejected: {error}")
        return None
    for warning in catalogue.warnings:
        say(f"imgdesk: warning: {warning}")
    if catalogue.invalid_rows:
        for row in catalogue.invalid_rows:
            say(f"imgdesk: line {row.line}: {shown_text(' '.join(row.problems))}")
        if not skip_invalid:
            say(
                f"imgdesk: {len(catalogue.invalid_rows)} of {len(catalogue.rows)} rows are "
                "invalid; fix them or pass --skip-invalid to process the valid rows only."
            )
            return None
        if not catalogue.valid_rows:
            say("imgdesk: no valid rows to process.")
            return None
    return catalogue


def _checked_output(given: Path | None, input_path: Path) -> Path | None:
    """The output CSV of ``process``, checked (see check_output_path); None when refused."""
    if given is None and not input_path.is_file():
        # "Next to the input" means nothing for a pipe or a device (/dev/fd/63-output.csv).
        say(f"imgdesk: {input_path} is not a regular file; say where the output goes with -o.")
        return None
    output = given or default_output_path(input_path)
    try:
        check_output_path(output, input_path)
    except CsvFileError as error:
        hint = "" if given else " Say where the output goes with -o."
        say(f"imgdesk: {error.message}{hint}")
        return None
    return output


def retry_plan(
    options: argparse.Namespace, repo: Repository
) -> tuple[RequestInfo, StorageChoice | None, Path | None] | None:
    """What ``retry`` (here or on the cluster) works on: the request, a new storage, the output.

    None, after saying why, when the request is unknown or the output path is unusable.
    """
    request = find_request(repo, options.request_id)
    if request is None:
        return None
    # The request's own output settings: the database may come from another installation.
    encoder_for(request.output.format)
    storage = storage_choice_from(options)
    input_path = Path(request.csv_path) if request.csv_path else None
    output = options.output or retry_output(request, input_path)
    if output is not None:
        try:
            check_output_path(output, input_path)
        except CsvFileError as error:
            say(f"imgdesk: {error.message}")
            return None
    return request, storage, output


def cmd_retry(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    """``imgdesk retry``: failed images back to pending, then run the request to the end."""
    plan = retry_plan(options, repo)
    if plan is None:
        return EXIT_REJECTED
    request, storage, output = plan
    reporter = Reporter(options.json, sys.stdout, sys.stderr)

    def begin(engine: Engine) -> None:
        # Through the engine, the one writer: it also takes back images a crash left running.
        retried = engine.retry(request.id, storage=storage)
        if not options.json:
            shown = output or "the request's folder in the storage"
            say(f"imgdesk: retrying {retried} failed images of {request.id}; output: {shown}")
        if not retried:
            engine.start_request(request.id)  # nothing to redo: it finishes (and exports) now

    return run_to_end(repo, repo.load_settings(), data_dir, request.id, output, reporter, begin)


def retry_output(request: RequestInfo, input_path: Path | None) -> Path | None:
    """Where ``retry`` writes the output CSV without -o; None: in the storage only.

    Where the last output went, else next to the input; when the input is gone, only the
    storage's copy (``<request_id>/<csv stem>-output.csv``). Never the current folder,
    where a file of the same name may be something else.
    """
    if request.output_csv and (stored := file_of_url(request.output_csv)) is not None:
        return stored
    if input_path is not None and input_path.is_file():
        return default_output_path(input_path)
    return None


def cmd_export(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    """``imgdesk export``: write a request's output CSV, finished or not."""
    request = find_request(repo, options.request_id)
    if request is None:
        return EXIT_REJECTED
    input_path = Path(request.csv_path) if request.csv_path else None
    try:
        check_output_path(options.output, input_path)
    except CsvFileError as error:
        say(f"imgdesk: {error.message}")
        return EXIT_REJECTED
    settings = repo.load_settings()
    if not _write_output(repo, request.id, options.output, settings):
        return EXIT_FAILED
    say(f"imgdesk: wrote {options.output} ({request.done} of {request.total} images done)")
    if request.files_removed_at is not None:
        # Repository.export_data left the URLs out: say why the cells are empty.
        say(f"imgdesk: {removed_notice(request.files_removed_at)}")
    return EXIT_COMPLETED


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
        say(
            f"imgdesk: the output CSV could not be written: {error.message} The images are "
            f"stored, and imgdesk export {request_id} -o OUTPUT.csv writes it elsewhere."
        )
        return False
    return True


def find_request(repo: Repository, given: str) -> RequestInfo | None:
    """The request whose id is (or starts with) ``given``; None, said, when there is none."""
    request_id = repo.find_request_id(given)
    request = repo.get_request(request_id) if request_id else None
    if request is None:
        say(f"imgdesk: no request with id {given!r} (see: imgdesk status)")
    return request
