"""The window's state keys: every one a ShownState member, each with its words."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.errors import ErrorCode
from imgdesk.core.repository import Repository
from imgdesk.core.states import ImageStatus, RequestStatus, ShownState, shown_state
from imgdesk.engine.engine import Engine
from imgdesk.gui.images_model import ImagesTableModel
from imgdesk.gui.models import STATE_LABELS, STATE_ROLE, RequestsTableModel, image_state

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _application(qapp: object) -> None:
    """The models run timers, which need the application (and its event dispatcher)."""


def make_request(repository: Repository, images: int, name: str) -> str:
    lines = ["S. No.,Product Name,Input Image Urls"]
    lines += [f"{i + 1},Product {i + 1},https://cdn.example/{name}/{i}.jpg" for i in range(images)]
    return repository.create_request(parse_catalogue("\n".join(lines).encode(), name), Path(name))


def test_every_stored_state_is_shown_as_itself() -> None:
    for status in (*RequestStatus, *ImageStatus):
        assert shown_state(status) is ShownState(status.value)
    with pytest.raises(KeyError):
        shown_state("no such state")


def test_every_shown_state_has_its_words() -> None:
    assert set(STATE_LABELS) == set(ShownState)


def test_the_images_model_keys_each_image_by_its_shown_state(repository: Repository) -> None:
    request_id = make_request(repository, 7, "images.csv")
    ids = [image.id for image in repository.list_images(request_id)]
    repository.update_images(
        {
            ids[0]: {"status": ImageStatus.DONE, "attempts": 1},
            ids[1]: {"status": ImageStatus.FAILED, "error_code": "http_404", "error": "Gone."},
            ids[2]: {"status": ImageStatus.FAILED, "error_code": ErrorCode.CANCELLED},
            ids[3]: {"status": ImageStatus.PENDING, "error_code": ErrorCode.TIMEOUT},
            ids[4]: {"status": ImageStatus.DOWNLOADING, "attempts": 1},
            ids[5]: {"status": ImageStatus.COMPRESSING, "attempts": 1},
        }
    )
    expected = [
        ShownState.DONE,
        ShownState.FAILED,
        ShownState.CANCELLED,
        ShownState.RETRYING,
        ShownState.DOWNLOADING,
        ShownState.COMPRESSING,
        ShownState.PENDING,
    ]
    images = repository.list_images(request_id)
    states = [image_state(image) for image in images]
    assert states == expected
    assert all(type(state) is ShownState for state in states)

    model = ImagesTableModel(repository)
    model.set_request(request_id)
    shown = [model.index(row, model.COL_STATE).data(STATE_ROLE) for row in range(len(images))]
    assert shown == expected


def test_the_requests_model_keys_each_request_by_its_shown_state(
    repository: Repository, engine: Engine
) -> None:
    # A request held for disk space needs a real full disk: see test_held_state.py.
    queued = make_request(repository, 1, "queued.csv")
    completed = make_request(repository, 1, "completed.csv")
    repository.set_request_status(completed, RequestStatus.COMPLETED)
    with_failures = make_request(repository, 2, "with_failures.csv")
    first, second = (image.id for image in repository.list_images(with_failures))
    repository.update_images(
        {
            first: {"status": ImageStatus.DONE, "attempts": 1},
            second: {"status": ImageStatus.FAILED, "error_code": "http_404", "error": "Gone."},
        }
    )
    repository.set_request_status(with_failures, RequestStatus.FAILED)
    cancelled = make_request(repository, 1, "cancelled.csv")
    repository.fail_unfinished(cancelled, ErrorCode.CANCELLED, "Cancelled.")
    repository.set_request_status(cancelled, RequestStatus.FAILED)

    model = RequestsTableModel(repository, engine)
    model.reload()

    def states() -> dict[str, ShownState]:
        return {request.id: model.state_of(request) for request in model.requests()}

    assert states() == {
        queued: ShownState.QUEUED,
        completed: ShownState.COMPLETED,
        with_failures: ShownState.FINISHED_WITH_FAILURES,
        cancelled: ShownState.CANCELLED,
    }
    assert all(type(state) is ShownState for state in states().values())
    engine.pause()  # the model reads it from the engine
    assert states()[queued] is ShownState.PAUSED
    assert states()[completed] is ShownState.COMPLETED
    row = model.row_of(queued)
    assert row is not None
    assert model.index(row, model.COL_STATE).data(STATE_ROLE) == ShownState.PAUSED
