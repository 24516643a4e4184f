"""``imgdesk worker``: Dramatiq worker processes for the cluster (SPEC 11)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from imgdesk.cli.console import EXIT_REJECTED, say
from imgdesk.cli.parser import storage_choice_from
from imgdesk.core.errors import ImdeskError, SettingsError
from imgdesk.core.storage_choice import StorageChoice

CLUSTER_EXTRA_HINT = 'pip install "imgdesk[cluster]"'


def cmd_worker(options: argparse.Namespace, data_dir: Path) -> int:
    """Run worker processes until SIGTERM or Ctrl-C; 0 after a clean stop."""
    if not options.database or not options.broker:
        say(
            "imgdesk: imgdesk worker needs --database URL and --broker redis://... (or "
            "IMGDESK_DATABASE_URL and IMGDESK_BROKER_URL)."
        )
        return EXIT_REJECTED
    try:
        from imgdesk.cluster.actors import WorkerConfig
        from imgdesk.cluster.worker import connect, log_to_stderr, run_processes, serve
    except ImportError as error:
        say(
            f"imgdesk: the cluster needs {error.name}, which is not installed: {CLUSTER_EXTRA_HINT}"
        )
        return EXIT_REJECTED
    try:
        processes = _positive(options.processes, "--processes", os.cpu_count() or 1)
        threads = _positive(options.threads, "--threads", 5)
        storage = storage_choice_from(options) or StorageChoice()
    except SettingsError as error:
        say(f"imgdesk: {error}")
        return EXIT_REJECTED
    config = WorkerConfig(
        database_url=options.database,
        broker_url=options.broker,
        data_dir=data_dir,
        storage=storage,
        threads=threads,
        heartbeat_timeout_s=options.heartbeat_timeout,
        verbose=options.verbose,
    )
    log_to_stderr(options.verbose)
    try:
        # Checked here once, so a wrong URL is one sentence, not one per process.
        actors = connect(config)
    except ImdeskError as error:
        say(f"imgdesk: {error}")
        return EXIT_REJECTED
    if processes == 1:
        serve(config, actors)
        return 0
    return run_processes(config, processes)


def _positive(value: str | None, flag: str, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= 256:
        raise SettingsError(f"{flag} must be a whole number from 1 to 256.")
    return int(value)
