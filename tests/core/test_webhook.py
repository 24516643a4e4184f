"""One webhook attempt and the outbox, against a real receiver on 127.0.0.1.

Signatures are checked with :mod:`hmac` here, independently of the project's ``sign``, so a
mistake there cannot hide behind a matching mistake in the test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from imgdesk.core.db import open_database
from imgdesk.core.errors import SettingsError
from imgdesk.core.outbox import FAILED, PENDING, Outbox
from imgdesk.core.output import OutputSettings
from imgdesk.core.repository import RequestInfo
from imgdesk.core.webhook import (
    DELIVERED,
    EXCERPT_CHARS,
    GIVE_UP,
    RETRY,
    STOPPED,
    AttemptAbort,
    AttemptOutcome,
    build_payload,
    check_secret,
    encode_body,
    event_for,
    post_once,
    retry_delay,
    same_result,
    sign,
    signing_key,
    url_origin,
)
from tests.httpservers import Exchange, HttpTestServer, respond, trickle

pytestmark = pytest.mark.timeout(60)

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# The same form without its base64 padding, as some providers print secrets.
WHSEC_UNPADDED = "whsec_tq9VvBkY6uL0Ja1ub73NMQ"


# -- a real receiver ------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it: raw body bytes, lower-case header names."""

    path: str
    headers: dict[str, str]
    body: bytes


Answer = Response | Callable[[], Response]


class Receiver:
    """Records every request and answers from a script (then 200 OK once it runs out)."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.received: list[Received] = []
        self.answers: deque[Answer] = deque()
        self._lock = threading.Lock()
        server.expect_request("/hook").respond_with_handler(self._handle)
        server.expect_request("/elsewhere").respond_with_handler(self._handle)

    def url(self, path: str = "/hook") -> str:
        return self.server.url_for(path)

    def answer(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def posts(self, path: str = "/hook") -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def _handle(self, request: Request) -> Response:
        with self._lock:
            self.received.append(
                Received(
                    request.path,
                    {k.lower(): v for k, v in request.headers.items()},
                    request.get_data(),
                )
            )
            answer = self.answers.popleft() if self.answers else Response("ok", 200)
        return answer() if callable(answer) and not isinstance(answer, Response) else answer


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


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: the receiver is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def expected_signature(secret: str, received: Received) -> str:
    """Standard Webhooks verification, written out from the spec with hmac only."""
    return signature_of(
        secret,
        received.headers["webhook-id"],
        received.headers["webhook-timestamp"],
        received.body,
    )


def signature_of(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """``v1,<base64 HMAC>`` the way the verifiers compute it (they pad a short base64)."""
    if secret.startswith("whsec_"):
        encoded = secret.removeprefix("whsec_")
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    else:
        key = secret.encode()
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def finished_request(**changes: object) -> RequestInfo:
    fields: dict[str, object] = {
        "id": "req-1",
        "csv_name": "products.csv",
        "csv_path": "",
        "status": "completed",
        "error": None,
        "created_at": 1_700_000_000.0,
        "started_at": 1_700_000_001.0,
        "finished_at": 1_700_000_010.0,
        "total": 10,
        "done": 10,
        "failed": 0,
        "in_flight": 0,
        "input_bytes": 0,
        "output_bytes": 0,
        "webhook_url": None,
        "webhook_secret": None,
        "output_csv": "file:///exports/products-output.csv",
        "output": OutputSettings(),
    }
    fields.update(changes)
    return RequestInfo(**fields)  # type: ignore[arg-type]


# -- signing --------------------------------------------------------------------------------


def test_sign_reproduces_the_standard_webhooks_test_vector() -> None:
    signature = sign(WHSEC, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_plain_secret_is_used_as_its_utf8_bytes() -> None:
    secret = "s3cret-ünïcode"
    body = '{"a":1}'
    digest = hmac.new(secret.encode("utf-8"), b"msg_1.42." + body.encode(), hashlib.sha256)
    assert sign(secret, "msg_1", 42, body) == "v1," + base64.b64encode(digest.digest()).decode()


def test_a_whsec_secret_that_is_not_base64_is_refused_without_quoting_it() -> None:
    with pytest.raises(SettingsError) as caught:
        check_secret("whsec_not*base64!")
    assert "not*base64" not in str(caught.value)
    check_secret("")
    check_secret("anything goes as a plain secret")


def test_an_unpadded_whsec_secret_is_accepted_as_the_verifiers_accept_it() -> None:
    check_secret(WHSEC_UNPADDED)
    assert signing_key(WHSEC_UNPADDED) == base64.b64decode("tq9VvBkY6uL0Ja1ub73NMQ==")
    assert signing_key(WHSEC_UNPADDED + "==") == signing_key(WHSEC_UNPADDED)
    assert sign(WHSEC_UNPADDED, "msg_1", 42, "{}") == signature_of(
        WHSEC_UNPADDED, "msg_1", "42", b"{}"
    )


def test_a_bad_secret_is_named_as_the_setting_unless_the_cli_names_its_flag() -> None:
    with pytest.raises(SettingsError, match=r"^webhook_secret starts with whsec_"):
        check_secret("whsec_a")  # one base64 character can never be a whole byte
    with pytest.raises(SettingsError, match=r"^--webhook-secret starts with whsec_"):
        check_secret("whsec_a", "--webhook-secret")
    with pytest.raises(SettingsError, match=r"^webhook_secret is whsec_ with no key"):
        check_secret("whsec_")


# -- payload and backoff --------------------------------------------------------------------


def test_payload_has_exactly_the_spec_fields() -> None:
    payload = build_payload(finished_request(status="failed", done=7, failed=3))
    assert payload == {
        "event": "request.failed",
        "request_id": "req-1",
        "status": "failed",
        "csv_name": "products.csv",
        "total_images": 10,
        "succeeded": 7,
        "failed": 3,
        "created_at": "2023-11-14T22:13:20Z",
        "finished_at": "2023-11-14T22:13:30Z",
        "output_csv": "file:///exports/products-output.csv",
    }
    assert json.loads(encode_body(payload)) == payload


def test_an_unfinished_request_has_no_event() -> None:
    with pytest.raises(ValueError):
        build_payload(finished_request(status="processing"))


def test_any_failed_or_cancelled_image_makes_the_event_request_failed() -> None:
    # A cancelled image is a failed one (SPEC 2): the request ends failed either way.
    assert event_for("completed") == "request.completed"
    assert event_for("failed") == "request.failed"
    cancelled = finished_request(status="failed", done=0, failed=10, error=None)
    assert build_payload(cancelled)["event"] == "request.failed"
    with pytest.raises(ValueError):
        event_for("pending")


def test_same_result_compares_the_end_not_the_times() -> None:
    first = build_payload(finished_request(status="failed", done=7, failed=3))
    stored = encode_body(first)
    later = build_payload(
        finished_request(status="failed", done=7, failed=3, finished_at=1_800_000_000.0)
    )
    assert same_result(stored, later), "a retry that changed nothing is no news"
    assert not same_result(stored, build_payload(finished_request(done=10, failed=0)))
    assert not same_result(stored, build_payload(finished_request(status="failed", failed=4)))
    assert not same_result("not json", later)


def test_the_first_retry_is_never_sooner_than_the_first_delay() -> None:
    rng = random.Random(20240611)
    for number, base in ((1, 1.0), (2, 2.0), (3, 4.0)):
        draws = [retry_delay(number, 1.0, None, 60, rng).seconds for _ in range(5000)]
        assert min(draws) >= base, "jitter only adds"
        assert max(draws) <= base * 1.5
        # Real jitter: the draws spread over the whole range, not one value.
        assert min(draws) < base * 1.05 and max(draws) > base * 1.45
    assert retry_delay(40, 3600.0, None, 60).seconds == 24 * 3600.0


def test_retry_after_is_honoured_up_to_the_cap_and_the_cap_is_said() -> None:
    assert retry_delay(1, 1.0, 7.0, 60).seconds == 7.0
    assert retry_delay(1, 1.0, 7.0, 60).note is None
    # Asking for less than the backoff does not make a retry sooner.
    assert retry_delay(2, 1.0, 0.0, 60).seconds == 2.0
    capped = retry_delay(1, 1.0, 100000.0, 60)
    assert capped.seconds == 60
    assert capped.note == "asked to wait 100000 s; waiting 60 s, the cap"


def test_url_origin_hides_paths_queries_and_credentials() -> None:
    assert url_origin("https://user:pw@hooks.example.com:8443/T0/B1/tok?k=v") == (
        "https://hooks.example.com:8443"
    )


# -- one attempt ----------------------------------------------------------------------------


def test_a_2xx_answer_is_delivered_with_standard_webhooks_headers(receiver: Receiver) -> None:
    receiver.answer(Response("thanks", 202))
    outcome = post_once(receiver.url(), "msg_abc", '{"x":1}', WHSEC, timestamp=1_700_000_000)
    assert outcome.outcome == DELIVERED
    assert (outcome.status_code, outcome.error, outcome.response_excerpt) == (202, None, "thanks")
    [got] = receiver.posts()
    assert got.body == b'{"x":1}'
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-id"] == "msg_abc"
    assert got.headers["webhook-timestamp"] == "1700000000"
    assert got.headers["webhook-signature"] == expected_signature(WHSEC, got)


def test_without_a_secret_there_is_no_signature(receiver: Receiver) -> None:
    assert post_once(receiver.url(), "msg_1", "{}", None).outcome == DELIVERED
    assert "webhook-signature" not in receiver.posts()[0].headers


def test_a_server_error_is_retried_with_an_excerpt_of_the_answer(receiver: Receiver) -> None:
    receiver.answer(Response("x" * 2000, 500))
    outcome = post_once(receiver.url(), "msg_1", "{}", "plain")
    assert outcome.outcome == RETRY
    assert outcome.status_code == 500
    assert outcome.error == "HTTP 500 Internal Server Error"
    assert outcome.response_excerpt == "x" * EXCERPT_CHARS


def test_retry_after_is_reported(receiver: Receiver) -> None:
    receiver.answer(Response("slow down", 429, headers={"Retry-After": "12"}))
    outcome = post_once(receiver.url(), "msg_1", "{}", None)
    assert (outcome.outcome, outcome.retry_after) == (RETRY, 12.0)


def test_a_redirect_is_a_failure_and_is_not_followed(receiver: Receiver) -> None:
    receiver.answer(Response("", 307, headers={"Location": receiver.url("/elsewhere")}))
    outcome = post_once(receiver.url(), "msg_1", "{}", None)
    assert (outcome.outcome, outcome.status_code) == (RETRY, 307)
    assert "not followed" in (outcome.error or "")
    assert receiver.posts("/elsewhere") == []


def test_410_gone_means_give_up(receiver: Receiver) -> None:
    receiver.answer(Response("unsubscribed", 410))
    outcome = post_once(receiver.url(), "msg_1", "{}", None)
    assert (outcome.outcome, outcome.status_code) == (GIVE_UP, 410)


def test_a_receiver_that_is_down_is_retried() -> None:
    outcome = post_once(closed_port_url(), "msg_1", "{}", None)
    assert outcome.outcome == RETRY
    assert outcome.status_code is None
    assert outcome.error is not None and "could not connect to http://127.0.0.1:" in outcome.error
    assert "refused" in outcome.error.lower()


def test_a_slow_receiver_times_out(receiver: Receiver) -> None:
    def slow() -> Response:
        time.sleep(1.0)
        return Response("late", 200)

    receiver.answer(slow)
    outcome = post_once(receiver.url(), "msg_1", "{}", None, timeout_s=0.2)
    assert outcome.outcome == RETRY
    assert outcome.error == f"{url_origin(receiver.url())} did not answer within 0.2 s"
    assert outcome.duration_ms < 900


def trickled_answer(delay_s: float) -> Callable[[Exchange], None]:
    """A receiver that writes its whole answer, status line included, a byte at a time."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

    def handler(exchange: Exchange) -> None:
        exchange.close_connection = True
        for index in range(len(answer)):
            if not exchange.wait(delay_s):
                return
            exchange.write(answer[index : index + 1])

    return handler


def test_the_deadline_covers_the_whole_attempt_however_slowly_the_answer_trickles(
    http_server: HttpTestServer,
) -> None:
    # About 60 bytes at one every 0.5 s: some 30 s, while each byte comes well within
    # the 1 s deadline (the old per-read timeout never fired).
    url = http_server.route("/hook", trickled_answer(0.5))
    outcome = post_once(url, "msg_1", "{}", None, timeout_s=1.0)
    assert outcome.outcome == RETRY
    assert outcome.status_code is None
    assert outcome.error == f"{url_origin(url)} did not answer within 1 s"
    assert outcome.duration_ms < 15_000, "the attempt must end at its deadline"


def test_a_body_trickled_after_a_2xx_is_cut_at_the_deadline(http_server: HttpTestServer) -> None:
    url = http_server.route("/hook", trickle(b"x" * 100, delay_s=0.5, status=202))
    outcome = post_once(url, "msg_1", "{}", None, timeout_s=1.0)
    assert (outcome.outcome, outcome.status_code) == (DELIVERED, 202), "it did answer 2xx"
    assert outcome.duration_ms < 15_000, "the excerpt is read within the deadline too"


def test_a_receiver_that_hangs_up_without_answering_is_said_so(
    http_server: HttpTestServer,
) -> None:
    def hang_up(exchange: Exchange) -> None:
        exchange.close_connection = True  # the body was read; no status line is sent

    url = http_server.route("/hook", hang_up)
    outcome = post_once(url, "msg_1", '{"a":1}', None)
    assert outcome.outcome == RETRY
    assert outcome.error == (
        f"the receiver at {url_origin(url)} closed the connection without answering"
    )
    assert [r.body for r in http_server.requests] == [b'{"a":1}']


def test_an_attempt_can_be_cut_off_from_another_thread(http_server: HttpTestServer) -> None:
    arrived = threading.Event()

    def stalled(exchange: Exchange) -> None:
        arrived.set()
        exchange.wait(120)

    url = http_server.route("/hook", stalled)
    abort = AttemptAbort()
    cutter = threading.Thread(target=lambda: arrived.wait(30) and abort.abort(STOPPED))
    cutter.start()
    outcome = post_once(url, "msg_1", "{}", None, abort=abort)
    cutter.join()
    assert outcome.outcome == RETRY
    assert outcome.error == f"stopped before {url_origin(url)} answered: imgdesk was shutting down"
    assert outcome.duration_ms < 14_000, "well before the 15 s deadline"


def test_an_unpadded_whsec_secret_signs_verifiably(http_server: HttpTestServer) -> None:
    url = http_server.route("/hook", respond(b"ok"))
    assert post_once(url, "msg_1", '{"a":1}', WHSEC_UNPADDED, timestamp=7).outcome == DELIVERED
    [got] = http_server.requests
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["webhook-signature"] == signature_of(WHSEC_UNPADDED, "msg_1", "7", got.body)


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "not a url", "http://"])
def test_an_unusable_url_gives_up_at_once(url: str) -> None:
    outcome = post_once(url, "msg_1", "{}", None)
    assert outcome.outcome == GIVE_UP
    assert "not a usable webhook URL" in (outcome.error or "")


def test_attempt_errors_never_quote_credentials(receiver: Receiver) -> None:
    outcome = post_once("ftp://user:hunter2@example.com/hook?token=t0k", "msg_1", "{}", None)
    assert outcome.outcome == GIVE_UP
    leaked = "https://user:hunter2@elsewhere.example/in?token=t0k"
    receiver.answer(Response("", 302, headers={"Location": leaked}))
    moved = post_once(receiver.url(), "msg_1", "{}", None)
    for error in (outcome.error or "", moved.error or ""):
        assert "hunter2" not in error and "t0k" not in error
    assert "elsewhere.example" in (moved.error or ""), "where it was sent stays readable"


def test_an_unusable_secret_gives_up_before_sending(receiver: Receiver) -> None:
    outcome = post_once(receiver.url(), "msg_1", "{}", "whsec_***")
    assert outcome.outcome == GIVE_UP
    assert receiver.posts() == []


# -- the outbox -----------------------------------------------------------------------------


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    open_database(tmp_path / "db.sqlite3")
    return Outbox()


def outcome(kind: str, code: int | None, error: str | None = None) -> AttemptOutcome:
    return AttemptOutcome(kind, code, error, 12, "body", None, 100)


def test_outbox_keeps_the_event_and_every_attempt(outbox: Outbox) -> None:
    delivery_id = outbox.enqueue("req-1", "request.completed", "http://x/h", "s", '{"a":1}', 100.0)
    assert delivery_id.startswith("msg_")
    assert outbox.pending_count() == 1
    assert outbox.claim(delivery_id, now=100.0, until=145.0)
    assert not outbox.claim(delivery_id, now=100.0, until=145.0), "claimed twice"

    attempt, delivery = outbox.record_attempt(
        delivery_id, outcome(RETRY, 500, "HTTP 500"), 100.0, next_attempt_at=101.0
    )
    assert (attempt.status_code, attempt.error, attempt.duration_ms) == (500, "HTTP 500", 12)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (PENDING, 1, 101.0)
    assert not outbox.claim(delivery_id, now=100.5, until=200.0), "claimed before it is due"

    _, delivery = outbox.record_attempt(delivery_id, outcome(DELIVERED, 200), 101.0, None)
    assert (delivery.status, delivery.attempts, delivery.last_error) == (DELIVERED, 2, None)
    assert delivery.finished_at == pytest.approx(101.012)
    assert outbox.pending_count() == 0

    [listed] = outbox.list_deliveries("req-1")
    assert [a.status_code for a in listed.history] == [500, 200]
    assert listed.payload == '{"a":1}'
    assert "'s'" not in repr(listed), "the secret must stay out of reprs"


def test_outbox_gives_up_without_a_next_time(outbox: Outbox) -> None:
    delivery_id = outbox.enqueue("req-1", "request.failed", "http://x/h", None, "{}", 1.0)
    _, delivery = outbox.record_attempt(delivery_id, outcome(GIVE_UP, 410, "gone"), 2.0, None)
    assert (delivery.status, delivery.last_error) == (FAILED, "gone")


def test_redeliver_keeps_the_id_and_starts_a_new_round(outbox: Outbox) -> None:
    delivery_id = outbox.enqueue("req-1", "request.completed", "http://x/h", None, "{}", 1.0)
    outbox.record_attempt(delivery_id, outcome(GIVE_UP, 410, "gone"), 2.0, None)
    again = outbox.redeliver(delivery_id, now=50.0)
    assert again is not None
    assert (again.id, again.status, again.attempts, again.next_attempt_at) == (
        delivery_id,
        PENDING,
        0,
        50.0,
    )
    assert again.finished_at is None
    full = outbox.get(delivery_id, with_history=True)
    assert full is not None and len(full.history) == 1, "earlier attempts stay recorded"
    assert outbox.redeliver("msg_nope", now=1.0) is None


def test_latest_for_request_is_the_newest_event_even_within_one_clock_tick(
    outbox: Outbox,
) -> None:
    assert outbox.latest_for_request("req-1") is None
    first = outbox.enqueue("req-1", "request.failed", "http://x/h", None, '{"n":1}', 5.0)
    second = outbox.enqueue("req-1", "request.completed", "http://x/h", None, '{"n":2}', 5.0)
    outbox.enqueue("req-2", "request.completed", "http://x/h", None, '{"n":3}', 9.0)
    latest = outbox.latest_for_request("req-1")
    assert latest is not None and latest.id == second != first


def test_release_makes_a_claimed_delivery_due_again(outbox: Outbox) -> None:
    delivery_id = outbox.enqueue("req-1", "request.completed", "http://x/h", None, "{}", 1.0)
    assert outbox.claim(delivery_id, now=1.0, until=100.0)
    assert not outbox.claim(delivery_id, now=2.0, until=100.0)
    outbox.release(delivery_id, now=2.0)
    assert outbox.claim(delivery_id, now=2.0, until=100.0), "due again at once"
