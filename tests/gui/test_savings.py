"""Savings per output format: the request row, the dashboard, and the words for an output."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QSortFilterProxyModel, Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QTableView
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.db import db
from imgdesk.core.output import OutputSettings
from imgdesk.core.repository import ImageInfo, Repository
from imgdesk.engine.engine import Engine
from imgdesk.gui.dashboard import KEY_ROLE, DashboardDialog
from imgdesk.gui.formatting import describe_output, format_name
from imgdesk.gui.models import SORT_ROLE, RequestsTableModel
from imgdesk.gui.requests_pane import RequestsPane

CSV = b"""S. No.,Product Name,Input Image Urls
1,Shirt,"https://cdn.example.com/1.jpg, https://cdn.example.com/2.jpg"
2,Mug,https://cdn.example.com/3.jpg
"""


class Requests:
    """A JPEG request (6 kB in, 1.5 kB out), a WebP one (10 kB in, 2 kB out), an AVIF one idle."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.jpeg = self._request("jpeg.csv", OutputSettings(), [(1000, 400), (5000, 1100)])
        self.webp = self._request(
            "webp.csv", OutputSettings(format="webp", quality=60), [(4000, 500), (6000, 1500)]
        )
        self.avif = self._request("avif.csv", OutputSettings(format="avif", quality=40), [])

    def _request(self, name: str, output: OutputSettings, sizes: list[tuple[int, int]]) -> str:
        request_id = self.repo.create_request(parse_catalogue(CSV, name), output=output)
        images = self.repo.list_images(request_id)
        self.repo.update_images(
            {
                image.id: {"status": "done", "input_bytes": before, "output_bytes": after}
                for image, (before, after) in zip(images, sizes, strict=False)
            }
        )
        return request_id


@pytest.fixture
def requests(repository: Repository, qapp: object) -> Requests:
    return Requests(repository)


def shown(model: RequestsTableModel, request_id: str, column: int, role: int = 0) -> object:
    row = model.row_of(request_id)
    assert row is not None
    return model.index(row, column).data(role or Qt.ItemDataRole.DisplayRole)


# -- the request row ----------------------------------------------------------------------------


def test_the_request_row_shows_its_format_and_savings(requests: Requests, engine: Engine) -> None:
    model = RequestsTableModel(requests.repo, engine)
    model.reload()
    assert shown(model, requests.webp, model.COL_OUTPUT) == "WebP q60"
    assert shown(model, requests.jpeg, model.COL_OUTPUT) == "JPEG q50"
    assert shown(model, requests.webp, model.COL_SAVED) == "8.0 kB"
    assert shown(model, requests.webp, model.COL_SAVED_SHARE) == "\u221280%"
    assert shown(model, requests.jpeg, model.COL_SAVED_SHARE) == "\u221275%"
    # Nothing done yet: no savings to speak of.
    assert shown(model, requests.avif, model.COL_SAVED_SHARE) == ""
    assert shown(model, requests.avif, model.COL_OUTPUT) == "AVIF q40"
    tip = str(shown(model, requests.webp, model.COL_OUTPUT, Qt.ItemDataRole.ToolTipRole))
    assert tip.startswith("WebP q60, always re-encode") or tip.startswith("WebP q60, keep")
    assert "retries use them" in tip
    saved_tip = str(shown(model, requests.webp, model.COL_SAVED, Qt.ItemDataRole.ToolTipRole))
    assert saved_tip == "10 kB downloaded, 2.0 kB stored as WebP: \u221280%"


def test_requests_sort_by_their_share_saved(
    requests: Requests, engine: Engine, qtmodeltester: ModelTester
) -> None:
    model = RequestsTableModel(requests.repo, engine)
    model.reload()
    qtmodeltester.check(model)
    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    proxy.sort(model.COL_SAVED_SHARE, Qt.SortOrder.DescendingOrder)
    order = [proxy.index(row, model.COL_NAME).data() for row in range(proxy.rowCount())]
    assert order == ["webp.csv", "jpeg.csv", "avif.csv"]  # -80 %, -75 %, nothing yet


def test_a_new_layout_shows_the_share_and_the_format_after_the_bytes_saved(
    qtbot: QtBot, requests: Requests, engine: Engine, tmp_path: Path
) -> None:
    model = RequestsTableModel(requests.repo, engine)
    model.reload()
    qsettings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    pane = RequestsPane(model, qsettings, [])
    qtbot.addWidget(pane)
    header = pane.horizontalHeader()
    titles = [
        model.headerData(header.logicalIndex(visual), Qt.Orientation.Horizontal)
        for visual in range(header.count())
    ]
    saved = titles.index("Saved")
    assert titles[saved : saved + 3] == ["Saved", "Saved %", "Output"]


def test_a_layout_saved_before_these_columns_existed_leaves_none_unpainted(
    qtbot: QtBot, requests: Requests, engine: Engine, tmp_path: Path
) -> None:
    # The requests table of imgdesk 0.1 had seven columns; its saved layout is still there.
    qsettings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    old = QTableView()
    qtbot.addWidget(old)
    old.setModel(QStandardItemModel(1, 7))
    old.horizontalHeader().setStretchLastSection(True)
    old.horizontalHeader().resizeSection(0, 300)
    qsettings.setValue("columns/requests", old.horizontalHeader().saveState())

    model = RequestsTableModel(requests.repo, engine)
    model.reload()
    pane = RequestsPane(model, qsettings, [])
    qtbot.addWidget(pane)
    pane.restore_state()
    header = pane.horizontalHeader()
    # Qt would restore it, leaving the new columns outside the painted length of the header.
    assert header.length() == sum(header.sectionSize(c) for c in range(header.count()))
    saved = header.visualIndex(model.COL_SAVED)
    assert header.logicalIndex(saved + 1) == model.COL_SAVED_SHARE


# -- the dashboard ------------------------------------------------------------------------------


def formats_table(dialog: DashboardDialog) -> dict[str, dict[str, str]]:
    view = dialog.findChild(QTableView, "formats")
    assert view is not None
    model = view.model()
    titles = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    return {
        model.index(r, 0).data(KEY_ROLE): {
            title: model.index(r, c).data() for c, title in enumerate(titles)
        }
        for r in range(model.rowCount())
    }


def test_the_dashboard_adds_up_the_savings_of_each_format(
    qtbot: QtBot, requests: Requests, qtmodeltester: ModelTester
) -> None:
    dialog = DashboardDialog(requests.repo)
    qtbot.addWidget(dialog)
    dialog.refresh()
    formats = formats_table(dialog)
    assert list(formats) == ["jpeg", "webp", "avif"]  # in the usual order, not by size
    assert formats["jpeg"] == {
        "Format": "JPEG",
        "Requests": "1",
        "Images done": "2",
        "Downloaded": "6.0 kB",
        "Stored": "1.5 kB",
        "Saved": "4.5 kB",
        "Saved %": "\u221275%",
    }
    assert (formats["webp"]["Saved"], formats["webp"]["Saved %"]) == ("8.0 kB", "\u221280%")
    # A format whose requests have nothing done yet: no figures, not zeros.
    assert formats["avif"]["Images done"] == "0"
    assert formats["avif"]["Saved"] == "\u2014" and formats["avif"]["Saved %"] == "\u2014"

    # Another WebP request adds to the WebP row.
    more = requests._request(
        "more.csv", OutputSettings(format="webp", quality=60), [(2000, 1000), (2000, 1000)]
    )
    assert more
    dialog.refresh()
    webp = formats_table(dialog)["webp"]
    assert (webp["Requests"], webp["Images done"], webp["Saved"]) == ("2", "4", "10 kB")
    assert webp["Saved %"] == "\u221271%"  # 10,000 of 14,000 bytes
    proxy = dialog.findChild(QTableView, "formats").model()  # type: ignore[union-attr]
    qtmodeltester.check(proxy.sourceModel())  # type: ignore[attr-defined]


def test_a_request_row_of_the_dashboard_names_its_output(qtbot: QtBot, requests: Requests) -> None:
    dialog = DashboardDialog(requests.repo)
    qtbot.addWidget(dialog)
    dialog.refresh()
    view = dialog.findChild(QTableView, "requests")
    assert view is not None
    model = view.model()
    titles = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    rows = {
        model.index(r, 0).data(KEY_ROLE): model.index(r, titles.index("Output")).data()
        for r in range(model.rowCount())
    }
    assert rows[requests.webp] == "WebP q60"
    assert rows[requests.avif] == "AVIF q40"


# -- the words ----------------------------------------------------------------------------------


def image(**changes: object) -> ImageInfo:
    values: dict[str, object] = dict.fromkeys(ImageInfo._fields)
    values.update(
        status="done",
        width=1200,
        height=800,
        input_bytes=400_000,
        output_bytes=100_000,
        output_format="webp",
    )
    values.update(changes)
    return ImageInfo(**values)  # type: ignore[arg-type]


def test_an_output_is_described_with_its_format_and_what_to_know() -> None:
    assert describe_output(image()) == (
        "1200 \u00d7 800 px \u00b7 100 kB WebP \u00b7 \u221275% (300 kB saved)"
    )
    kept = describe_output(image(output_format="jpeg", note="kept_original"))
    assert "100 kB JPEG" in kept and "the original kept, its metadata removed" in kept
    assert "over the target size" in describe_output(image(note="over_target"))
    assert format_name("avif") == "AVIF" and format_name(None) == ""


def test_a_running_request_row_shows_its_speed_over_active_time_and_the_time_left(
    requests: Requests, engine: Engine
) -> None:
    # The JPEG request: 2 of its 3 images done in 4 s of active time, still running.
    db.execute_sql(
        "UPDATE request SET status = 'processing', started_at = 1, active_s = 4.0 WHERE id = ?",
        [requests.jpeg],
    )
    # The WebP one finished in 0.2 s (all from a cache, say): no speed worth showing.
    db.execute_sql(
        "UPDATE request SET status = 'completed', started_at = 1, active_s = 0.2 WHERE id = ?",
        [requests.webp],
    )
    model = RequestsTableModel(requests.repo, engine)
    model.reload()
    assert shown(model, requests.jpeg, model.COL_SPEED) == "0.5 images/s"
    assert shown(model, requests.jpeg, model.COL_TIME_LEFT) == "a few seconds left"
    assert shown(model, requests.webp, model.COL_SPEED) == ""
    assert shown(model, requests.webp, model.COL_TIME_LEFT) == ""
    engine.pause()  # the model reads it from the engine
    assert shown(model, requests.jpeg, model.COL_SPEED) == ""  # paused: no figure
