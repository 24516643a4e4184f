"""The comparison at 100 %: pixel for pixel, zoom and pan in step, the slider, and the window.

The dialog is driven with real mouse, wheel and key events and checked on what it paints; the
window tests run the real engine against a local server and open the comparison from the
preview the way a user does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QWheelEvent
from PySide6.QtWidgets import QApplication, QLabel, QPushButton, QToolButton
from pytestqt.qtbot import QtBot

from imgdesk.core.output import OutputSettings
from imgdesk.engine.engine import Engine
from imgdesk.gui import image_loading
from imgdesk.gui.compare import CompareDialog, CompareMode, Side, ZoomView
from imgdesk.gui.main_window import MainWindow
from tests.gui.conftest import write_csv
from tests.httpservers import HttpTestServer, respond, sequence
from tests.images import make_jpeg

pytestmark = pytest.mark.timeout(60)

WAIT_MS = 15_000
WIDTH, HEIGHT = 1800, 1300  # larger than the views, so 100 % fills them


def pattern(width: int, height: int, salt: int = 0) -> QImage:
    """A picture whose every pixel says where it is (no two neighbours alike)."""
    # Red (x + salt) % 251, green (y + salt) % 241, blue (7x + 3y + salt) % 256, built a
    # channel at a time with bytes operations (no per-pixel Python loop).
    red = bytes((x + salt) % 251 for x in range(width)) * height
    green = b"".join(bytes([(y + salt) % 241]) * width for y in range(height))
    blue_row = bytes((7 * x) % 256 for x in range(width))
    blue = b"".join(
        blue_row.translate(bytes((i + 3 * y + salt) % 256 for i in range(256)))
        for y in range(height)
    )
    channels = [Image.frombytes("L", (width, height), data) for data in (red, green, blue)]
    pixels = Image.merge("RGB", channels).tobytes()
    image = QImage(pixels, width, height, 3 * width, QImage.Format.Format_RGB888)
    return image.copy()


def halves(width: int, height: int) -> QImage:
    """Red on the left half, blue on the right."""
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor("#ff0000"))
    painter = QPainter(image)
    painter.fillRect(width // 2, 0, width - width // 2, height, QColor("#0000ff"))
    painter.end()
    return image


@pytest.fixture
def dialog(qtbot: QtBot) -> CompareDialog:
    """A shown comparison of two different patterns of the same size."""
    window = CompareDialog("Shirt \u00b7 image 1", QSize(WIDTH, HEIGHT))
    qtbot.addWidget(window)
    window.resize(1200, 700)
    window.set_side(Side.BEFORE, pattern(WIDTH, HEIGHT), "1800 \u00d7 1300 px \u00b7 2.1 MB JPEG")
    window.set_side(Side.AFTER, pattern(WIDTH, HEIGHT, 99), "1800 \u00d7 1300 px \u00b7 90 kB WebP")
    window.show()
    qtbot.waitExposed(window)
    return window


def painted(view: ZoomView) -> QImage:
    return view.grab().toImage()


def content_at(dialog: CompareDialog, point: QPoint) -> tuple[int, int]:
    """The picture pixel the views paint at ``point`` (view coordinates)."""
    origin, scale = dialog.state.origin(), dialog.state.scale()
    return int((point.x() - origin.x()) // scale), int((point.y() - origin.y()) // scale)


def assert_shows(view: ZoomView, point: QPoint, image: QImage, pixel: tuple[int, int]) -> None:
    shown = painted(view).pixelColor(point)
    expected = image.pixelColor(*pixel)
    assert shown.rgb() == expected.rgb(), (point, pixel, shown.name(), expected.name())


def button(dialog: CompareDialog, name: str) -> QToolButton:
    found = dialog.findChild(QToolButton, name)
    assert found is not None, name
    return found


def zoom_text(dialog: CompareDialog) -> str:
    found = dialog.findChild(QLabel, "zoom")
    assert found is not None
    return found.text()


def wheel(view: ZoomView, point: QPoint, notches: int) -> None:
    event = QWheelEvent(
        QPointF(point),
        QPointF(view.mapToGlobal(point)),
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.ControlModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view, event)


# -- the dialog ---------------------------------------------------------------------------------


def test_it_opens_at_100_percent_one_picture_pixel_on_one_screen_pixel(
    dialog: CompareDialog,
) -> None:
    assert zoom_text(dialog) == "100 %"
    assert dialog.state.zoom == 1.0
    before, after = dialog.view("before_view"), dialog.view("after_view")
    assert before.size() == after.size()
    for point in (QPoint(5, 5), QPoint(before.width() // 2, before.height() // 2), QPoint(6, 5)):
        pixel = content_at(dialog, point)
        assert_shows(before, point, dialog.image(Side.BEFORE), pixel)  # type: ignore[arg-type]
        assert_shows(after, point, dialog.image(Side.AFTER), pixel)  # type: ignore[arg-type]
    # It opens on the middle of the picture.
    middle = content_at(dialog, QPoint(before.width() // 2, before.height() // 2))
    assert abs(middle[0] - WIDTH // 2) <= 1 and abs(middle[1] - HEIGHT // 2) <= 1
    # Neighbouring screen pixels show neighbouring picture pixels: nothing is scaled.
    assert content_at(dialog, QPoint(6, 5))[0] == content_at(dialog, QPoint(5, 5))[0] + 1
    captions = {side: dialog.findChild(QLabel, f"{side.name.lower()}_facts") for side in Side}
    assert "2.1 MB JPEG" in captions[Side.BEFORE].text()  # type: ignore[union-attr]
    assert "90 kB WebP" in captions[Side.AFTER].text()  # type: ignore[union-attr]


def test_keys_and_buttons_zoom_and_0_returns_to_100_percent(
    qtbot: QtBot, dialog: CompareDialog
) -> None:
    view = dialog.view("after_view")
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Plus)
    assert dialog.state.zoom == 1.5 and zoom_text(dialog) == "150 %"
    qtbot.keyClick(view, Qt.Key.Key_Minus)
    qtbot.keyClick(view, Qt.Key.Key_Minus)
    assert dialog.state.zoom == pytest.approx(2 / 3)
    qtbot.keyClick(view, Qt.Key.Key_0)
    assert dialog.state.zoom == 1.0
    qtbot.keyClick(view, Qt.Key.Key_F)
    fit = dialog.state.zoom
    assert fit < 1.0  # the whole 1800 x 1300 picture in a view of about 590 x 560
    assert WIDTH * fit <= view.width() + 1 and HEIGHT * fit <= view.height() + 1

    qtbot.mouseClick(button(dialog, "actual_size"), Qt.MouseButton.LeftButton)
    assert dialog.state.zoom == 1.0
    qtbot.mouseClick(button(dialog, "zoom_in"), Qt.MouseButton.LeftButton)
    assert dialog.state.zoom == 1.5
    qtbot.mouseClick(button(dialog, "zoom_out"), Qt.MouseButton.LeftButton)
    assert dialog.state.zoom == 1.0
    qtbot.mouseClick(button(dialog, "fit"), Qt.MouseButton.LeftButton)
    assert dialog.state.zoom == fit


def test_the_wheel_zooms_about_the_pointer_in_both_views_at_once(dialog: CompareDialog) -> None:
    before, after = dialog.view("before_view"), dialog.view("after_view")
    pointer = QPoint(120, 90)
    under = content_at(dialog, pointer)
    wheel(after, pointer, 3)
    assert dialog.state.zoom == pytest.approx(1.25**3)
    assert zoom_text(dialog) == "195 %"
    # The picture pixel under the pointer stays there (within the rounding of a screen pixel
    # to a whole one), in the other view too.
    now = content_at(dialog, pointer)
    assert abs(now[0] - under[0]) <= 1 and abs(now[1] - under[1]) <= 1
    assert_shows(before, pointer, dialog.image(Side.BEFORE), now)  # type: ignore[arg-type]
    assert_shows(after, pointer, dialog.image(Side.AFTER), now)  # type: ignore[arg-type]
    wheel(before, pointer, -3)
    assert dialog.state.zoom == pytest.approx(1.0)


def test_dragging_one_view_moves_both(qtbot: QtBot, dialog: CompareDialog) -> None:
    before, after = dialog.view("before_view"), dialog.view("after_view")
    middle = QPoint(before.width() // 2, before.height() // 2)
    shown_before = content_at(dialog, middle)
    qtbot.mousePress(before, Qt.MouseButton.LeftButton, pos=middle)
    qtbot.mouseMove(before, middle + QPoint(-60, -40))
    qtbot.mouseMove(before, middle + QPoint(-150, -100))
    qtbot.mouseRelease(before, Qt.MouseButton.LeftButton, pos=middle + QPoint(-150, -100))
    # The picture followed the mouse: 150 x 100 pixels further right and down are in the middle.
    assert content_at(dialog, middle) == (shown_before[0] + 150, shown_before[1] + 100)
    assert_shows(after, middle, dialog.image(Side.AFTER), content_at(dialog, middle))  # type: ignore[arg-type]


def test_arrow_keys_move_the_picture(qtbot: QtBot, dialog: CompareDialog) -> None:
    view = dialog.view("before_view")
    view.setFocus()
    center = dialog.state.center
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert dialog.state.center.x() > center.x()
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert dialog.state.center.y() > center.y()


def test_the_picture_cannot_be_dragged_out_of_sight(qtbot: QtBot, dialog: CompareDialog) -> None:
    view = dialog.view("before_view")
    for _ in range(3):
        qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(10, 10))
        qtbot.mouseMove(view, QPoint(view.width() - 10, view.height() - 10))
        qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(view.width() - 10, 10))
    # The top-left corner of the picture stops at the top-left corner of the view.
    assert content_at(dialog, QPoint(0, 0)) == (0, 0)
    assert_shows(view, QPoint(0, 0), dialog.image(Side.BEFORE), (0, 0))  # type: ignore[arg-type]


def test_the_slider_shows_the_original_left_and_the_output_right(
    qtbot: QtBot, dialog: CompareDialog
) -> None:
    dialog.state.set_zoom(2.0)
    qtbot.mouseClick(button(dialog, "slider"), Qt.MouseButton.LeftButton)
    assert dialog.mode() == CompareMode.SLIDER
    view = dialog.view("slider_view")
    qtbot.waitExposed(view)
    assert dialog.state.zoom == 2.0  # the zoom and the place are kept
    line = round(view.split * view.width())  # type: ignore[operator]
    left, right = QPoint(line - 40, 50), QPoint(line + 40, 50)
    assert_shows(view, left, dialog.image(Side.BEFORE), content_at(dialog, left))  # type: ignore[arg-type]
    assert_shows(view, right, dialog.image(Side.AFTER), content_at(dialog, right))  # type: ignore[arg-type]

    # The line is dragged, not the picture.
    center = dialog.state.center
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(line, 200))
    qtbot.mouseMove(view, QPoint(line // 2, 200))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(line // 2, 200))
    assert view.split == pytest.approx(0.25, abs=0.01)
    assert dialog.state.center == center
    # What was left of the line is now the output.
    assert_shows(view, left, dialog.image(Side.AFTER), content_at(dialog, left))  # type: ignore[arg-type]

    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert view.split == pytest.approx(0.30, abs=0.01)
    qtbot.mouseClick(button(dialog, "side_by_side"), Qt.MouseButton.LeftButton)
    assert dialog.mode() == CompareMode.SIDE_BY_SIDE


def test_a_side_without_its_picture_says_why(qtbot: QtBot) -> None:
    window = CompareDialog("Mug \u00b7 image 2", QSize(400, 300))
    qtbot.addWidget(window)
    window.set_side(Side.AFTER, halves(400, 300), "400 \u00d7 300 px \u00b7 9 kB JPEG")
    reason = "The original cannot be shown: The server answered HTTP 404."
    window.set_side(Side.BEFORE, None, "12 kB image/jpeg", reason)
    window.resize(1200, 800)  # room for the whole picture in each view
    window.show()
    qtbot.waitExposed(window)
    assert window.view("before_view").message(Side.BEFORE) == reason
    assert window.view("slider_view").message(Side.BEFORE) == reason
    assert window.view("after_view").message(Side.AFTER) == ""
    after = window.view("after_view")
    origin = window.state.origin()
    point = QPoint(int(origin.x()) + 300, int(origin.y()) + 150)
    assert painted(after).pixelColor(point).name() == "#0000ff"


def test_an_original_of_another_size_covers_the_same_part(qtbot: QtBot) -> None:
    # The output was scaled down to half: the original is drawn over the output's area.
    window = CompareDialog("Cap \u00b7 image 1", QSize(400, 300))
    qtbot.addWidget(window)
    window.set_side(Side.BEFORE, halves(800, 600), "800 \u00d7 600 px")
    window.set_side(Side.AFTER, halves(400, 300), "400 \u00d7 300 px")
    window.resize(1200, 800)  # room for the whole picture in each view
    window.show()
    qtbot.waitExposed(window)
    note = window.findChild(QLabel, "size_note")
    assert note is not None and note.isVisible() and "800 \u00d7 600" in note.text()
    before, after = window.view("before_view"), window.view("after_view")
    origin = window.state.origin()
    for x, color in ((100, "#ff0000"), (300, "#0000ff")):
        point = QPoint(int(origin.x()) + x, int(origin.y()) + 150)
        assert painted(before).pixelColor(point).name() == color
        assert painted(after).pixelColor(point).name() == color


# -- from the window ----------------------------------------------------------------------------


def finish(qtbot: QtBot, window: MainWindow, engine: Engine, csv_path: Path) -> str:
    """Load a CSV in the window, wait for its request, select its first image."""
    with qtbot.waitSignal(engine.request_finished, timeout=WAIT_MS) as blocker:
        window.load_files([csv_path])
    request_id, status = blocker.args
    assert status == "completed"
    qtbot.waitUntil(
        lambda: (
            bool(window.images_model.images())
            and all(image.status == "done" for image in window.images_model.images())
        ),
        timeout=WAIT_MS,
    )
    window.images_pane.view.selectRow(0)
    return str(request_id)


def opened_comparison(qtbot: QtBot, window: MainWindow) -> CompareDialog:
    qtbot.waitUntil(lambda: len(window.findChildren(CompareDialog)) == 1, timeout=WAIT_MS)
    dialog = window.findChildren(CompareDialog)[0]
    assert dialog.isVisible()
    return dialog


@pytest.fixture
def decoding_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[threading.Thread]]:
    """The threads every preview decode ran on (the real decoders, only watched)."""
    threads: list[threading.Thread] = []

    def watched(decode: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            threads.append(threading.current_thread())
            return decode(*args)

        return run

    for name in ("decode_file", "_decode_bytes"):
        monkeypatch.setattr(image_loading, name, watched(getattr(image_loading, name)))
    yield threads


def test_compare_at_100_shows_both_pictures_at_full_size_decoded_off_the_gui_thread(
    qtbot: QtBot,
    make_window: Callable[..., MainWindow],
    engine: Engine,
    server: HttpTestServer,
    tmp_path: Path,
    decoding_threads: list[threading.Thread],
) -> None:
    window = make_window(compare_original=True)
    url = server.route(
        "/big.jpg", respond(make_jpeg(1600, 1200, "photo", 95), content_type="image/jpeg")
    )
    finish(qtbot, window, engine, write_csv(tmp_path / "big.csv", [("1", "Sofa", [url])]))
    preview = window.images_pane.preview
    qtbot.waitUntil(preview.original_box().has_image, timeout=WAIT_MS)
    assert server.hits("/big.jpg") == 2  # the engine, then the preview (scaled down)

    compare = preview.findChild(QPushButton, "compare_at_100")
    assert compare is not None and compare.isVisible() and compare.isEnabled()
    qtbot.mouseClick(compare, Qt.MouseButton.LeftButton)
    dialog = opened_comparison(qtbot, window)
    qtbot.waitUntil(
        lambda: dialog.image(Side.BEFORE) is not None and dialog.image(Side.AFTER) is not None,
        timeout=WAIT_MS,
    )
    before, after = dialog.image(Side.BEFORE), dialog.image(Side.AFTER)
    assert before is not None and before.size() == QSize(1600, 1200)  # not the preview's 900
    assert after is not None and after.size() == QSize(1600, 1200)
    assert server.hits("/big.jpg") == 2  # the bytes of the preview's download, reused
    captions = " ".join(label.text() for label in dialog.findChildren(QLabel))
    assert "1600 \u00d7 1200 px" in captions and "JPEG" in captions and "saved" in captions
    assert decoding_threads and threading.main_thread() not in decoding_threads

    dialog.close()
    qtbot.waitUntil(lambda: not window.findChildren(CompareDialog), timeout=WAIT_MS)


def test_a_double_click_on_either_picture_opens_the_comparison(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    server: HttpTestServer,
    tmp_path: Path,
) -> None:
    url = server.route(
        "/mug.jpg", respond(make_jpeg(300, 200, "photo", 95), content_type="image/jpeg")
    )
    finish(qtbot, window, engine, write_csv(tmp_path / "mug.csv", [("1", "Mug", [url])]))
    preview = window.images_pane.preview
    qtbot.waitUntil(preview.output_box().has_image, timeout=WAIT_MS)
    for box in (preview.output_box(), preview.original_box()):
        qtbot.mouseDClick(box, Qt.MouseButton.LeftButton)
        dialog = opened_comparison(qtbot, window)  # one at a time: the first one was closed
        qtbot.waitUntil(lambda d=dialog: d.image(Side.AFTER) is not None, timeout=WAIT_MS)
    dialog.close()


def test_a_failed_original_download_is_a_sentence_in_the_comparison(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    server: HttpTestServer,
    tmp_path: Path,
) -> None:
    # The engine gets the picture; when the comparison asks again, the server says 404.
    jpeg = respond(make_jpeg(320, 240, "photo", 95), content_type="image/jpeg")
    url = server.route("/gone.jpg", sequence(jpeg, respond(b"gone", 404)))
    finish(qtbot, window, engine, write_csv(tmp_path / "gone.csv", [("1", "Lamp", [url])]))
    dialog = window.images_pane.preview.open_comparison()
    assert dialog is not None
    qtbot.waitUntil(
        lambda: dialog.view("before_view").message(Side.BEFORE).startswith("The original cannot"),
        timeout=WAIT_MS,
    )
    assert "404" in dialog.view("before_view").message(Side.BEFORE)
    qtbot.waitUntil(lambda: dialog.image(Side.AFTER) is not None, timeout=WAIT_MS)
    dialog.close()


def test_avif_outputs_show_in_the_preview_and_the_comparison(
    qtbot: QtBot,
    window: MainWindow,
    engine: Engine,
    server: HttpTestServer,
    tmp_path: Path,
) -> None:
    # Qt cannot decode AVIF: imgdesk's own AVIF outputs are decoded by Pillow.
    engine.save_settings(engine.settings.replace(output=OutputSettings(format="avif")))
    url = server.route(
        "/tee.jpg", respond(make_jpeg(400, 300, "photo", 95), content_type="image/jpeg")
    )
    finish(qtbot, window, engine, write_csv(tmp_path / "tee.csv", [("1", "Tee", [url])]))
    assert window.images_model.images()[0].output_format == "avif"
    preview = window.images_pane.preview
    qtbot.waitUntil(preview.output_box().has_image, timeout=WAIT_MS)
    assert any("AVIF" in label.text() for label in preview.findChildren(QLabel))
    dialog = preview.open_comparison()
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.image(Side.AFTER) is not None, timeout=WAIT_MS)
    assert dialog.image(Side.AFTER).size() == QSize(400, 300)  # type: ignore[union-attr]
    dialog.close()
