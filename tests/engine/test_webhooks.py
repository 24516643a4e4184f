"""Webhook delivery on qasync's loop: retries, backoff, 410, redirects, restarts.

Every test posts to a real receiver on 127.0.0.1 and stores into a real SQLite file. Time
is a fake clock whose ``sleep`` moves it forward, so backoffs of seconds take no time;
signatures are verified with hmac in :func:`tests.core.test_webhook.expected_signature`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import qasync
from pytest_httpserver import HTTPServer
from werkzeug import Response

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.db import db, open_database
from imgdesk.core.outbox import FAILED, PENDING, AttemptInfo, DeliveryInfo, Outbox
from imgdesk.core.repository import Repository, RequestInfo
from imgdesk.core.settings import Settings
from imgdesk.core.webhook import DELIVERED, build_payload, encode_body, url_origin
from imgdesk.engine.webhooks import AttemptReport, WebhookSender
from tests.core.test_webhook import (
    WHSEC,
    Receiver,
    closed_port_url,
    expected_signature,
    finished_request,
)
from tests.httpservers import Exchange, HttpTestServer

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]


class FakeTime:
    """A clock that only moves when the sender sleeps, and a record of those sleeps."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def receiver(server: HTTPServer) -> Iterator[Receiver]:
    server.clear()
    yield Receiver(server)
    server.clear()


@pytest.fixture
def db_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "db.sqlite3"
    open_database(path)
    yield path
    db.close()


@pytest.fixture
def loop(qapp: Any) -> Iterator[qasync.QEventLoop]:
    """qasync's loop on the test QApplication, as the window and the CLI run it."""
    event_loop = qasync.QEventLoop(qapp)
    yield event_loop
    event_loop.close()
    del event_loop
    # Collect the loop's Qt timers here, on their own thread: left to the garbage collector,
    # they may die on a worker thread, which Qt reports as a warning.
    gc.collect()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def run(loop: qasync.QEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    result: T = loop.run_until_complete(coro)
    return result


def make_sender(
    fake_time: FakeTime, outbox: Outbox | None = None, **settings: Any
) -> tuple[WebhookSender, list[AttemptInfo], list[DeliveryInfo]]:
    sender = WebhookSender(
        outbox or Outbox(), Settings(**settings), clock=fake_time.clock, sleep=fake_time.sleep
    )
    attempts: list[AttemptInfo] = []
    finished: list[DeliveryInfo] = []
    sender.attempt_recorded.connect(lambda report: attempts.append(report.attempt))
    sender.delivery_finished.connect(finished.append)
    return sender, attempts, finished


def deliver(loop: qasync.QEventLoop, sender: WebhookSender, request: RequestInfo) -> str | None:
    async def go() -> str | None:
        delivery_id = sender.request_finished(request)
        assert await sender.drain(timeout=30)
        return delivery_id

    return run(loop, go())


# -- the SPEC 5 scenarios -------------------------------------------------------------------


def test_success_on_the_first_try(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver, fake_time: FakeTime
) -> None:
    sender, attempts, finished = make_sender(
        fake_time, webhook_url=receiver.url(), webhook_secret="plain secret"
    )
    request = finished_request()
    delivery_id = deliver(loop, sender, request)

    [got] = receiver.posts()
    assert got.headers["webhook-id"] == delivery_id
    assert got.headers["webhook-timestamp"] == str(int(fake_time.now))
    assert got.headers["webhook-signature"] == expected_signature("plain secret", got)
    assert json.loads(got.body) == {
        "event": "request.completed",
        "request_id": request.id,
        "status": "completed",
        "csv_name": "products.csv",
        "total_images": 10,
        "succeeded": 10,
        "failed": 0,
        "created_at": "2023-11-14T22:13:20Z",
        "finished_at": "2023-11-14T22:13:30Z",
        "output_csv": "file:///exports/products-output.csv",
    }
    assert [a.status_code for a in attempts] == [200]
    assert [(d.id, d.status) for d in finished] == [(delivery_id, DELIVERED)]
    assert fake_time.sleeps == []


def test_500_500_200_is_three_attempts_of_the_same_signed_event(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver, fake_time: FakeTime
) -> None:
    receiver.answer(Response("boom", 500), Response("boom", 500))
    sender, attempts, finished = make_sender(
        fake_time, webhook_url=receiver.url(), webhook_secret=WHSEC
    )
    delivery_id = deliver(loop, sender, finished_request())

    posts = receiver.posts()
    assert len(posts) == 3
    assert {p.headers["webhook-id"] for p in posts} == {delivery_id}
    assert len({p.body for p in posts}) == 1, "every attempt sends the same bytes"
    for post in posts:
        assert post.headers["webhook-signature"] == expected_signature(WHSEC, post)
    stamps = [int(p.headers["webhook-timestamp"]) for p in posts]
    assert stamps == sorted(stamps) and stamps[0] < stamps[2], "each attempt is stamped anew"

    # Default schedule: first retry after 1 s, then 2 s, each with up to +50 % jitter.
    assert len(fake_time.sleeps) == 2
    assert 1.0 <= fake_time.sleeps[0] <= 1.5
    assert 2.0 <= fake_time.sleeps[1] <= 3.0
    assert [a.status_code for a in attempts] == [500, 500, 200]
    assert attempts[0].response_excerpt == "boom"
    [delivery] = Outbox().list_deliveries("req-1")
    assert (delivery.status, delivery.attempts) == (DELIVERED, 3)
    assert [a.status_code for a in delivery.history] == [500, 500, 200]
    assert [d.status for d in finished] == [DELIVERED]


def test_a_redirect_fails_and_is_never_followed(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver, fake_time: FakeTime
) -> None:
    moved = {"Location": receiver.url("/elsewhere")}
    receiver.answer(Response("", 302, headers=moved), Response("", 302, headers=moved))
    sender, _, finished = make_sender(fake_time, webhook_url=receiver.url(), webhook_retries=1)
    deliver(loop, sender, finished_request())

    assert len(receiver.posts()) == 2
    assert receiver.posts("/elsewhere") == []
    assert [(d.status, d.attempts) for d in finished] == [(FAILED, 2)]
    assert "not followed" in (finished[0].last_error or "")


def test_410_stops_at_once(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver, fake_time: FakeTime
) -> None:
    receiver.answer(Response("gone", 410))
    sender, attempts, finished = make_sender(fake_time, webhook_url=receiver.url())
    deliver(loop, sender, finished_request())

    assert len(receiver.posts()) == 1
    assert [a.status_code for a in attempts] == [410]
    assert [(d.status, d.attempts) for d in finished] == [(FAILED, 1)]


def test_a_receiver_that_is_down_never_touches_the_request(
    loop: qasync.QEventLoop, db_path: Path, fake_time: FakeTime
) -> None:
    repo = Repository()
    catalogue = parse_catalogue(
        b"S. No.,Product Name,Input Image Urls\n1,Mug,http://127.0.0.1:9/a.jpg\n", "mugs.csv"
    )
    request_id = repo.create_request(catalogue, webhook_url=closed_port_url())
    repo.set_request_status(request_id, "completed")
    before = repo.get_request(request_id)
    assert before is not None
    sender, attempts, finished = make_sender(fake_time)  # the request's own URL applies

    deliver(loop, sender, before)

    assert repo.get_request(request_id) == before
    assert len(attempts) == 4, "1 try + 3 retries by default"
    assert all(a.status_code is None and "refused" in (a.error or "") for a in attempts)
    [delivery] = Outbox().list_deliveries(request_id)
    assert (delivery.status, len(delivery.history)) == (FAILED, 4)
    assert finished == [dataclasses.replace(delivery, history=())]


def test_retry_after_is_honoured_up_to_the_cap(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver, fake_time: FakeTime
) -> None:
    receiver.answer(
        Response("", 503, headers={"Retry-After": "3"}),
        Response("", 429, headers={"Retry-After": "86400"}),
    )
    sender, _, _ = make_sender(fake_time, webhook_url=receiver.url(), retry_after_cap_s=30.0)
    deliver(loop, sender, finished_request())
    assert fake_time.sleeps == [3.0, 30.0]
    assert len(receiver.posts()) == 3


@pytest.mark.parametrize("secret", [WHSEC, "correct horse battery staple"], ids=["whsec", "plain"])
def test_both_secret_forms_sign_verifiably(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver, fake_time: FakeTime, secret: str
) -> None:
    sender, _, _ = make_sender(fake_time)
    request = finished_request(webhook_url=receiver.url(), webhook_secret=secret)
    deliver(loop, sender, request)
    [got] = receiver.posts()
    assert got.headers["webhook-signature"] == expected_signature(secret, got)


def test_killed_while_waiting_to_retry_is_delivered_exactly_once_after_restart(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver
) -> None:
    receiver.answer(Response("down for maintenance", 500))
    request = finished_request(webhook_url=receiver.url(), webhook_secret=WHSEC)
    script = KILLED_SENDER.format(db=str(db_path), request=json.dumps(dataclasses.asdict(request)))
    with subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "attempt 500"
        waiting = Outbox().pending()
        assert [(d.attempts, d.next_attempt_at > time.time() + 60) for d in waiting] == [
            (1, True)
        ], "the child is now asleep in a long backoff"
        child.kill()
    assert len(receiver.posts()) == 1

    # A fresh run, long after the backoff was due.
    later = FakeTime(start=time.time() + 3600)
    sender, attempts, finished = make_sender(later)
    assert run(loop, resume_and_drain(sender)) == 1
    posts = receiver.posts()
    assert len(posts) == 2
    assert posts[0].headers["webhook-id"] == posts[1].headers["webhook-id"] == waiting[0].id
    assert posts[0].body == posts[1].body
    assert posts[1].headers["webhook-signature"] == expected_signature(WHSEC, posts[1])
    assert [a.status_code for a in attempts] == [200]
    assert [d.status for d in finished] == [DELIVERED]

    # And never again: another restart finds nothing owed.
    again, _, _ = make_sender(later)
    assert run(loop, resume_and_drain(again)) == 0
    assert len(receiver.posts()) == 2


KILLED_SENDER = """
import asyncio
import json
from pathlib import Path

import qasync
from PySide6.QtCore import QCoreApplication

from imgdesk.core.db import db, open_database
from imgdesk.core.outbox import Outbox
from imgdesk.core.repository import RequestInfo
from imgdesk.core.settings import Settings
from imgdesk.engine.webhooks import WebhookSender

open_database(Path({db!r}))
app = QCoreApplication([])
# A ten-minute first delay: the process is sure to be asleep in it when it is killed.
sender = WebhookSender(Outbox(), Settings(webhook_first_delay_ms=600_000))
sender.attempt_recorded.connect(lambda r: print("attempt", r.attempt.status_code, flush=True))


async def main():
    sender.request_finished(RequestInfo(**json.loads({request!r})))
    await sender.drain()


with qasync.QEventLoop(app) as loop:
    loop.run_until_complete(main())
"""


async def first_attempt(sender: WebhookSender) -> AttemptInfo:
    """Wait until the sender has recorded an attempt (it then sleeps towards the retry)."""
    recorded: asyncio.Future[AttemptInfo] = asyncio.get_running_loop().create_future()
    sender.attempt_recorded.connect(
        lambda report: recorded.done() or recorded.set_result(report.attempt)
    )
    return await asyncio.wait_for(recorded, timeout=10)


async def resume_and_drain(sender: WebhookSender) -> int:
    resumed = sender.start()
    assert await sender.drain(timeout=30)
    return resumed


# -- the rest of the sender's contract ------------------------------------------------------


def test_no_url_means_no_event(loop: qasync.QEventLoop, db_path: Path, fake_time: FakeTime) -> None:
    sender, _, _ = make_sender(fake_time)
    assert deliver(loop, sender, finished_request()) is None
    assert Outbox().pending_count() == 0


def test_the_request_url_wins_over_the_global_one(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver, fake_time: FakeTime
) -> None:
    sender, _, _ = make_sender(fake_time, webhook_url=closed_port_url())
    deliver(loop, sender, finished_request(webhook_url=receiver.url()))
    assert len(receiver.posts()) == 1


def test_each_finish_is_its_own_event(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver, fake_time: FakeTime
) -> None:
    sender, _, _ = make_sender(fake_time, webhook_url=receiver.url())
    first = deliver(loop, sender, finished_request(status="failed", failed=2, done=8))
    second = deliver(loop, sender, finished_request())  # after `imgdesk retry`
    assert first != second
    events = [json.loads(p.body)["event"] for p in receiver.posts()]
    assert events == ["request.failed", "request.completed"]


def test_redeliver_sends_the_same_event_again(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver, fake_time: FakeTime
) -> None:
    sender, _, finished = make_sender(fake_time, webhook_url=receiver.url())
    delivery_id = deliver(loop, sender, finished_request())
    assert delivery_id is not None

    async def redeliver() -> None:
        assert sender.redeliver(delivery_id) is not None
        assert await sender.drain(timeout=30)

    run(loop, redeliver())
    first, second = receiver.posts()
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery_id
    assert first.body == second.body
    assert [d.status for d in finished] == [DELIVERED, DELIVERED]
    [delivery] = Outbox().list_deliveries("req-1")
    assert len(delivery.history) == 2


def test_redeliver_wakes_a_delivery_that_waits_for_its_retry(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver
) -> None:
    receiver.answer(Response("", 500))
    # Real time and a long first delay: only the redelivery can make this finish quickly.
    sender = WebhookSender(
        Outbox(), Settings(webhook_url=receiver.url(), webhook_first_delay_ms=600_000)
    )

    async def go() -> None:
        waiting = asyncio.ensure_future(first_attempt(sender))
        delivery_id = sender.request_finished(finished_request())
        assert delivery_id is not None
        assert (await waiting).status_code == 500
        assert not await sender.drain(timeout=0.1), "waiting ten minutes for the retry"
        sender.redeliver(delivery_id)
        assert await sender.drain(timeout=10)

    run(loop, go())
    assert len(receiver.posts()) == 2
    [delivery] = Outbox().list_deliveries("req-1")
    assert delivery.status == DELIVERED


def test_a_slow_receiver_never_blocks_the_loop(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver
) -> None:
    def slow() -> Response:
        time.sleep(0.5)
        return Response("", 200)

    receiver.answer(slow)
    sender = WebhookSender(Outbox(), Settings(webhook_url=receiver.url()))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def go() -> None:
        beat = asyncio.ensure_future(ticker())
        sender.request_finished(finished_request())
        assert await sender.drain(timeout=10)
        beat.cancel()

    run(loop, go())
    assert len(receiver.posts()) == 1
    # The POST ran in a worker thread: the loop kept ticking (about 50 times) meanwhile.
    assert ticks >= 15


def test_stop_leaves_the_event_owed_for_the_next_start(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver
) -> None:
    receiver.answer(Response("", 503))
    sender = WebhookSender(
        Outbox(), Settings(webhook_url=receiver.url(), webhook_first_delay_ms=600_000)
    )

    async def go() -> None:
        waiting = asyncio.ensure_future(first_attempt(sender))
        sender.request_finished(finished_request())
        await waiting
        assert not await sender.drain(timeout=0.1)
        await sender.stop()

    run(loop, go())
    [owed] = Outbox().pending()
    assert (owed.status, owed.attempts) == (PENDING, 1)


def test_an_event_queued_without_a_running_loop_is_sent_by_drain(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver, fake_time: FakeTime
) -> None:
    sender, _, _ = make_sender(fake_time, webhook_url=receiver.url())
    assert sender.request_finished(finished_request()) is not None
    assert run(loop, sender.drain(timeout=30))
    assert len(receiver.posts()) == 1


def test_send_test_event_reports_the_answer_and_stores_nothing(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver, fake_time: FakeTime
) -> None:
    receiver.answer(Response("nope", 401))
    sender, _, _ = make_sender(fake_time)
    outcome = run(loop, sender.send_test_event(receiver.url(), WHSEC))
    assert (outcome.status_code, outcome.response_excerpt) == (401, "nope")
    [got] = receiver.posts()
    assert json.loads(got.body)["event"] == "test"
    assert got.headers["webhook-signature"] == expected_signature(WHSEC, got)
    assert Outbox().pending_count() == 0


# -- faults: no news, the cap, reports, stop ------------------------------------------------


def collect_reports(sender: WebhookSender) -> list[AttemptReport]:
    reports: list[AttemptReport] = []
    sender.attempt_recorded.connect(reports.append)
    return reports


def test_a_finish_that_changes_nothing_queues_no_new_event(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver, fake_time: FakeTime
) -> None:
    sender, _, _ = make_sender(fake_time, webhook_url=receiver.url())
    first = deliver(loop, sender, finished_request(status="failed", done=8, failed=2))
    assert first is not None

    # `imgdesk retry` whose images failed again: same status and counts, a later time.
    again = finished_request(status="failed", done=8, failed=2, finished_at=1_700_000_500.0)
    assert deliver(loop, sender, again) is None
    assert len(receiver.posts()) == 1
    assert [d.id for d in Outbox().list_deliveries("req-1")] == [first]

    # A retry that did change something is news.
    later = deliver(loop, sender, finished_request(done=10, failed=0))
    assert later not in (None, first)
    events = [json.loads(p.body)["event"] for p in receiver.posts()]
    assert events == ["request.failed", "request.completed"]


def test_an_owed_event_is_sent_once_under_its_id_when_a_retry_changes_nothing(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver
) -> None:
    # A killed run left this event owed, its retry due now.
    request = finished_request(status="failed", done=8, failed=2, webhook_url=receiver.url())
    owed = Outbox().enqueue(
        request.id,
        "request.failed",
        receiver.url(),
        None,
        encode_body(build_payload(request)),
        time.time() - 60,
    )
    later = FakeTime(start=time.time())
    sender, _, finished = make_sender(later)

    async def retry_run() -> None:
        assert sender.start() == 1
        retried = dataclasses.replace(request, finished_at=time.time())
        assert sender.request_finished(retried) is None, "nothing changed: no new event"
        assert await sender.drain(timeout=30)

    run(loop, retry_run())
    [got] = receiver.posts()
    assert got.headers["webhook-id"] == owed
    assert [(d.id, d.status) for d in finished] == [(owed, DELIVERED)]
    assert Outbox().pending_count() == 0


def test_retry_after_beyond_the_cap_is_said_in_the_attempt(
    loop: qasync.QEventLoop, db_path: Path, receiver: Receiver, fake_time: FakeTime
) -> None:
    receiver.answer(Response("", 429, headers={"Retry-After": "100000"}))
    sender, attempts, _ = make_sender(fake_time, webhook_url=receiver.url())
    deliver(loop, sender, finished_request())
    assert fake_time.sleeps == [60.0], "the default cap"
    assert attempts[0].error == (
        "HTTP 429 Too Many Requests; asked to wait 100000 s; waiting 60 s, the cap"
    )
    [delivery] = Outbox().list_deliveries("req-1")
    assert delivery.history[0].error == attempts[0].error, "stored, so status shows it"


def test_reports_number_the_attempts_and_say_the_next_delay_and_giving_up(
    loop: qasync.QEventLoop, db_path: Path, fake_time: FakeTime
) -> None:
    sender, _, _ = make_sender(fake_time, webhook_url=closed_port_url(), webhook_retries=2)
    reports = collect_reports(sender)
    delivery_id = deliver(loop, sender, finished_request())

    assert [r.number for r in reports] == [1, 2, 3]
    assert {r.delivery.id for r in reports} == {delivery_id}
    delays = [r.next_delay_s for r in reports]
    assert delays[2] is None, "no retry follows the last attempt"
    assert delays[:2] == pytest.approx(fake_time.sleeps), "the delays actually waited"
    assert [r.gave_up for r in reports] == [False, False, True]
    assert 1.0 <= fake_time.sleeps[0] <= 1.5


def test_the_sender_holds_each_attempt_to_its_total_deadline(
    loop: qasync.QEventLoop, db_path: Path, http_server: HttpTestServer
) -> None:
    body = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    def trickled(exchange: Exchange) -> None:
        exchange.close_connection = True
        for index in range(len(body)):
            if not exchange.wait(0.5):
                return
            exchange.write(body[index : index + 1])

    url = http_server.route("/hook", trickled)
    sender = WebhookSender(Outbox(), Settings(webhook_url=url, webhook_retries=0), timeout_s=1.0)
    reports = collect_reports(sender)
    deliver(loop, sender, finished_request())
    [report] = reports
    assert report.attempt.error == f"{url_origin(url)} did not answer within 1 s"
    assert report.attempt.duration_ms < 15_000, "the trickle alone would take 20 s"
    assert report.gave_up


def test_stop_cuts_off_a_post_on_the_wire_and_leaves_the_event_due(
    loop: qasync.QEventLoop, db_path: Path, http_server: HttpTestServer
) -> None:
    arrived = threading.Event()
    hung_up = threading.Event()

    def stalled(exchange: Exchange) -> None:
        # Never answer; notice when the sender lets go of the connection.
        arrived.set()
        for _ in range(1200):
            readable, _, _ = select.select([exchange.connection], [], [], 0.1)
            if readable and exchange.connection.recv(1, socket.MSG_PEEK) == b"":
                hung_up.set()
                return
            if http_server.stopping.is_set():
                return

    url = http_server.route("/hook", stalled)
    sender = WebhookSender(Outbox(), Settings(webhook_url=url))
    reports = collect_reports(sender)

    async def go() -> None:
        delivery_id = sender.request_finished(finished_request())
        assert delivery_id is not None
        while not arrived.is_set():
            await asyncio.sleep(0.01)
        await asyncio.wait_for(sender.stop(), timeout=10)

    run(loop, go())
    # The POST's thread let go of its socket at once, long before the 15 s deadline.
    assert hung_up.wait(10), "the POST in flight was not cut off"
    assert reports == [], "a cut-off attempt is not recorded"
    [owed] = Outbox().pending()
    assert (owed.status, owed.attempts) == (PENDING, 0)
    assert owed.next_attempt_at <= time.time(), "due at once for the next run"
