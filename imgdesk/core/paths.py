"""Where imgdesk keeps its database, images and logs."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import platformdirs

DATA_DIR_ENV = "IMGDESK_DATA_DIR"


def resolve_data_dir(explicit: str | Path | None = None) -> Path:
    """``--data-dir``, else ``$IMGDESK_DATA_DIR``, else the platform's user data folder."""
    chosen = explicit or os.environ.get(DATA_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser().absolute()
    return Path(platformdirs.user_data_dir("imgdesk", appauthor=False))


def database_path(data_dir: Path) -> Path:
    """The SQLite file inside the data folder."""
    return data_dir / "imgdesk.sqlite3"


def log_dir(data_dir: Path) -> Path:
    """The folder of the rotating log files."""
    return data_dir / "logs"


def resource_path(name: str) -> Path:
    """A file of ``imgdesk/resources/`` (the icon, the desktop entry, the demo catalogue).

    The one place that knows where resources are: package data beside this package in a wheel
    or an editable install, and the same place under ``sys._MEIPASS`` in a PyInstaller bundle
    (build.spec puts them there).
    """
    bundle = getattr(sys, "_MEIPASS", None)
    package = Path(bundle) / "imgdesk" if bundle else Path(__file__).resolve().parents[1]
    return package / "resources" / name


def file_of_url(location: str) -> Path | None:
    """The file of a ``file://`` URL (an output CSV's recorded place); None for other URLs."""
    parts = urlsplit(location)
    return Path(url2pathname(parts.path)) if parts.scheme == "file" else None
