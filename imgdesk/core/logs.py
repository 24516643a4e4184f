"""Logging set-up, done once per process by the composition root (cli or window)."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from imgdesk.core.paths import log_dir

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"


def setup_logging(data_dir: Path, verbose: bool = False) -> Path:
    """Log to a rotating file in the data folder (and to stderr when verbose); returns its path."""
    folder = log_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "imgdesk.log"
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "imgdesk", False):
            root.removeHandler(handler)
            handler.close()
    file_handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8"
    )
    file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    file_handler.imgdesk = True  # type: ignore[attr-defined]
    root.addHandler(file_handler)
    if verbose:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter(LOG_FORMAT))
        stream.imgdesk = True  # type: ignore[attr-defined]
        root.addHandler(stream)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # urllib3 logs every connection at DEBUG; keep the file about imgdesk.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("PIL").setLevel(logging.WARNING)
    return path
