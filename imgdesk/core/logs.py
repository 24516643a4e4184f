"""Logging set-up, done once per process by the composition root (cli or window)."""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
from pathlib import Path

from imgdesk.core.instance import unusable_data_folder
from imgdesk.core.paths import log_dir
from imgdesk.core.redact import RedactingFilter

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"

# Records are written by a thread of their own: a file write on the GUI thread gives up the
# GIL, and getting it back from busy workers can take a whole switch interval per line.
_listener: logging.handlers.QueueListener | None = None


def setup_logging(data_dir: Path, verbose: bool = False) -> Path:
    """Log to a rotating file in the data folder (and to stderr when verbose); returns its path.

    Raises:
        DataFolderError: the log file cannot be written (read-only folder, a file in the way).
    """
    global _listener
    stop_logging()
    path = log_dir(data_dir) / "imgdesk.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8"
        )
    except OSError as error:
        raise unusable_data_folder(data_dir, error) from None
    handlers: list[logging.Handler] = [file_handler]
    if verbose:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        # On the writing thread, not the caller's: credentials in URLs never reach a reader.
        handler.addFilter(RedactingFilter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(records, *handlers)
    _listener.start()
    queue_handler = logging.handlers.QueueHandler(records)
    queue_handler.imgdesk = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    root.addHandler(queue_handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # urllib3 logs every connection at DEBUG; keep the file about imgdesk.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("PIL").setLevel(logging.WARNING)
    # peewee logs every statement with its parameters at DEBUG: webhook secrets and URLs
    # with their credentials. Never, whatever the verbosity.
    logging.getLogger("peewee").setLevel(logging.INFO)
    return path


@atexit.register
def stop_logging() -> None:
    """Detach imgdesk's handler, write out the records still queued and close the log file."""
    global _listener
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "imgdesk", False):
            root.removeHandler(handler)
            handler.close()
    if _listener is not None:
        _listener.stop()
        for handler in _listener.handlers:
            handler.close()
        _listener = None
