"""Where imgdesk keeps its database, images and logs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
    """A file shipped in ``resources/``, from a source checkout or a PyInstaller bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    base = Path(bundle) if bundle else Path(__file__).resolve().parents[2]
    return base / "resources" / name
