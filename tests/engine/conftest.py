"""Engine fixtures: a real SQLite file, a real HTTP server on 127.0.0.1, a real engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.db import db, open_database
from imgdesk.core.output import OutputSettings
from imgdesk.core.repository import Repository
from imgdesk.core.settings import Settings
from imgdesk.engine.engine import Engine

# Fast but otherwise default settings: retries wait milliseconds, not seconds.
FAST = Settings(
    retry_base_delay_s=0.01,
    connect_timeout_s=2,
    read_timeout_s=2,
    total_timeout_s=5,
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def repo(data_dir: Path) -> Iterator[Repository]:
    open_database(data_dir / "imgdesk.sqlite3")
    yield Repository()
    db.close()


@pytest.fixture
def make_engine(repo: Repository, data_dir: Path, qapp: object) -> Iterator[Callable[..., Engine]]:
    engines: list[Engine] = []

    def make(settings: Settings = FAST) -> Engine:
        engine = Engine(repo, settings, data_dir)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.shutdown()


def csv_bytes(rows: list[tuple[str, str, list[str]]]) -> bytes:
    """A catalogue CSV: (serial, product name, urls) per row."""
    lines = ["S. No.,Product Name,Input Image Urls"]
    for serial, name, urls in rows:
        lines.append(f'{serial},{name},"{",".join(urls)}"')
    return ("\n".join(lines) + "\n").encode()


def create_request(
    repo: Repository,
    rows: list[tuple[str, str, list[str]]],
    output: OutputSettings | None = None,
) -> str:
    """Record a request for the rows, as a dropped CSV would be (written as ``output`` says)."""
    return repo.create_request(parse_catalogue(csv_bytes(rows), "products.csv"), output=output)
