"""``imgdesk cleanup``: remove the stored files of requests finished long ago, and say what went.

The work is :func:`~imgdesk.core.retention.remove_expired_files`, the same the retention
setting runs; this module reads the flag and prints the report (lines, or JSON lines).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from imgdesk.cli.console import EXIT_COMPLETED, EXIT_FAILED, iso_time, say, shown_text
from imgdesk.core.errors import SettingsError
from imgdesk.core.repository import Repository
from imgdesk.core.retention import CleanupReport, RemovedFiles, remove_expired_files
from imgdesk.core.settings import RANGES
from imgdesk.core.storage_choice import StorageShelf

MAX_DAYS = int(RANGES["retention_days"][1])  # the retention setting's bound


def cmd_cleanup(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    """Remove (or with ``--dry-run`` list) old requests' files; 1 when some could not go."""
    days = _days(options.older_than)
    report = remove_expired_files(
        repo, StorageShelf(data_dir), days, time.time(), dry_run=options.dry_run
    )
    for problem in report.problems:
        say(
            f"imgdesk: the files of request {problem.request_id} ({problem.csv_name}) could not "
            f"be removed: {shown_text(problem.message)}"
        )
    if options.json:
        _write_json(sys.stdout, report)
    else:
        _write_lines(sys.stdout, report, days)
    return EXIT_FAILED if report.problems else EXIT_COMPLETED


def _days(text: str) -> int:
    """``--older-than`` as a whole number of days.

    Raises:
        SettingsError: it is not a whole number from 1 to MAX_DAYS.
    """
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_DAYS:
        raise SettingsError(
            f"--older-than must be a whole number of days from 1 to {MAX_DAYS}, not {text!r}."
        )
    return int(value)


def _write_lines(out: TextIO, report: CleanupReport, days: int) -> None:
    for entry in report.removed:
        out.write(
            f"{entry.request_id}  finished {iso_time(entry.finished_at)}  {entry.files:>6} files  "
            f"{_size(entry.size_bytes, entry.exact):>20}  {entry.csv_name}\n"
        )
    if not report.removed:
        if not report.problems:
            out.write(
                f"No request that finished more than {_count(days, 'day')} ago has files left.\n"
            )
        return
    verb = "Would remove" if report.dry_run else "Removed"
    out.write(
        f"{verb} the files of {_count(len(report.removed), 'request')}: "
        f"{_count(report.files, 'file')}, "
        f"{_size(report.size_bytes, report.exact)}"
        + (" (dry run: nothing was removed)" if report.dry_run else "")
        + ".\n"
    )


def _count(number: int, thing: str) -> str:
    """E.g. "1 request", "3 requests"."""
    return f"{number} {thing}{'' if number == 1 else 's'}"


def _size(size_bytes: int, exact: bool) -> str:
    """E.g. "1,234,567 bytes", or "about 1,234,567 bytes" when a part was not measured."""
    return f"{'' if exact else 'about '}{size_bytes:,} bytes"


def _write_json(out: TextIO, report: CleanupReport) -> None:
    for entry in report.removed:
        _emit(out, "cleanup.request", **_entry_json(entry), removed=not report.dry_run)
    for problem in report.problems:
        _emit(
            out,
            "cleanup.failed",
            request_id=problem.request_id,
            csv_name=problem.csv_name,
            error=shown_text(problem.message),
        )
    _emit(
        out,
        "cleanup.finished",
        dry_run=report.dry_run,
        requests=len(report.removed),
        files=report.files,
        bytes=report.size_bytes,
        bytes_exact=report.exact,
        failed=len(report.problems),
    )


def _entry_json(entry: RemovedFiles) -> dict[str, Any]:
    return {
        "request_id": entry.request_id,
        "csv_name": entry.csv_name,
        "finished_at": iso_time(entry.finished_at),
        "files": entry.files,
        "bytes": entry.size_bytes,
        "bytes_exact": entry.exact,
    }


def _emit(out: TextIO, event: str, **fields: Any) -> None:
    out.write(json.dumps({"event": event, **fields}) + "\n")
