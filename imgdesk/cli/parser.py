"""The command line's arguments: the window's, and each headless command's."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from imgdesk import __version__
from imgdesk.core.errors import SettingsError
from imgdesk.core.output import OutputSettings
from imgdesk.core.records import NORMAL, PRIORITIES
from imgdesk.core.storage_choice import MAX_PRESIGN_EXPIRY_S, StorageChoice, parse_destination

COMMANDS = (
    "process",
    "status",
    "export",
    "retry",
    "cancel",
    "pause",
    "resume",
    "cleanup",
    "worker",
    "demo",
)
# The OutputSettings field each output flag of `process` sets.
_OUTPUT_FLAGS = (
    ("format", "--format"),
    ("quality", "--quality"),
    ("max_width", "--max-width"),
    ("max_height", "--max-height"),
    ("target_size_kb", "--target-size"),
    ("keep_original", "--keep-original"),
    ("flatten", "--flatten"),
)


def add_global_options(parser: argparse.ArgumentParser, on_command: bool = False) -> None:
    """``--data-dir`` and ``--verbose``, accepted before the command and after it."""
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


def build_window_parser() -> argparse.ArgumentParser:
    """``imgdesk [FILE.csv...]``: the window, optionally with CSV files loaded."""
    parser = argparse.ArgumentParser(
        prog="imgdesk",
        description="Open the imgdesk window, optionally with CSV files loaded. "
        f"Headless commands: {', '.join(COMMANDS)} (imgdesk COMMAND --help).",
    )
    add_global_options(parser)
    parser.add_argument("--version", action="version", version=f"imgdesk {__version__}")
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE.csv")
    _add_cluster_options(parser)  # the window on a cluster, whatever Settings > Processing says
    return parser


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    """The flags of SPEC 9: what the request's images are written as.

    The values stay text here: :func:`output_settings_from` checks them, so a bad one is one
    sentence naming the flag (argparse would print its usage too).
    """
    group = parser.add_argument_group(
        "output images",
        "What each image is written as; the request keeps these, and its retries use them. "
        "A flag not given takes the window's Settings > Output value (by default JPEG at "
        "quality 50, no size limit, originals kept).",
    )
    group.add_argument(
        "--format",
        metavar="FORMAT",
        help="jpeg, webp or avif; the files end in .jpg, .webp or .avif (default: jpeg)",
    )
    group.add_argument(
        "--quality",
        metavar="N",
        help="1-100 for the chosen format: lower gives smaller files, higher looks better "
        "(default: 50)",
    )
    group.add_argument(
        "--max-width",
        metavar="W",
        help="scale down to at most W pixels wide, keeping the aspect ratio; never enlarges",
    )
    group.add_argument(
        "--max-height",
        metavar="H",
        help="scale down to at most H pixels high, keeping the aspect ratio; never enlarges",
    )
    group.add_argument(
        "--target-size",
        metavar="KB",
        help="use the highest quality up to --quality whose file fits in KB KiB (at most 8 "
        "tries); an image that does not fit even at quality 10 is kept and marked over_target",
    )
    group.add_argument(
        "--keep-original",
        action=argparse.BooleanOptionalAction,
        help="store an input that already has the output format as it is, its metadata "
        "(EXIF, GPS, XMP, comments) removed and its ICC profile kept, when it needs no "
        "scaling or rotation and re-encoding would not make it smaller; marked kept_original "
        "(default: on)",
    )
    group.add_argument(
        "--flatten",
        action=argparse.BooleanOptionalAction,
        help="put transparency onto white for WebP and AVIF too (JPEG always does; "
        "default: off, WebP and AVIF keep it)",
    )


def priority_from(options: argparse.Namespace) -> str:
    """The request's priority, ``--priority`` checked.

    Raises:
        SettingsError: not one of high, normal, low.
    """
    priority = str(options.priority).strip().lower()
    if priority not in PRIORITIES:
        raise SettingsError(f"--priority must be {', '.join(PRIORITIES[:-1])} or {PRIORITIES[-1]}.")
    return priority


def output_settings_from(options: argparse.Namespace, defaults: OutputSettings) -> OutputSettings:
    """The request's output settings: ``defaults`` changed by the flags given to ``process``.

    Raises:
        SettingsError: a flag's value cannot be used; the sentence names the flag.
    """
    output = defaults
    for field, flag in _OUTPUT_FLAGS:
        value = getattr(options, flag.removeprefix("--").replace("-", "_"))
        if value is None:
            continue
        if isinstance(value, str):
            value = _flag_value(field, value.strip())
        try:
            output = output.replace(**{field: value})
        except SettingsError as error:
            # "quality must be ..." becomes "--quality must be ...".
            raise SettingsError(f"{flag}{str(error).removeprefix(field)}.") from None
    return output


def _flag_value(field: str, text: str) -> str | int:
    if field == "format":
        return text.lower()
    # Text that is no whole number goes on as it is: the check then words the range.
    return int(text) if text.isdigit() else text


def _add_storage_options(parser: argparse.ArgumentParser) -> None:
    """The flags of SPEC 10: where the request's outputs are stored."""
    group = parser.add_argument_group(
        "storage",
        "Where the output images (and a copy of the output CSV) are stored; the request "
        "keeps it. Credentials for S3 come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
        "(/ AWS_SESSION_TOKEN) or AWS_PROFILE with the shared AWS files.",
    )
    group.add_argument(
        "--storage",
        metavar="DEST",
        help="a folder, or s3://BUCKET[/PREFIX] for an S3-compatible bucket (default: the "
        "window's Settings > Storage, at first the data folder's images)",
    )
    group.add_argument(
        "--s3-endpoint",
        metavar="URL",
        default="",
        help="the S3 server (Cloudflare R2, MinIO, Backblaze B2, ...); none means AWS",
    )
    group.add_argument("--s3-region", metavar="NAME", default="", help="the bucket's region")
    group.add_argument(
        "--presign-expiry",
        metavar="SECONDS",
        type=int,
        default=MAX_PRESIGN_EXPIRY_S,
        help="how long the output CSV's presigned URLs stay valid, when no public base URL "
        "is set (default and most: 604800, 7 days)",
    )


def storage_choice_from(options: argparse.Namespace) -> StorageChoice | None:
    """The storage ``--storage`` names; None when it was not given.

    Raises:
        SettingsError: the destination or an S3 flag cannot be used.
    """
    if options.storage is None:
        if options.s3_endpoint or options.s3_region:
            raise SettingsError("--s3-endpoint and --s3-region go with --storage s3://BUCKET.")
        return None
    return parse_destination(
        options.storage, options.s3_endpoint, options.s3_region, options.presign_expiry
    )


def _add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """``--database`` and ``--broker`` (SPEC 11): a shared database and a Redis broker."""
    group = parser.add_argument_group(
        "cluster",
        "Work on several machines: the request lives in a shared database and its images are "
        "queued on a Redis broker for imgdesk worker processes (see docs/cluster.md). "
        "Without these, nothing but this computer is used.",
    )
    group.add_argument(
        "--database",
        metavar="URL",
        default=os.environ.get("IMGDESK_DATABASE_URL") or None,
        help="postgresql://USER:PASSWORD@HOST/NAME, or a SQLite file shared by the processes "
        "of one machine: sqlite:///relative.db or sqlite:////absolute/path.db "
        "(default: $IMGDESK_DATABASE_URL)",
    )
    group.add_argument(
        "--broker",
        metavar="URL",
        default=os.environ.get("IMGDESK_BROKER_URL") or None,
        help="redis://HOST:PORT/DB (default: $IMGDESK_BROKER_URL)",
    )


def _add_worker_options(worker: argparse.ArgumentParser) -> None:
    """The flags of ``imgdesk worker``."""
    add_global_options(worker, on_command=True)
    _add_cluster_options(worker)
    worker.add_argument(
        "--processes",
        metavar="N",
        help="worker processes to start (default: one per CPU core)",
    )
    worker.add_argument(
        "--threads",
        metavar="M",
        help="images each process works on at once (default: 5)",
    )
    worker.add_argument(
        "--heartbeat-timeout",
        metavar="SECONDS",
        type=float,
        default=60.0,
        help="a worker silent this long is taken for dead and its images go to the others "
        "(default: 60; the same on every worker)",
    )
    _add_storage_options(worker)


def _add_cleanup_options(cleanup: argparse.ArgumentParser) -> None:
    """The flags of ``imgdesk cleanup``."""
    add_global_options(cleanup, on_command=True)
    # Text, checked by the command: a bad value is one sentence naming the flag.
    cleanup.add_argument(
        "--older-than",
        metavar="DAYS",
        required=True,
        help="remove the files of requests finished more than DAYS days ago (a whole number, "
        "at least 1)",
    )
    cleanup.add_argument(
        "--dry-run", action="store_true", help="list what would be removed, remove nothing"
    )
    cleanup.add_argument("--json", action="store_true", help="print JSON lines on stdout")


def _add_process_parser(sub: Any) -> None:
    """``imgdesk process INPUT.csv``: the whole run of one CSV, headless."""
    process = sub.add_parser("process", help="process a CSV headless and write the output CSV")
    add_global_options(process, on_command=True)
    process.add_argument("input", type=Path, metavar="INPUT.csv")
    process.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUTPUT.csv",
        help="write the output CSV here (default: INPUT-output.csv next to the input)",
    )
    process.add_argument("--concurrency", type=int, help="images in flight (default: 5)")
    process.add_argument("--webhook", metavar="URL", help="POST an event here when done")
    process.add_argument("--webhook-secret", metavar="S", help="sign the webhook with this")
    process.add_argument(
        "--skip-invalid", action="store_true", help="process the valid rows, skip invalid ones"
    )
    process.add_argument("--json", action="store_true", help="print JSON lines on stdout")
    process.add_argument(
        "--priority",
        metavar="LEVEL",
        default=NORMAL,
        help="high, normal or low: a higher request's images are served first, on this "
        "computer and in the cluster (default: normal)",
    )
    _add_output_options(process)
    _add_storage_options(process)
    _add_cluster_options(process)


def build_parser() -> argparse.ArgumentParser:
    """``imgdesk COMMAND ...``: the headless commands and ``demo``."""
    parser = argparse.ArgumentParser(prog="imgdesk")
    add_global_options(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    _add_process_parser(sub)

    status = sub.add_parser("status", help="list requests, or show one request's images")
    add_global_options(status, on_command=True)
    status.add_argument("request_id", nargs="?", metavar="REQUEST_ID")
    status.add_argument("--json", action="store_true")
    _add_cluster_options(status)

    export = sub.add_parser("export", help="write a request's output CSV")
    add_global_options(export, on_command=True)
    export.add_argument("request_id", metavar="REQUEST_ID")
    export.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.csv")
    _add_cluster_options(export)

    retry = sub.add_parser("retry", help="retry failed images, resume pending ones, run to the end")
    add_global_options(retry, on_command=True)
    retry.add_argument("request_id", metavar="REQUEST_ID")
    retry.add_argument("-o", "--output", type=Path, metavar="OUTPUT.csv")
    retry.add_argument("--json", action="store_true", help="print JSON lines on stdout")
    _add_storage_options(retry)
    _add_cluster_options(retry)

    cancel = sub.add_parser(
        "cancel",
        help="cancel a request, whether the window, a process or nothing runs it",
        description="Fail the request's unfinished images with 'cancelled' (imgdesk retry "
        "resumes it later). A window or a process running it stops within 2 s.",
    )
    add_global_options(cancel, on_command=True)
    cancel.add_argument("request_id", metavar="REQUEST_ID", help="the id or its first characters")
    _add_cluster_options(cancel)

    for name, what in (("pause", "start no new image"), ("resume", "go on after a pause")):
        command = sub.add_parser(
            name,
            help=f"cluster only: every worker {what} (needs --database)",
            description=f"Every worker of the cluster whose database --database names: {what}. "
            "Images in flight finish; states are kept. The window pauses its own work.",
        )
        add_global_options(command, on_command=True)
        _add_cluster_options(command)

    cleanup = sub.add_parser(
        "cleanup",
        help="remove the stored files of requests finished long ago",
        description="Remove the stored files (images and the output CSV's copy) of requests "
        "that finished (completed or failed) more than DAYS days ago, in their local folder or "
        "bucket. The requests stay listed; their export then has empty output URLs.",
    )
    _add_cleanup_options(cleanup)

    worker = sub.add_parser(
        "worker",
        help="run cluster worker processes (needs --database and --broker)",
        description="Run Dramatiq worker processes that take images from the broker, "
        "process them and store the results in the shared database, until SIGTERM or "
        "Ctrl-C. Requests that name no storage store their outputs in --storage.",
    )
    _add_worker_options(worker)

    demo = sub.add_parser("demo", help="open the window on a bundled sample catalogue")
    add_global_options(demo, on_command=True)
    demo.add_argument(
        "--quit-when-done",
        action="store_true",
        help="close the window once the sample request finished: exit 0 if it ended as "
        "designed (every image done but the two that fail on purpose), else 1",
    )
    return parser
