"""The ``imgdesk`` command: the window by default, or headless sub-commands.

The headless commands drive the same :class:`~imgdesk.engine.engine.Engine` as the window,
under a ``QCoreApplication`` with qasync, so every behaviour exists once.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from imgdesk.cli.cancelling import cmd_cancel
from imgdesk.cli.cleanup import cmd_cleanup
from imgdesk.cli.cluster_commands import (
    cmd_cancel_shared,
    cmd_pause,
    cmd_resume,
    cmd_retry_shared,
)
from imgdesk.cli.commands import cmd_export, cmd_process, cmd_retry
from imgdesk.cli.console import EXIT_FAILED, EXIT_REJECTED, EXIT_SIGINT, say
from imgdesk.cli.parser import COMMANDS, add_global_options, build_parser, build_window_parser
from imgdesk.cli.status import cmd_status
from imgdesk.cli.worker import cmd_worker
from imgdesk.core.cluster_store import open_shared_database
from imgdesk.core.db import open_database
from imgdesk.core.errors import DatabaseBusyError, DataFolderError, ImdeskError, SettingsError
from imgdesk.core.instance import DataDirLock
from imgdesk.core.logs import setup_logging
from imgdesk.core.paths import database_path, resolve_data_dir
from imgdesk.core.repository import Repository
from imgdesk.core.retention import remove_expired_files
from imgdesk.core.storage_choice import StorageShelf

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``imgdesk`` executable; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Global options may come before the command; look past them to find it.
    global_options = argparse.ArgumentParser(add_help=False)
    add_global_options(global_options)
    _, rest = global_options.parse_known_args(args)
    if not rest or rest[0] not in COMMANDS:
        window_args = build_window_parser().parse_args(args)
        return _open_window(
            window_args.data_dir,
            window_args.files,
            demo=False,
            database_url=window_args.database,
            broker_url=window_args.broker,
        )
    options = parser.parse_args(args)
    if options.command == "demo":
        return _open_window(options.data_dir, [], demo=True, quit_when_done=options.quit_when_done)
    data_dir = resolve_data_dir(options.data_dir)
    try:
        return _run_command(options, data_dir)
    except (DataFolderError, DatabaseBusyError) as error:
        # An unusable data folder or database: one sentence naming the file; nothing touched.
        say(f"imgdesk: {error}")
        return EXIT_REJECTED
    except KeyboardInterrupt:
        # Ctrl-C outside a run (reading the CSV, recording the request): nothing is in flight.
        say("imgdesk: interrupted.")
        return EXIT_SIGINT


def _run_command(options: argparse.Namespace, data_dir: Path) -> int:
    """Open the data folder and run a headless command; returns its exit code."""
    setup_logging(data_dir, verbose=options.verbose)
    if options.command == "worker":
        return cmd_worker(options, data_dir)
    database_url = getattr(options, "database", None)
    if database_url or getattr(options, "broker", None):
        return _run_shared(options, data_dir, database_url)
    if options.command in ("pause", "resume"):
        say(
            f"imgdesk: imgdesk {options.command} works on the cluster: give --database URL (or "
            "IMGDESK_DATABASE_URL). The window pauses the work of this computer."
        )
        return EXIT_REJECTED
    open_database(database_path(data_dir))
    repo = Repository()
    # cleanup too: nothing may be writing into the folders it empties.
    if options.command in ("process", "retry", "cleanup"):
        lock = DataDirLock(data_dir)
        if not lock.acquire(f"imgdesk {options.command}"):
            say(
                f"imgdesk: {lock.holder()} is already processing in {data_dir}. Wait for it to "
                "finish (imgdesk status shows progress), or use another --data-dir."
            )
            return EXIT_REJECTED
    if options.command == "process":
        _apply_retention(repo, data_dir)
    handler = {
        "process": cmd_process,
        "status": cmd_status,
        "export": cmd_export,
        "retry": cmd_retry,
        "cancel": cmd_cancel,
        "cleanup": cmd_cleanup,
    }[options.command]
    try:
        return int(handler(options, repo, data_dir))
    except SettingsError as error:
        say(f"imgdesk: {error}")
        return EXIT_REJECTED


def _run_shared(options: argparse.Namespace, data_dir: Path, database_url: str | None) -> int:
    """A command on the cluster's shared database (SPEC 11): no data folder lock needed."""
    if not database_url or (options.command == "process" and not options.broker):
        say(
            "imgdesk: the cluster needs both --database URL and --broker redis://... (or "
            "IMGDESK_DATABASE_URL and IMGDESK_BROKER_URL)."
        )
        return EXIT_REJECTED
    try:
        open_shared_database(database_url)
    except ImdeskError as error:
        say(f"imgdesk: {error}")
        return EXIT_REJECTED
    repo = Repository()
    handler = {
        "process": cmd_process,
        "status": cmd_status,
        "export": cmd_export,
        "retry": cmd_retry_shared,
        "cancel": cmd_cancel_shared,
        "pause": cmd_pause,
        "resume": cmd_resume,
    }
    try:
        return int(handler[options.command](options, repo, data_dir))
    except SettingsError as error:
        say(f"imgdesk: {error}")
        return EXIT_REJECTED
    except (DataFolderError, DatabaseBusyError):
        raise  # said by main() in one sentence, exit 2
    except ImdeskError as error:  # the shared database went away meanwhile
        say(f"imgdesk: {error}")
        return EXIT_FAILED


def _apply_retention(repo: Repository, data_dir: Path) -> None:
    """With Settings > Remove files after N days on, clean up before processing starts."""
    days = repo.load_settings().retention_days
    if days:
        report = remove_expired_files(repo, StorageShelf(data_dir), days, time.time())
        if report.removed:
            count = len(report.removed)
            say(f"imgdesk: removed the files of {count} requests older than {days} days")


def _open_window(
    data_dir: str | None,
    files: list[Path],
    demo: bool,
    quit_when_done: bool = False,
    database_url: str | None = None,
    broker_url: str | None = None,
) -> int:
    from imgdesk.gui.app import run_window

    return run_window(
        data_dir,
        files,
        demo=demo,
        quit_when_done=quit_when_done,
        database_url=database_url,
        broker_url=broker_url,
    )
