"""How sizes, savings, durations and rates read, and that every view writes a size the same way."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QTableView
from pytestqt.qtbot import QtBot

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.repository import Repository
from imgdesk.core.settings import Settings
from imgdesk.engine.engine import Engine
from imgdesk.gui.dashboard import DashboardDialog
from imgdesk.gui.formatting import (
    format_bytes,
    format_duration,
    format_rate,
    format_savings,
    savings_fraction,
)
from imgdesk.gui.image_loading import ImageCache, OriginalFetcher
from imgdesk.gui.images_model import ImagesTableModel
from imgdesk.gui.models import RequestsTableModel
from imgdesk.gui.preview import PreviewPanel

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def test_sizes_are_decimal_like_the_file_managers_show_them() -> None:
    assert format_bytes(None) == ""
    assert format_bytes(812) == "812 B"
    assert format_bytes(999) == "999 B"
    assert format_bytes(1_000) == "1.0 kB"
    assert format_bytes(9_830) == "9.8 kB"
    assert format_bytes(412_000) == "412 kB"
    assert format_bytes(999_700) == "1.0 MB"  # never "1000 kB"
    assert format_bytes(1_400_000) == "1.4 MB"
    assert format_bytes(77_900_000) == "78 MB"
    assert format_bytes(2_500_000_000_000) == "2.5 TB"
    assert format_bytes(-4_500) == "-4.5 kB"  # an output bigger than its input


def test_savings_durations_and_rates_read_like_a_person_writes_them() -> None:
    assert format_savings(savings_fraction(1000, 280)) == "\u221272%"
    assert format_savings(savings_fraction(1000, 1050)) == "+5%"
    assert format_savings(savings_fraction(None, 5)) == ""
    assert format_duration(None) == ""
    assert format_duration(4.24) == "4.2 s"
    assert format_duration(42.7) == "42 s"
    assert format_duration(185) == "3 min 05 s"
    assert format_duration(3720) == "1 h 02 min"
    assert format_rate(0.3) == "0.3"
    assert format_rate(1250) == "1,250.0"


def test_one_request_shows_the_same_sizes_in_the_tables_the_preview_and_the_dashboard(
    qtbot: QtBot, repository: Repository, engine: Engine
) -> None:
    # Once the tables counted 1024 bytes to the kB and the dashboard 1000: "71 MB" there,
    # "74.0 MB" here, for the same request.
    csv = b"S. No.,Product Name,Input Image Urls\n1,Poster,https://cdn.example/p.png\n"
    request_id = repository.create_request(parse_catalogue(csv, "posters.csv"))
    [image] = repository.list_images(request_id)
    repository.update_images(
        {
            image.id: {
                "status": "done",
                "input_bytes": 77_900_000,
                "output_bytes": 3_900_000,
                "output_path": "/nowhere/poster.jpg",
            }
        }
    )

    requests = RequestsTableModel(repository, engine)
    requests.reload()
    saved = requests.index(0, RequestsTableModel.COL_SAVED).data()
    images = ImagesTableModel(repository)
    images.set_request(request_id)
    size = images.index(0, ImagesTableModel.COL_SIZE).data()
    dashboard = DashboardDialog(repository)
    qtbot.addWidget(dashboard)
    dashboard.refresh()
    view = dashboard.findChild(QTableView, "requests")
    assert view is not None
    model = view.model()
    titles = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    dashboard_saved = model.index(0, titles.index("Saved")).data()
    cache, fetcher = ImageCache(), OriginalFetcher()
    preview = PreviewPanel(cache, fetcher, Settings)
    qtbot.addWidget(preview)
    preview.set_compare_original(False)
    preview.show_image(images.image_at(0))
    preview_texts = " ".join(label.text() for label in preview.findChildren(QLabel))

    assert size == "78 MB \u2192 3.9 MB"
    assert saved == dashboard_saved == "74 MB"
    assert "78 MB" in preview_texts and "3.9 MB" in preview_texts and "74 MB saved" in preview_texts
    fetcher.stop()
    cache.shutdown()
